package session

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

var parseTokenTests = []struct {
	name  string
	token string
	ok    bool
}{
	{"valid", strings.Repeat("A", 43), true},
	{"valid mixed", "abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE", true},
	{"empty", "", false},
	{"42 chars", strings.Repeat("A", 42), false},
	{"44 chars", strings.Repeat("A", 44), false},
	{"padded", strings.Repeat("A", 42) + "=", false},
	{"std alphabet +", strings.Repeat("A", 42) + "+", false},
	{"std alphabet /", "/" + strings.Repeat("A", 42), false},
	{"space", " " + strings.Repeat("A", 42), false},
	{"non-zero trailing bits", strings.Repeat("A", 42) + "B", false},
	{"non-ascii", "é" + strings.Repeat("A", 41), false},
	{"newline", strings.Repeat("A", 42) + "\n", false},
}

func TestParseToken(t *testing.T) {
	for _, tt := range parseTokenTests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := parseToken(tt.token)
			if ok != tt.ok {
				t.Fatalf("got %v, want %v", ok, tt.ok)
			}
		})
	}
}

func TestNewTokenParses(t *testing.T) {
	token, h := newToken()
	got, ok := parseToken(token)
	if !ok || got != h {
		t.Fatalf("parseToken(newToken()) = %x, %v; want %x, true", got, ok, h)
	}
}

// FuzzParseToken checks parseToken against the standard library's strict
// decoder: it accepts exactly the strings that decode to 32 bytes and
// re-encode to themselves, and hashes the decoded bytes.
func FuzzParseToken(f *testing.F) {
	for _, tt := range parseTokenTests {
		f.Add(tt.token)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parseToken(s)
		raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
		want := err == nil && len(raw) == tokenBytes && base64.RawURLEncoding.EncodeToString(raw) == s
		if ok != want {
			t.Fatalf("parseToken(%q) ok=%v, want %v", s, ok, want)
		}
		if ok && h != sha256.Sum256(raw) {
			t.Fatalf("parseToken(%q) hash is not SHA-256 of the decoded token", s)
		}
	})
}

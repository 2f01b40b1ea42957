package csrf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var (
	testSecret  = bytes.Repeat([]byte{0xA7}, minSecretSize)
	otherSecret = bytes.Repeat([]byte{0x5C}, minSecretSize)
	alice       = []byte("session-alice")
	bob         = []byte("session-bob")
)

func newProtector(t testing.TB, secret []byte) *Protector {
	t.Helper()
	p, err := New(secret)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

type validCase struct {
	name    string
	binding []byte
	token   string
	want    bool
}

// validCases is the table for Valid, shared with FuzzValid as its seeds.
func validCases(t testing.TB, p *Protector) []validCase {
	tok := p.Token(alice)
	raw, err := b64.DecodeString(tok)
	if err != nil {
		t.Fatalf("decode own token: %v", err)
	}
	flip := func(at ...int) string {
		r := slices.Clone(raw)
		for _, i := range at {
			r[i] ^= 1
		}
		return b64.EncodeToString(r)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	mac := p.mac(nil, alice)
	return []validCase{
		{"issued for this binding", alice, tok, true},
		{"another node with the same secret", alice, newProtector(t, testSecret).Token(alice), true},
		{"any mask verifies, even zero", alice, b64.EncodeToString(append(make([]byte, maskSize), mac...)), true},
		{"re-masked: same bit flipped in both halves", alice, flip(0, maskSize), true},
		{"another binding", bob, tok, false},
		{"binding prefix", alice[:len(alice)-1], tok, false},
		{"nil binding", nil, tok, false},
		{"empty binding", []byte{}, p.Token([]byte{}), false},
		{"another secret", alice, newProtector(t, otherSecret).Token(alice), false},
		{"empty token", alice, "", false},
		{"mask bit flipped", alice, flip(0), false},
		{"mac bit flipped", alice, flip(rawSize - 1), false},
		{"unmasked mac", alice, b64.EncodeToString(mac), false},
		{"one char short", alice, tok[:len(tok)-1], false},
		{"one char long", alice, tok + "A", false},
		{"padded", alice, tok + "==", false},
		{"standard alphabet +", alice, "+" + tok[1:], false},
		{"standard alphabet /", alice, tok[:20] + "/" + tok[21:], false},
		{"non-zero trailing bits", alice, tok[:len(tok)-1] + string(alphabet[last|1]), false},
		{"newline inside", alice, tok[:40] + "\n" + tok[41:], false},
		{"two newlines inside", alice, tok[:40] + "\n\n" + tok[42:], false},
		{"newline appended", alice, tok[:len(tok)-1] + "\n", false},
		{"leading space", alice, " " + tok[1:], false},
		{"non-ASCII", alice, "é" + tok[2:], false},
	}
}

func TestCSRF02_Valid(t *testing.T) {
	p := newProtector(t, testSecret)
	for _, c := range validCases(t, p) {
		t.Run(c.name, func(t *testing.T) {
			if got := p.Valid(c.binding, c.token); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// CSRF-02: masked per response (BREACH), yet every token verifies.
func TestCSRF02_TokensDifferPerCall(t *testing.T) {
	p := newProtector(t, testSecret)
	seen := make(map[string]bool)
	for range 200 {
		tok := p.Token(alice)
		if seen[tok] {
			t.Fatalf("token %q issued twice", tok)
		}
		seen[tok] = true
		if got, want := len(tok), 86; got != want {
			t.Errorf("len(token) got %v, want %v", got, want)
		}
		if got := p.Valid(alice, tok); !got {
			t.Errorf("Valid(own token) got %v, want %v", got, true)
		}
	}
}

// CSRF-02: the token is mask || (mask XOR HMAC-SHA256(secret, domain ||
// binding)). Every node must agree on it, so the format is pinned here.
func TestCSRF02_TokenFormat(t *testing.T) {
	p := newProtector(t, testSecret)
	tok := p.Token(alice)
	if len(tok) != tokenLen || tokenLen != b64.EncodedLen(rawSize) {
		t.Fatalf("token of %d characters, tokenLen %d; want %d for both", len(tok), tokenLen, b64.EncodedLen(rawSize))
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got, want := len(raw), 64; got != want {
		t.Fatalf("raw length got %v, want %v", got, want)
	}
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte("tether-csrf-v1\x00session-alice"))
	want := m.Sum(nil)
	got := make([]byte, 32)
	subtle.XORBytes(got, raw[:32], raw[32:])
	if !bytes.Equal(got, want) {
		t.Errorf("unmasked got %x, want %x", got, want)
	}
}

func TestNew(t *testing.T) {
	for _, c := range []struct {
		name    string
		secret  []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"31 bytes", testSecret[:31], true},
		{"32 bytes", testSecret, false},
		{"64 bytes", append(bytes.Clone(testSecret), testSecret...), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(c.secret)
			if got := err != nil; got != c.wantErr {
				t.Fatalf("error %v: got %v, want %v", err, got, c.wantErr)
			}
			if got := p == nil; got != c.wantErr {
				t.Errorf("nil Protector got %v, want %v", got, c.wantErr)
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	secret := bytes.Clone(testSecret)
	p := newProtector(t, secret)
	tok := p.Token(alice)
	secret[0] ^= 0xFF
	if got := p.Valid(alice, tok); !got {
		t.Errorf("Valid after the caller changed its secret got %v, want %v", got, true)
	}
}

// MISC-02: printing a Protector shows no key material.
func TestSecretNotPrinted(t *testing.T) {
	p := newProtector(t, testSecret)
	p.Token(alice) // put a keyed MAC in the pool
	out := fmt.Sprintf("%v %+v %#v", p, p, p)
	for _, s := range []string{fmt.Sprint(testSecret), fmt.Sprintf("%x", testSecret), fmt.Sprintf("%#v", testSecret)} {
		if strings.Contains(out, s) {
			t.Fatalf("got %s, want no secret in it", out)
		}
	}
}

func FuzzValid(f *testing.F) {
	p := newProtector(f, testSecret)
	for _, c := range validCases(f, p) {
		f.Add(c.binding, c.token)
	}
	f.Fuzz(func(t *testing.T, binding []byte, token string) {
		if p.Valid(binding, token) {
			raw, err := b64.DecodeString(token)
			if err != nil || b64.EncodeToString(raw) != token {
				t.Fatalf("Valid accepted %q, which is not a canonical token", token)
			}
		}
		if len(binding) > 0 && !p.Valid(binding, p.Token(binding)) {
			t.Fatalf("Valid refused a fresh token for %q", binding)
		}
	})
}

func BenchmarkToken(b *testing.B) {
	p := newProtector(b, testSecret)
	b.ReportAllocs()
	for b.Loop() {
		p.Token(alice)
	}
}

func BenchmarkValid(b *testing.B) {
	p := newProtector(b, testSecret)
	tok := p.Token(alice)
	b.ReportAllocs()
	for b.Loop() {
		if !p.Valid(alice, tok) {
			b.Fatal("valid token refused")
		}
	}
}

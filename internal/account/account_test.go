package account

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var canonicalTests = []struct {
	name string
	in   string
	want string // "" means ErrInvalidName
}{
	{"lower", "alice", "alice"},
	{"upper", "ALICE", "alice"},
	{"mixed", "Alice.Smith", "alice.smith"},
	{"trimmed", "  bob\t\n", "bob"},
	{"email", "Bob+tag@Example.COM", "bob+tag@example.com"},
	{"digits and punctuation", "a-b_c.d@e+1", "a-b_c.d@e+1"},
	{"kelvin sign folds to k", "\u212Aelvin", "kelvin"},
	{"long s folds to s", "\u017Fam", "sam"},
	{"one char", "x", "x"},
	{"64 chars", strings.Repeat("a", 64), strings.Repeat("a", 64)},
	{"65 chars", strings.Repeat("a", 65), ""},
	{"64 chars after trim", " " + strings.Repeat("B", 64) + " ", strings.Repeat("b", 64)},
	{"empty", "", ""},
	{"only space", "   ", ""},
	{"inner space", "al ice", ""},
	{"slash", "a/b", ""},
	{"colon", "user:alice", ""},
	{"nul", "a\x00b", ""},
	{"accented", "jos\u00e9", ""},
	{"dotted capital I does not fold to ASCII", "\u0130nge", ""},
	{"cyrillic look-alike", "\u0430lice", ""},
	{"invalid utf-8", "a\xffb", ""},
	{"replacement char", "a\uFFFDb", ""},
}

func TestCanonicalName(t *testing.T) {
	for _, tt := range canonicalTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalName(tt.in)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidName) {
					t.Fatalf("CanonicalName(%q) = %q, %v; want ErrInvalidName", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CanonicalName(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzCanonicalName(f *testing.F) {
	for _, tt := range canonicalTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CanonicalName(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) || got != "" {
				t.Fatalf("CanonicalName(%q) = %q, %v; want \"\", ErrInvalidName", in, got, err)
			}
			return
		}
		if len(got) < 1 || len(got) > MaxNameLen {
			t.Fatalf("CanonicalName(%q) = %q: got length %d, want 1..%d", in, got, len(got), MaxNameLen)
		}
		for i := range len(got) {
			if !allowed(got[i], namePunct) {
				t.Fatalf("CanonicalName(%q) = %q: got byte %q, want only a-z 0-9 . _ @ + -", in, got, got[i])
			}
		}
		if again, err := CanonicalName(got); again != got || err != nil {
			t.Fatalf("CanonicalName(%q) = %q, %v; want it unchanged (idempotent)", got, again, err)
		}
		if upper, err := CanonicalName(strings.ToUpper(got)); upper != got || err != nil {
			t.Fatalf("CanonicalName(%q) = %q, %v; want %q", strings.ToUpper(got), upper, err, got)
		}
		if !strings.EqualFold(strings.TrimSpace(in), got) {
			t.Fatalf("CanonicalName(%q) = %q: got a name that is not a case folding of the input", in, got)
		}
	})
}

func ExampleCanonicalName() {
	for _, name := range []string{" Alice@Example.com ", "al ice"} {
		canonical, err := CanonicalName(name)
		fmt.Printf("%q %v\n", canonical, err)
	}
	// Output:
	// "alice@example.com" <nil>
	// "" account: invalid user name: use 1 to 64 of the characters a-z 0-9 . _ @ + -
}

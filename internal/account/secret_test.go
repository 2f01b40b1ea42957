package account

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// knownPAT is a token made here, independently of NewPAT: the random
// part, then its CRC-32 in 6 base62 digits, computed with hash/crc32 and
// math/big.
var knownPAT = func() string {
	random := "0aZ9bY8cX7dW6eV5fU4gT3hS2iR1jQ0kP9lO8mN7oMz"
	sum := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(random)))).Text(62)
	return PATPrefix + random + strings.Repeat("0", 6-len(sum)) + sum
}()

// parsePATTests: want is a word of ParsePAT's error, "" for none.
var parsePATTests = []struct {
	name, in, want string
}{
	{"valid", knownPAT, ""},
	{"empty", "", "start"},
	{"prefix only", PATPrefix, "characters long"},
	{"no prefix", knownPAT[len(PATPrefix):], "start"},
	{"upper-case prefix", strings.ToUpper(PATPrefix) + knownPAT[len(PATPrefix):], "start"},
	{"client secret prefix", ClientSecretPrefix + knownPAT[len(PATPrefix):], "start"},
	{"GitHub's prefix", "ghp_" + knownPAT[len(PATPrefix):], "start"},
	{"one character short", knownPAT[:PATLen-1], "characters long"},
	{"one character more", knownPAT + "0", "characters long"},
	{"surrounding space", " " + knownPAT, "start"},
	{"trailing newline", knownPAT + "\n", "characters long"},
	{"base64url dash", knownPAT[:20] + "-" + knownPAT[21:], "not one of"},
	{"base64url underscore", knownPAT[:20] + "_" + knownPAT[21:], "not one of"},
	{"padding", knownPAT[:PATLen-1] + "=", "not one of"},
	{"NUL", knownPAT[:30] + "\x00" + knownPAT[31:], "not one of"},
	{"two-byte character", knownPAT[:30] + "é" + knownPAT[32:], "not one of"},
	{"invalid UTF-8", knownPAT[:30] + "\xff" + knownPAT[31:], "not one of"},
	{"a random character mistyped", knownPAT[:20] + "x" + knownPAT[21:], "checksum"},
	{"a checksum character mistyped", knownPAT[:PATLen-1] + strings.Trim(base62[:2], knownPAT[PATLen-1:])[:1], "checksum"},
	{"two characters swapped", knownPAT[:20] + knownPAT[21:22] + knownPAT[20:21] + knownPAT[22:], "checksum"},
	{"checksum dropped, padded", knownPAT[:PATLen-6] + "000000", "checksum"},
}

func TestParsePAT(t *testing.T) {
	for _, tt := range parsePATTests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParsePAT(tt.in)
			if tt.want == "" {
				if err != nil || h != HashSecret(tt.in) {
					t.Fatalf("ParsePAT = %x, %v; want %x, nil", h, err, HashSecret(tt.in))
				}
				return
			}
			if !errors.Is(err, ErrMalformedPAT) || !strings.Contains(err.Error(), tt.want) || h != (SecretHash{}) {
				t.Fatalf("ParsePAT = %x, %v; want no hash, ErrMalformedPAT saying %q", h, err, tt.want)
			}
			if len(tt.in) > len(PATPrefix)+8 && strings.Contains(err.Error(), tt.in[len(PATPrefix):len(PATPrefix)+8]) {
				t.Fatalf("ParsePAT's error %q holds the token", err)
			}
		})
	}
}

// Every token NewPAT makes parses, and any one character of its random
// part or checksum typed wrong is refused by the checksum alone.
func TestParsePATCatchesEveryTypo(t *testing.T) {
	tok, h := NewPAT()
	if got, err := ParsePAT(tok); err != nil || got != h {
		t.Fatalf("ParsePAT(NewPAT()) = %x, %v; want %x, nil", got, err, h)
	}
	for i := len(PATPrefix); i < PATLen; i++ {
		for j := range len(base62) {
			if base62[j] == tok[i] {
				continue
			}
			typo := tok[:i] + base62[j:j+1] + tok[i+1:]
			if _, err := ParsePAT(typo); !errors.Is(err, ErrMalformedPAT) {
				t.Fatalf("character %d typed %q: got %v, want ErrMalformedPAT", i, base62[j], err)
			}
		}
	}
}

var (
	patFormat          = regexp.MustCompile(`^tether_pat_[0-9a-zA-Z]{49}$`)
	clientSecretFormat = regexp.MustCompile(`^tether_cs_[0-9a-zA-Z]{43}$`)
)

// Secrets have their documented form and hash, and are not repeated.
func TestNewSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, th := NewPAT()
		secret, sh := NewClientSecret()
		if !patFormat.MatchString(tok) || th != sha256.Sum256([]byte(tok)) {
			t.Fatalf("NewPAT() = %q, %x; want %v and its SHA-256", tok, th, patFormat)
		}
		if !clientSecretFormat.MatchString(secret) || sh != sha256.Sum256([]byte(secret)) {
			t.Fatalf("NewClientSecret() = %q, %x; want %v and its SHA-256", secret, sh, clientSecretFormat)
		}
		if seen[tok] || seen[secret] {
			t.Fatalf("a secret came twice: %q or %q", tok, secret)
		}
		seen[tok], seen[secret] = true, true
	}
}

// The checksum is CRC-32 (IEEE), as hash/crc32 computes it.
func TestPATChecksumIsCRC32(t *testing.T) {
	for _, in := range []string{"", "a", "tether", knownPAT, strings.Repeat("Z", 43)} {
		sum := patChecksum(in)
		want := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(in)))).Text(62)
		if got := strings.TrimLeft(string(sum[:]), "0"); got != strings.TrimLeft(want, "0") {
			t.Errorf("patChecksum(%q) = %s, want %s", in, sum, want)
		}
	}
}

func FuzzParsePAT(f *testing.F) {
	for _, tt := range parsePATTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParsePAT(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedPAT) || h != (SecretHash{}) {
				t.Fatalf("ParsePAT(%q) = %x, %v; want no hash, ErrMalformedPAT", in, h, err)
			}
			return
		}
		if !patFormat.MatchString(in) || h != HashSecret(in) {
			t.Fatalf("ParsePAT(%q) = %x, nil; want only tokens of form %v, with their hash", in, h, patFormat)
		}
		random := in[len(PATPrefix) : PATLen-checksumLen]
		want := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(random)))).Text(62)
		if strings.TrimLeft(in[PATLen-checksumLen:], "0") != strings.TrimLeft(want, "0") {
			t.Fatalf("ParsePAT(%q) accepted a checksum that is not the CRC-32 %s", in, want)
		}
	})
}

var canonicalClientIDTests = []struct {
	name, in, want string // want "": ErrInvalidClientID
}{
	{"lower", "ci-bot", "ci-bot"},
	{"upper", "CI.Bot_2", "ci.bot_2"},
	{"trimmed", " backup\t", "backup"},
	{"kelvin sign folds to k", "\u212Aube", "kube"},
	{"64 chars", strings.Repeat("x", 64), strings.Repeat("x", 64)},
	{"65 chars", strings.Repeat("x", 65), ""},
	{"empty", "", ""},
	{"at sign", "bot@example", ""},
	{"plus", "bot+1", ""},
	{"colon", "client:bot", ""},
	{"slash", "a/b", ""},
	{"inner space", "a b", ""},
	{"accented", "caf\u00e9", ""},
	{"invalid utf-8", "a\xff", ""},
}

func TestCanonicalClientID(t *testing.T) {
	for _, tt := range canonicalClientIDTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalClientID(tt.in)
			if tt.want == "" && !errors.Is(err, ErrInvalidClientID) || tt.want != "" && (err != nil || got != tt.want) {
				t.Fatalf("CanonicalClientID(%q) = %q, %v; want %q (\"\": ErrInvalidClientID)", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzCanonicalClientID(f *testing.F) {
	for _, tt := range canonicalClientIDTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CanonicalClientID(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidClientID) || got != "" {
				t.Fatalf("CanonicalClientID(%q) = %q, %v; want \"\", ErrInvalidClientID", in, got, err)
			}
			return
		}
		if !regexp.MustCompile(`^[a-z0-9._-]{1,64}$`).MatchString(got) {
			t.Fatalf("CanonicalClientID(%q) = %q: want 1 to 64 of a-z 0-9 . _ -", in, got)
		}
		if again, err := CanonicalClientID(got); again != got || err != nil {
			t.Fatalf("CanonicalClientID(%q) = %q, %v; want it unchanged", got, again, err)
		}
	})
}

func ExampleParsePAT() {
	tok, h := NewPAT()
	got, err := ParsePAT(tok)
	fmt.Println(got == h, err)
	_, err = ParsePAT(tok[:len(tok)-1] + "!")
	fmt.Println(err)
	// Output:
	// true <nil>
	// account: malformed personal access token: character 60 is not one of 0-9 a-z A-Z
}

// PATHash checks a token's form as ParsePAT does, and hashes it alike, but
// not its checksum: a token with a typo has the form and another hash.
func TestPATHash(t *testing.T) {
	for _, tt := range parsePATTests {
		h, err := PATHash(tt.in)
		if strings.Contains(tt.want, "checksum") {
			if err != nil || h != HashSecret(tt.in) {
				t.Errorf("%s: PATHash = %x, %v; want the hash, nil (it doesn't check the checksum)", tt.name, h, err)
			}
			continue
		}
		if tt.want == "" && (err != nil || h != HashSecret(tt.in)) || tt.want != "" && !errors.Is(err, ErrMalformedPAT) {
			t.Errorf("%s: PATHash = %x, %v; want what ParsePAT says, %q", tt.name, h, err, tt.want)
		}
	}
}

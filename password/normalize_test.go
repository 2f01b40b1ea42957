package password

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizeTests also seed FuzzNormalize and FuzzPolicyCheck.
var normalizeTests = []struct {
	name    string
	in      string
	want    string
	wantErr error
}{
	{name: "ASCII", in: "correct horse battery staple", want: "correct horse battery staple"},
	{name: "empty", in: "", want: ""},
	{name: "case kept", in: "ÉLODIE élodie", want: "ÉLODIE élodie"},
	{name: "spaces kept", in: "  padded\tand\nsplit  ", want: "  padded\tand\nsplit  "},
	{name: "composed é", in: "caf\u00e9", want: "caf\u00e9"},
	{name: "decomposed é", in: "cafe\u0301", want: "caf\u00e9"},
	{name: "ligature fi", in: "\ufb01sh and chips", want: "fish and chips"},
	{name: "full-width", in: "\uff30\uff41\uff53\uff53 word", want: "Pass word"},
	{name: "no-break space", in: "two\u00a0words", want: "two words"},
	{name: "ideographic space", in: "二\u3000語", want: "二 語"},
	{name: "circled digit", in: "\u2460\u2461\u2462", want: "123"},
	{name: "half-width katakana", in: "\uff76\uff9e", want: "ガ"},
	{name: "longest expansion", in: "\ufdfa", want: "صلى الله عليه وسلم"},
	{name: "zero-width space kept", in: "a\u200bb", want: "a\u200bb"},
	{name: "NUL kept", in: "nul\x00inside", want: "nul\x00inside"},
	{name: "31 combining marks", in: "a" + strings.Repeat("\u0301", 31), want: norm.NFKC.String("a" + strings.Repeat("\u0301", 31))},
	{name: "invalid byte", in: "invalid \xff utf-8", wantErr: ErrInvalidUTF8},
	{name: "truncated sequence", in: "euro \xe2\x82", wantErr: ErrInvalidUTF8},
	{name: "overlong slash", in: "\xc0\xaf", wantErr: ErrInvalidUTF8},
	{name: "surrogate half", in: "\xed\xa0\x80", wantErr: ErrInvalidUTF8},
	{name: "beyond U+10FFFF", in: "\xf4\x90\x80\x80", wantErr: ErrInvalidUTF8},
	{name: "Latin-1 é", in: "caf\xe9", wantErr: ErrInvalidUTF8},
}

func TestPW09_Normalize(t *testing.T) {
	for _, tt := range normalizeTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if err != tt.wantErr || got != tt.want {
				t.Errorf("got %q, %v, want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzNormalize: Normalize never panics, fails exactly on invalid UTF-8 and
// then only with ErrInvalidUTF8, and otherwise returns valid UTF-8 in NFKC
// that normalises to itself.
func FuzzNormalize(f *testing.F) {
	for _, tt := range normalizeTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Normalize(s)
		if valid := utf8.ValidString(s); err != nil {
			if err != ErrInvalidUTF8 || valid || got != "" {
				t.Fatalf("got %q, %v for valid=%v", got, err, valid)
			}
			return
		} else if !valid {
			t.Fatalf("got %q, <nil> for invalid UTF-8, want ErrInvalidUTF8", got)
		}
		if !utf8.ValidString(got) || !norm.NFKC.IsNormalString(got) {
			t.Fatalf("got %q, not valid UTF-8 in NFKC", got)
		}
		if again, err := Normalize(got); err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, %v, want it unchanged", got, again, err)
		}
	})
}

// legacyHash is a hash made the way Hash made them before PW-09: of the
// bytes as typed, not normalised.
func legacyHash(p Params, password string) string {
	salt := randomBytes(p.SaltLen)
	return encodePHC(p, salt, argon2idKey([]byte(password), salt, p))
}

// TestPW09_Spellings: a hash made by Hash verifies with every spelling of
// the same text, and with nothing else.
func TestPW09_Spellings(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	encoded, err := h.Hash(t.Context(), "fine café TEA 42")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"as typed", "fine café TEA 42", true},
		{"ligature", "\ufb01ne café TEA 42", true},
		{"decomposed", "fine cafe\u0301 TEA 42", true},
		{"full-width", "fine café \uff34\uff25\uff21 \uff14\uff12", true},
		{"no-break space", "fine\u00a0café TEA 42", true},
		{"accent dropped", "fine cafe TEA 42", false},
		{"other case", "fine café tea 42", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, needsRehash, err := h.Verify(t.Context(), tt.password, encoded)
			if err != nil || ok != tt.want || needsRehash {
				t.Errorf("got %v, %v, %v, want %v, false, <nil>", ok, needsRehash, err, tt.want)
			}
		})
	}
}

// TestPW09_LegacyHash: a hash made from the bytes as typed, before PW-09,
// still verifies with that spelling and asks to be rehashed when it is not
// the normalised one; the new hash verifies with every spelling. Until then
// another spelling doesn't verify: NFKC can't be undone.
func TestPW09_LegacyHash(t *testing.T) {
	tests := []struct {
		name      string
		typed     string // what the user chose then, and types now
		other     string // another spelling of the same text
		rehash    bool   // whether the old hash must be replaced
		oldHashes int    // argon2id runs of Verify(typed, old)
	}{
		{"ligature", "\ufb01sh and chips 42", "fish and chips 42", true, 2},
		{"full-width", "\uff30assword with a full-width P", "Password with a full-width P", true, 2},
		{"decomposed é", "cafe\u0301 au lait 1984", "caf\u00e9 au lait 1984", true, 2},
		{"composed é, already normal", "caf\u00e9 au lait 1984", "cafe\u0301 au lait 1984", false, 1},
		{"ASCII, already normal", "correct horse battery staple", "", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHasher(t, HasherConfig{})
			calls := recordKDF(h, argon2idKey)
			old := legacyHash(h.params, tt.typed)

			ok, needsRehash, err := h.Verify(t.Context(), tt.typed, old)
			if err != nil || !ok || needsRehash != tt.rehash {
				t.Fatalf("old hash, as typed: got %v, %v, %v, want true, %v, <nil>", ok, needsRehash, err, tt.rehash)
			}
			if n := len(calls()); n != tt.oldHashes {
				t.Errorf("old hash, as typed: got %v hashes, want %v", n, tt.oldHashes)
			}
			if ok, _, err := h.Verify(t.Context(), tt.typed+"x", old); err != nil || ok {
				t.Errorf("old hash, wrong password: got %v, %v, want false, <nil>", ok, err)
			}
			if tt.other != "" && tt.rehash {
				if ok, _, err := h.Verify(t.Context(), tt.other, old); err != nil || ok {
					t.Errorf("old hash, other spelling: got %v, %v, want false, <nil>", ok, err)
				}
			}

			rehashed, err := h.Hash(t.Context(), tt.typed)
			if err != nil {
				t.Fatal(err)
			}
			for _, pw := range []string{tt.typed, tt.other} {
				if pw == "" {
					continue
				}
				before := len(calls())
				ok, needsRehash, err := h.Verify(t.Context(), pw, rehashed)
				if err != nil || !ok || needsRehash {
					t.Errorf("new hash, %q: got %v, %v, %v, want true, false, <nil>", pw, ok, needsRehash, err)
				}
				if n := len(calls()) - before; n != 1 {
					t.Errorf("new hash, %q: got %v hashes, want 1", pw, n)
				}
			}
		})
	}
}

// TestPW09_LegacyHashWeakParams: an old hash of the bytes as typed, made
// with parameters now too weak, is verified with its own parameters and
// rehashed.
func TestPW09_LegacyHashWeakParams(t *testing.T) {
	h := newHasher(t, HasherConfig{Params: Params{Time: 3}})
	old := legacyHash(DefaultParams, "\ufb01sh and chips 42")
	ok, needsRehash, err := h.Verify(t.Context(), "\ufb01sh and chips 42", old)
	if err != nil || !ok || !needsRehash {
		t.Errorf("got %v, %v, %v, want true, true, <nil>", ok, needsRehash, err)
	}
}

// TestPW09_InvalidUTF8: Hash, Verify and VerifyDummy refuse invalid UTF-8
// with ErrInvalidUTF8 before any hashing, whatever the stored hash; a
// password too long is refused as too long first (PW-04).
func TestPW09_InvalidUTF8(t *testing.T) {
	valid := phcOf("m=19456,t=2,p=1", salt16, key32)
	ops := []struct {
		name string
		op   func(h *Hasher, password string) error
	}{
		{"Hash", func(h *Hasher, password string) error {
			_, err := h.Hash(t.Context(), password)
			return err
		}},
		{"Verify", func(h *Hasher, password string) error {
			_, _, err := h.Verify(t.Context(), password, valid)
			return err
		}},
		{"Verify a malformed hash", func(h *Hasher, password string) error {
			_, _, err := h.Verify(t.Context(), password, "not a hash")
			return err
		}},
		{"VerifyDummy", func(h *Hasher, password string) error {
			return h.VerifyDummy(t.Context(), password)
		}},
	}
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{"invalid byte", "correct horse \xff battery", ErrInvalidUTF8},
		{"Latin-1", "caf\xe9 au lait", ErrInvalidUTF8},
		{"surrogate half", "\xed\xa0\x80 staple", ErrInvalidUTF8},
		{"too long and invalid", strings.Repeat("\xff", MaxBytes+1), ErrTooLong},
	}
	for _, op := range ops {
		for _, tt := range tests {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				h := newHasher(t, HasherConfig{})
				calls := recordKDF(h, zeroKey)
				if err := op.op(h, tt.password); !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
				if n := len(calls()); n != 0 {
					t.Errorf("got %v hashes, want 0", n)
				}
			})
		}
	}
}

// TestPW04_NotNormalizedBounded: a password that normalisation changes costs
// Verify and VerifyDummy at most two hashes, within MaxBytes: one more byte
// is refused before any hashing.
func TestPW04_NotNormalizedBounded(t *testing.T) {
	const lig = "\ufb01" // 3 bytes, "fi" once normalised
	atMax := strings.Repeat(lig, MaxBytes/3) + strings.Repeat("x", MaxBytes%3)
	ops := []struct {
		name      string
		op        func(h *Hasher, password string) error
		wantCalls int // with a password of MaxBytes
	}{
		{"Hash", func(h *Hasher, password string) error {
			_, err := h.Hash(t.Context(), password)
			return err
		}, 1},
		{"Verify", func(h *Hasher, password string) error {
			_, _, err := h.Verify(t.Context(), password, phcOf("m=19456,t=2,p=1", salt16, key32))
			return err
		}, 2},
		{"VerifyDummy", func(h *Hasher, password string) error {
			return h.VerifyDummy(t.Context(), password)
		}, 2},
	}
	tests := []struct {
		name     string
		password string
		wantErr  error // ErrTooLong: no hash at all
	}{
		{"MaxBytes", atMax, nil},
		{"MaxBytes+1", atMax + "x", ErrTooLong},
		{"longest expansion", strings.Repeat("\ufdfa", MaxBytes/3), nil},
	}
	for _, op := range ops {
		for _, tt := range tests {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				h := newHasher(t, HasherConfig{})
				calls := recordKDF(h, zeroKey)
				if err := op.op(h, tt.password); !errors.Is(err, tt.wantErr) {
					t.Errorf("got %v, want %v", err, tt.wantErr)
				}
				want := op.wantCalls
				if tt.wantErr != nil {
					want = 0
				}
				if got := len(calls()); got != want {
					t.Errorf("got %v hashes, want %v", got, want)
				}
			})
		}
	}
}

// TestPW05_VerifyDummyNotNormalized: for a password that normalisation
// changes, an unknown user costs what a wrong password costs: two hashes.
func TestPW05_VerifyDummyNotNormalized(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	calls := recordKDF(h, argon2idKey)
	if _, _, err := h.Verify(t.Context(), "\ufb01sh and chips", encoded); err != nil {
		t.Fatal(err)
	}
	if err := h.VerifyDummy(t.Context(), "\ufb01sh and chips"); err != nil {
		t.Fatal(err)
	}
	got := calls()
	if len(got) != 4 {
		t.Fatalf("got %v hashes, want 2 for Verify and 2 for VerifyDummy", len(got))
	}
	for i, p := range got {
		if p != h.params {
			t.Errorf("hash %d: got %+v, want %+v", i, p, h.params)
		}
	}
}

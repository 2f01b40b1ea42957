package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func newHasher(t testing.TB, cfg HasherConfig) *Hasher {
	t.Helper()
	h, err := NewHasher(cfg)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", cfg, err)
	}
	return h
}

// recordKDF makes h run kdf in place of argon2id and returns a function
// that lists the parameters of every run so far.
func recordKDF(h *Hasher, kdf func(password, salt []byte, p Params) []byte) (calls func() []Params) {
	var mu sync.Mutex
	var got []Params
	h.idKey = func(password, salt []byte, p Params) []byte {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		return kdf(password, salt, p)
	}
	return func() []Params {
		mu.Lock()
		defer mu.Unlock()
		return append([]Params(nil), got...)
	}
}

// zeroKey stands in for argon2id where only the calls matter.
func zeroKey(_, _ []byte, p Params) []byte { return make([]byte, p.KeyLen) }

func TestPW03_NewHasher(t *testing.T) {
	tests := []struct {
		name    string
		cfg     HasherConfig
		want    Params // when wantErr is ""
		wantErr string
	}{
		{name: "zero is DefaultParams", cfg: HasherConfig{}, want: DefaultParams},
		{name: "zero fields take defaults", cfg: HasherConfig{Params: Params{Memory: 65536, Time: 3}},
			want: Params{Memory: 65536, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{name: "largest", cfg: HasherConfig{Params: Params{Memory: 262144, Time: 16, Threads: 16, SaltLen: 64, KeyLen: 64}},
			want: Params{Memory: 262144, Time: 16, Threads: 16, SaltLen: 64, KeyLen: 64}},
		{name: "memory below OWASP", cfg: HasherConfig{Params: Params{Memory: 19455}}, wantErr: "Memory=19455 is outside 19456..262144"},
		{name: "one pass", cfg: HasherConfig{Params: Params{Time: 1}}, wantErr: "Time=1 is outside 2..16"},
		{name: "short salt", cfg: HasherConfig{Params: Params{SaltLen: 8}}, wantErr: "SaltLen=8 is outside 16..64"},
		{name: "short key", cfg: HasherConfig{Params: Params{KeyLen: 16}}, wantErr: "KeyLen=16 is outside 32..64"},
		{name: "memory too large", cfg: HasherConfig{Params: Params{Memory: 262145}}, wantErr: "Memory=262145"},
		{name: "too many passes", cfg: HasherConfig{Params: Params{Time: 17}}, wantErr: "Time=17"},
		{name: "too many lanes", cfg: HasherConfig{Params: Params{Threads: 17}}, wantErr: "Threads=17"},
		{name: "long salt", cfg: HasherConfig{Params: Params{SaltLen: 65}}, wantErr: "SaltLen=65"},
		{name: "long key", cfg: HasherConfig{Params: Params{KeyLen: 65}}, wantErr: "KeyLen=65"},
		{name: "negative MaxConcurrent", cfg: HasherConfig{MaxConcurrent: -1}, wantErr: "MaxConcurrent=-1"},
		{name: "negative Wait", cfg: HasherConfig{Wait: -time.Second}, wantErr: "Wait=-1s"},
		{name: "negative MaxWaiting", cfg: HasherConfig{MaxWaiting: -1}, wantErr: "MaxWaiting=-1"},
		{name: "every problem at once", cfg: HasherConfig{Params: Params{Memory: 1, Time: 1}, Wait: -1},
			wantErr: "Memory=1 is outside 19456..262144\nTime=1 is outside 2..16\nWait=-1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.cfg)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want ErrInvalidConfig with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if h.params != tt.want {
				t.Errorf("got %+v, want %+v", h.params, tt.want)
			}
		})
	}
}

// PW-04: the defaults of the concurrency bound.
func TestPW04_Defaults(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	st := h.Stats()
	if got, want := st.Slots, runtime.NumCPU(); got != want {
		t.Errorf("got %v slots, want %v", got, want)
	}
	if got, want := st.MaxWaiting, 8*runtime.NumCPU(); got != want {
		t.Errorf("got MaxWaiting %v, want %v", got, want)
	}
	if got, want := h.wait, time.Second; got != want {
		t.Errorf("got Wait %v, want %v", got, want)
	}
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestPW03_HashFormat(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	first, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, encoded := range []string{first, second} {
		if !phcPattern.MatchString(encoded) {
			t.Errorf("got %q, want a match for %v", encoded, phcPattern)
		}
	}
	if first == second {
		t.Errorf("got the same hash twice, %q: want a fresh salt each time", first)
	}
}

// TestPW03_Verify: only the password as typed verifies, in any spelling of
// the same text (PW-09: NFKC), with no trimming and no case folding (PW-01).
func TestPW03_Verify(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	const pw = "Crème brûlée 4 ever"                    // è, û, é precomposed (NFC)
	const nfd = "Cre\u0300me bru\u0302le\u0301e 4 ever" // the same text decomposed (NFD)
	encoded, err := h.Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"as typed", pw, true},
		{"decomposed", nfd, true},
		{"other case", strings.ToLower(pw), false},
		{"trailing space", pw + " ", false},
		{"leading space", " " + pw, false},
		{"accents dropped", "Creme brulee 4 ever", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, needsRehash, err := h.Verify(t.Context(), tt.password, encoded)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want || needsRehash {
				t.Errorf("got ok=%v needsRehash=%v, want ok=%v needsRehash=false", ok, needsRehash, tt.want)
			}
		})
	}
}

// TestPW03_VerifyReportsRehash: a hash made before the parameters grew
// verifies and asks to be replaced, and its replacement doesn't.
func TestPW03_VerifyReportsRehash(t *testing.T) {
	const pw = "correct horse battery staple"
	old, err := newHasher(t, HasherConfig{}).Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	h := newHasher(t, HasherConfig{Params: Params{Time: 3}})

	ok, needsRehash, err := h.Verify(t.Context(), "wrong", old)
	if err != nil || ok || needsRehash {
		t.Errorf("wrong password: got %v, %v, %v, want false, false, <nil>", ok, needsRehash, err)
	}
	ok, needsRehash, err = h.Verify(t.Context(), pw, old)
	if err != nil || !ok || !needsRehash {
		t.Fatalf("old hash: got %v, %v, %v, want true, true, <nil>", ok, needsRehash, err)
	}
	rehashed, err := h.Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	ok, needsRehash, err = h.Verify(t.Context(), pw, rehashed)
	if err != nil || !ok || needsRehash {
		t.Errorf("new hash: got %v, %v, %v, want true, false, <nil>", ok, needsRehash, err)
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	calls := recordKDF(h, zeroKey)
	ok, _, err := h.Verify(t.Context(), "correct horse battery staple", "$argon2id$v=19$m=4294967295,t=2,p=1$"+salt16+"$"+key32)
	if ok || !errors.Is(err, ErrMalformedHash) {
		t.Errorf("got %v, %v, want false, ErrMalformedHash", ok, err)
	}
	if n := len(calls()); n != 0 {
		t.Errorf("got %v hashes, want 0", n)
	}
}

// TestPW04_TooLong: more than MaxBytes bytes is refused before any hashing,
// by every operation; MaxBytes itself is hashed.
func TestPW04_TooLong(t *testing.T) {
	ops := map[string]func(h *Hasher, password string) error{
		"Hash": func(h *Hasher, password string) error {
			_, err := h.Hash(t.Context(), password)
			return err
		},
		"Verify": func(h *Hasher, password string) error {
			_, _, err := h.Verify(t.Context(), password, phcOf("m=19456,t=2,p=1", salt16, key32))
			return err
		},
		"VerifyDummy": func(h *Hasher, password string) error {
			return h.VerifyDummy(t.Context(), password)
		},
	}
	tests := []struct {
		size      int
		wantErr   error
		wantCalls int
	}{
		{MaxBytes, nil, 1},
		{MaxBytes + 1, ErrTooLong, 0},
		{1 << 20, ErrTooLong, 0},
	}
	for name, op := range ops {
		for _, tt := range tests {
			h := newHasher(t, HasherConfig{})
			calls := recordKDF(h, zeroKey)
			err := op(h, strings.Repeat("é", tt.size/2)+strings.Repeat("x", tt.size%2))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s(%d bytes): got error %v, want %v", name, tt.size, err, tt.wantErr)
			}
			if n := len(calls()); n != tt.wantCalls {
				t.Errorf("%s(%d bytes): got %v hashes, want %v", name, tt.size, n, tt.wantCalls)
			}
		}
	}
}

// TestPW05_VerifyDummy: VerifyDummy runs argon2id once with exactly the
// parameters a Verify against a hash made now runs it with.
func TestPW05_VerifyDummy(t *testing.T) {
	h := newHasher(t, HasherConfig{Params: Params{Time: 3, SaltLen: 24, KeyLen: 48}})
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	calls := recordKDF(h, argon2idKey)
	if _, _, err := h.Verify(t.Context(), "wrong password", encoded); err != nil {
		t.Fatal(err)
	}
	if err := h.VerifyDummy(t.Context(), "wrong password"); err != nil {
		t.Fatalf("VerifyDummy: %v", err)
	}
	got := calls()
	if len(got) != 2 || got[0] != h.params || got[1] != h.params {
		t.Errorf("got hashes with %+v, want two with %+v", got, h.params)
	}
}

// PW-05: Check answers an unknown user as it answers a wrong password,
// after as much hashing, and keeps only a busy hasher apart.
func TestPW05_Check(t *testing.T) {
	h := newHasher(t, HasherConfig{MaxConcurrent: 1, Wait: time.Millisecond})
	encoded, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name          string
		ctx           context.Context
		password, enc string
		want          []error // what errors.Is must find; none: nil
		hashes        int
	}{
		{"right password", t.Context(), "correct horse battery staple", encoded, nil, 1},
		{"wrong password", t.Context(), "wrong", encoded, []error{ErrMismatch}, 1},
		{"unknown user", t.Context(), "correct horse battery staple", "", []error{ErrMismatch}, 1},
		{"too long", t.Context(), strings.Repeat("x", MaxBytes+1), encoded, []error{ErrMismatch, ErrTooLong}, 0},
		{"not UTF-8", t.Context(), "\xff", encoded, []error{ErrMismatch, ErrInvalidUTF8}, 0},
		{"malformed hash", t.Context(), "correct horse battery staple", "$argon2id$", []error{ErrMismatch, ErrMalformedHash}, 0},
		{"context done", cancelled, "correct horse battery staple", encoded, []error{context.Canceled}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := recordKDF(h, argon2idKey)
			err := h.Check(c.ctx, c.password, c.enc)
			if len(c.want) == 0 && err != nil {
				t.Errorf("got %v, want nil", err)
			}
			for _, want := range c.want {
				if !errors.Is(err, want) {
					t.Errorf("got %v, want %v", err, want)
				}
			}
			if n := len(calls()); n != c.hashes {
				t.Errorf("got %d hashes, want %d", n, c.hashes)
			}
		})
	}

	if err := h.acquire(t.Context()); err != nil { // the one slot taken
		t.Fatal(err)
	}
	defer h.release()
	if err := h.Check(t.Context(), "wrong", encoded); !errors.Is(err, ErrBusy) || errors.Is(err, ErrMismatch) {
		t.Errorf("busy: got %v, want ErrBusy alone", err)
	}
}

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, HasherConfig{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, HasherConfig{})
	encoded, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(b.Context(), "correct horse battery staple", encoded); err != nil || !ok {
			b.Fatalf("got %v, %v, want true, <nil>", ok, err)
		}
	}
}

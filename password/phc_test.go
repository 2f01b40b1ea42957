package password

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// Salts and keys for hand-made PHC strings.
var (
	salt8  = b64.EncodeToString([]byte("saltsalt"))
	salt16 = b64.EncodeToString([]byte("saltsaltsaltsalt"))
	salt64 = b64.EncodeToString(bytes.Repeat([]byte("S"), 64))
	salt65 = b64.EncodeToString(bytes.Repeat([]byte("S"), 65))
	key15  = b64.EncodeToString(bytes.Repeat([]byte("K"), 15))
	key16  = b64.EncodeToString(bytes.Repeat([]byte("K"), 16))
	key32  = b64.EncodeToString(bytes.Repeat([]byte("K"), 32))
	key64  = b64.EncodeToString(bytes.Repeat([]byte("K"), 64))
	key65  = b64.EncodeToString(bytes.Repeat([]byte("K"), 65))
)

// phcOf assembles an argon2id v=19 string from its parts.
func phcOf(params, salt, key string) string {
	return "$argon2id$v=19$" + params + "$" + salt + "$" + key
}

// parseTests also seed FuzzParsePHC.
var parseTests = []struct {
	name    string
	in      string
	want    Params // when wantErr is ""
	wantErr string // a part of the reason
}{
	{name: "default", in: phcOf("m=19456,t=2,p=1", salt16, key32), want: DefaultParams},
	{name: "weaker legacy hash", in: phcOf("m=4096,t=1,p=1", salt8, key16),
		want: Params{Memory: 4096, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16}},
	{name: "largest", in: phcOf("m=262144,t=16,p=16", salt64, key64),
		want: Params{Memory: maxMemory, Time: maxTime, Threads: maxThreads, SaltLen: maxSaltLen, KeyLen: maxKeyLen}},
	{name: "least memory per lane", in: phcOf("m=32,t=1,p=4", salt16, key32),
		want: Params{Memory: 32, Time: 1, Threads: 4, SaltLen: 16, KeyLen: 32}},

	{name: "empty", in: "", wantErr: "not an argon2id hash"},
	{name: "argon2i", in: "$argon2i$v=19$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "not an argon2id hash"},
	{name: "upper case", in: "$ARGON2ID$v=19$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "not an argon2id hash"},
	{name: "bcrypt", in: "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", wantErr: "not an argon2id hash"},
	{name: "no version", in: "$argon2id$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "3 fields"},
	{name: "extra field", in: phcOf("m=19456,t=2,p=1", salt16, key32) + "$", wantErr: "5 fields"},
	{name: "version 16", in: "$argon2id$v=16$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "version 16, want 19"},
	{name: "version leading zero", in: "$argon2id$v=019$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "v: leading zero"},
	{name: "version sign", in: "$argon2id$v=+19$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "v: want a decimal"},
	{name: "version name", in: "$argon2id$V=19$m=19456,t=2,p=1$" + salt16 + "$" + key32, wantErr: "want v=<number>"},
	{name: "two parameters", in: phcOf("m=19456,t=2", salt16, key32), wantErr: "2 parameters"},
	{name: "keyid parameter", in: phcOf("m=19456,t=2,p=1,keyid=Zm9v", salt16, key32), wantErr: "4 parameters"},
	{name: "reordered", in: phcOf("t=2,m=19456,p=1", salt16, key32), wantErr: "want m=<number>"},
	{name: "space", in: phcOf("m=19456, t=2,p=1", salt16, key32), wantErr: "want t=<number>"},
	{name: "empty number", in: phcOf("m=,t=2,p=1", salt16, key32), wantErr: "m: want a decimal"},
	{name: "negative", in: phcOf("m=-1,t=2,p=1", salt16, key32), wantErr: "m: want a decimal"},
	{name: "underscore", in: phcOf("m=19_456,t=2,p=1", salt16, key32), wantErr: "m: want a decimal"},
	{name: "leading zero", in: phcOf("m=019456,t=2,p=1", salt16, key32), wantErr: "m: leading zero"},
	{name: "overflow", in: phcOf("m=4294967296,t=2,p=1", salt16, key32), wantErr: "m: want a decimal number up to 4294967295"},
	{name: "memory too large", in: phcOf("m=262145,t=2,p=1", salt16, key32), wantErr: "m=262145 is outside 8..262144"},
	{name: "largest uint32 memory", in: phcOf("m=4294967295,t=2,p=1", salt16, key32), wantErr: "m=4294967295 is outside"},
	{name: "memory below 8 per lane", in: phcOf("m=31,t=1,p=4", salt16, key32), wantErr: "m=31 is outside 32..262144"},
	{name: "zero time", in: phcOf("m=19456,t=0,p=1", salt16, key32), wantErr: "t=0 is outside 1..16"},
	{name: "too many passes", in: phcOf("m=19456,t=17,p=1", salt16, key32), wantErr: "t=17 is outside 1..16"},
	{name: "zero lanes", in: phcOf("m=19456,t=2,p=0", salt16, key32), wantErr: "p=0 is outside 1..16"},
	{name: "too many lanes", in: phcOf("m=19456,t=2,p=255", salt16, key32), wantErr: "p=255 is outside 1..16"},
	{name: "salt too short", in: phcOf("m=19456,t=2,p=1", b64.EncodeToString([]byte("salt")), key32), wantErr: "salt of 4 bytes, want 8..64"},
	{name: "salt too long", in: phcOf("m=19456,t=2,p=1", salt65, key32), wantErr: "salt of 65 bytes"},
	{name: "key too short", in: phcOf("m=19456,t=2,p=1", salt16, key15), wantErr: "hash of 15 bytes, want 16..64"},
	{name: "key too long", in: phcOf("m=19456,t=2,p=1", salt16, key65), wantErr: "hash of 65 bytes"},
	{name: "empty key", in: phcOf("m=19456,t=2,p=1", salt16, ""), wantErr: "hash of 0 bytes"},
	{name: "padded", in: phcOf("m=19456,t=2,p=1", salt16+"==", key32), wantErr: "salt: illegal base64"},
	{name: "url alphabet", in: phcOf("m=19456,t=2,p=1", "c2FsdHNhbHRzYWx0c2F-_A", key32), wantErr: "salt: illegal base64"},
	{name: "non-zero trailing bits", in: phcOf("m=19456,t=2,p=1", salt16[:21]+"B", key32), wantErr: "salt: illegal base64"},
	{name: "impossible length", in: phcOf("m=19456,t=2,p=1", salt16, key32+"AA"), wantErr: "hash: illegal base64"},
	{name: "line break", in: phcOf("m=19456,t=2,p=1", salt16[:11]+"\n"+salt16[11:], key32), wantErr: "salt: line breaks"},
	{name: "trailing newline", in: phcOf("m=19456,t=2,p=1", salt16, key32) + "\n", wantErr: "hash: line breaks"},
	{name: "too long", in: phcOf("m=19456,t=2,p=1", salt16, key32+strings.Repeat("A", 200)), wantErr: "more than 256"},
}

func TestParsePHC(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePHC(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrMalformedHash) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want ErrMalformedHash with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got.params != tt.want {
				t.Errorf("got %+v, want %+v", got.params, tt.want)
			}
		})
	}
}

// TestPHCRoundTrip: every hash within the bounds survives encodePHC then
// parsePHC unchanged.
func TestPHCRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	between := func(lo, hi uint32) uint32 { return lo + rng.Uint32N(hi-lo+1) }
	for range 2000 {
		p := Params{Threads: uint8(between(1, maxThreads)), Time: between(1, maxTime)}
		p.Memory = between(8*uint32(p.Threads), maxMemory)
		salt := make([]byte, between(storedMinSaltLen, maxSaltLen))
		key := make([]byte, between(storedMinKeyLen, maxKeyLen))
		for _, b := range [][]byte{salt, key} {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
		encoded := encodePHC(p, salt, key)
		got, err := parsePHC(encoded)
		if err != nil {
			t.Fatalf("parsePHC(%q): %v", encoded, err)
		}
		if got.params != p || !bytes.Equal(got.salt, salt) || !bytes.Equal(got.key, key) {
			t.Fatalf("got %+v, want %+v, %x, %x", got, p, salt, key)
		}
	}
}

// FuzzParsePHC: parsePHC never panics, fails only with ErrMalformedHash,
// accepts only the one spelling encodePHC makes, and never returns anything
// outside the bounds (PW-04).
func FuzzParsePHC(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("got error %v, want ErrMalformedHash", err)
			}
			return
		}
		if got := encodePHC(h.params, h.salt, h.key); got != s {
			t.Fatalf("re-encoded as %q, want %q", got, s)
		}
		p := h.params
		if p.Memory > maxMemory || p.Memory < 8*uint32(p.Threads) || p.Time < 1 || p.Time > maxTime ||
			p.Threads < 1 || p.Threads > maxThreads || p.SaltLen > maxSaltLen || p.KeyLen > maxKeyLen ||
			p.SaltLen < storedMinSaltLen || p.KeyLen < storedMinKeyLen {
			t.Fatalf("got %+v, outside the bounds", p)
		}
	})
}

func TestPW03_NeedsRehash(t *testing.T) {
	current := phcOf("m=19456,t=2,p=1", salt16, key32)
	tests := []struct {
		name    string
		encoded string
		params  Params
		want    bool
	}{
		{"same parameters", current, DefaultParams, false},
		{"zero params mean DefaultParams", current, Params{}, false},
		{"stronger stored hash", phcOf("m=65536,t=3,p=2", salt64, key64), DefaultParams, false},
		{"more memory configured", current, Params{Memory: 65536}, true},
		{"more passes configured", current, Params{Time: 3}, true},
		{"more lanes configured", current, Params{Threads: 2}, true},
		{"longer salt configured", current, Params{SaltLen: 32}, true},
		{"longer key configured", current, Params{KeyLen: 64}, true},
		{"weaker legacy hash", phcOf("m=4096,t=1,p=1", salt8, key16), Params{}, true},
		{"other version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt16 + "$" + key32, DefaultParams, true},
		{"other algorithm", "$argon2i$v=19$m=19456,t=2,p=1$" + salt16 + "$" + key32, DefaultParams, true},
		{"corrupted", current[:len(current)-5], DefaultParams, true},
		{"empty", "", DefaultParams, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsRehash(tt.encoded, tt.params); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

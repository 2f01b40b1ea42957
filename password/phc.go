package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// A stored hash may be weaker than what a Hasher makes (it is then rehashed
// on sign-in), but not below these: RFC 9106's least salt, and a key too
// short to trust.
const (
	storedMinSaltLen = 8
	storedMinKeyLen  = 16
)

// maxPHCLen is more than the longest string the bounds allow (about 210
// bytes); a longer one is refused before it is split or decoded.
const maxPHCLen = 256

// b64 is the PHC string format's base64: standard alphabet, no padding,
// and here no non-zero trailing bits, so that every hash has one spelling.
var b64 = base64.RawStdEncoding.Strict()

// phc is a parsed argon2id hash.
type phc struct {
	params Params // SaltLen and KeyLen are len(salt) and len(key)
	salt   []byte
	key    []byte
}

// encodePHC spells a hash as $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>.
func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC parses what encodePHC makes, strictly: it reads stored data,
// which may be corrupted. It accepts exactly one spelling of each hash (the
// one encodePHC makes), bounds every parameter and length before acting on
// it, and returns ErrMalformedHash wrapping the reason. The reason never
// quotes the salt or the key.
func parsePHC(s string) (phc, error) {
	h, err := parseFields(s)
	if err != nil {
		return phc{}, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return h, nil
}

func parseFields(s string) (phc, error) {
	if len(s) > maxPHCLen {
		return phc{}, fmt.Errorf("%d bytes, more than %d", len(s), maxPHCLen)
	}
	rest, ok := strings.CutPrefix(s, "$argon2id$")
	if !ok {
		return phc{}, errors.New("not an argon2id hash: want prefix $argon2id$")
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 4 {
		return phc{}, fmt.Errorf("%d fields after $argon2id$, want 4: v=, parameters, salt, hash", len(fields))
	}
	version, err := parseDecimal("v", fields[0])
	if err != nil {
		return phc{}, err
	}
	if version != argon2.Version {
		return phc{}, fmt.Errorf("version %d, want %d", version, argon2.Version)
	}
	p, err := parseParams(fields[1])
	if err != nil {
		return phc{}, err
	}
	salt, err := decodeBase64("salt", fields[2], storedMinSaltLen, maxSaltLen)
	if err != nil {
		return phc{}, err
	}
	key, err := decodeBase64("hash", fields[3], storedMinKeyLen, maxKeyLen)
	if err != nil {
		return phc{}, err
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return phc{params: p, salt: salt, key: key}, nil
}

// parseParams parses "m=<KiB>,t=<passes>,p=<lanes>", in that order.
func parseParams(s string) (Params, error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return Params{}, fmt.Errorf("%d parameters, want 3: m=, t=, p=", len(fields))
	}
	var vals [3]uint32
	for i, name := range []string{"m", "t", "p"} {
		v, err := parseDecimal(name, fields[i])
		if err != nil {
			return Params{}, err
		}
		vals[i] = v
	}
	m, t, p := vals[0], vals[1], vals[2]
	if err := checkRange("p", p, 1, maxThreads); err != nil {
		return Params{}, err
	}
	if err := checkRange("t", t, 1, maxTime); err != nil {
		return Params{}, err
	}
	// argon2 needs 8 KiB per lane (RFC 9106, 3.1).
	if err := checkRange("m", m, 8*p, maxMemory); err != nil {
		return Params{}, err
	}
	return Params{Memory: m, Time: t, Threads: uint8(p)}, nil
}

// parseDecimal parses "<name>=<decimal>": digits only (strconv.ParseUint
// refuses signs and, in base 10, underscores), no leading zero, at most
// 2^32-1.
func parseDecimal(name, field string) (uint32, error) {
	digits, ok := strings.CutPrefix(field, name+"=")
	if !ok {
		return 0, fmt.Errorf("want %s=<number>", name)
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, fmt.Errorf("%s: leading zero", name)
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: want a decimal number up to %d", name, uint32(1<<32-1))
	}
	return uint32(v), nil
}

// decodeBase64 decodes s, checking its length is lo..hi bytes before
// decoding it.
func decodeBase64(name, s string, lo, hi uint32) ([]byte, error) {
	if n := b64.DecodedLen(len(s)); n < int(lo) || n > int(hi) {
		return nil, fmt.Errorf("%s of %d bytes, want %d..%d", name, n, lo, hi)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The decoder skips CR and LF; a canonical string has none.
	if b64.EncodedLen(len(b)) != len(s) {
		return nil, fmt.Errorf("%s: line breaks in base64", name)
	}
	return b, nil
}

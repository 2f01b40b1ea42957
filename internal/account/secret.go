package account

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"strings"
)

// The secrets machines present: client secrets and personal access tokens.
// Each is a prefix and 32 bytes (256 bits) from crypto/rand in base62
// (0-9 a-z A-Z, most significant digit first, left-padded with '0' to 43
// characters). Base62 rather than base64url because it has no '-', so a
// double click selects the whole secret, and no character a URL or a shell
// treats specially. The prefix tells a secret scanner, a log scrubber and a
// person what the string is. A personal access token also ends with a
// checksum, 6 base62 characters of the CRC-32 (IEEE) of its 43 random
// characters, as GitHub's tokens do: ParsePAT refuses a mistyped or
// truncated token, and a scanner a random string that merely has the
// prefix, without asking a store. The store keeps only HashSecret of
// either (SES-02's rule for session tokens: a dump of the store can't be
// replayed).
const (
	// ClientSecretPrefix starts every client secret.
	ClientSecretPrefix = "tether_cs_"
	// PATPrefix starts every personal access token.
	PATPrefix = "tether_pat_"

	randomLen   = 43 // base62 digits of 32 bytes: 62^43 > 2^256
	checksumLen = 6  // base62 digits of a CRC-32: 62^6 > 2^32
	// PATLen is the length of every personal access token.
	PATLen = len(PATPrefix) + randomLen + checksumLen
)

// ErrMalformedPAT: the string is not a personal access token tether made:
// its prefix, length, characters or checksum are wrong. ParsePAT wraps it
// with which.
var ErrMalformedPAT = errors.New("account: malformed personal access token")

const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// isBase62 tells the bytes of base62 from the others, in one lookup:
// ParsePAT checks every character of every token presented.
var isBase62 = func() (t [256]bool) {
	for i := range len(base62) {
		t[base62[i]] = true
	}
	return t
}()

// HashSecret returns the SHA-256 of a client secret or personal access
// token: what the store keeps and looks up.
func HashSecret(s string) SecretHash { return sha256.Sum256([]byte(s)) }

// NewClientSecret returns a new client secret, to be shown once, and its
// hash, to be kept.
func NewClientSecret() (secret string, h SecretHash) {
	secret = ClientSecretPrefix + randomBase62()
	return secret, HashSecret(secret)
}

// NewPAT returns a new personal access token, to be shown once, and its
// hash, to be kept.
func NewPAT() (tok string, h SecretHash) {
	random := randomBase62()
	sum := patChecksum(random)
	tok = PATPrefix + random + string(sum[:])
	return tok, HashSecret(tok)
}

// ParsePAT checks that s is a personal access token as NewPAT makes them
// (prefix, length, characters, checksum) and returns its hash. Each
// failure is ErrMalformedPAT wrapped with what was wrong; the error never
// holds s. It allocates only for an error.
func ParsePAT(s string) (SecretHash, error) {
	h, err := PATHash(s)
	if err != nil {
		return SecretHash{}, err
	}
	if sum := patChecksum(s[len(PATPrefix) : len(PATPrefix)+randomLen]); string(sum[:]) != s[len(s)-checksumLen:] {
		return SecretHash{}, fmt.Errorf("%w: the checksum doesn't match: a character was mistyped, or lost", ErrMalformedPAT)
	}
	return h, nil
}

// PATHash is ParsePAT without the checksum: it checks s's prefix, length
// and alphabet, and returns its hash. It is for a lookup among tokens
// that passed ParsePAT (a cache of live ones): a token whose checksum is
// wrong has a hash no such token has, and the checksum's CRC costs as
// much as the rest of a cache hit. Anything else calls ParsePAT.
func PATHash(s string) (SecretHash, error) {
	if !strings.HasPrefix(s, PATPrefix) {
		return SecretHash{}, fmt.Errorf("%w: it doesn't start with %s", ErrMalformedPAT, PATPrefix)
	}
	if len(s) != PATLen {
		return SecretHash{}, fmt.Errorf("%w: %d characters long, not %d", ErrMalformedPAT, len(s), PATLen)
	}
	for i := len(PATPrefix); i < len(s); i++ {
		if !isBase62[s[i]] {
			return SecretHash{}, fmt.Errorf("%w: character %d is not one of 0-9 a-z A-Z", ErrMalformedPAT, i+1)
		}
	}
	var b [PATLen]byte // a copy on the stack: converting s would allocate
	copy(b[:], s)
	return sha256.Sum256(b[:]), nil
}

// patChecksum returns the checksum of a token's random characters: their
// CRC-32 (IEEE), computed here over the string because hash/crc32 would
// have it copied to the heap.
func patChecksum(random string) [checksumLen]byte {
	n := ^uint32(0)
	for i := range len(random) {
		n = crc32.IEEETable[byte(n)^random[i]] ^ n>>8
	}
	n = ^n
	var sum [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		sum[i] = base62[n%62]
		n /= 62
	}
	return sum
}

// randomBase62 returns 32 bytes from crypto/rand as randomLen base62
// digits.
func randomBase62() string {
	var b [32]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	digits := new(big.Int).SetBytes(b[:]).Text(62)
	return strings.Repeat("0", randomLen-len(digits)) + digits
}

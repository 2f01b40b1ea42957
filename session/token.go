package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// A session token is 32 bytes from crypto/rand (256 bits, SES-01), sent as
// unpadded base64url: 43 characters. It carries nothing but randomness.
const (
	tokenBytes = 32
	tokenLen   = 43 // base64.RawURLEncoding.EncodedLen(tokenBytes)
	idBytes    = 16 // the public id: random too, unrelated to the token
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// newToken returns a fresh token and its hash.
func newToken() (string, Hash) {
	var raw [tokenBytes]byte
	rand.Read(raw[:]) // never returns an error; crashes the program if it can't read
	return tokenEncoding.EncodeToString(raw[:]), sha256.Sum256(raw[:])
}

// newID returns a fresh public session id.
func newID() string {
	var raw [idBytes]byte
	rand.Read(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// parseToken checks that s is a well-formed token and returns its hash. A
// malformed token is rejected here, without touching the store (SES-04).
// It does not allocate.
func parseToken(s string) (Hash, bool) {
	if len(s) != tokenLen {
		return Hash{}, false
	}
	var src [tokenLen]byte
	copy(src[:], s)
	var raw [tokenBytes + 1]byte // DecodedLen rounds up; the extra byte stays unused
	n, err := tokenEncoding.Decode(raw[:], src[:])
	if err != nil || n != tokenBytes {
		return Hash{}, false
	}
	return sha256.Sum256(raw[:tokenBytes]), true
}

package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// MasterKeyEnv is the environment variable the server reads the master key
// from.
const MasterKeyEnv = "TETHER_MASTER_KEY"

// masterKeyLen is the master key's length in characters: 32 bytes in
// base64url without padding.
const masterKeyLen = 43

// sealVersion is the first byte of a sealed key, so that the format can
// change without guessing.
const sealVersion = 1

// Errors about the master key.
var (
	// ErrMasterKeyRequired: the ring holds sealed keys and no master key
	// was given (KEY-04).
	ErrMasterKeyRequired = errors.New("keys: the key ring is sealed: set " + MasterKeyEnv + " to the master key it was sealed with")
	// ErrMasterKeyWrong: a sealed key does not open with the master key
	// given (another key, or the record was changed or moved to another
	// kid).
	ErrMasterKeyWrong = errors.New("keys: a sealed key does not open with this master key: is " + MasterKeyEnv + " the one the ring was sealed with?")
)

// MasterKey seals private keys at rest with AES-256-GCM (KEY-04). Its
// text form, the value of TETHER_MASTER_KEY, is 32 random bytes in
// base64url without padding: 43 characters of A-Z a-z 0-9 - _. NewMasterKey
// makes one; so does
//
//	openssl rand 32 | basenc --base64url | tr -d '='
//
// Lose it and the sealed keys are lost with it: the ring then needs new
// keys (and every token signed by the old ones dies).
type MasterKey struct {
	aead cipher.AEAD
}

// NewMasterKey returns a new random master key in its text form.
func NewMasterKey() string {
	raw := make([]byte, 32)
	rand.Read(raw)
	return b64.EncodeToString(raw)
}

// ParseMasterKey reads a master key in its text form. Whitespace around it
// (a file's trailing newline) is ignored; anything else that is not 43
// base64url characters of a non-zero key is refused.
func ParseMasterKey(s string) (*MasterKey, error) {
	s = strings.TrimSpace(s)
	if len(s) != masterKeyLen {
		return nil, fmt.Errorf("keys: %s has %d characters, want %d (32 bytes in base64url without padding)", MasterKeyEnv, len(s), masterKeyLen)
	}
	raw, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("keys: %s is not base64url without padding (A-Z a-z 0-9 - _)", MasterKeyEnv)
	}
	if subtle.ConstantTimeCompare(raw, make([]byte, len(raw))) == 1 {
		return nil, fmt.Errorf("keys: %s is all zeros: make a random one", MasterKeyEnv)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", MasterKeyEnv, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", MasterKeyEnv, err)
	}
	return &MasterKey{aead: aead}, nil
}

// additionalData binds a sealed key to its kid: a sealed private key
// copied to another record does not open there.
func additionalData(kid string) []byte { return []byte("tether keys v1\x00" + kid) }

// seal encrypts the private key of kid: the version byte, a random nonce,
// then the ciphertext and tag.
func (m *MasterKey) seal(kid string, plain []byte) []byte {
	out := make([]byte, 1+m.aead.NonceSize(), 1+m.aead.NonceSize()+len(plain)+m.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return m.aead.Seal(out, out[1:], plain, additionalData(kid))
}

// open is seal's inverse.
func (m *MasterKey) open(kid string, sealed []byte) ([]byte, error) {
	n := m.aead.NonceSize()
	if len(sealed) < 1+n+m.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("key %s: %w", kid, ErrMasterKeyWrong)
	}
	plain, err := m.aead.Open(nil, sealed[1:1+n], sealed[1+n:], additionalData(kid))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, ErrMasterKeyWrong)
	}
	return plain, nil
}

// Secret is a private key as a Record holds it, sealed or not. Printing or
// logging one shows its length only (KEY-04).
type Secret []byte

// Format prints "[N bytes redacted]" whatever the verb.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "[%d bytes redacted]", len(s)) }

// LogValue logs "[N bytes redacted]".
func (s Secret) LogValue() slog.Value {
	return slog.StringValue(fmt.Sprintf("[%d bytes redacted]", len(s)))
}

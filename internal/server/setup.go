package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// DefaultSetupTTL is how long a setup link stays valid.
const DefaultSetupTTL = time.Hour

// Setup is the one-time link that creates the first admin on an empty
// database (PW-08): GET /setup?token=... shows the form, POST /setup creates
// the admin and signs them in. The token is valid once, for a limited time,
// and only while no user exists; only its SHA-256 is kept. It lives in the
// memory of the server that printed it, so a restart makes a new one.
type Setup struct {
	now     func() time.Time
	hash    [sha256.Size]byte
	expires time.Time

	mu   sync.Mutex // guards used, and serialises uses
	used bool
}

// NewSetup returns a Setup and its token (32 random bytes, base64url), valid
// for ttl (DefaultSetupTTL if 0) from now (time.Now if nil). The caller
// prints the token as part of the link and forgets it.
func NewSetup(now func() time.Time, ttl time.Duration) (s *Setup, token string, err error) {
	if ttl < 0 {
		return nil, "", fmt.Errorf("%w: setup ttl %v is negative", errConfig, ttl)
	}
	if ttl == 0 {
		ttl = DefaultSetupTTL
	}
	if now == nil {
		now = time.Now
	}
	token = randomToken()
	return &Setup{now: now, hash: sha256.Sum256([]byte(token)), expires: now().Add(ttl)}, token, nil
}

// valid reports whether token opens this setup now. A nil Setup opens
// nothing.
func (s *Setup) valid(token string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.validLocked(token)
}

func (s *Setup) validLocked(token string) bool {
	h := sha256.Sum256([]byte(token))
	return !s.used && s.now().Before(s.expires) && subtle.ConstantTimeCompare(h[:], s.hash[:]) == 1
}

// use runs create if token opens this setup, and spends the token if create
// succeeds; a failed create leaves it for another try. Uses are serialised,
// so two concurrent requests can't both create an admin.
func (s *Setup) use(token string, create func() error) error {
	if s == nil {
		return errSetupInvalid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.validLocked(token) {
		return errSetupInvalid
	}
	if err := create(); err != nil {
		return err
	}
	s.used = true
	return nil
}

// tokenBytes is the size of the random setup and pre-session tokens.
const tokenBytes = 32

// randomToken returns tokenBytes from crypto/rand, base64url without padding.
func randomToken() string {
	raw := make([]byte, tokenBytes)
	rand.Read(raw) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(raw)
}

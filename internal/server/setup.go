package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/tetherauth/tether/internal/account"
)

// DefaultSetupTTL is how long a setup link stays valid.
const DefaultSetupTTL = time.Hour

// NewSetup makes the one-time link that creates the first admin on an
// empty account store (PW-08): GET /setup?token=... shows the form, POST
// /setup creates the admin and signs them in. It returns the link's token
// (32 random bytes, base64url) and keeps only its SHA-256, in accounts,
// valid for ttl (DefaultSetupTTL if 0) from now: so every server on the
// same account store opens the link, any of them only while no user
// exists, and the first admin created spends every link
// (account.Store.CreateFirst). The caller prints the token as part of
// the link and forgets it.
func NewSetup(ctx context.Context, accounts account.Store, now time.Time, ttl time.Duration) (token string, err error) {
	if ttl < 0 {
		return "", fmt.Errorf("%w: setup ttl %v is negative", errConfig, ttl)
	}
	if ttl == 0 {
		ttl = DefaultSetupTTL
	}
	token = randomToken()
	if err := accounts.AddSetup(ctx, setupHash(token), now.Add(ttl)); err != nil {
		return "", err
	}
	return token, nil
}

// setupHash is what the account store keeps of a setup link's token.
func setupHash(token string) account.SetupHash { return sha256.Sum256([]byte(token)) }

// tokenBytes is the size of the random setup and pre-session tokens.
const tokenBytes = 32

// randomToken returns tokenBytes from crypto/rand, base64url without padding.
func randomToken() string {
	raw := make([]byte, tokenBytes)
	rand.Read(raw) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(raw)
}

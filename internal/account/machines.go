package account

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// What the account store keeps for machines (issue 11): OAuth 2.0 clients
// and personal access tokens. The signing keys are kept too, through
// KeyStorage (a keys.Storage). Client secrets and personal access tokens
// are 256-bit random values, so the store keeps their SHA-256, like
// session tokens, never an argon2id hash: checking one must not cost a
// password hash's CPU.

// Errors of the machine part of the store; callers test them with
// errors.Is.
var (
	// ErrClientNotFound: no client with that id.
	ErrClientNotFound = errors.New("account: client not found")
	// ErrClientExists: a client with that id exists already.
	ErrClientExists = errors.New("account: client exists")
	// ErrInvalidClientID: the id can't be a client id (see
	// CanonicalClientID).
	ErrInvalidClientID = errors.New("account: invalid client id: use 1 to 64 of the characters a-z 0-9 . _ -")
	// ErrPATNotFound: no personal access token with that id (or hash).
	ErrPATNotFound = errors.New("account: personal access token not found")
)

// SecretHash is the SHA-256 of a client secret or a personal access token.
type SecretHash [sha256.Size]byte

// Client is an OAuth 2.0 client of the client credentials grant.
type Client struct {
	ID         string // the client_id, canonical (CanonicalClientID), chosen by the operator
	SecretHash SecretHash
	Scopes     []string      // the scopes it may ask for; sorted, no duplicates
	Audiences  []string      // the audiences (resource indicators) it may ask for; sorted, no duplicates; the first is the default
	MaxTTL     time.Duration // its tokens' longest lifetime; 0: the server's cap
	Disabled   bool
	Created    time.Time // set by Clients.CreateClient
}

// Clients keeps the OAuth 2.0 clients. Implementations are safe for
// concurrent use by every process and node sharing the database.
type Clients interface {
	// CreateClient adds c, setting c.Created to now; ErrClientExists,
	// leaving the store unchanged, if a client has that id;
	// ErrInvalidClientID if c.ID is not canonical.
	CreateClient(ctx context.Context, c *Client) error
	// Client returns the client with that id, or ErrClientNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// ClientList returns every client ordered by id.
	ClientList(ctx context.Context) ([]*Client, error)
	// SetClientSecret replaces the secret hash of client id
	// (ErrClientNotFound).
	SetClientSecret(ctx context.Context, id string, h SecretHash) error
	// SetClientDisabled sets or clears the disabled flag of client id
	// (ErrClientNotFound). Setting it again is not an error.
	SetClientDisabled(ctx context.Context, id string, disabled bool) error
	// DeleteClient removes client id (ErrClientNotFound).
	DeleteClient(ctx context.Context, id string) error
}

// PAT is a personal access token as the store keeps it: never the token,
// only its hash.
type PAT struct {
	ID       string // public id, "pat_" and 22 base64url characters; set by PATs.CreatePAT
	UserID   string
	Name     string // the person's label for it, 1 to 100 bytes of UTF-8
	Hash     SecretHash
	Scopes   []string // sorted, no duplicates
	Created  time.Time
	Expires  time.Time // mandatory
	LastUsed time.Time // zero: never used
}

// PATs keeps personal access tokens. Implementations are safe for
// concurrent use by every process and node sharing the database.
type PATs interface {
	// CreatePAT adds p, setting p.ID and p.Created; ErrNotFound if there
	// is no user p.UserID.
	CreatePAT(ctx context.Context, p *PAT) error
	// PATByHash returns the token whose hash is h, or ErrPATNotFound.
	PATByHash(ctx context.Context, h SecretHash) (*PAT, error)
	// PATList returns the user's tokens ordered by Created, oldest first.
	PATList(ctx context.Context, userID string) ([]*PAT, error)
	// DeletePAT removes the user's token id (ErrPATNotFound, also when it
	// is another user's) and returns it as it was.
	DeletePAT(ctx context.Context, userID, id string) (*PAT, error)
	// TouchPAT records that the token id was used at t, if t is later
	// than the last use recorded. Touching a deleted token is not an
	// error.
	TouchPAT(ctx context.Context, id string, t time.Time) error
}

package account

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
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
	// ErrInvalidPAT: a personal access token to create has no name of 1
	// to MaxPATNameLen bytes of UTF-8, or no expiry.
	ErrInvalidPAT = errors.New("account: invalid personal access token: give it a name of 1 to 100 bytes and an expiry")
)

// MaxPATNameLen is the longest name of a personal access token, in bytes.
const MaxPATNameLen = 100

// SecretHash is the SHA-256 of a client secret or a personal access token.
type SecretHash [sha256.Size]byte

// Client is an OAuth 2.0 client of the client credentials grant.
type Client struct {
	ID         string // the client_id, canonical (CanonicalClientID), chosen by the operator
	SecretHash SecretHash
	Scopes     []string      // the scopes it may ask for; sorted, no duplicates
	Audiences  []string      // the audiences (resource indicators) it may ask for, in the order given, no duplicates; the first is the default
	MaxTTL     time.Duration // its tokens' longest lifetime; 0: the server's cap
	Disabled   bool
	Created    time.Time // set by Clients.CreateClient
}

// Clients keeps the OAuth 2.0 clients. Implementations are safe for
// concurrent use by every process and node sharing the database.
type Clients interface {
	// CreateClient adds c, setting c.Created to now, sorting c.Scopes and
	// dropping duplicates from both c.Scopes and c.Audiences (whose order
	// stays: the first is the default); ErrClientExists, leaving the
	// store unchanged, if a client has that id; ErrInvalidClientID if c.ID
	// is not canonical; an error if c.MaxTTL is negative.
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

// Revocations keeps the durable copy of the token denylist's jti
// entries. The denylist itself lives in the session store, beside the
// sessions, whose feed carries it to every verifier; but where that
// store's data is lost for good (Redis without persistence, a wiped
// disk) the sessions end and nobody is let in, while a revoked access
// token, which carries all it needs to verify, would be accepted again.
// The account store, durable by design, keeps this copy so that it
// isn't (see internal/revocation's Durable). Implementations are safe
// for concurrent use by every process and node sharing the database.
type Revocations interface {
	// RecordRevocation keeps jti revoked until exp; again, the later exp
	// wins. Entries past their exp are dropped as others are written.
	RecordRevocation(ctx context.Context, jti string, exp time.Time) error
	// RevocationRecorded reports whether jti is kept revoked (an entry
	// past its exp may be reported either way).
	RevocationRecorded(ctx context.Context, jti string) (bool, error)
	// RecordedRevocations returns every entry whose exp is after now.
	RecordedRevocations(ctx context.Context, now time.Time) ([]RecordedRevocation, error)
}

// RecordedRevocation is an entry of Revocations.
type RecordedRevocation struct {
	JTI string
	Exp time.Time
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
	// Gen is the generation of the user's token subject
	// (token.UserSubject) read when the token was made, before the
	// request making it was checked (as SES-12 orders sign-ins): the
	// token is live only while Gen is at least the subject's current
	// generation, so a password change, a disable or a "revoke
	// everything" racing its creation kills it too (CHG-03).
	Gen uint64
}

// PATs keeps personal access tokens. Implementations are safe for
// concurrent use by every process and node sharing the database.
type PATs interface {
	// CreatePAT adds p, setting p.ID and p.Created, sorting p.Scopes
	// without duplicates and p.Expires to the microsecond; ErrNotFound if
	// there is no user p.UserID, ErrInvalidPAT if p has no valid name or
	// no expiry.
	CreatePAT(ctx context.Context, p *PAT) error
	// PATByHash returns the token whose hash is h, or ErrPATNotFound.
	PATByHash(ctx context.Context, h SecretHash) (*PAT, error)
	// PATList returns the user's tokens ordered by Created, oldest first.
	PATList(ctx context.Context, userID string) ([]*PAT, error)
	// DeletePAT removes the user's token id (ErrPATNotFound, also when it
	// is another user's) and returns it as it was.
	DeletePAT(ctx context.Context, userID, id string) (*PAT, error)
	// DeletePATs removes every token of the user and returns how many it
	// removed; none is not an error. A password change ends the user's
	// tokens with it, in the account store too, so that they stay ended
	// if the session store, which holds the generation that ends them at
	// once, loses its data (CHG-03).
	DeletePATs(ctx context.Context, userID string) (int, error)
	// TouchPAT records that the token id was used at t, if t is later
	// than the last use recorded. Touching a deleted token is not an
	// error.
	TouchPAT(ctx context.Context, id string, t time.Time) error
}

// The stores keep times to the microsecond, in UTC, and sets of strings
// sorted without duplicates; an empty set is nil. Both backends prepare
// what they write with these, so that what they read back is equal.

// micro returns t as the stores keep it.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// set returns the strings of s sorted, without duplicates, in a slice of
// its own; nil if there are none.
func set(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

// unique returns s without its duplicates, in the order of their first
// appearance.
func unique(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// newClient checks c before CreateClient and returns the record to
// insert: c's fields as the store keeps them, created at now.
func newClient(c *Client, now time.Time) (Client, error) {
	if id, err := CanonicalClientID(c.ID); err != nil || id != c.ID {
		return Client{}, ErrInvalidClientID
	}
	if c.MaxTTL < 0 {
		return Client{}, fmt.Errorf("account: client %q: negative MaxTTL %v", c.ID, c.MaxTTL)
	}
	n := *c
	n.Scopes, n.Audiences, n.Created = set(c.Scopes), unique(c.Audiences), micro(now)
	return n, nil
}

// newPAT checks p before CreatePAT and returns the record to insert:
// p's fields as the store keeps them, with a fresh id, created at now.
func newPAT(p *PAT, now time.Time) (PAT, error) {
	if p.Name == "" || len(p.Name) > MaxPATNameLen || !utf8.ValidString(p.Name) || p.Expires.IsZero() {
		return PAT{}, ErrInvalidPAT
	}
	n := *p
	n.ID, n.Scopes, n.Created, n.Expires, n.LastUsed = randomID("pat_"), set(p.Scopes), micro(now), micro(p.Expires), time.Time{}
	return n, nil
}

// The statements of the machine part (machinestore.go), which both
// backends run: SQLite reads $1 as PostgreSQL does, and so do ON CONFLICT
// and RETURNING.
const (
	clientColumns = `SELECT id, secret_hash, scopes, audiences, max_ttl, disabled, created FROM clients `
	insertClient  = `INSERT INTO clients (id, secret_hash, scopes, audiences, max_ttl, disabled, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`
	setClientSecret   = `UPDATE clients SET secret_hash = $1 WHERE id = $2`
	setClientDisabled = `UPDATE clients SET disabled = $1 WHERE id = $2`
	deleteClient      = `DELETE FROM clients WHERE id = $1`

	patColumns = `SELECT id, user_id, name, hash, scopes, created, expires, last_used, gen `
	// insertPAT inserts no row if there is no user $2. (PostgreSQL
	// infers the types of its parameters from the columns, as it does
	// for VALUES.)
	insertPAT = `INSERT INTO pats (id, user_id, name, hash, scopes, created, expires, gen)
		SELECT $1, id, $3, $4, $5, $6, $7, $8 FROM users WHERE id = $2`
	deletePAT = `DELETE FROM pats WHERE id = $1 AND user_id = $2
		RETURNING id, user_id, name, hash, scopes, created, expires, last_used, gen`
	deletePATs = `DELETE FROM pats WHERE user_id = $1`
	touchPAT   = `UPDATE pats SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $1)`

	recordRevocation = `INSERT INTO revoked_tokens (jti, exp) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET exp = CASE WHEN excluded.exp > revoked_tokens.exp THEN excluded.exp ELSE revoked_tokens.exp END`
	pruneRevocations    = `DELETE FROM revoked_tokens WHERE exp <= $1`
	revocationRecorded  = `SELECT count(*) FROM revoked_tokens WHERE jti = $1`
	recordedRevocations = `SELECT jti, exp FROM revoked_tokens WHERE exp > $1`

	// The ring's version is 0 until its row exists: a store opened by a
	// command that only reads writes nothing.
	keyRingVersion  = `SELECT coalesce(max(version), 0) FROM key_ring`
	keyRecords      = `SELECT kid, alg, private, sealed, created, sign_from, sign_until, remove_at FROM signing_keys ORDER BY kid`
	upsertKeyRecord = `INSERT INTO signing_keys (kid, alg, private, sealed, created, sign_from, sign_until, remove_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (kid) DO UPDATE SET alg = excluded.alg, private = excluded.private, sealed = excluded.sealed,
			created = excluded.created, sign_from = excluded.sign_from,
			sign_until = excluded.sign_until, remove_at = excluded.remove_at`
)

// swapKeyRing returns Save's compare-and-swap of the ring's version, from
// version to version+1: a statement that changes one row, or none if the
// version is another (ErrConflict).
func swapKeyRing(version uint64) (stmt string, args []any) {
	if version == 0 {
		return `INSERT INTO key_ring (one, version) VALUES (true, 1) ON CONFLICT DO NOTHING`, nil
	}
	return `UPDATE key_ring SET version = version + 1 WHERE version = $1`, []any{int64(version)}
}

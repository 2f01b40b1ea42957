// Package account keeps the people who can sign in to tether: their
// canonical names, password hashes, admin and disabled flags, and the
// server's own secrets. SQLite keeps them in the file the server shares
// with its session store (one node, the default); Postgres keeps them in
// PostgreSQL, for several nodes. Both keep the Store contract the same way.
//
// Usage:
//
//	db, err := sqlite.Open("tether.db") // package store/sqlite
//	...
//	accounts, err := account.NewSQLite(ctx, db)
//	// or, for several nodes:
//	// pool, err := pgxpool.New(ctx, "postgres://tether@db.example/tether")
//	// accounts, err := account.NewPostgres(ctx, pool)
//	...
//	u := &account.User{Name: "Alice", PasswordHash: hash}
//	if err := accounts.Create(ctx, u); errors.Is(err, account.ErrExists) {
//		...
//	}
//	u, err = accounts.ByName(ctx, "alice") // u.Name == "alice"
//
// A fresh store holds no account at all (PW-08): the first admin is created
// explicitly, with `tether user add` or a one-time setup link. The store
// keeps the links (AddSetup), so that any node opens a link any node
// printed, and CreateFirst spends one, so that one admin is made however
// many nodes show a link.
//
// # Machines
//
// Both stores also keep what machines need (issue 11): OAuth 2.0 clients
// (Clients), personal access tokens (PATs), and the signing keys, through
// KeyStorage, a keys.Storage for keys.NewRing. Secrets are made here
// (NewClientSecret, NewPAT: a prefix, 256 random bits in base62, and for a
// token a CRC-32 checksum that ParsePAT checks before any store lookup) and
// kept only as their SHA-256 (HashSecret), never an argon2id hash: they
// are random, and checking one must not cost a password hash's CPU.
// Deleting a user deletes their tokens in the same transaction. The key
// ring is one unit of concurrency: Save is a compare-and-swap of the
// ring's version row, so two nodes rotating at once add one key.
//
//	secret, h := account.NewClientSecret() // print secret once
//	err := accounts.CreateClient(ctx, &account.Client{ID: "ci-bot", SecretHash: h, Scopes: []string{"deploy"}})
//	...
//	h, err = account.ParsePAT(bearer) // ErrMalformedPAT: refuse at once
//	pat, err := accounts.PATByHash(ctx, h)
//	...
//	ring, err := keys.NewRing(ctx, accounts.KeyStorage(), keys.Config{MasterKey: master})
package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors of this package; callers test them with errors.Is.
var (
	// ErrNotFound: no user with that name or id.
	ErrNotFound = errors.New("account: user not found")
	// ErrExists: a user with that name exists already.
	ErrExists = errors.New("account: user exists")
	// ErrChanged: SetPassword found another hash than the one it was to
	// replace: the password changed meanwhile.
	ErrChanged = errors.New("account: the password changed meanwhile")
	// ErrNotFirst: CreateFirst found a user already (PW-08).
	ErrNotFirst = errors.New("account: not the first user: a user exists already")
	// ErrNoSetup: CreateFirst found no such setup link, or it had expired.
	ErrNoSetup = errors.New("account: no such setup link, or it has expired")
	// ErrLastAdmin: Delete would remove the only admin who can sign in.
	ErrLastAdmin = errors.New("account: the user is the only admin who can sign in")
	// ErrInvalidName: the name can't be a user name (see CanonicalName).
	ErrInvalidName = errors.New("account: invalid user name: use 1 to 64 of the characters a-z 0-9 . _ @ + -")
)

// MaxNameLen is the longest canonical user name, in bytes (and characters).
const MaxNameLen = 64

// User is an account as the store keeps it.
type User struct {
	ID           string // "u_" and 22 base64url characters; set by Store.Create
	Name         string // canonical (see CanonicalName)
	PasswordHash string // PHC string from package password; never logged
	Admin        bool
	Disabled     bool      // a disabled user can't sign in
	Created      time.Time // set by Store.Create
}

// Store keeps user accounts. Implementations are safe for concurrent use.
type Store interface {
	// Create adds u. It canonicalises u.Name (ErrInvalidName if it can't be),
	// sets u.Name to the canonical form, u.ID to a fresh random id and
	// u.Created to now, and returns ErrExists, leaving the store unchanged,
	// if a user has that canonical name. Create does not check the password
	// hash; an empty one means nobody can sign in as u. It spends every
	// setup link (PW-08) in the same transaction, so that a link printed
	// before a user was added another way can't open again if the users
	// are deleted within its hour.
	Create(ctx context.Context, u *User) error

	// CreateFirst is Create, but only while the store holds no user at
	// all (else ErrNotFirst) and keeps the setup link setup, unexpired at
	// now (else ErrNoSetup); on either error it leaves the store
	// unchanged. On success it forgets every setup link: they are spent.
	// The checks and the creation are one step for every process and node
	// sharing the database: of any number of concurrent CreateFirst calls
	// on an empty store at most one succeeds, and a Create that races it
	// either comes first (ErrNotFirst) or after. It is how the first admin
	// is created exactly once (PW-08).
	CreateFirst(ctx context.Context, u *User, setup SetupHash, now time.Time) error

	// AddSetup keeps a setup link, the hash of its token, until expires.
	// The links are forgotten when CreateFirst spends one; until then
	// each costs a row, as many as the nodes that started on an empty
	// store.
	AddSetup(ctx context.Context, setup SetupHash, expires time.Time) error

	// SetupValid reports whether the store keeps the setup link setup,
	// unexpired at now.
	SetupValid(ctx context.Context, setup SetupHash, now time.Time) (bool, error)

	// ByName returns the user whose canonical name is that of name, so
	// "Alice" finds "alice". It returns ErrNotFound when there is none,
	// including when name can't be canonicalised (a name that could never
	// have been created is simply not found).
	ByName(ctx context.Context, name string) (*User, error)

	// ByID returns the user with that id, or ErrNotFound.
	ByID(ctx context.Context, id string) (*User, error)

	// List returns every user ordered by name; an empty store gives an
	// empty slice and no error.
	List(ctx context.Context) ([]*User, error)

	// Count returns how many users there are, disabled ones included; 0 on
	// a fresh store (PW-08).
	Count(ctx context.Context) (int, error)

	// SetPassword replaces the password hash of the user with that id by
	// hash, only if it is still old (compare and swap): ErrChanged if it is
	// not, ErrNotFound if there is no such user. So no change is ever lost
	// to another (a sign-in's rehash, a concurrent password change) that
	// read the same old hash. It does not end the user's sessions: package
	// credential orders that (CHG-02, SES-12).
	SetPassword(ctx context.Context, id, old, hash string) error

	// SetDisabled sets or clears the disabled flag of the user with that id,
	// or returns ErrNotFound. Setting it again is not an error. It does not
	// end the user's sessions: package credential orders that (SES-10).
	SetDisabled(ctx context.Context, id string, disabled bool) error

	// Rename gives the user with that id the canonical form of name
	// (ErrInvalidName if it has none), or returns ErrExists if another
	// user has it, ErrNotFound if there is no such user. Renaming a user
	// to their own name is not an error. The id stays: a rename changes
	// what the user types to sign in, not who they are, so their sessions
	// go on.
	Rename(ctx context.Context, id, name string) error

	// Delete removes the user with that id, or returns ErrNotFound. It
	// refuses, with ErrLastAdmin and leaving the store unchanged, to
	// remove an admin who is not disabled while no other such admin
	// exists; the check and the removal are one step for every process
	// and node, so two Deletes of the last two admins can't both succeed.
	// It does not end the user's sessions: package credential orders that.
	Delete(ctx context.Context, id string) error
}

// errNotSet: a compare-and-swap of a password changed no row; whyNotSet
// tells why.
var errNotSet = errors.New("account: password not set")

// whyNotSet wraps err, the failure of a compare-and-swap of the password
// of id in s; when it changed no row, err becomes ErrNotFound or
// ErrChanged, whichever is true.
func whyNotSet(ctx context.Context, s Store, id string, err error) error {
	if errors.Is(err, errNotSet) {
		if _, err = s.ByID(ctx, id); err == nil {
			err = ErrChanged
		}
	}
	return fmt.Errorf("account: set password of %q: %w", id, err)
}

// CanonicalName returns the form of a user name that the store keeps and
// compares: surrounding white space trimmed, case folded with Unicode simple
// folding (so "Alice" and "ALICE" are one name, and so are "kelvin" and
// "\u212Aelvin", spelt with a KELVIN SIGN), then 1 to MaxNameLen characters
// of a-z 0-9 . _ @ + -. Anything else gives ErrInvalidName.
func CanonicalName(s string) (string, error) {
	return canonical(s, namePunct, ErrInvalidName)
}

// CanonicalClientID returns the form of an OAuth 2.0 client id that the
// store keeps: folded and trimmed as CanonicalName folds user names, then
// 1 to MaxNameLen characters of a-z 0-9 . _ - (no @ or +, so that an id
// never reads as an address). Anything else gives ErrInvalidClientID. The
// store looks clients up by the exact id (a client_id on the wire is
// compared as it is sent); only the operator's commands canonicalise.
func CanonicalClientID(s string) (string, error) {
	return canonical(s, clientPunct, ErrInvalidClientID)
}

// The punctuation allowed, besides a-z and 0-9, in a user name and in a
// client id.
const (
	namePunct   = "._@+-"
	clientPunct = "._-"
)

// canonical trims s, folds its case and returns it if it is 1 to
// MaxNameLen characters of a-z 0-9 and punct; otherwise invalid.
func canonical(s, punct string, invalid error) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		c, ok := fold(r)
		if !ok || !allowed(c, punct) || b.Len() == MaxNameLen {
			return "", invalid
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// fold maps r to the ASCII character of its simple case-folding orbit, if
// it has one: 'A' and 'a' to 'a', KELVIN SIGN to 'k', LONG S to 's'.
func fold(r rune) (byte, bool) {
	for f := r; ; {
		if f < utf8.RuneSelf {
			return byte(unicode.ToLower(f)), true
		}
		if f = unicode.SimpleFold(f); f == r {
			return 0, false
		}
	}
}

func allowed(c byte, punct string) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(punct, c) >= 0
}

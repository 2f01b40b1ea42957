package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// Hash is the SHA-256 of a session token. Stores are keyed by it and never
// see the token itself, so a dump of a store can't be replayed as cookies
// (SES-02).
type Hash [sha256.Size]byte

// Errors a Store returns. Wrap them as you like; the Manager tests with
// errors.Is.
var (
	// ErrNotFound: no live session under that hash (never created, deleted,
	// or revoked by its user's generation).
	ErrNotFound = errors.New("session: not found")
	// ErrConflict: Save lost an optimistic-concurrency race (see Save).
	ErrConflict = errors.New("session: version conflict")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("session: store closed")
)

// Record is a session as a Store keeps it.
type Record struct {
	Hash   Hash   // SHA-256 of the token: the store's key
	ID     string // public id, safe to show the user; never the token or its hash
	UserID string

	// Gen is the user's generation the session belongs to. The store sets it
	// when the record is created and when RevokeUser keeps the record.
	Gen uint64
	// Version counts saves; Save uses it for optimistic concurrency. The
	// store sets it.
	Version uint64

	Created      time.Time
	LastSeen     time.Time
	IdleDeadline time.Time // LastSeen + idle timeout, never after AbsDeadline
	AbsDeadline  time.Time // Created + absolute timeout

	UserAgent string
	IP        string
	Data      map[string][]byte
}

// Expiry is when the record is dead whatever happens: the earlier of its
// idle and absolute deadlines. A store may forget a record from then on.
func (r *Record) Expiry() time.Time {
	if r.IdleDeadline.Before(r.AbsDeadline) {
		return r.IdleDeadline
	}
	return r.AbsDeadline
}

// Store keeps session records. Implementations must be safe for concurrent
// use, and every one runs the shared conformance suite in package storetest.
//
// The Manager enforces expiry with its own clock; a store only uses the
// deadlines to forget records (Record.Expiry) and need not check them.
// Every method of a closed store returns ErrClosed.
type Store interface {
	// Get returns the record stored under h. It returns ErrNotFound when there
	// is none, or when the record's Gen is older than its user's current
	// generation (see RevokeUser). The returned record is the caller's to
	// keep and change.
	Get(ctx context.Context, h Hash) (*Record, error)

	// Save writes r under r.Hash and, on success, sets r.Version to the new
	// version. With r.Version == 0 it creates the record, stamping r.Gen with
	// the user's current generation, and returns ErrConflict if a record with
	// that hash or that public id exists. Otherwise it replaces the record
	// only if the stored version still equals r.Version, and returns
	// ErrConflict if it does not or if the record is revoked by generation,
	// ErrNotFound if there is no record. Save never changes Gen of an
	// existing record, and callers never change its ID or UserID (a store
	// may refuse with ErrConflict). Every successful Save of an existing record is an
	// invalidation of r.Hash on the feed.
	Save(ctx context.Context, r *Record) error

	// Delete removes the record stored under h. Deleting a missing record is
	// not an error. It is an invalidation of h on the feed.
	Delete(ctx context.Context, h Hash) error

	// List returns the live records of a user (generation current), ordered
	// by Created, oldest first (ties in any order). A user with none gets an empty slice and no
	// error. Records past their Expiry may be included; the caller filters.
	List(ctx context.Context, userID string) ([]*Record, error)

	// RevokeUser bumps the user's generation, so that every record of the
	// user created before is dead, in one write however many there are. If
	// keep is non-nil and names a live record of that user, that record is
	// moved to the new generation in the same atomic change. A user with no
	// sessions still gets the bump, so a session created concurrently with an
	// older generation is dead too. It is an invalidation of the user on the
	// feed.
	RevokeUser(ctx context.Context, userID string, keep *Hash) error

	// Watch delivers the store's invalidations to fn until ctx is done or the
	// feed fails for good, and returns why it stopped (ctx.Err() when ctx
	// ended it). fn must be safe for concurrent use: a store may call it from
	// its writers as well as from Watch's own goroutine. Before the first
	// invalidation, and after every recovery from a loss, it calls
	// fn(Event{Kind: FeedUp}); when it loses the feed (and so may miss
	// invalidations) it calls fn(Event{Kind: FeedDown}) first, and it calls
	// fn(Event{Kind: FeedDown}) before returning. A write of this process must
	// reach fn before the write returns; a write of another process sharing
	// the store, within the bound the store documents. No invalidation
	// committed after fn returned from a FeedUp may be missed until the next
	// FeedDown; a store may deliver FeedUp holding a lock its writers need,
	// so fn must not call the store while handling FeedUp or FeedDown.
	// Callers treat the time before the first FeedUp and between a FeedDown
	// and the next FeedUp as "anything may have changed".
	Watch(ctx context.Context, fn func(Event)) error
}

// EventKind says what an Event is about.
type EventKind uint8

const (
	// FeedUp: the feed is healthy from here on; earlier events may have been
	// missed.
	FeedUp EventKind = iota + 1
	// FeedDown: the feed is lost; invalidations may be missed until the next
	// FeedUp.
	FeedDown
	// Changed: the record under Event.Hash changed or was deleted.
	Changed
	// UserRevoked: every record of Event.UserID may be dead.
	UserRevoked
)

// Event is one message of a store's invalidation feed.
type Event struct {
	Kind   EventKind
	Hash   Hash   // for Changed
	UserID string // for UserRevoked
}

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
	// ErrConflict: Save lost an optimistic-concurrency race, or Create
	// found the hash or the public id taken.
	ErrConflict = errors.New("session: version conflict")
	// ErrRevoked: Create found that the user's sessions were revoked (their
	// generation moved past the one the caller read before checking the
	// credential), so the session must not be made (SES-12).
	ErrRevoked = errors.New("session: the user's sessions were revoked meanwhile")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("session: store closed")
)

// Record is a session as a Store keeps it.
type Record struct {
	Hash   Hash   // SHA-256 of the token: the store's key
	ID     string // public id, safe to show the user; never the token or its hash
	UserID string

	// Gen is the user's generation the session belongs to: the record is
	// live only while it is the user's current generation. Create takes it
	// from the caller (the generation read before the credential was
	// checked); RevokeUser moves a kept record to the new one.
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
// Every method of a closed store returns ErrClosed. Every per-user
// operation is bounded by the user's live records, which Create caps
// (SES-13): no method walks records a user no longer has.
type Store interface {
	// Get returns the record stored under h. It returns ErrNotFound when there
	// is none, or when the record's Gen is older than its user's current
	// generation (see RevokeUser). The returned record is the caller's to
	// keep and change.
	Get(ctx context.Context, h Hash) (*Record, error)

	// Generation returns the user's current generation: 0 for a user whose
	// sessions were never revoked. A caller reads it before it checks the
	// credential a new session is for, and hands it to Create in r.Gen.
	Generation(ctx context.Context, userID string) (uint64, error)

	// Create adds r, a new record, in one atomic change, and sets r.Version
	// to 1. The change happens only if all of these hold, checked in this
	// order:
	//
	//   - the user's current generation is still r.Gen, else ErrRevoked: a
	//     revocation (a password change, a disabled account, "sign out
	//     everywhere") came after the caller read it, and the credential
	//     the session was to rest on may be gone (SES-12). With
	//     opts.Replace, r.Gen is ignored and set to the replaced record's;
	//   - with opts.Replace, the record under it is live and r.UserID's,
	//     else ErrNotFound; it is deleted in the same change (a rotation:
	//     the old token dies as the new one is born, SES-03);
	//   - no record has r.Hash or r.ID, else ErrConflict.
	//
	// With opts.MaxPerUser > 0, the user's records that expire first are
	// deleted in the same change, as many as it takes for the user to have
	// at most MaxPerUser records of the current generation with r (SES-13).
	// Every deleted record is an invalidation of its hash on the feed.
	Create(ctx context.Context, r *Record, opts CreateOptions) error

	// Save replaces the existing record under r.Hash if the stored version
	// still equals r.Version, and sets r.Version to the new version. It
	// returns ErrNotFound if there is no live record (never created,
	// deleted, or revoked by generation), ErrConflict if its version
	// differs. Save never changes
	// Gen, and callers never change a record's ID or UserID (a store may
	// refuse with ErrConflict). Every successful Save is an invalidation of
	// r.Hash on the feed.
	Save(ctx context.Context, r *Record) error

	// Delete removes the record stored under h. Deleting a missing record is
	// not an error. It is an invalidation of h on the feed.
	Delete(ctx context.Context, h Hash) error

	// List returns the live records of a user (generation current), ordered
	// by Created, oldest first (ties in any order). A user with none gets an empty slice and no
	// error. Records past their Expiry may be included; the caller filters.
	List(ctx context.Context, userID string) ([]*Record, error)

	// RevokeUser bumps the user's generation, so that every record of the
	// user created before is dead, and deletes those records. If keep is
	// non-nil and names a live record of that user, that record is moved to
	// the new generation in the same atomic change. A user with no sessions
	// still gets the bump, so that a Create holding the older generation
	// fails with ErrRevoked. It is an invalidation of the user on the feed.
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
	//
	// While up, Watch delivers a heartbeat, Event{Kind: FeedCurrent, At: t},
	// about every HeartbeatInterval: every invalidation committed before t,
	// by any process, has reached fn before it. A store proves that with a
	// round trip that the feed's own messages would have come ahead of (a
	// PING on the subscription's connection, a poll of the change log), and
	// t is when the round trip started. A Manager serves its near-cache only
	// while the last heartbeat is recent (Config.MaxStaleness, SES-14), so a
	// feed that is cut off without noticing (its packets dropped, not
	// refused) stops serving within that bound; a store that never delivers
	// FeedCurrent gets its cache used only for MaxStaleness after each
	// FeedUp.
	Watch(ctx context.Context, fn func(Event)) error

	// RevokeToken puts r on the token denylist until r.Exp, in one
	// durable write (acknowledged like RevokeUser: once it would survive
	// what the store's configuration says it survives, SES-15). r is one
	// token (r.JTI, the id of an access token or a personal access token,
	// and r.Exp its expiry) or every token of a subject older than a
	// generation (r.Subject and r.Gen, after a RevokeUser of the subject;
	// r.Exp the expiry of the longest-lived token it can concern), so that
	// a verifier that reads only the denylist (a remote one, following the
	// revocation stream) learns of both. Revoking again is not an error;
	// the later Exp and the greater Gen win. A store may forget an entry
	// once its Exp has passed (JWT-09: the list stays small because tokens
	// are short-lived). It is an invalidation on the feed: Event{Kind:
	// TokenRevoked, Revocation: r}.
	//
	// Subjects' generations themselves are Generation and RevokeUser,
	// called with the subject ("client:billing", "user:u_...") as userID.
	RevokeToken(ctx context.Context, r Revocation) error

	// TokenRevoked reports whether jti is on the denylist (an entry past
	// its Exp may be reported either way: the token is expired anyway).
	TokenRevoked(ctx context.Context, jti string) (bool, error)

	// Revocations returns the denylist: every entry whose Exp is after
	// now, in any order (entries past it may be included), one per jti and
	// one per subject (its greatest Gen). It is what a verifier that has
	// just subscribed (or lost the feed) reads before it trusts its view
	// again: the snapshot of the revocation stream.
	Revocations(ctx context.Context, now time.Time) ([]Revocation, error)
}

// Revocation is an entry of the token denylist (Store.RevokeToken): one
// token, by JTI, or every token of Subject whose generation is below Gen.
type Revocation struct {
	JTI     string
	Subject string
	Gen     uint64
	Exp     time.Time
}

// CreateOptions are the conditions and side effects of Store.Create.
type CreateOptions struct {
	// Replace names a live record of the same user that the new one
	// replaces atomically (Manager.Rotate); nil for none.
	Replace *Hash
	// MaxPerUser caps the user's live records, counting the new one: the
	// ones that expire first are deleted to make room. 0 means no cap.
	MaxPerUser int
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
	// FeedCurrent: a heartbeat; every invalidation committed before
	// Event.At has been delivered (see Store.Watch).
	FeedCurrent
	// TokenRevoked: Event.Revocation is on the denylist (see
	// Store.RevokeToken).
	TokenRevoked
)

// HeartbeatInterval is how often a Store's Watch delivers FeedCurrent
// while the feed is up. Config.MaxStaleness is at least a few of them.
const HeartbeatInterval = 100 * time.Millisecond

// Event is one message of a store's invalidation feed.
type Event struct {
	Kind   EventKind
	Hash   Hash      // for Changed
	UserID string    // for UserRevoked (a user's id, or a token subject's "client:..."/"user:...")
	At     time.Time // for FeedCurrent: when the store vouched the feed current (read with its monotonic clock)
	// Revocation is the denylist entry, for TokenRevoked.
	Revocation Revocation
}

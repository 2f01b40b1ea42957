// Package postgres is a session.Store in PostgreSQL, for more than one
// node: the nodes share a schema, and each hears the others' invalidations
// through LISTEN/NOTIFY. It uses github.com/jackc/pgx/v5 and a pool the
// caller owns; the pool must reach PostgreSQL directly or through a pooler
// in session mode (LISTEN needs a session of its own).
//
//	pool, err := pgxpool.New(ctx, "postgres://tether:secret@db.internal/tether")
//	if err != nil {
//		return err
//	}
//	defer pool.Close()
//	store, err := postgres.New(ctx, pool, postgres.Options{})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	sessions, err := session.NewManager(store, session.Config{})
//
// # Tables
//
// New creates or brings up to date, in the pool's current schema (the
// first existing one of its connections' search_path), the tables sessions
// (records keyed by the token's SHA-256, so that neither the database nor
// the notifications below ever hold a token (SES-02); a unique public id;
// an index on user, creation time and hash for List, one on expiry for
// DeleteExpired), session_generations (each user's generation, from a
// user's first Create on; a user without a row is at generation 0) and
// token_denylist (Store.RevokeToken: one row per revoked jti or subject,
// with its expiry, which DeleteExpired prunes).
// Package pgmigrate applies the numbered migrations, as component
// "session", once however many nodes start at the same time. Times are
// timestamptz (microseconds); session data is one compact binary value
// (package store/internal/datacodec); the user agent is bytea, since a
// browser may send bytes that are not UTF-8. User ids and public ids are text, which
// can hold neither NUL nor invalid UTF-8: Create refuses a record with such
// an id, with an error.
//
// # Writes
//
// Every write but Create is one statement, and so one transaction and one
// round trip (a Save that changed nothing asks once more, to tell
// session.ErrConflict from session.ErrNotFound). Create is one transaction
// at READ COMMITTED in two round trips: its statements, BEGIN first, in one
// pipeline, then COMMIT, or ROLLBACK when a condition failed. It first
// locks the user's row of session_generations, as RevokeUser's bump does,
// so that the creates and revocations of one user happen one at a time,
// whichever node they come from, and each statement after the lock sees
// what the ones before committed. Hence:
//
//   - a Create holding a generation that a RevokeUser moved past refuses
//     (session.ErrRevoked) once that RevokeUser has committed; one that
//     took the lock first commits a record of the older generation, dead
//     as soon as the bump commits (SES-12);
//   - concurrent creates of one user count each other's records, so
//     Create's cap holds however many nodes create at once (SES-13);
//   - a rotation (CreateOptions.Replace) deletes the record it replaces in
//     the same transaction, only if it is still there and live: a Delete
//     of it on another node either comes first, and the rotation fails
//     with session.ErrNotFound, or comes after and finds nothing (SES-03).
//
// RevokeUser deletes the records it revokes, in the same statement; a
// record that a Create committed while the bump waited for its lock is
// not among them, but is dead by generation (see revokeSQL), and goes with
// the next RevokeUser or DeleteExpired.
//
// A revocation (Delete, RevokeUser, RevokeToken) commits with synchronous_commit on,
// set in its own statement, even where the server, database or role
// default is off: it is acknowledged only once its WAL is on disk (and on
// the synchronous standbys that synchronous_standby_names names), so a
// crash of the database's host can't undo it (SES-15). Other writes keep
// the configured setting: a session lost with the last moments of an
// asynchronous commit only means signing in again.
//
// # Invalidation feed
//
// Every invalidating write (a Save, a Delete, a Create that replaces or
// evicts records, once per record, a RevokeUser, a RevokeToken) notifies, in its own
// transaction (pg_notify), the schema's channel: "tether_sessions:" and
// the schema's name, or, where that would pass PostgreSQL's 63 bytes, "tether_sessions#" and 32 hex digits of the
// name's SHA-256. Notifications are per database: schemas of the same name
// in two databases don't hear each other. PostgreSQL delivers a
// notification when its transaction commits, never before, so no node hears
// of a change it can't read yet. The payload is text: a kind (c: a changed
// or deleted record; u: a revoked user; t: a token denylist entry), the
// writing process's origin in 16 hex digits, then the record's hash in 64
// hex digits, the user id, or the entry (store/internal/denylist's text
// form, its id at most 1,024 bytes). A user id of more than about 7,900 bytes doesn't fit in a notification
// (8,000 bytes at most): RevokeUser fails for such a user.
//
// Watch takes a connection out of the pool for itself (it no longer counts
// against the pool's MaxConns, and is closed when the Watch stops), LISTENs
// on the channel and delivers FeedUp once PostgreSQL has confirmed it:
//
//   - a write through a Store reaches every watcher of this process on the
//     same server, database and schema before the write returns, whichever
//     pool either was made from;
//   - a write of another process reaches a watcher as soon as PostgreSQL
//     delivers its notification, on commit: well under a millisecond on a
//     local network, plus the network's own delay;
//   - every session.HeartbeatInterval (100 ms) the connection is pinged,
//     and once it answers (after the notifications committed before the
//     ping) Watch delivers a heartbeat, FeedCurrent (SES-14); a connection
//     that dies without a word leaves the heartbeats out at once, and is
//     taken for dead when a ping gets no answer within a second.
//
// So a watcher has delivered another node's commit, or stopped vouching
// for the feed, within about 100 ms; it delivers FeedDown within about
// 1.1 s of losing the connection.
//
// When the listening connection fails, Watch delivers FeedDown, connects
// again after a delay growing from 50 ms up to 5 s and delivers FeedUp once
// it listens again. A write that fails after it may have reached PostgreSQL
// (a lost connection) is delivered to this process's watchers all the
// same: an invalidation too many costs a cache miss, one too few would
// serve a revoked session.
//
// Anyone who can connect to the database may notify on any channel. A
// notification that no Store sends on the channel (junk, or the message of
// a newer tether in a format this one doesn't know) can't be understood, nor
// what it invalidates: the watch logs it and starts over, FeedDown then
// FeedUp on the same connection, so that caches are emptied rather than
// left stale.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/feed"
	"github.com/tetherauth/tether/store/postgres/pgmigrate"
)

var (
	_ session.Store   = (*Store)(nil)
	_ session.Sweeper = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Logger receives the errors Watch recovers from and the notifications
	// it can't understand. Default: nothing is logged.
	Logger *slog.Logger
}

// Store is a session.Store in PostgreSQL. It is safe for concurrent use.
// Close it when done; closing it doesn't close the pool.
type Store struct {
	pool    *pgxpool.Pool
	channel string // the schema's notification channel (channelName)
	log     *slog.Logger
	hub     *hub
	watches feed.Watches // the running Watch calls, and whether the store is closed

	// beforeCommit, if set (by tests, before using the store), is called by
	// Create between its statements and its COMMIT: it holds the user's
	// generation row and the rows it wrote until beforeCommit returns.
	beforeCommit func()
}

// New returns a Store keeping its records in the current schema of pool's
// connections, first creating or bringing up to date its tables there
// (see the package documentation); several nodes may start at once. It
// doesn't close pool.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	return newStore(ctx, pool, opts, "")
}

// newStore is New. A non-empty node makes the Store a node of its own, as
// if in another process: a test's way to run two.
func newStore(ctx context.Context, pool *pgxpool.Pool, opts Options, node string) (*Store, error) {
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if _, err := pgmigrate.Run(ctx, pool, "session", files); err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	// The migrations found a current schema, or failed.
	key := hubKey{node: node}
	if err := pool.QueryRow(ctx, `SELECT current_database(), current_schema()`).Scan(&key.database, &key.schema); err != nil {
		return nil, fmt.Errorf("postgres store: find the schema: %w", err)
	}
	cfg := pool.Config().ConnConfig
	key.server = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	s := &Store{pool: pool, channel: channelName(key.schema), log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "store/postgres")
	s.hub = hubs.Acquire(key)
	return s, nil
}

// Close marks the store closed: from then on every method returns
// session.ErrClosed. It ends the running Watch calls and waits for them to
// return. It doesn't close the pool. Closing a closed store does nothing.
func (s *Store) Close() error {
	if s.watches.Close() {
		hubs.Release(s.hub.key)
	}
	return nil
}

// closedError returns session.ErrClosed, wrapped with what the caller was
// doing.
func closedError(op string) error {
	return fmt.Errorf("postgres store: %s: %w", op, session.ErrClosed)
}

// fail wraps err with op; if the store was closed meanwhile it wraps
// session.ErrClosed too.
func (s *Store) fail(op string, err error) error {
	if s.watches.Closed() && !errors.Is(err, session.ErrClosed) {
		return fmt.Errorf("postgres store: %s: %w: %w", op, session.ErrClosed, err)
	}
	return fmt.Errorf("postgres store: %s: %w", op, err)
}

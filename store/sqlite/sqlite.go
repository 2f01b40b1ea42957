// Package sqlite is tether's embedded session store: a session.Store kept in
// an SQLite file through the pure-Go driver modernc.org/sqlite (no cgo). The
// server, the command line and any other process may share the file.
//
//	db, err := sqlite.Open("tether.db") // one *sql.DB for sessions and accounts
//	if err != nil {
//		return err
//	}
//	defer db.Close()
//	store, err := sqlite.New(ctx, db, sqlite.Options{})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	sessions, err := session.NewManager(store, session.Config{})
//
// # Tables
//
// New creates, if missing, the tables sessions (records keyed by the
// token's hash, a unique public id, an index on user and creation time),
// session_generations (each revoked user's generation; a user without a row
// is at generation 0), token_denylist (the token denylist, one row per jti
// or subject, with its expiry; Store.RevokeToken) and session_changes (the
// change log below). Times are
// kept as Unix microseconds, in UTC; session data as one compact binary
// value.
//
// # Invalidation feed
//
// Watch delivers the invalidations of every writer of the file:
//
//   - a write through any Store of this process reaches every watcher of the
//     same file in this process before the write returns, whichever *sql.DB
//     and Store either was opened with;
//   - every invalidation (a Save, a Delete, a Create that replaces or evicts, a
//     RevokeUser, a RevokeToken) also appends an entry to the change log, in the write's
//     transaction. Each Watch checks the file's PRAGMA data_version on a
//     connection of its own every Options.PollInterval and, when it moved,
//     reads the log entries it has not seen. So a write of another process
//     reaches a watcher within PollInterval plus one read of the log, once
//     the process gets the CPU: 100 ms by default plus a few ms (99 ms to
//     115 ms measured over 30 revocations on 2 cores, up to 155 ms seen
//     under load); PollInterval is at most 1 s (New refuses longer);
//   - each poll is also the feed's heartbeat (FeedCurrent, SES-14) for the
//     time it began: a Manager whose watcher polls later than its
//     MaxStaleness stops answering from its near-cache. Keep MaxStaleness
//     at several PollIntervals (the defaults: 1 s and 100 ms), else a busy
//     moment turns the cache off. A poll that finds nothing costs one
//     PRAGMA, about 20 µs (BenchmarkFeedPoll).
//
// DeleteExpired prunes log entries older than a minute, and the denylist
// of entries expired by the time it is given. A watcher that finds
// entries it never read pruned (it was stalled that long) can't tell what
// it missed: it delivers FeedDown, then FeedUp. A database error in the poll
// loop also delivers FeedDown; the loop retries with a growing delay (from
// PollInterval up to 5 s) and delivers FeedUp once it is back.
//
// Each running Watch holds one connection of the *sql.DB's pool.
//
// # Permissions
//
// The file holds what must stay private (the server keeps password hashes
// and its secrets in it too), so Open creates a new file readable and
// writable by its owner only (MISC-06), and SQLite gives the -wal and -shm
// files it creates next to it the same permissions. Open leaves an existing
// file's permissions alone; CheckPermissions reports whether other users can
// read or write it.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/feed"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var (
	_ session.Store   = (*Store)(nil)
	_ session.Sweeper = (*Store)(nil)
)

// ErrLoosePermissions is what CheckPermissions wraps when users other than
// the owner may read or write a database file.
var ErrLoosePermissions = errors.New("sqlite: database files readable or writable by other users")

const (
	// defaultPollInterval is Options.PollInterval's default.
	defaultPollInterval = 100 * time.Millisecond
	// maxPollInterval bounds Options.PollInterval: the documented bound on
	// seeing another process's write (a revocation among them).
	maxPollInterval = time.Second
	// maxRetryWait bounds the delay between two tries of a failing poll.
	maxRetryWait = 5 * time.Second
	// changeRetention is how long DeleteExpired keeps change log entries:
	// far longer than any healthy watcher takes to read them.
	changeRetention = time.Minute
)

// Open opens the SQLite file at path as tether uses it. A missing file is
// created with mode 0600 (readable and writable by its owner only, MISC-06)
// before SQLite opens it; SQLite then gives the -wal and -shm files the same
// permissions. An existing file keeps its permissions. The settings: WAL
// journal, its file truncated back to JournalSizeLimit after each
// checkpoint, synchronous NORMAL (a session store's revocations commit
// with FULL, see Store.Delete), foreign keys on, a 10 s busy
// timeout, and transactions that take the write lock when they begin
// (BEGIN IMMEDIATE), so that two writers never deadlock upgrading a read
// lock. SQLite has one writer at a time but, in WAL mode, concurrent
// readers: the pool keeps two connections per CPU, at least 8. The caller
// owns the returned *sql.DB and closes it.
func Open(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A file: URI, so that any character of the path (?, #, %) is escaped.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path // a Windows drive letter
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	u.RawQuery = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	u.RawQuery += "&_pragma=journal_size_limit(" + strconv.Itoa(JournalSizeLimit) + ")"
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	conns := max(8, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := firstConnect(db); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open %s: %w", path, err), db.Close())
	}
	return db, nil
}

// createPrivate creates an empty file at path with mode 0600 (less what the
// umask takes away), unless something is there already. SQLite takes an
// empty file for an empty database. Without it, SQLite would create the
// file with mode 0644 less the umask: readable by every local user, with
// the usual umask 022.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another process's, or the operator's: left as it is
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// CheckPermissions returns an error wrapping ErrLoosePermissions, naming
// each file and its mode, if users other than the owner may read or write
// the database at path or its -wal or -shm file (MISC-06); files that don't
// exist are fine. A server calls it at start, once Open has opened the
// file, and warns.
//
// It changes nothing, and Open doesn't either: the permissions of an
// existing file may be the operator's choice (a group that backs it up,
// say), and silently taking them away would break that. Making the file
// private is one command, which the error names. On Windows, where
// permission bits don't say who may read a file, it always returns nil.
func CheckPermissions(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	var loose []string
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: check permissions: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			loose = append(loose, fmt.Sprintf("%s has mode %04o", p, perm))
		}
	}
	if loose == nil {
		return nil
	}
	return fmt.Errorf("%w: %s; unless that is meant, run chmod 600 on them (they hold password hashes and secrets)",
		ErrLoosePermissions, strings.Join(loose, ", "))
}

// firstConnect makes the first connection, retrying while the file is
// busy: when processes open a new file at the same moment, one switching it
// to WAL answers the others SQLITE_BUSY at once, without the busy timeout.
// Once the file is in WAL mode, connecting no longer needs that lock.
func firstConnect(db *sql.DB) error {
	const tries, pause = 100, 10 * time.Millisecond // at most about a second
	for i := 1; ; i++ {
		err := db.Ping()
		if err == nil || !isBusy(err) || i == tries {
			return err
		}
		time.Sleep(pause)
	}
}

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// PollInterval is how often each Watch looks for the writes of other
	// processes. Default 100 ms; at most 1 s.
	PollInterval time.Duration
	// Now stamps the change log entries, which DeleteExpired keeps for a
	// minute by this clock (not by the now it is passed, which is the
	// caller's and only decides which sessions expired). Default time.Now.
	Now func() time.Time
	// Logger receives the errors Watch's poll loop retries after. Default:
	// nothing is logged.
	Logger *slog.Logger
}

// Store is a session.Store in an SQLite file. It is safe for concurrent
// use. Close it when done; closing it doesn't close the *sql.DB.
type Store struct {
	db       *sql.DB
	hub      *hub
	interval time.Duration // Options.PollInterval
	now      func() time.Time
	log      *slog.Logger

	get, list, insert, update, logChange *sql.Stmt

	watches feed.Watches // the running Watch calls, and whether the store is closed

	// beforeCommit, set only by tests, runs in a write's transaction
	// before it commits.
	beforeCommit func(tx *sql.Tx)
}

// New returns a Store keeping its records in db, creating its tables if
// they are missing.
func New(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	var file string
	err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: find the database file: %w", err)
	}
	key := hubKey{path: filepath.Clean(file)}
	if file == "" {
		key = hubKey{db: db} // in memory: only this *sql.DB reaches it
	}
	return newStore(ctx, db, opts, key)
}

// newStore is New with the key under which the Store joins the other
// Stores of the same file in this process. A test gives a Store a key of
// its own to have it behave as if it were in another process.
func newStore(ctx context.Context, db *sql.DB, opts Options, key hubKey) (*Store, error) {
	if opts.PollInterval < 0 || opts.PollInterval > maxPollInterval {
		return nil, fmt.Errorf("sqlite store: PollInterval %v: want 0 (the default, %v) up to %v", opts.PollInterval, defaultPollInterval, maxPollInterval)
	}
	s := &Store{
		db:       db,
		interval: cmp.Or(opts.PollInterval, defaultPollInterval),
		now:      opts.Now,
		log:      opts.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "store/sqlite")
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("sqlite store: create tables: %w", err)
	}
	if err := addRevocationColumn(ctx, db); err != nil {
		return nil, fmt.Errorf("sqlite store: add the change log's revocation column: %w", err)
	}
	stmts := []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.get, getSQL},
		{&s.list, listSQL},
		{&s.insert, insertSQL},
		{&s.update, updateSQL},
		{&s.logChange, logChangeSQL},
	}
	for _, st := range stmts {
		p, err := db.PrepareContext(ctx, st.sql)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("sqlite store: prepare: %w", err), s.closeStmts())
		}
		*st.stmt = p
	}
	s.hub = hubs.Acquire(key)
	return s, nil
}

// Close marks the store closed: from then on every method returns
// session.ErrClosed. It ends the running Watch calls and waits for them to
// return. It doesn't close the *sql.DB. Closing a closed store does
// nothing.
func (s *Store) Close() error {
	if !s.watches.Close() {
		return nil
	}
	hubs.Release(s.hub.key)
	return s.closeStmts()
}

func (s *Store) closeStmts() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.get, s.list, s.insert, s.update, s.logChange} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// closedError returns session.ErrClosed, wrapped with what the caller was
// doing.
func closedError(op string) error {
	return fmt.Errorf("sqlite store: %s: %w", op, session.ErrClosed)
}

// fail wraps err with op; if the store was closed meanwhile (which can make
// a statement fail) it wraps session.ErrClosed too.
func (s *Store) fail(op string, err error) error {
	if s.watches.Closed() && !errors.Is(err, session.ErrClosed) {
		return fmt.Errorf("sqlite store: %s: %w: %w", op, session.ErrClosed, err)
	}
	return fmt.Errorf("sqlite store: %s: %w", op, err)
}

const schema = `
CREATE TABLE IF NOT EXISTS sessions (
	hash          BLOB PRIMARY KEY,
	id            TEXT NOT NULL UNIQUE,
	user_id       TEXT NOT NULL,
	gen           INTEGER NOT NULL,
	version       INTEGER NOT NULL,
	created       INTEGER NOT NULL,
	last_seen     INTEGER NOT NULL,
	idle_deadline INTEGER NOT NULL,
	abs_deadline  INTEGER NOT NULL,
	expiry        INTEGER NOT NULL, -- the earlier deadline, for DeleteExpired
	user_agent    TEXT NOT NULL,
	ip            TEXT NOT NULL,
	data          BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, created);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expiry);
CREATE TABLE IF NOT EXISTS session_generations (
	user_id TEXT PRIMARY KEY,
	gen     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_changes (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even once pruned
	at         INTEGER NOT NULL,                  -- by Options.Now, for pruning
	origin     INTEGER NOT NULL,                  -- the writing process and file (hub.origin)
	hash       BLOB,                              -- a changed or deleted record, or
	user_id    TEXT,                              -- a revoked user, or
	revocation TEXT                               -- a token denylist entry (denylist.Encode); added by addRevocationColumn to older files
);
CREATE TABLE IF NOT EXISTS token_denylist (
	jti     TEXT NOT NULL,    -- a revoked token's id, or ''
	subject TEXT NOT NULL,    -- a revoked subject, or '' (never both: denylist.Check)
	gen     INTEGER NOT NULL, -- the subject's generation its tokens must have reached
	exp     INTEGER NOT NULL, -- when the entry may be forgotten
	PRIMARY KEY (jti, subject)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS token_denylist_exp ON token_denylist (exp);`

// addRevocationColumn brings the change log of a file made before the
// token denylist up to date, once, whichever process opens it first:
// the check and the change are one transaction, which takes the write
// lock as it begins (BEGIN IMMEDIATE, see Open).
func addRevocationColumn(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var has bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pragma_table_info('session_changes') WHERE name = 'revocation')`).Scan(&has)
	if err == nil && !has {
		_, err = tx.ExecContext(ctx, `ALTER TABLE session_changes ADD COLUMN revocation TEXT`)
	}
	if err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

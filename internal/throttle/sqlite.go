package throttle

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"time"
)

// SQLite counts attempts in table login_failures of a SQLite database. It
// is safe for concurrent use, also by several processes on one file.
//
// Attempt reads, decides and writes in one transaction, which the database
// must begin with BEGIN IMMEDIATE, as those of store/sqlite.Open do: the
// transaction then holds the file's write lock from its first read, so
// attempts of every process on the file are serialised. (With a deferred
// BEGIN no attempt is lost or allowed too many, since SQLite lets only one
// of two transactions that read at once commit, but concurrent attempts
// then fail instead of waiting their turn.)
type SQLite struct {
	db  *sql.DB
	cfg Config
	// reads holds the statements that read the records of keys (see
	// records), by how many keys they take, each prepared on first use:
	// preparing the query costs about as much as running it.
	reads sync.Map // int → *sql.Stmt
}

// The table keeps its name from when it counted failures only.
const schema = `
CREATE TABLE IF NOT EXISTS login_failures (
	key          TEXT PRIMARY KEY,
	count        INTEGER NOT NULL,
	last_failure INTEGER NOT NULL -- Unix microseconds, as store/sqlite keeps times
) STRICT;
CREATE INDEX IF NOT EXISTS login_failures_last ON login_failures (last_failure);
`

// NewSQLite returns the throttle kept in db, creating its table if it is
// missing. It doesn't close db. db should come from store/sqlite.Open (see
// SQLite).
func NewSQLite(ctx context.Context, db *sql.DB, cfg Config) (*SQLite, error) {
	cfg, err := newConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("throttle: create table: %w", err)
	}
	return &SQLite{db: db, cfg: cfg}, nil
}

// Attempt reserves one attempt under every key, atomically, before the
// caller checks a password (PW-06). If any key must still wait, nothing is
// counted and the longest wait is returned, never more than Config.Max.
// Otherwise every key's count goes up by one, as a failure at now, keys
// older than Config.Forget are forgotten, and 0 is returned. A key given
// twice counts once, with the stricter allowance. Concurrent callers, in
// this process or in others on the same file, are serialised, so a burst
// of N parallel attempts is allowed exactly as many as N sequential ones
// would be. No keys: 0. On an error nothing is counted.
func (t *SQLite) Attempt(ctx context.Context, keys ...Key) (time.Duration, error) {
	return t.cfg.call(ctx, "attempt", keys, t.attempt)
}

func (t *SQLite) attempt(ctx context.Context, keys []Key) (time.Duration, error) {
	now := t.cfg.Now()
	read, args, err := t.records(ctx, names(keys)) // before the transaction takes a connection
	if err != nil {
		return 0, err
	}
	tx, err := t.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see SQLite
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()

	recs, err := scanRecords(tx.StmtContext(ctx, read).QueryContext(ctx, args...))
	if err != nil {
		return 0, err
	}
	wait, next := t.cfg.reserve(keys, recs, now)
	if wait > 0 {
		return wait, nil // rolled back: nothing counted
	}
	for i, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (key, count, last_failure) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET count = excluded.count, last_failure = excluded.last_failure`,
			k.Name, next[i].count, next[i].last.UnixMicro()); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE last_failure <= ?`,
		now.Add(-t.cfg.Forget).UnixMicro()); err != nil {
		return 0, fmt.Errorf("forget old attempts: %w", err)
	}
	return 0, tx.Commit()
}

// Wait returns how long an attempt under keys must still wait, as Attempt
// would decide it now, without counting anything: 0 where Attempt would
// count one, else the longest wait of the keys, never more than
// Config.Max. It only reads, in WAL mode beside any writer, so it waits
// for no attempt and costs no write: check with it first where only
// failures need counting (see "Checking first" in the package doc). No
// keys: 0. On an error, 0 and the error: the caller must refuse.
func (t *SQLite) Wait(ctx context.Context, keys ...Key) (time.Duration, error) {
	return t.cfg.waitFor(ctx, keys, func(ctx context.Context, names []string) (map[string]record, error) {
		read, args, err := t.records(ctx, names)
		if err != nil {
			return nil, err
		}
		return scanRecords(read.QueryContext(ctx, args...))
	})
}

// records returns the statement that reads the records of the keys named,
// and its arguments. To keep the statements few whatever the numbers of
// keys callers use, a statement takes a power of two of keys, the last
// name repeated to fill it.
func (t *SQLite) records(ctx context.Context, names []string) (*sql.Stmt, []any, error) {
	n := 1 << bits.Len(uint(len(names)-1))
	args := anys(names)
	for len(args) < n {
		args = append(args, names[len(names)-1])
	}
	if s, ok := t.reads.Load(n); ok {
		return s.(*sql.Stmt), args, nil
	}
	s, err := t.db.PrepareContext(ctx,
		`SELECT key, count, last_failure FROM login_failures WHERE key IN (`+params(n)+`)`)
	if err != nil {
		return nil, nil, err
	}
	if prev, loaded := t.reads.LoadOrStore(n, s); loaded { // another call prepared it first
		s.Close()
		s = prev.(*sql.Stmt)
	}
	return s, args, nil
}

// scanRecords reads what a query of records returns: none for a key
// without one.
func scanRecords(rows *sql.Rows, err error) (map[string]record, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	recs := make(map[string]record)
	for rows.Next() {
		var key string
		var n, last int64
		if err := rows.Scan(&key, &n, &last); err != nil {
			return nil, err
		}
		recs[key] = record{count: n, last: time.UnixMicro(last)}
	}
	return recs, rows.Err()
}

// Refund undoes one reserved attempt under each of keys (its count goes
// down by one, never below 0): for an attempt that turned out right, or
// that was never checked (the hasher was busy, the request was cancelled).
// A key given twice is refunded once; a key without attempts is not an
// error.
func (t *SQLite) Refund(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := t.db.ExecContext(ctx,
		`UPDATE login_failures SET count = max(count - 1, 0) WHERE key IN (`+params(len(keys))+`)`,
		anys(keys)...); err != nil {
		return fmt.Errorf("throttle: refund: %w", err)
	}
	return nil
}

// Reset forgets the attempts of keys, after a success. Reset the account's
// key only, not the client's IP: otherwise an attacker could clear their
// IP's count by signing in to an account of their own between guesses.
// Refund the IP's attempt instead.
func (t *SQLite) Reset(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := t.db.ExecContext(ctx,
		`DELETE FROM login_failures WHERE key IN (`+params(len(keys))+`)`, anys(keys)...); err != nil {
		return fmt.Errorf("throttle: reset: %w", err)
	}
	return nil
}

// params returns n comma-separated SQL placeholders.
func params(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys(keys []string) []any {
	a := make([]any, len(keys))
	for i, k := range keys {
		a[i] = k
	}
	return a
}

package throttle

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/store/postgres/pgmigrate"
)

// Postgres counts attempts in table login_failures of a PostgreSQL schema
// (the first in the connections' search_path), so that every node behind a
// load balancer sees the same delays. It is safe for concurrent use, also
// by several nodes, and behaves exactly as SQLite does.
//
// Attempt locks its keys' rows in one transaction from their read to their
// write, so attempts on a key are serialised across nodes. Every statement
// that waits for row locks takes them in the order of the keys (bytewise,
// the "C" collation of the key column, whatever the database's default),
// and the statements that take other rows skip those already locked, so
// that concurrent calls never deadlock.
type Postgres struct {
	pool *pgxpool.Pool
	cfg  Config
}

//go:embed postgres/*.sql
var migrations embed.FS

// NewPostgres returns the throttle kept in the database behind pool, first
// bringing its table up to date (package pgmigrate, component "throttle");
// several nodes may start at once. It doesn't close pool.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Postgres, error) {
	cfg, err := newConfig(cfg)
	if err != nil {
		return nil, err
	}
	files, err := fs.Sub(migrations, "postgres")
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	if _, err := pgmigrate.Run(ctx, pool, "throttle", files); err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return &Postgres{pool: pool, cfg: cfg}, nil
}

// Attempt reserves one attempt under every key, atomically, before the
// caller checks a password (PW-06). If any key must still wait, nothing is
// counted and the longest wait is returned, never more than Config.Max.
// Otherwise every key's count goes up by one, as a failure at now, keys
// older than Config.Forget are forgotten, and 0 is returned. A key given
// twice counts once, with the stricter allowance. Concurrent callers, on
// this node or on others sharing the database, are serialised, so a burst
// of N parallel attempts is allowed exactly as many as N sequential ones
// would be. No keys: 0. On an error nothing is counted.
func (t *Postgres) Attempt(ctx context.Context, keys ...Key) (time.Duration, error) {
	return t.cfg.call(ctx, "attempt", keys, t.attempt)
}

func (t *Postgres) attempt(ctx context.Context, keys []Key) (time.Duration, error) {
	now := t.cfg.Now()
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)

	// Creates the rows missing (with nothing counted, undone unless the
	// attempt is counted) and locks every key's row, in key order.
	rows, _ := tx.Query(ctx, `INSERT INTO login_failures AS f (key, count, last_failure)
		SELECT key, 0, $2 FROM unnest($1::text[]) AS k (key) ORDER BY key COLLATE "C"
		ON CONFLICT (key) DO UPDATE SET count = f.count
		RETURNING key, count, last_failure`, names(keys), now)
	recs, err := postgresRecords(rows)
	if err != nil {
		return 0, err
	}

	wait, next := t.cfg.reserve(keys, recs, now)
	if wait > 0 {
		return wait, nil // rolled back: nothing counted
	}
	counts := make([]int64, len(keys))
	lasts := make([]time.Time, len(keys))
	for i, r := range next {
		counts[i], lasts[i] = r.count, r.last
	}
	if _, err := tx.Exec(ctx, `UPDATE login_failures AS f SET count = n.count, last_failure = n.last
		FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS n (key, count, last)
		WHERE f.key = n.key`, names(keys), counts, lasts); err != nil {
		return 0, err
	}
	// Forgetting skips the rows another call has locked: it never waits,
	// so it can't be part of a deadlock. A row it skips counts as nothing
	// all the same (see reserve), until a later call forgets it.
	if _, err := tx.Exec(ctx, `DELETE FROM login_failures WHERE key IN (
		SELECT key FROM login_failures WHERE last_failure <= $1 FOR UPDATE SKIP LOCKED)`,
		now.Add(-t.cfg.Forget)); err != nil {
		return 0, fmt.Errorf("forget old attempts: %w", err)
	}
	return 0, tx.Commit(ctx)
}

// Wait returns how long an attempt under keys must still wait, as Attempt
// would decide it now, without counting anything: 0 where Attempt would
// count one, else the longest wait of the keys, never more than
// Config.Max. It only reads, taking no row lock, so it waits for no
// attempt and costs no write: check with it first where only failures
// need counting (see "Checking first" in the package doc). No keys: 0. On
// an error, 0 and the error: the caller must refuse.
func (t *Postgres) Wait(ctx context.Context, keys ...Key) (time.Duration, error) {
	return t.cfg.waitFor(ctx, keys, func(ctx context.Context, names []string) (map[string]record, error) {
		rows, _ := t.pool.Query(ctx, `SELECT key, count, last_failure FROM login_failures WHERE key = ANY($1)`, names)
		return postgresRecords(rows)
	})
}

// postgresRecords reads rows of key, count and last failure, the error of their
// query included: none for a key without one.
func postgresRecords(rows pgx.Rows) (map[string]record, error) {
	recs := make(map[string]record)
	var key string
	var r record
	_, err := pgx.ForEachRow(rows, []any{&key, &r.count, &r.last}, func() error {
		recs[key] = r
		return nil
	})
	return recs, err
}

// Refund undoes one reserved attempt under each of keys (its count goes
// down by one, never below 0): for an attempt that turned out right, or
// that was never checked (the hasher was busy, the request was cancelled).
// A key given twice is refunded once; a key without attempts is not an
// error.
func (t *Postgres) Refund(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	// Locked in key order first, as Attempt locks them (see Postgres).
	if _, err := t.pool.Exec(ctx, `UPDATE login_failures SET count = greatest(count - 1, 0) WHERE key IN (
		SELECT key FROM login_failures WHERE key = ANY($1) ORDER BY key COLLATE "C" FOR UPDATE)`, keys); err != nil {
		return fmt.Errorf("throttle: refund: %w", err)
	}
	return nil
}

// Reset forgets the attempts of keys, after a success. Reset the account's
// key only, not the client's IP: otherwise an attacker could clear their
// IP's count by signing in to an account of their own between guesses.
// Refund the IP's attempt instead.
func (t *Postgres) Reset(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	// Locked in key order first, as Attempt locks them (see Postgres).
	if _, err := t.pool.Exec(ctx, `DELETE FROM login_failures WHERE key IN (
		SELECT key FROM login_failures WHERE key = ANY($1) ORDER BY key COLLATE "C" FOR UPDATE)`, keys); err != nil {
		return fmt.Errorf("throttle: reset: %w", err)
	}
	return nil
}

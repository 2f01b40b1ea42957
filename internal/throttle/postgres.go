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

// Postgres counts failures in table login_failures of a PostgreSQL schema
// (the first in the connections' search_path), so that every node behind a
// load balancer sees the same delays. It is safe for concurrent use, also
// by several nodes, and behaves exactly as SQLite does.
//
// Every statement is its own transaction, and those that lock several rows
// lock them in the order of their keys (bytewise, the "C" collation of the
// key column, whatever the database's default), so that concurrent calls
// never deadlock.
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

// Wait returns how long the caller must wait before trying again under
// keys: 0 when a try is allowed now, else the longest wait of any key. The
// wait is never more than Config.Max. No keys: 0.
func (t *Postgres) Wait(ctx context.Context, keys ...string) (time.Duration, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now := t.cfg.Now()
	rows, _ := t.pool.Query(ctx,
		`SELECT count, last_failure FROM login_failures WHERE last_failure > $1 AND key = ANY($2)`,
		now.Add(-t.cfg.Forget), keys)
	var wait time.Duration
	var n int64
	var last time.Time
	if _, err := pgx.ForEachRow(rows, []any{&n, &last}, func() error {
		wait = max(wait, t.cfg.wait(n, t.cfg.Free, last, now))
		return nil
	}); err != nil {
		return 0, fmt.Errorf("throttle: wait: %w", err)
	}
	return wait, nil
}

// Fail counts one more failure under each of keys (a key given twice
// counts twice), and forgets every key whose last failure is older than
// Config.Forget.
func (t *Postgres) Fail(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	now := t.cfg.Now()
	forget := now.Add(-t.cfg.Forget)
	// Forgetting skips the rows another call has locked: it never waits,
	// so it can't be part of a deadlock. A row it skips is counted from
	// zero below, and Wait ignores it.
	if _, err := t.pool.Exec(ctx, `DELETE FROM login_failures WHERE key IN (
		SELECT key FROM login_failures WHERE last_failure <= $1 FOR UPDATE SKIP LOCKED)`, forget); err != nil {
		return fmt.Errorf("throttle: fail: forget old failures: %w", err)
	}
	if _, err := t.pool.Exec(ctx, `INSERT INTO login_failures AS f (key, count, last_failure)
		SELECT key, count(*), $2 FROM unnest($1::text[]) AS k (key) GROUP BY key ORDER BY key COLLATE "C"
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN f.last_failure <= $3 THEN excluded.count ELSE f.count + excluded.count END,
			last_failure = greatest(f.last_failure, excluded.last_failure)`,
		keys, now, forget); err != nil {
		return fmt.Errorf("throttle: fail: %w", err)
	}
	return nil
}

// Reset forgets the failures of keys, after a success. Reset the account's
// key only, not the client's IP: otherwise an attacker could clear their
// IP's count by signing in to an account of their own between guesses.
func (t *Postgres) Reset(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	// Locked in key order first, as Fail locks them (see Postgres).
	if _, err := t.pool.Exec(ctx, `DELETE FROM login_failures WHERE key IN (
		SELECT key FROM login_failures WHERE key = ANY($1) ORDER BY key COLLATE "C" FOR UPDATE)`, keys); err != nil {
		return fmt.Errorf("throttle: reset: %w", err)
	}
	return nil
}

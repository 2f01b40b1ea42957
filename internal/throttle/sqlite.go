package throttle

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// SQLite counts failures in table login_failures of a SQLite database. It
// is safe for concurrent use, also by several processes on one file.
type SQLite struct {
	db  *sql.DB
	cfg Config
}

const schema = `
CREATE TABLE IF NOT EXISTS login_failures (
	key          TEXT PRIMARY KEY,
	count        INTEGER NOT NULL,
	last_failure INTEGER NOT NULL -- Unix microseconds, as store/sqlite keeps times
) STRICT;
CREATE INDEX IF NOT EXISTS login_failures_last ON login_failures (last_failure);
`

// NewSQLite returns the throttle kept in db, creating its table if it is
// missing. It doesn't close db.
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

// Wait returns how long the caller must wait before trying again under
// keys: 0 when a try is allowed now, else the longest wait of any key. The
// wait is never more than Config.Max. No keys: 0.
func (t *SQLite) Wait(ctx context.Context, keys ...string) (time.Duration, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now := t.cfg.Now()
	rows, err := t.db.QueryContext(ctx,
		`SELECT count, last_failure FROM login_failures WHERE last_failure > ? AND key IN (`+params(len(keys))+`)`,
		append([]any{now.Add(-t.cfg.Forget).UnixMicro()}, anys(keys)...)...)
	if err != nil {
		return 0, fmt.Errorf("throttle: wait: %w", err)
	}
	defer rows.Close()
	var wait time.Duration
	for rows.Next() {
		var n, last int64
		if err := rows.Scan(&n, &last); err != nil {
			return 0, fmt.Errorf("throttle: wait: %w", err)
		}
		wait = max(wait, t.cfg.wait(n, t.cfg.Free, time.UnixMicro(last), now))
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("throttle: wait: %w", err)
	}
	return wait, nil
}

// Fail counts one more failure under each of keys, and forgets every key
// whose last failure is older than Config.Forget.
func (t *SQLite) Fail(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	now := t.cfg.Now()
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("throttle: fail: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE last_failure <= ?`,
		now.Add(-t.cfg.Forget).UnixMicro()); err != nil {
		return fmt.Errorf("throttle: fail: forget old failures: %w", err)
	}
	for _, key := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (key, count, last_failure) VALUES (?, 1, ?)
			ON CONFLICT (key) DO UPDATE SET count = count + 1, last_failure = max(last_failure, excluded.last_failure)`,
			key, now.UnixMicro()); err != nil {
			return fmt.Errorf("throttle: fail: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("throttle: fail: %w", err)
	}
	return nil
}

// Reset forgets the failures of keys, after a success. Reset the account's
// key only, not the client's IP: otherwise an attacker could clear their
// IP's count by signing in to an account of their own between guesses.
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

// Package throttle slows down password guessing (PW-06): after a few
// failures under a key (a canonical account name, a client IP) every further
// try under that key has to wait, twice as long after each failure, up to a
// cap. There is never a permanent lock: a success resets the key, the wait
// never exceeds Config.Max, and failures are forgotten after Config.Forget.
// The counts live in the SQLite file the server shares with its other
// stores, so every process on that file sees the same delays.
//
// Usage, in a sign-in handler:
//
//	t, err := throttle.NewSQLite(ctx, db, throttle.Config{})
//	...
//	keys := []string{"user:" + canonicalName, "ip:" + clientIP}
//	if wait, err := t.Wait(ctx, keys...); err != nil || wait > 0 {
//		// 503 on err, else 429 with Retry-After: wait
//	}
//	if !passwordOK {
//		err = t.Fail(ctx, keys...)
//	} else {
//		err = t.Reset(ctx, keys[0]) // the account only: see Reset
//	}
package throttle

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Config tunes the delays. The zero value of each field means its default.
type Config struct {
	// Free is how many failures of a key go without any delay. Default 5.
	Free int
	// Base is the delay after the first failure past Free; each further
	// failure doubles it. Default 1s.
	Base time.Duration
	// Max caps the delay. Default 15m.
	Max time.Duration
	// Forget is how long after its last failure a key is forgotten, its
	// count back to zero. Default 24h; at least Max.
	Forget time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

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
	cfg = withDefaults(cfg)
	if cfg.Free < 0 || cfg.Max < cfg.Base || cfg.Forget < cfg.Max {
		return nil, fmt.Errorf("throttle: want Free >= 0 and Base <= Max <= Forget, got Free %d, Base %v, Max %v, Forget %v",
			cfg.Free, cfg.Base, cfg.Max, cfg.Forget)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("throttle: create table: %w", err)
	}
	return &SQLite{db: db, cfg: cfg}, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Free == 0 {
		cfg.Free = 5
	}
	if cfg.Base <= 0 {
		cfg.Base = time.Second
	}
	if cfg.Max <= 0 {
		cfg.Max = 15 * time.Minute
	}
	if cfg.Forget <= 0 {
		cfg.Forget = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// delay is how long a key with n failures waits after its last one.
func (c *Config) delay(n int64) time.Duration {
	if n <= int64(c.Free) {
		return 0
	}
	d := c.Base
	for range n - int64(c.Free) - 1 {
		if d > c.Max/2 {
			return c.Max
		}
		d *= 2
	}
	return d
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
		// A clock behind another process's never waits more than Max.
		wait = max(wait, min(time.UnixMicro(last).Add(t.cfg.delay(n)).Sub(now), t.cfg.Max))
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

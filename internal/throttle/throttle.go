// Package throttle slows down password guessing (PW-06): after a few
// failures under a key (a canonical account name, a client IP) every further
// try under that key has to wait, twice as long after each failure, up to a
// cap. There is never a permanent lock: a success resets the key, the wait
// never exceeds Config.Max, and failures are forgotten after Config.Forget.
// The counts live where the server's other state does: SQLite keeps them in
// the file the server shares with its other stores, so every process on
// that file sees the same delays; Postgres keeps them in PostgreSQL, so
// every node behind a load balancer does.
//
// Usage, in a sign-in handler:
//
//	t, err := throttle.NewSQLite(ctx, db, throttle.Config{})
//	// or, for several nodes: throttle.NewPostgres(ctx, pool, throttle.Config{})
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
	"fmt"
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

// withDefaults returns cfg with its zero fields set to their defaults.
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

// newConfig returns cfg with its defaults, or an error if it is not
// consistent.
func newConfig(cfg Config) (Config, error) {
	cfg = withDefaults(cfg)
	if cfg.Free < 0 || cfg.Max < cfg.Base || cfg.Forget < cfg.Max {
		return cfg, fmt.Errorf("throttle: want Free >= 0 and Base <= Max <= Forget, got Free %d, Base %v, Max %v, Forget %v",
			cfg.Free, cfg.Base, cfg.Max, cfg.Forget)
	}
	return cfg, nil
}

// wait is how long a key with n failures, the last one at last, still
// waits at now.
func (c *Config) wait(n int64, last, now time.Time) time.Duration {
	d := c.delay(n)
	if d == 0 { // within the allowance, whatever the clocks say
		return 0
	}
	// A clock behind another process's never waits more than Max.
	return max(0, min(last.Add(d).Sub(now), c.Max))
}

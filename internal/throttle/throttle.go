// Package throttle slows down password guessing (PW-06): after a few
// attempts under a key (a canonical account name, a client IP, a device
// that signed in before) every further attempt under that key has to wait,
// twice as long after each one, up to a cap. An attempt counts before the
// password is checked, atomically across every process and node, so a
// burst of parallel guesses gets no more checks than the same guesses made
// one after another. There is never a permanent lock: a success resets the
// account's key, the wait never exceeds Config.Max, and attempts are
// forgotten Config.Forget after the last one.
//
// The counts live where the server's other state does: SQLite keeps them
// in the file the server shares with its other stores, so every process on
// that file sees the same delays; Postgres keeps them in PostgreSQL, so
// every node behind a load balancer does.
//
// Usage, in a sign-in handler:
//
//	t, err := throttle.NewSQLite(ctx, db, throttle.Config{})
//	// or, for several nodes: throttle.NewPostgres(ctx, pool, throttle.Config{})
//	...
//	account, ip := "user:"+canonicalName, "ip:"+clientIP
//	if wait, err := t.Attempt(ctx, throttle.Key{Name: account}, throttle.Key{Name: ip}); err != nil || wait > 0 {
//		// 503 on err, else 429 with Retry-After: wait
//	}
//	ok, err := check(ctx, password)
//	switch { // logging what Refund and Reset return
//	case err != nil: // never checked: the hasher was busy, the request was cancelled
//		t.Refund(ctx, account, ip)
//	case ok:
//		t.Reset(ctx, account) // the account only: see Reset
//		t.Refund(ctx, ip)     // a right password was no guess
//	}
//
// # Checking first
//
// Attempt's guarantee costs a write before every check, and one more to
// give a right password's attempt back. Passwords are worth it: people
// choose them, and every extra guess at one is a real chance. A secret of
// 256 random bits, such as an OAuth client's, is not: guessing one is
// hopeless, so what a throttle must do there is keep a flood of wrong
// secrets from costing the store, and slow down a client id under
// attack, not make every right secret pay two writes. For such secrets
// Wait reads, without writing, whether the keys must still wait; the
// caller refuses if so, else checks the secret, and counts an attempt
// only when it was wrong:
//
//	if wait, err := t.Wait(ctx, keys...); err != nil || wait > 0 {
//		// 503 on err, else 429 with Retry-After: wait
//	}
//	if !check(ctx, secret) {
//		wait, err := t.Attempt(ctx, keys...) // the failure, counted
//		// 503 on err, 429 if wait > 0 (nothing counted), else the failure's answer
//	}
//
// A right secret then costs one read. The trade-off is PW-06's "an
// attempt counts before it is checked": a burst of parallel wrong
// guesses may all pass Wait before the first of them is counted, so each
// time a key's delay ends it allows up to as many checks as the burst
// has guesses in flight, instead of one. Failures still count one by one
// (those Attempt refuses count nothing), so the delays grow as they
// would. Bounded by the concurrency, the extra checks are harmless
// against a 256-bit secret; against passwords they would not be, so
// sign-ins keep Attempt before the check.
package throttle

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Config tunes the delays. The zero value of each field means its default.
type Config struct {
	// Free is how many attempts under a key go without any delay, unless
	// the key says otherwise (Key.Free). Default 5.
	Free int
	// Base is the delay after the first attempt past Free; each further
	// attempt doubles it. Default 1s.
	Base time.Duration
	// Max caps the delay. Default 15m.
	Max time.Duration
	// Forget is how long after its last attempt a key is forgotten, its
	// count back to zero. Default 24h; at least Max.
	Forget time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Key is one count that attempts are made under: a name such as
// "user:alice", "ip:192.0.2.1", "device:NONCE", "session:ID", how many
// attempts it allows before delays begin (0 means Config.Free), and how
// fast its count drains.
type Key struct {
	Name string
	Free int
	// Leak, when positive, forgives one counted attempt for every Leak
	// since the key's last attempt: a key shared by many people (an
	// office's address) then tolerates their typos at a steady rate
	// instead of adding them up for a day. 0: nothing drains before
	// Config.Forget.
	Leak time.Duration
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

// delay is how long a key that allows free attempts waits after its last
// one, once n are counted.
func (c *Config) delay(n int64, free int) time.Duration {
	if n <= int64(free) {
		return 0
	}
	d := c.Base
	for range n - int64(free) - 1 {
		if d > c.Max/2 {
			return c.Max
		}
		d *= 2
	}
	return d
}

// wait is how long a key that allows free attempts, with n counted, the
// last one at last, still waits at now.
func (c *Config) wait(n int64, free int, last, now time.Time) time.Duration {
	d := c.delay(n, free)
	if d == 0 { // within the allowance, whatever the clocks say
		return 0
	}
	// A clock behind another process's never waits more than Max.
	return max(0, min(last.Add(d).Sub(now), c.Max))
}

// record is what a backend keeps of one key: how many attempts it has
// counted, and when the last one was.
type record struct {
	count int64
	last  time.Time
}

// keys returns keys as backends take them: each name once, with the
// stricter of its allowances and leaks, a Free of 0 replaced by Config.Free; sorted by name,
// bytewise as PostgreSQL's "C" collation sorts, the order that backends
// lock them in. A negative allowance is an error.
func (c *Config) keys(keys []Key) ([]Key, error) {
	byName := make(map[string]Key, len(keys))
	for _, k := range keys {
		if k.Free < 0 || k.Leak < 0 {
			return nil, fmt.Errorf("throttle: key %q: want Free and Leak >= 0, got %d and %v", k.Name, k.Free, k.Leak)
		}
		if k.Free == 0 {
			k.Free = c.Free
		}
		if prev, ok := byName[k.Name]; ok { // the stricter of both
			k.Free = min(k.Free, prev.Free)
			if prev.Leak == 0 || k.Leak == 0 { // one never drains
				k.Leak = 0
			} else {
				k.Leak = max(k.Leak, prev.Leak)
			}
		}
		byName[k.Name] = k
	}
	out := make([]Key, 0, len(byName))
	for _, k := range byName {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Key) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// standing is record r of key k as it stands at now: counting nothing
// once older than Forget, less what k's leak has drained since.
func (c *Config) standing(k Key, r record, now time.Time) record {
	if !r.last.After(now.Add(-c.Forget)) {
		r.count = 0
	} else if k.Leak > 0 && now.After(r.last) {
		r.count = max(0, r.count-int64(now.Sub(r.last)/k.Leak))
	}
	return r
}

// longestWait is how long an attempt at now under keys (as c.keys returns
// them), whose records are recs, must still wait: the longest of their
// waits. A key without a record has nothing counted.
func (c *Config) longestWait(keys []Key, recs map[string]record, now time.Time) time.Duration {
	var wait time.Duration
	for _, k := range keys {
		r := c.standing(k, recs[k.Name], now)
		wait = max(wait, c.wait(r.count, k.Free, r.last, now))
	}
	return wait
}

// reserve decides an attempt at now under keys (as c.keys returns them),
// whose records are recs. If any key must still wait, it returns the
// longest wait and no records: nothing is to be written. Otherwise it
// returns 0 and, in the order of keys, the record of each key with the
// attempt counted. Both backends decide with it, holding the keys' rows
// locked from their read to their write.
func (c *Config) reserve(keys []Key, recs map[string]record, now time.Time) (time.Duration, []record) {
	if wait := c.longestWait(keys, recs, now); wait > 0 {
		return wait, nil
	}
	next := make([]record, len(keys))
	for i, k := range keys {
		r := c.standing(k, recs[k.Name], now)
		next[i] = record{count: r.count + 1, last: now}
		if r.last.After(now) { // another process's clock is ahead: keep its time
			next[i].last = r.last
		}
	}
	return 0, next
}

// call is the Attempt or the Wait (op) of both backends around their f,
// which runs it on keys as c.keys returns them: Attempt's f decides in one
// transaction (reserve), Wait's reads (waitFor).
func (c *Config) call(ctx context.Context, op string, keys []Key, f func(context.Context, []Key) (time.Duration, error)) (time.Duration, error) {
	keys, err := c.keys(keys)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	wait, err := f(ctx, keys)
	if err != nil {
		return 0, fmt.Errorf("throttle: %s: %w", op, err)
	}
	return wait, nil
}

// waitFor is the Wait of both backends around their read, which returns
// the records of the keys named (none for a key without one), in one
// statement that takes no lock a writer would wait for.
func (c *Config) waitFor(ctx context.Context, keys []Key, read func(context.Context, []string) (map[string]record, error)) (time.Duration, error) {
	return c.call(ctx, "wait", keys, func(ctx context.Context, keys []Key) (time.Duration, error) {
		now := c.Now()
		recs, err := read(ctx, names(keys))
		if err != nil {
			return 0, err
		}
		return c.longestWait(keys, recs, now), nil
	})
}

// names returns the names of keys, in their order.
func names(keys []Key) []string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.Name
	}
	return s
}

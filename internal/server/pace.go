package server

import (
	"context"
	"sync"
	"time"
)

// A throttled sign-in (PW-05, PW-06) gets the answer of a wrong password,
// errInvalidCredentials: the same status, code, message and headers (no
// Retry-After, which a wrong password doesn't carry). It must also take
// about as long, without checking anything: the throttle's point is that
// its password is never checked. Hashing a dummy would take the right
// time, but it would give an address past its allowance the argon2 work
// the throttle saves, so a throttled answer waits instead, as long as
// this node's recent checked failures took (checkTimes), holding no
// hashing slot. A node that has timed no check yet hashes a dummy for its
// first throttled answer, which times one (likeACheck).

// checkTimes is how long this node's checked sign-in failures (wrong
// password, unknown or disabled user) took lately: a moving average that
// weighs the latest one by 1/checkWeight. Safe for concurrent use.
type checkTimes struct {
	mu  sync.Mutex    // guards avg
	avg time.Duration // 0: none timed yet
	// first is held by the throttled sign-in that times the first
	// check; the others wait for its time instead of hashing too.
	first chan struct{}
}

func newCheckTimes() *checkTimes {
	return &checkTimes{first: make(chan struct{}, 1)}
}

// checkWeight is the moving average's memory: about the last 8 checks.
const checkWeight = 8

// observe adds a check that took d.
func (c *checkTimes) observe(d time.Duration) {
	d = max(d, 1) // a check timed, however short, is not "none yet"
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.avg == 0 {
		c.avg = d
		return
	}
	c.avg += (d - c.avg) / checkWeight
}

// typical is how long a check takes lately, 0 when none was timed.
func (c *checkTimes) typical() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.avg
}

// timeFirst runs check and times it, unless a check was timed already,
// or another caller is timing the first one (then it waits for it, at
// most as long as ctx lasts). It reports whether it ran check: then the
// caller has taken a check's time already. check's error means it did
// not run to the end, and its time is not kept.
func (c *checkTimes) timeFirst(ctx context.Context, check func() error) bool {
	if c.typical() > 0 {
		return false
	}
	select {
	case c.first <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-c.first }()
	if c.typical() > 0 {
		return false
	}
	began := time.Now()
	err := check()
	if err == nil {
		c.observe(time.Since(began))
	}
	return true
}

// waitOut waits d, or until ctx ends: Config.Pause's default.
func waitOut(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// likeACheck takes as long as a checked sign-in failure does lately
// (see above), for a throttled one, whose password pw it never checks.
// Until this node has timed a check, one throttled sign-in at a time
// hashes pw against a dummy hash (the hasher's PW-05 dummy, never an
// account's) to time one, and the others wait for it.
func (s *server) likeACheck(ctx context.Context, pw string) {
	if s.checks.timeFirst(ctx, func() error { return s.hasher.VerifyDummy(ctx, pw) }) {
		return
	}
	if d := s.checks.typical(); d > 0 {
		s.pause(ctx, d)
	}
}

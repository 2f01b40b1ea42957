// Package sometimes lets an event through at most once per interval and
// counts the others, so that a flood of one kind of failure or refusal
// becomes one log line per interval, saying how many it left out.
package sometimes

import (
	"sync/atomic"
	"time"
)

// A Gate lets an event through at most once per Interval, by Now. It is
// safe for concurrent use; New makes one.
type Gate struct {
	interval time.Duration
	now      func() time.Time
	next     atomic.Int64 // UnixNano before which no event goes through
	held     atomic.Int64 // events held back since the last one let through
}

// New returns a Gate that lets an event through at most once per
// interval, by now (time.Now if nil).
func New(interval time.Duration, now func() time.Time) *Gate {
	if now == nil {
		now = time.Now
	}
	return &Gate{interval: interval, now: now}
}

// Let reports whether an event may go through now, and if so how many
// were held back since the last one that did.
func (g *Gate) Let() (held int64, ok bool) {
	now := g.now().UnixNano()
	next := g.next.Load()
	if now < next || !g.next.CompareAndSwap(next, now+int64(g.interval)) {
		g.held.Add(1)
		return 0, false
	}
	return g.held.Swap(0), true
}

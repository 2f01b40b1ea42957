// Package testkit holds what tether's tests share: a clock they move by
// hand (Clock), a wait for something to happen (WaitFor), a buffer a test
// reads while a logger or a process writes it (Buffer), a free port
// (FreePort), a small disk to fill (SmallDisk, FillDisk), and the rule for
// tests that need a service this machine may lack (NeedService).
//
//	clk := testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
//	var logs testkit.Buffer
//	m, _ := session.NewManager(store, session.Config{Now: clk.Now, Logger: logs.Logger()})
//	clk.Advance(time.Hour)
//	testkit.WaitFor(t, "the feed's recovery to be logged", func() bool { return logs.Contains("feed heard again") })
//
// It imports only the standard library, so that the tests of every package
// of the module can use it, the library packages' included: a test is not
// part of what an app that imports a library package builds. Its
// subpackages import more: pgtest (a PostgreSQL schema of a test's own),
// sqlitetest (the server's SQLite file), storekit (what the store
// backends' own tests and benchmarks share beyond the public conformance
// suite, storetest), proc (processes: tether built from this tree,
// redis-server, nginx), hostile (the hostile access tokens every verifier
// must refuse, by rule).
package testkit

import (
	"sync"
	"time"
)

// Clock is a clock tests move by hand; its Now can be injected wherever a
// Config takes a clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewClock returns a Clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

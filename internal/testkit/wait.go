package testkit

import (
	"testing"
	"time"
)

// DefaultWait is how long WaitFor waits unless told otherwise.
const DefaultWait = 30 * time.Second

// maxPoll is the longest pause between two calls of WaitFor's cond.
const maxPoll = 20 * time.Millisecond

// A WaitOption changes how WaitFor waits.
type WaitOption func(*waitConfig)

type waitConfig struct {
	within time.Duration
}

// Within makes WaitFor fail the test after d rather than DefaultWait.
func Within(d time.Duration) WaitOption {
	return func(c *waitConfig) { c.within = d }
}

// WaitFor polls cond until it holds and returns how long that took. It
// fails the test, saying what it waited for, when cond still doesn't hold
// after DefaultWait (see Within). It waits for an event (a server getting
// ready, a background retry, a message in a log); the bound guards against
// a hang and times nothing, so keep it generous. cond is polled every
// millisecond at first, then less and less often, up to every 20 ms: a
// short wait stays short and a long one leaves the CPU to what it waits
// for.
func WaitFor(t testing.TB, what string, cond func() bool, opts ...WaitOption) time.Duration {
	t.Helper()
	c := waitConfig{within: DefaultWait}
	for _, o := range opts {
		o(&c)
	}
	start := time.Now()
	pause := time.Millisecond
	for !cond() {
		if time.Since(start) > c.within {
			t.Fatalf("%s: not within %v", what, c.within)
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPoll)
	}
	return time.Since(start)
}

package storekit

import (
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// Feed is a running Watch of a store that records every event the store
// delivers. Its methods are safe for concurrent use.
type Feed struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Watch has returned
	err    error         // what Watch returned; set before done is closed

	mu      sync.Mutex      // guards the fields below
	events  []session.Event // in the order the store delivered them, heartbeats left out
	beats   []Beat          // the heartbeats (FeedCurrent), in order
	up      bool            // the last of FeedUp and FeedDown was FeedUp
	changed chan struct{}   // closed and replaced at every event
}

// Beat is a heartbeat a Feed received: the time the store vouched for
// (Event.At), when it arrived, whether the feed was up then (a FeedUp
// delivered and no FeedDown after it), and how many events (Events)
// came before it.
type Beat struct {
	At, Arrived time.Time
	Up          bool
	After       int
}

// Follow starts s.Watch in a new goroutine and returns once the store has
// delivered its first FeedUp; it fails the test if Watch returns before
// that. The watch is stopped when the test ends, if Stop wasn't called.
func Follow(t *testing.T, s session.Store) *Feed {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := &Feed{cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		f.err = s.Watch(ctx, f.record)
		close(f.done)
	}()
	t.Cleanup(func() { _ = f.Stop() })
	if !f.wait(f.done, Has(session.Event{Kind: session.FeedUp})) {
		t.Fatalf("Watch returned %v before delivering FeedUp (events: %s)", f.err, Describe(f.Events()))
	}
	return f
}

// record is the fn given to Watch.
func (f *Feed) record(ev session.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ev.Kind {
	case session.FeedCurrent:
		f.beats = append(f.beats, Beat{At: ev.At, Arrived: time.Now(), Up: f.up, After: len(f.events)})
	case session.FeedUp, session.FeedDown:
		f.up = ev.Kind == session.FeedUp
		fallthrough
	default:
		f.events = append(f.events, ev)
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// Events returns a copy of the events delivered so far.
func (f *Feed) Events() []session.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

// Beats returns a copy of the heartbeats received so far. Events leaves
// them out, so that a test of invalidations need not mind them.
func (f *Feed) Beats() []Beat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.beats)
}

// Wait waits until pred holds for the events delivered so far, and reports
// whether it did before ctx was done.
func (f *Feed) Wait(ctx context.Context, pred func([]session.Event) bool) bool {
	return f.wait(ctx.Done(), pred)
}

func (f *Feed) wait(stop <-chan struct{}, pred func([]session.Event) bool) bool {
	return f.until(stop, func() bool { return pred(f.events) })
}

// WaitBeats waits until the feed has delivered n heartbeats vouching for a
// time after after, and reports whether it did before ctx was done.
func (f *Feed) WaitBeats(ctx context.Context, n int, after time.Time) bool {
	return f.until(ctx.Done(), func() bool {
		c := 0
		for _, b := range f.beats {
			if b.At.After(after) {
				c++
			}
		}
		return c >= n
	})
}

// until waits until cond, called with f.mu held, holds, or stop is
// closed; it reports whether cond held.
func (f *Feed) until(stop <-chan struct{}, cond func() bool) bool {
	for {
		f.mu.Lock()
		ok, changed := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-stop:
			f.mu.Lock()
			defer f.mu.Unlock()
			return cond()
		}
	}
}

// awaitGuard bounds Await.
const awaitGuard = 30 * time.Second

// Await waits until f has delivered ev more often than before (a Count of
// the events delivered earlier) and returns how often it has then. It is for
// an event another process or node sends: it logs how long that took, and
// fails the test after 30 s, a guard against a hang that measures nothing.
func (f *Feed) Await(t testing.TB, before int, ev session.Event) int {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), awaitGuard)
	defer cancel()
	if !f.Wait(ctx, func(evs []session.Event) bool { return Count(evs, ev) > before }) {
		t.Fatalf("events: got %s, want one more %s", Describe(f.Events()), Describe([]session.Event{ev}))
	}
	t.Logf("%s arrived after %v", Describe([]session.Event{ev}), time.Since(start))
	return Count(f.Events(), ev)
}

// Stop cancels the watch, waits for Watch to return and returns what it
// returned. Calling it again returns the same.
func (f *Feed) Stop() error {
	f.cancel()
	<-f.done
	return f.err
}

// Err waits for Watch to return and returns what it returned.
func (f *Feed) Err() error {
	<-f.done
	return f.err
}

// Has returns a predicate for Feed.Wait that holds once ev was delivered.
func Has(ev session.Event) func([]session.Event) bool {
	return func(evs []session.Event) bool { return slices.Contains(evs, ev) }
}

// Count returns how many times ev is among evs: with Feed.Wait, to wait for
// one more of an event delivered before.
func Count(evs []session.Event, ev session.Event) int {
	n := 0
	for _, e := range evs {
		if e == ev {
			n++
		}
	}
	return n
}

// Describe formats events for a test's failure message.
func Describe(evs []session.Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		switch ev.Kind {
		case session.FeedUp:
			parts[i] = "FeedUp"
		case session.FeedDown:
			parts[i] = "FeedDown"
		case session.Changed:
			parts[i] = "Changed(" + hex.EncodeToString(ev.Hash[:4]) + "…)"
		case session.UserRevoked:
			parts[i] = "UserRevoked(" + ev.UserID + ")"
		case session.FeedCurrent:
			parts[i] = "FeedCurrent"
		case session.TokenRevoked:
			if r := ev.Revocation; r.JTI != "" {
				parts[i] = "TokenRevoked(jti " + r.JTI + ")"
			} else {
				parts[i] = "TokenRevoked(" + r.Subject + " gen " + strconv.FormatUint(r.Gen, 10) + ")"
			}
		default:
			parts[i] = "Kind(" + strconv.Itoa(int(ev.Kind)) + ")"
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

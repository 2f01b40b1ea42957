package feed

import (
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// hangGuard bounds the waits for what a broken watcher would never do. It
// guards against a hang, it measures nothing.
const hangGuard = 30 * time.Second

var (
	feedUp   = session.Event{Kind: session.FeedUp}
	feedDown = session.Event{Kind: session.FeedDown}
)

// changed returns a distinct invalidation for every n.
func changed(n byte) session.Event {
	return session.Event{Kind: session.Changed, Hash: session.Hash{n}}
}

// recorder is a watcher's fn that records what it is given.
type recorder struct {
	mu  sync.Mutex // guards evs
	evs []session.Event
}

func (r *recorder) fn(ev session.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) events() []session.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// check fails the test unless r was given exactly want, in that order.
func (r *recorder) check(t *testing.T, want ...session.Event) {
	t.Helper()
	if got := r.events(); !slices.Equal(got, want) {
		t.Errorf("events: got %s, want %s", storekit.Describe(got), storekit.Describe(want))
	}
}

// wait waits for ch to be closed or to send, failing the test if it
// doesn't within hangGuard.
func wait[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangGuard):
		t.Fatalf("still waiting after %v for %s", hangGuard, what)
	}
}

// repeat calls f until stop is closed.
func repeat(stop <-chan struct{}, f func()) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		f()
	}
}

// Nothing comes before FeedUp or after FeedDown; everything handed over in
// between comes, in order.
func TestWatcherDeliversOnlyWhileUp(t *testing.T) {
	var r recorder
	w := newWatcher(r.fn)
	w.Deliver(changed(1)) // before the first Up
	w.Up()
	w.Deliver(changed(2), changed(3))
	w.Deliver() // nothing
	w.Down()
	w.Deliver(changed(4)) // after Down
	w.Up()
	w.Deliver(changed(5))
	r.check(t, feedUp, changed(2), changed(3), feedDown, feedUp, changed(5))
}

// A heartbeat passes like an invalidation: only while up, carrying the
// time the source vouched for (SES-14: a dropped heartbeat makes a cache
// stale, a heartbeat after FeedDown would make a dead feed look current).
func TestSES14_WatcherCurrentOnlyWhileUp(t *testing.T) {
	var r recorder
	w := newWatcher(r.fn)
	at := time.Now()
	beat := session.Event{Kind: session.FeedCurrent, At: at}
	w.Current(at) // before the first Up
	w.Up()
	w.Current(at)
	w.Down()
	w.Current(at) // after Down
	r.check(t, feedUp, beat, feedDown)
}

// An invalidation handed over while fn handles FeedUp waits for it and is
// delivered after it, never dropped: it may have been written after the
// source was read, and FeedUp declares everything before it fresh.
func TestWatcherDeliverDuringFeedUp(t *testing.T) {
	for range 100 {
		var r recorder
		inUp, release := make(chan struct{}), make(chan struct{})
		w := newWatcher(func(ev session.Event) {
			r.fn(ev)
			if ev.Kind == session.FeedUp {
				close(inUp)
				<-release
			}
		})
		upDone := make(chan struct{})
		go func() {
			w.Up()
			close(upDone)
		}()
		delivering, delivered := make(chan struct{}), make(chan struct{})
		go func() {
			<-inUp
			close(delivering)
			w.Deliver(changed(1))
			close(delivered)
		}()
		<-delivering
		runtime.Gosched() // let Deliver reach the lock before FeedUp ends
		close(release)
		wait(t, upDone, "Up to return")
		wait(t, delivered, "Deliver to return")
		r.check(t, feedUp, changed(1))
		if t.Failed() {
			return
		}
	}
}

// Down waits for the deliveries in progress: FeedDown comes after every fn
// call for an invalidation has returned.
func TestWatcherDownWaitsForDeliveries(t *testing.T) {
	var (
		mu  sync.Mutex
		log []string
	)
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, s)
	}
	inFn, release := make(chan struct{}), make(chan struct{})
	w := newWatcher(func(ev session.Event) {
		switch ev.Kind {
		case session.Changed:
			note("changed")
			close(inFn)
			<-release
			note("changed returned")
		case session.FeedDown:
			note("FeedDown")
		}
	})
	w.Up()
	delivered := make(chan struct{})
	go func() {
		w.Deliver(changed(1))
		close(delivered)
	}()
	wait(t, inFn, "fn to get the invalidation")

	downDone := make(chan struct{})
	go func() {
		w.Down()
		close(downDone)
	}()
	runtime.Gosched()
	select {
	case <-downDone:
		t.Fatal("Down returned while a delivery was in progress")
	default:
	}
	close(release)
	wait(t, downDone, "Down to return")
	wait(t, delivered, "Deliver to return")
	want := []string{"changed", "changed returned", "FeedDown"}
	if !slices.Equal(log, want) {
		t.Errorf("calls of fn: got %q, want %q", log, want)
	}
}

// Deliveries run concurrently: two writers' invalidations are in fn at the
// same time.
func TestWatcherConcurrentDeliveries(t *testing.T) {
	inFn, release := make(chan struct{}), make(chan struct{})
	w := newWatcher(func(ev session.Event) {
		if ev.Kind == session.Changed {
			inFn <- struct{}{}
			<-release
		}
	})
	w.Up()
	var wg sync.WaitGroup
	for n := range byte(2) {
		wg.Go(func() { w.Deliver(changed(n)) })
	}
	wait(t, inFn, "the first delivery")
	wait(t, inFn, "the second delivery while the first is in fn")
	close(release)
	wg.Wait()
}

// fn holds no lock while it handles an invalidation, so it may write to the
// store, which publishes to the same watcher.
func TestWatcherDeliverFromFn(t *testing.T) {
	var r recorder
	var w *Watcher
	w = newWatcher(func(ev session.Event) {
		r.fn(ev)
		if ev == changed(1) {
			w.Deliver(changed(2))
		}
	})
	w.Up()
	done := make(chan struct{})
	go func() {
		w.Deliver(changed(1))
		close(done)
	}()
	wait(t, done, "a delivery whose fn delivers again")
	r.check(t, feedUp, changed(1), changed(2))
}

// Writers publish all the time while the watch goes up and down: fn never
// gets an invalidation outside FeedUp … FeedDown, and what is handed over
// after Up returned and before Down is called always arrives.
func TestWatcherUpDownUnderLoad(t *testing.T) {
	var (
		up      atomic.Bool  // between FeedUp and FeedDown, as fn saw them
		outside atomic.Int64 // invalidations fn got outside
		marks   sync.Map     // the markers fn got
	)
	w := newWatcher(func(ev session.Event) {
		switch ev.Kind {
		case session.FeedUp:
			up.Store(true)
		case session.FeedDown:
			up.Store(false)
		default:
			if !up.Load() {
				outside.Add(1)
			}
			if ev.Kind == session.UserRevoked {
				marks.Store(ev.UserID, true)
			}
		}
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for n := range byte(4) {
		wg.Go(func() { repeat(stop, func() { w.Deliver(changed(n)) }) })
	}
	for i := range 200 {
		w.Up()
		mark := "mark" + strconv.Itoa(i)
		w.Deliver(session.Event{Kind: session.UserRevoked, UserID: mark})
		if _, ok := marks.Load(mark); !ok {
			t.Fatalf("cycle %d: an invalidation handed over after Up returned was lost", i)
		}
		w.Down()
	}
	close(stop)
	wg.Wait()
	if n := outside.Load(); n != 0 {
		t.Errorf("invalidations outside FeedUp … FeedDown: got %d, want 0", n)
	}
}

func TestHubPublish(t *testing.T) {
	var h Hub
	h.Publish(changed(1)) // no watchers yet

	var a, b, idle recorder
	wa, wb, wIdle := newWatcher(a.fn), newWatcher(b.fn), newWatcher(idle.fn)
	for _, w := range []*Watcher{wa, wb, wIdle} {
		h.add(w)
	}
	wa.Up()
	wb.Up()
	h.Publish(changed(2), changed(3))
	h.remove(wa)
	h.Publish(changed(4))

	a.check(t, feedUp, changed(2), changed(3))
	b.check(t, feedUp, changed(2), changed(3), changed(4))
	idle.check(t) // never up
	if got := len(h.list()); got != 2 {
		t.Errorf("watchers after one remove: got %d, want 2", got)
	}
}

// Publishing goes on while watches start and stop (run with -race): a
// watcher that stays gets every invalidation, and Publish never sees a list
// half changed.
func TestHubConcurrent(t *testing.T) {
	var h Hub
	var got atomic.Int64
	stays := newWatcher(func(session.Event) { got.Add(1) })
	h.add(stays)
	stays.Up()

	var churn, publish sync.WaitGroup
	for range 4 {
		churn.Go(func() {
			for range 1000 {
				w := newWatcher(func(session.Event) {})
				h.add(w)
				w.Up()
				h.remove(w)
			}
		})
	}
	stop := make(chan struct{})
	var published atomic.Int64
	for n := range byte(4) {
		publish.Go(func() {
			repeat(stop, func() {
				h.Publish(changed(n))
				published.Add(1)
			})
		})
	}
	churn.Wait()
	close(stop)
	publish.Wait()
	if got, want := got.Load(), 1+published.Load(); got != want { // FeedUp, and every Publish
		t.Errorf("events of the watcher that stayed: got %d, want %d", got, want)
	}
}

// A watcher's fn may start or stop a watch of the same hub: Publish takes
// no lock, and hands its invalidations to the watchers it started with.
func TestHubChangeFromFn(t *testing.T) {
	var h Hub
	var first, second recorder
	w2 := newWatcher(second.fn)
	var w1 *Watcher
	w1 = newWatcher(func(ev session.Event) {
		first.fn(ev)
		if ev == changed(1) {
			h.remove(w1)
			h.add(w2)
			w2.Up()
		}
	})
	h.add(w1)
	w1.Up()
	done := make(chan struct{})
	go func() {
		h.Publish(changed(1))
		h.Publish(changed(2))
		close(done)
	}()
	wait(t, done, "Publish")
	first.check(t, feedUp, changed(1))
	second.check(t, feedUp, changed(2))
}

func TestRegistry(t *testing.T) {
	made := 0
	r := Registry[string, *int]{New: func(string) *int {
		made++
		n := made
		return &n
	}}

	a1, a2, b := r.Acquire("a"), r.Acquire("a"), r.Acquire("b")
	if a1 != a2 {
		t.Errorf("two Acquire of one key: got different values, want one")
	}
	if a1 == b {
		t.Errorf("Acquire of two keys: got one value, want two")
	}
	r.Release("a")
	if got := r.Acquire("a"); got != a1 {
		t.Errorf("Acquire while the key is still held: got a new value, want the held one")
	}
	r.Release("a")
	r.Release("a") // the last holder
	if got := r.Acquire("a"); got == a1 || *got != 3 {
		t.Errorf("Acquire after the last Release: got value %d, want a new one (3)", *got)
	}
	r.Release("never acquired") // does nothing
	if made != 3 {
		t.Errorf("calls of New: got %d, want 3", made)
	}
}

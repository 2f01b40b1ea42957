package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

var (
	feedUp   = session.Event{Kind: session.FeedUp}
	feedDown = session.Event{Kind: session.FeedDown}
)

func changed(h session.Hash) session.Event {
	return session.Event{Kind: session.Changed, Hash: h}
}

func userRevoked(user string) session.Event {
	return session.Event{Kind: session.UserRevoked, UserID: user}
}

// checkDelivered fails the test unless f has delivered want more often than
// the count given, which is what was delivered before the write.
func checkDelivered(t *testing.T, f *storekit.Feed, op string, before int, want session.Event) int {
	t.Helper()
	evs := f.Events()
	n := storekit.Count(evs, want)
	if n <= before {
		t.Errorf("%s: events when it returned: got %s, want one more %s", op, storekit.Describe(evs), storekit.Describe([]session.Event{want}))
	}
	return n
}

// FeedUp comes before any invalidation, even while writers are busy when
// Watch starts.
func testWatchFeedUpFirst(t *testing.T, s session.Store, _ func() error) {
	r := create(t, s, newRecord("alice", 1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Save(t.Context(), r); err != nil {
				t.Errorf("Save: %v", err)
				return
			}
		}
	})
	f := storekit.Follow(t, s)
	close(stop)
	wg.Wait()

	if evs := f.Events(); evs[0] != feedUp {
		t.Errorf("events: got %s, want FeedUp first", storekit.Describe(evs))
	}
}

// A write of this process reaches the watcher before the write returns.
func testWatchDeliversBeforeReturn(t *testing.T, s session.Store, _ func() error) {
	f := storekit.Follow(t, s)
	r := create(t, s, newRecord("alice", 1))
	kept := create(t, s, newRecord("alice", 2))

	if err := s.Save(t.Context(), r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	n := checkDelivered(t, f, "Save of an existing record", 0, changed(r.Hash))
	if err := s.Delete(t.Context(), r.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkDelivered(t, f, "Delete", n, changed(r.Hash))

	revoke(t, s, "alice", &kept.Hash)
	n = checkDelivered(t, f, "RevokeUser with keep", 0, userRevoked("alice"))
	revoke(t, s, "alice", nil)
	checkDelivered(t, f, "RevokeUser", n, userRevoked("alice"))
	revoke(t, s, "nobody", nil)
	checkDelivered(t, f, "RevokeUser of a user without sessions", 0, userRevoked("nobody"))
}

// Every watcher gets every invalidation, and stopping one leaves the others
// running.
func testWatchManyWatchers(t *testing.T, s session.Store, _ func() error) {
	f1, f2 := storekit.Follow(t, s), storekit.Follow(t, s)
	r := create(t, s, newRecord("alice", 1))
	if err := s.Save(t.Context(), r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, f := range []*storekit.Feed{f1, f2} {
		checkDelivered(t, f, "Save", 0, changed(r.Hash))
	}

	if err := f1.Stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop: got error %v, want %v", err, context.Canceled)
	}
	revoke(t, s, "alice", nil)
	checkDelivered(t, f2, "RevokeUser", 0, userRevoked("alice"))
}

// After its ctx ends, Watch delivers FeedDown, returns ctx.Err() and calls
// fn no more.
func testWatchStopsOnCancel(t *testing.T, s session.Store, _ func() error) {
	f := storekit.Follow(t, s)
	r := create(t, s, newRecord("alice", 1))
	if err := f.Stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch after cancel: got error %v, want %v", err, context.Canceled)
	}
	checkStopped(t, f)

	if err := s.Save(t.Context(), r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	revoke(t, s, "alice", nil)
	checkStopped(t, f)
}

// checkStopped fails the test unless FeedDown is the last event of f.
func checkStopped(t *testing.T, f *storekit.Feed) {
	t.Helper()
	evs := f.Events()
	if len(evs) == 0 || evs[len(evs)-1] != feedDown {
		t.Errorf("events of a stopped watch: got %s, want FeedDown last", storekit.Describe(evs))
	}
}

// Every method of a closed store returns ErrClosed.
func testClosed(t *testing.T, s session.Store, closeStore func() error) {
	r := create(t, s, newRecord("alice", 1))
	if err := closeStore(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx := t.Context()
	type call struct {
		name string
		call func() error
	}
	tests := []call{
		{"Get", func() error { _, err := s.Get(ctx, r.Hash); return err }},
		{"Generation", func() error { _, err := s.Generation(ctx, "alice"); return err }},
		{"Create", func() error { return s.Create(ctx, newRecord("alice", 2), session.CreateOptions{}) }},
		{"Save existing", func() error { return s.Save(ctx, r) }},
		{"Delete", func() error { return s.Delete(ctx, r.Hash) }},
		{"List", func() error { _, err := s.List(ctx, "alice"); return err }},
		{"RevokeUser", func() error { return s.RevokeUser(ctx, "alice", nil) }},
		{"RevokeUser with keep", func() error { return s.RevokeUser(ctx, "alice", &r.Hash) }},
		{"Watch", func() error { return s.Watch(ctx, func(session.Event) {}) }},
		{"RevokeToken", func() error { return s.RevokeToken(ctx, jtiEntry("jti-1", 10)) }},
		{"TokenRevoked", func() error { _, err := s.TokenRevoked(ctx, "jti-1"); return err }},
		{"Revocations", func() error { _, err := s.Revocations(ctx, base); return err }},
	}
	if x, ok := s.(expirer); ok {
		tests = append(tests, call{"DeleteExpired", func() error { _, err := x.DeleteExpired(ctx, base); return err }})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), session.ErrClosed)
		})
	}
}

// Closing a store ends its running watches: FeedDown, then Watch returns
// ErrClosed.
func testCloseStopsWatch(t *testing.T, s session.Store, closeStore func() error) {
	feeds := []*storekit.Feed{storekit.Follow(t, s), storekit.Follow(t, s)}
	if err := closeStore(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, f := range feeds {
		wantErr(t, "Watch of a closed store", f.Err(), session.ErrClosed)
		checkStopped(t, f)
	}
}

// SES-14: while the feed is up, Watch delivers heartbeats (FeedCurrent),
// each vouching for a later time than the one before and none for a time
// after it arrived; none comes after FeedDown. A Manager serves its
// near-cache only while the last heartbeat is recent, so a store without
// them gets no caching and one with a heartbeat from the future would
// serve a stale cache.
func testWatchHeartbeats(t *testing.T, s session.Store, _ func() error) {
	f := storekit.Follow(t, s)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	const n = 5
	if !f.WaitBeats(ctx, n, start) {
		t.Fatalf("heartbeats after %v: got %d, want %d (one about every %v)", guard, len(f.Beats()), n, session.HeartbeatInterval)
	}
	if err := f.Stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch after Stop: got %v, want context.Canceled", err)
	}
	beats := f.Beats()
	for i, b := range beats {
		switch {
		case b.At.IsZero():
			t.Errorf("heartbeat %d: At is zero", i)
		case b.At.After(b.Arrived):
			t.Errorf("heartbeat %d: At %v is after it arrived (%v)", i, b.At, b.Arrived)
		case i > 0 && !b.At.After(beats[i-1].At):
			t.Errorf("heartbeat %d: At %v is not after the one before (%v)", i, b.At, beats[i-1].At)
		case !b.Up:
			t.Errorf("heartbeat %d arrived while the feed was down", i)
		}
	}
	last := beats[len(beats)-1]
	t.Logf("%d heartbeats, one every %v on average; the last vouched for %v before it arrived",
		len(beats), last.Arrived.Sub(beats[0].Arrived)/time.Duration(max(1, len(beats)-1)), last.Arrived.Sub(last.At))
}

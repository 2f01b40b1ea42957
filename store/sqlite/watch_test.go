package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest"
)

// bound is the documented bound on seeing another process's write.
const bound = time.Second

// childRevokeEnv makes the test binary, run as a child, revoke user alice
// in the file it names and exit (see TestMain).
const childRevokeEnv = "TETHER_SQLITE_TEST_REVOKE"

func TestMain(m *testing.M) {
	if path := os.Getenv(childRevokeEnv); path != "" {
		if err := revokeAlice(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func revokeAlice(path string) error {
	db, err := Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := New(context.Background(), db, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.RevokeUser(context.Background(), "alice", nil)
}

// otherProcess returns a Store on the file at path that behaves as if it
// were in another process: its own *sql.DB, and no hub shared with the
// Stores New makes.
func otherProcess(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	db := openDB(t, path)
	s, err := newStore(t.Context(), db, opts, hubKey{path: path, db: db})
	if err != nil {
		t.Fatalf("newStore: %v", err)
	}
	closeOnCleanup(t, s)
	return s
}

// waitBound fails the test unless f delivers ev within the bound after the
// write returned.
func waitBound(t *testing.T, f *storekit.Feed, ev session.Event) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	if !f.Wait(ctx, storekit.Has(ev)) {
		t.Fatalf("events after %v: got %s, want %s", bound, storekit.Describe(f.Events()), storekit.Describe([]session.Event{ev}))
	}
	t.Logf("%s arrived after %v", storekit.Describe([]session.Event{ev}), time.Since(start))
}

// A write through any Store of this process reaches the watchers of every
// other Store on the same file before it returns, whatever *sql.DB they
// use.
func TestWatchOtherStoresOfTheFile(t *testing.T) {
	dbA, path := tempDB(t)
	dbB := openDB(t, path)
	slow := Options{PollInterval: time.Second} // no poll can help
	a := newTestStore(t, dbA, slow)
	feeds := []*storekit.Feed{
		storekit.Follow(t, newTestStore(t, dbA, slow)), // same *sql.DB
		storekit.Follow(t, newTestStore(t, dbB, slow)), // another one
	}

	r := storekit.Record("alice", 1)
	if err := a.Create(t.Context(), r, session.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := a.Save(t.Context(), r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if err := a.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	for i, f := range feeds {
		evs := f.Events()
		for _, want := range []session.Event{
			{Kind: session.Changed, Hash: r.Hash},
			{Kind: session.UserRevoked, UserID: "alice"},
		} {
			if !storekit.Has(want)(evs) {
				t.Errorf("watcher %d: got %s, want %s", i, storekit.Describe(evs), storekit.Describe([]session.Event{want}))
			}
		}
	}
}

// Two *sql.DB on one file, joined by no hub, behave like two processes: a
// write through one reaches the other's watcher within the bound.
func TestWatchOtherDBWithinBound(t *testing.T) {
	db, path := tempDB(t)
	writer := newTestStore(t, db, Options{})
	f := storekit.Follow(t, otherProcess(t, path, Options{}))

	r := storekit.Record("alice", 1)
	if err := writer.Create(t.Context(), r, session.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := writer.Save(t.Context(), r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	waitBound(t, f, session.Event{Kind: session.Changed, Hash: r.Hash})
	if err := writer.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	waitBound(t, f, session.Event{Kind: session.UserRevoked, UserID: "alice"})
	other := storekit.Record("bob", 1)
	if err := writer.Delete(t.Context(), other.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	waitBound(t, f, session.Event{Kind: session.Changed, Hash: other.Hash})
}

// The real thing: another process (this test binary, run again) revokes a
// user; the watcher here learns of it within the bound.
func TestWatchOtherProcessWithinBound(t *testing.T) {
	db, path := tempDB(t)
	f := storekit.Follow(t, newTestStore(t, db, Options{}))

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRevokeEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	waitBound(t, f, session.Event{Kind: session.UserRevoked, UserID: "alice"})
}

// A watcher that finds log entries it never read pruned can't tell what it
// missed: FeedDown, then FeedUp.
func TestWatchMissedPrunedEntries(t *testing.T) {
	db, path := tempDB(t)
	clk := testkit.NewClock(base) // the writer's
	writer := newTestStore(t, db, Options{Now: clk.Now})
	watched := otherProcess(t, path, Options{PollInterval: time.Millisecond})

	// fn holds the watcher's poll loop on the first Changed, so that the
	// writer can write and prune meanwhile.
	events := make(chan session.Event, 100)
	release := make(chan struct{})
	first := storekit.Record("alice", 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- watched.Watch(ctx, func(ev session.Event) {
			if ev.Kind == session.FeedCurrent {
				return // a heartbeat every poll: not what this test follows
			}
			events <- ev
			if ev.Kind == session.Changed && ev.Hash == first.Hash {
				<-release
			}
		})
	}()
	expect := func(want session.Event) {
		t.Helper()
		if got := <-events; got != want {
			t.Fatalf("event: got %s, want %s", storekit.Describe([]session.Event{got}), storekit.Describe([]session.Event{want}))
		}
	}

	expect(session.Event{Kind: session.FeedUp})
	if err := writer.Delete(t.Context(), first.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	expect(session.Event{Kind: session.Changed, Hash: first.Hash}) // the poll loop now waits
	for n := 2; n <= 3; n++ {
		if err := writer.Delete(t.Context(), storekit.Record("alice", n).Hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	clk.Advance(changeRetention + time.Second)
	if _, err := writer.DeleteExpired(t.Context(), base); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	var left int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM session_changes`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("change log after pruning: got %d entries (error %v), want 0", left, err)
	}
	close(release)
	expect(session.Event{Kind: session.FeedDown})
	expect(session.Event{Kind: session.FeedUp})

	// And the feed goes on.
	if err := writer.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	expect(session.Event{Kind: session.UserRevoked, UserID: "alice"})
	cancel()
	expect(session.Event{Kind: session.FeedDown})
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch: got error %v, want %v", err, context.Canceled)
	}
}

// DeleteExpired keeps the change log entries younger than a minute by the
// store's clock, whatever now it is given.
func TestDeleteExpiredPrunesLogByStoreClock(t *testing.T) {
	db, _ := tempDB(t)
	clk := testkit.NewClock(base)
	s := newTestStore(t, db, Options{Now: clk.Now})
	for n := range 3 {
		if err := s.Delete(t.Context(), storekit.Record("alice", n).Hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		clk.Advance(changeRetention / 2)
	}
	// Entries at base, +30 s, +60 s; the clock is at +90 s: only the first is
	// older than a minute. The now given (far ahead) doesn't matter.
	if _, err := s.DeleteExpired(t.Context(), base.Add(24*time.Hour)); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	var left int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM session_changes`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 2 {
		t.Errorf("change log entries left: got %d, want 2", left)
	}
}

// A database error in the poll loop: FeedDown, retries, FeedUp when the
// database is back, and the feed goes on.
func TestWatchRecoversFromDBError(t *testing.T) {
	db, path := tempDB(t)
	s := newTestStore(t, db, Options{
		PollInterval: time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	f := storekit.Follow(t, s)
	feedUp := session.Event{Kind: session.FeedUp}
	countUp := func(n int) func([]session.Event) bool {
		return func(evs []session.Event) bool { return storekit.Count(evs, feedUp) >= n }
	}

	run := func(query string) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	run(`ALTER TABLE session_changes RENAME TO session_changes_away`)
	if !f.Wait(t.Context(), storekit.Has(session.Event{Kind: session.FeedDown})) {
		t.Fatalf("events: got %s, want FeedDown", storekit.Describe(f.Events()))
	}
	if countUp(2)(f.Events()) {
		t.Fatalf("events while the log is away: got %s, want no FeedUp after FeedDown", storekit.Describe(f.Events()))
	}
	run(`ALTER TABLE session_changes_away RENAME TO session_changes`)
	if !f.Wait(t.Context(), countUp(2)) {
		t.Fatalf("events: got %s, want FeedUp again", storekit.Describe(f.Events()))
	}

	if err := otherProcess(t, path, Options{}).RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	waitBound(t, f, session.Event{Kind: session.UserRevoked, UserID: "alice"})
}

// Each running Watch holds one connection, and gives it back when done.
func TestWatchGivesBackItsConnection(t *testing.T) {
	db, _ := tempDB(t)
	s := newTestStore(t, db, Options{})
	f := storekit.Follow(t, s)
	if got := db.Stats().InUse; got != 1 {
		t.Errorf("connections in use while watching: got %d, want 1", got)
	}
	if err := f.Stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop: got %v, want %v", err, context.Canceled)
	}
	if got := db.Stats().InUse; got != 0 {
		t.Errorf("connections in use after the watch: got %d, want 0", got)
	}
}

// SES-14 and issue 9, point 6: two processes on one file (two Managers,
// each on a Store of its own, no hub between them). A revocation through
// one reaches the other by its poll of the change log: within
// PollInterval plus one read while the process gets the CPU, which this
// test reports, and never later than the Manager's MaxStaleness, which
// it checks: the poll is also the feed's heartbeat, so a node whose poll
// is late stops answering from its cache.
func TestSES14_TwoProcessesRevocationBound(t *testing.T) {
	db, path := tempDB(t)
	n := 0
	delays := storekit.RevocationDelays(t, newTestStore(t, db, Options{}), otherProcess(t, path, Options{}),
		func() bool { n++; return n <= 30 })
	p50, p99, worst := storekit.Percentile(delays, 50), storekit.Percentile(delays, 99), storekit.Percentile(delays, 100)
	t.Logf("revocation to refusal on the other process, %d revocations: p50 %v, p99 %v, max %v (poll every %v)",
		len(delays), p50, p99, worst, defaultPollInterval)
	if limit := session.DefaultMaxStaleness; worst > limit {
		t.Errorf("a revocation reached the other process after %v, want at most %v", worst, limit)
	}
}

// SES-14: what another process writes reaches a watcher ahead of any
// heartbeat (a poll) that vouches for a later time.
func TestSES14_HeartbeatOrder(t *testing.T) {
	db, path := tempDB(t)
	storetest.HeartbeatOrder(t, newTestStore(t, db, Options{}), otherProcess(t, path, Options{}), 10)
}

// JWT-09: the token denylist is the file's: a revocation through one
// process reaches the other's watcher (by the change log) and reads.
func TestTokenFeedAcrossProcesses(t *testing.T) {
	db, path := tempDB(t)
	storetest.TokenFeedAcrossNodes(t, newTestStore(t, db, Options{}), otherProcess(t, path, Options{}))
}

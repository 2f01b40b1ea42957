package throttle

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// throttler is what the suite checks of every backend (the server's
// Throttle interface).
type throttler interface {
	Wait(ctx context.Context, keys ...string) (time.Duration, error)
	Fail(ctx context.Context, keys ...string) error
	Reset(ctx context.Context, keys ...string) error
}

// opener opens a throttle with cfg on one database, fresh and empty when
// the subtest began. Each call opens another connection pool and sets the
// table up again, as another process or node would. It is safe to call
// from several goroutines and returns errors instead of failing the test.
type opener func(cfg Config) (throttler, error)

// runThrottleSuite is the one suite every throttle backend runs (SQLite,
// PostgreSQL): fresh returns an opener on a new, empty database for each
// subtest, and cleans it up when the subtest ends.
func runThrottleSuite(t *testing.T, fresh func(t *testing.T) opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open opener)
	}{
		{"PW06_GrowingDelays", testGrowingDelays},
		{"PW06_NeverPermanentLock", testNeverPermanentLock},
		{"PW06_LongestKeyWins", testLongestKeyWins},
		{"PW06_RepeatedKeyCountsTwice", testRepeatedKeyCountsTwice},
		{"PW06_SharedAcrossProcesses", testSharedAcrossProcesses},
		{"PW06_ConcurrentCallsLoseNoFailure", testConcurrentCallsLoseNoFailure},
		{"RejectsBadConfig", testRejectsBadConfig},
		{"ConcurrentStarts", testConcurrentStarts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
	}
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// mustOpen opens a throttle with open and fails the test if it can't.
func mustOpen(t *testing.T, open opener, cfg Config) throttler {
	t.Helper()
	th, err := open(cfg)
	if err != nil {
		t.Fatalf("open throttle: %v", err)
	}
	return th
}

func wantWait(t *testing.T, th throttler, want time.Duration, keys ...string) {
	t.Helper()
	got, err := th.Wait(t.Context(), keys...)
	if err != nil || got != want {
		t.Fatalf("Wait(%q) = %v, %v; want %v, nil", keys, got, err, want)
	}
}

func fail(t *testing.T, th throttler, keys ...string) {
	t.Helper()
	if err := th.Fail(t.Context(), keys...); err != nil {
		t.Fatalf("Fail(%q): %v", keys, err)
	}
}

// PW-06: delays grow after Free failures, are counted per key, and a try
// is allowed again once the delay has passed.
func testGrowingDelays(t *testing.T, open opener) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, open, Config{Free: 2, Base: time.Second, Max: 10 * time.Second, Now: clk.Now})
	steps := []struct {
		name    string
		fail    bool
		advance time.Duration
		want    time.Duration
	}{
		{"fresh", false, 0, 0},
		{"first failure is free", true, 0, 0},
		{"second failure is free", true, 0, 0},
		{"third waits Base", true, 0, time.Second},
		{"part of the wait passed", false, 400 * time.Millisecond, 600 * time.Millisecond},
		{"the wait passed", false, 600 * time.Millisecond, 0},
		{"fourth waits twice Base", true, 0, 2 * time.Second},
		{"fifth waits 4s", true, 0, 4 * time.Second},
		{"sixth waits 8s", true, 0, 8 * time.Second},
		{"seventh is capped at Max", true, 0, 10 * time.Second},
		{"eighth is still capped", true, 0, 10 * time.Second},
		{"Max later a try is allowed", false, 10 * time.Second, 0},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.fail {
			fail(t, th, "user:alice")
		}
		got, err := th.Wait(t.Context(), "user:alice")
		if err != nil || got != s.want {
			t.Fatalf("%s: Wait = %v, %v; want %v, nil", s.name, got, err, s.want)
		}
	}
	wantWait(t, th, 0, "user:bob")
}

// PW-06: never a permanent lock: however many failures, the wait is at most
// Max, a success resets the key, and old failures are forgotten.
func testNeverPermanentLock(t *testing.T, open opener) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, open, Config{Free: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour, Now: clk.Now})
	for range 200 {
		fail(t, th, "user:alice", "ip:192.0.2.1")
	}
	wantWait(t, th, time.Minute, "user:alice")

	if err := th.Reset(t.Context(), "user:alice"); err != nil {
		t.Fatal(err)
	}
	wantWait(t, th, 0, "user:alice")
	wantWait(t, th, time.Minute, "user:alice", "ip:192.0.2.1")

	clk.Advance(time.Hour)
	wantWait(t, th, 0, "ip:192.0.2.1")
	fail(t, th, "ip:192.0.2.1")
	wantWait(t, th, 0, "ip:192.0.2.1") // counted from zero again: one free failure
}

// PW-06: a wait is the longest of its keys' waits.
func testLongestKeyWins(t *testing.T, open opener) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, open, Config{Free: 1, Now: clk.Now})
	fail(t, th, "ip:192.0.2.1", "user:alice")
	fail(t, th, "ip:192.0.2.1", "user:bob")
	fail(t, th, "ip:192.0.2.1", "user:carol")
	tests := []struct {
		keys []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"user:alice"}, 0},
		{[]string{"user:alice", "user:bob"}, 0},
		{[]string{"user:dave", "ip:192.0.2.1"}, 2 * time.Second},
		{[]string{"ip:192.0.2.2"}, 0},
	}
	for _, tt := range tests {
		wantWait(t, th, tt.want, tt.keys...)
	}
}

// PW-06: a key given twice in one call is counted twice.
func testRepeatedKeyCountsTwice(t *testing.T, open opener) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, open, Config{Free: 1, Now: clk.Now})
	fail(t, th, "user:alice", "ip:192.0.2.1", "user:alice")
	wantWait(t, th, time.Second, "user:alice")
	wantWait(t, th, 0, "ip:192.0.2.1")
}

// PW-06: shared across processes and nodes: two connection pools on one
// database count together.
func testSharedAcrossProcesses(t *testing.T, open opener) {
	clk := testkit.NewClock(start)
	cfg := Config{Free: 3, Base: time.Second, Now: clk.Now}
	a, b := mustOpen(t, open, cfg), mustOpen(t, open, cfg)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := []throttler{a, b}[i%2].Fail(t.Context(), "user:alice"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantWait(t, a, time.Second, "user:alice")
	wantWait(t, b, time.Second, "user:alice")
	if err := b.Reset(t.Context(), "user:alice"); err != nil {
		t.Fatal(err)
	}
	wantWait(t, a, 0, "user:alice")
}

// PW-06: many callers on two pools, each failing the same keys in its own
// order, lose no failure and never fail (a deadlock would); resets racing
// with failures in every order don't fail either.
func testConcurrentCallsLoseNoFailure(t *testing.T, open opener) {
	const callers, rounds = 12, 5
	clk := testkit.NewClock(start)
	cfg := Config{Free: callers*rounds - 1, Base: time.Second, Max: time.Minute, Now: clk.Now}
	pools := []throttler{mustOpen(t, open, cfg), mustOpen(t, open, cfg)}
	orders := [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b", "a", "c"}, {"c", "a", "b"}}
	run := func(call func(i int, th throttler, keys []string) error) {
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				for range rounds {
					if err := call(i, pools[i%2], orders[i%len(orders)]); err != nil {
						t.Errorf("caller %d: %v", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	run(func(_ int, th throttler, keys []string) error { return th.Fail(t.Context(), keys...) })
	for _, key := range []string{"a", "b", "c"} {
		wantWait(t, pools[0], time.Second, key) // the last failure counted is the first past Free
	}
	run(func(i int, th throttler, keys []string) error {
		if i%3 == 0 {
			return th.Reset(t.Context(), keys...)
		}
		return th.Fail(t.Context(), keys...)
	})
}

func testRejectsBadConfig(t *testing.T, open opener) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative free", Config{Free: -1}},
		{"max below base", Config{Base: time.Minute, Max: time.Second}},
		{"forget below max", Config{Max: time.Hour, Forget: time.Minute}},
	}
	for _, tt := range tests {
		if _, err := open(tt.cfg); err == nil {
			t.Errorf("%s: open(%+v): got no error, want one", tt.name, tt.cfg)
		}
	}
}

// Several processes or nodes starting at once on a fresh database all set
// it up without error, and then count together.
func testConcurrentStarts(t *testing.T, open opener) {
	clk := testkit.NewClock(start)
	cfg := Config{Free: 3, Now: clk.Now}
	ths := make([]throttler, 4)
	errs := make([]error, len(ths))
	var wg sync.WaitGroup
	for i := range ths {
		wg.Go(func() { ths[i], errs[i] = open(cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	for i, th := range ths {
		fail(t, th, fmt.Sprint("user:", i), "ip:192.0.2.1")
	}
	wantWait(t, ths[0], time.Second, "ip:192.0.2.1")
}

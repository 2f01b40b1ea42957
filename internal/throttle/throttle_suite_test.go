package throttle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// throttler is what the suite checks of every backend (the server's
// Throttle interface).
type throttler interface {
	Attempt(ctx context.Context, keys ...Key) (time.Duration, error)
	Wait(ctx context.Context, keys ...Key) (time.Duration, error)
	Refund(ctx context.Context, keys ...string) error
	Reset(ctx context.Context, keys ...string) error
}

// database is one database of a backend, fresh and empty when the subtest
// began.
type database struct {
	// open opens a throttle with cfg on the database, and returns with it
	// a function that closes its connections. Each call opens another
	// connection pool and sets the table up again, as another process or
	// node would. It is safe to call from several goroutines and returns
	// errors instead of failing the test.
	open func(cfg Config) (th throttler, closeDB func(), err error)
	// breakWrites makes every later write that would count an attempt
	// under brokenKey fail, in every connection, as a full disk or a lost
	// connection makes a write fail halfway through a call.
	breakWrites func(t *testing.T)
	// blockReads makes every later read of the table wait, in every
	// other connection, until the test ends, as a store that stopped
	// answering does. nil for a backend where no read waits (SQLite in
	// WAL mode: a reader never waits for a writer).
	blockReads func(t *testing.T)
}

// brokenKey is the key whose writes database.breakWrites makes fail. It
// sorts after the "ip:" keys, so a write under one of those comes first.
const brokenKey = "user:broken"

// runThrottleSuite is the one suite every throttle backend runs (SQLite,
// PostgreSQL): fresh returns a new, empty database for each subtest, and
// cleans it up when the subtest ends.
func runThrottleSuite(t *testing.T, fresh func(t *testing.T) database) {
	tests := []struct {
		name string
		run  func(t *testing.T, db database)
	}{
		{"PW06_GrowingDelays", testGrowingDelays},
		{"PW06_NeverPermanentLock", testNeverPermanentLock},
		{"PW06_LongestKeyWins", testLongestKeyWins},
		{"PW06_RefusedAttemptCountsNothing", testRefusedAttemptCountsNothing},
		{"PW06_PerKeyAllowance", testPerKeyAllowance},
		{"PW06_Refund", testRefund},
		{"PW06_SharedAcrossProcesses", testSharedAcrossProcesses},
		{"PW06_ParallelBurstGetsNoExtraAttempts", testParallelBurstGetsNoExtraAttempts},
		{"PW06_ConcurrentCallsNeverDeadlock", testConcurrentCallsNeverDeadlock},
		{"PW06_FailuresChangeNothing", testFailuresChangeNothing},
		{"PW06_WaitIsAttemptsDecision", testWaitIsAttemptsDecision},
		{"PW06_WaitCountsNothing", testWaitCountsNothing},
		{"PW06_WaitBurstBoundedByConcurrency", testWaitBurstBoundedByConcurrency},
		{"WaitKeepsItsDeadline", testWaitKeepsItsDeadline},
		{"RejectsBadConfig", testRejectsBadConfig},
		{"ConcurrentStarts", testConcurrentStarts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
	}
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// mustOpen opens a throttle on db and fails the test if it can't.
func mustOpen(t *testing.T, db database, cfg Config) throttler {
	t.Helper()
	th, _, err := db.open(cfg)
	if err != nil {
		t.Fatalf("open throttle: %v", err)
	}
	return th
}

// keysOf returns a key of each name, with the default allowance.
func keysOf(names ...string) []Key {
	keys := make([]Key, len(names))
	for i, name := range names {
		keys[i] = Key{Name: name}
	}
	return keys
}

// wantAttempt makes an attempt under keys (default allowances) and fails
// the test unless it returns want.
func wantAttempt(t *testing.T, th throttler, want time.Duration, names ...string) {
	t.Helper()
	got, err := th.Attempt(t.Context(), keysOf(names...)...)
	if err != nil || got != want {
		t.Fatalf("Attempt(%q) = %v, %v; want %v, nil", names, got, err, want)
	}
}

// allowed makes attempts under keys, the clock standing still, until one
// is refused, and returns how many were allowed (and counted).
func allowed(t *testing.T, th throttler, keys ...Key) int {
	t.Helper()
	for n := 0; n <= 1000; n++ {
		wait, err := th.Attempt(t.Context(), keys...)
		if err != nil {
			t.Fatalf("Attempt(%v): %v", keys, err)
		}
		if wait > 0 {
			return n
		}
	}
	t.Fatalf("Attempt(%v): more than 1000 allowed", keys)
	return 0
}

func refund(t *testing.T, th throttler, keys ...string) {
	t.Helper()
	if err := th.Refund(t.Context(), keys...); err != nil {
		t.Fatalf("Refund(%q): %v", keys, err)
	}
}

func reset(t *testing.T, th throttler, keys ...string) {
	t.Helper()
	if err := th.Reset(t.Context(), keys...); err != nil {
		t.Fatalf("Reset(%q): %v", keys, err)
	}
}

// PW-06: delays grow once Free attempts are counted, per key, and an
// attempt is allowed again once the delay has passed.
func testGrowingDelays(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 2, Base: time.Second, Max: 10 * time.Second, Now: clk.Now})
	steps := []struct {
		name    string
		advance time.Duration
		want    time.Duration
	}{
		{"first attempt is free", 0, 0},
		{"second attempt is free", 0, 0},
		{"third attempt is free", 0, 0}, // Free 2: the count before it is 2
		{"fourth waits Base", 0, time.Second},
		{"part of the wait passed", 400 * time.Millisecond, 600 * time.Millisecond},
		{"the wait passed", 600 * time.Millisecond, 0},
		{"then twice Base", 0, 2 * time.Second},
		{"that wait passed", 2 * time.Second, 0},
		{"then 4s", 0, 4 * time.Second},
		{"that wait passed too", 4 * time.Second, 0},
		{"then 8s", 0, 8 * time.Second},
		{"and again", 8 * time.Second, 0},
		{"then capped at Max", 0, 10 * time.Second},
		{"Max later", 10 * time.Second, 0},
		{"still capped", 0, 10 * time.Second},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		got, err := th.Attempt(t.Context(), Key{Name: "user:alice"})
		if err != nil || got != s.want {
			t.Fatalf("%s: Attempt = %v, %v; want %v, nil", s.name, got, err, s.want)
		}
	}
	wantAttempt(t, th, 0, "user:bob")
}

// PW-06: never a permanent lock: however many attempts, the wait is at
// most Max, a success resets the key, and old attempts are forgotten.
func testNeverPermanentLock(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour, Now: clk.Now})
	for i := range 200 {
		wait, err := th.Attempt(t.Context(), keysOf("user:alice", "ip:192.0.2.1")...)
		if err != nil || wait > time.Minute {
			t.Fatalf("attempt %d: Attempt = %v, %v; want at most a minute, nil", i, wait, err)
		}
		clk.Advance(wait)
	}
	wantAttempt(t, th, time.Minute, "user:alice")

	reset(t, th, "user:alice")
	wantAttempt(t, th, 0, "user:alice")
	wantAttempt(t, th, time.Minute, "user:alice", "ip:192.0.2.1")

	clk.Advance(time.Hour)
	if got := allowed(t, th, Key{Name: "ip:192.0.2.1"}); got != 2 {
		t.Fatalf("an hour later: %d attempts allowed, want 2 (counted from zero again)", got)
	}
}

// PW-06: an attempt under several keys waits for the longest of their
// waits.
func testLongestKeyWins(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 1, Base: time.Second, Now: clk.Now})
	allowed(t, th, Key{Name: "ip:192.0.2.1"}) // 2 counted
	clk.Advance(time.Second)
	wantAttempt(t, th, 0, "ip:192.0.2.1")   // 3 counted: waits 2s
	allowed(t, th, Key{Name: "user:alice"}) // 2 counted: waits 1s
	tests := []struct {
		keys []string
		want time.Duration
	}{
		{[]string{"user:alice"}, time.Second},
		{[]string{"ip:192.0.2.1"}, 2 * time.Second},
		{[]string{"user:alice", "ip:192.0.2.1"}, 2 * time.Second},
		{[]string{"ip:192.0.2.1", "user:alice"}, 2 * time.Second},
		{[]string{"user:bob", "ip:192.0.2.1"}, 2 * time.Second},
		{[]string{"user:bob", "user:alice"}, time.Second},
	}
	for _, tt := range tests {
		wantAttempt(t, th, tt.want, tt.keys...)
	}
	wantAttempt(t, th, 0) // no keys
	if got := allowed(t, th, Key{Name: "user:bob"}); got != 2 {
		t.Fatalf("user:bob: %d attempts allowed, want 2 (none counted while others waited)", got)
	}
}

// PW-06: an attempt refused because a key must wait counts nothing under
// any of its keys: the wait doesn't grow however often the client tries,
// and a key that had no wait is not charged.
func testRefusedAttemptCountsNothing(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 1, Base: time.Second, Max: time.Minute, Now: clk.Now})
	allowed(t, th, Key{Name: "ip:192.0.2.1"}) // 2 counted: waits 1s
	for range 20 {
		wantAttempt(t, th, time.Second, "ip:192.0.2.1", "user:alice")
	}
	clk.Advance(400 * time.Millisecond)
	wantAttempt(t, th, 600*time.Millisecond, "ip:192.0.2.1")
	clk.Advance(600 * time.Millisecond)
	wantAttempt(t, th, 0, "ip:192.0.2.1")
	wantAttempt(t, th, 2*time.Second, "ip:192.0.2.1") // 3 counted, not 23
	if got := allowed(t, th, Key{Name: "user:alice"}); got != 2 {
		t.Fatalf("user:alice: %d attempts allowed, want 2 (none counted while refused)", got)
	}
}

// PW-06: each key allows its own number of attempts (0: Config.Free); in
// an attempt under several keys the stricter decides, and every key counts
// each allowed attempt once.
func testPerKeyAllowance(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 3, Now: clk.Now})
	tests := []struct {
		name string
		keys []Key
		want int // attempts allowed under keys
		// then: attempts still allowed under then alone
		then     Key
		wantThen int
	}{
		{"the default", []Key{{Name: "device:a"}}, 4, Key{Name: "device:a"}, 0},
		{"its own", []Key{{Name: "device:b", Free: 1}}, 2, Key{Name: "device:b", Free: 4}, 3},
		{"the stricter decides", []Key{{Name: "ip:c", Free: 1}, {Name: "device:c", Free: 6}}, 2, Key{Name: "device:c", Free: 6}, 5},
		{"in any order", []Key{{Name: "device:d", Free: 6}, {Name: "ip:d", Free: 1}}, 2, Key{Name: "device:d", Free: 6}, 5},
		{"the default is stricter", []Key{{Name: "ip:e"}, {Name: "device:e", Free: 10}}, 4, Key{Name: "device:e", Free: 10}, 7},
		{"a key given twice counts once", []Key{{Name: "device:f", Free: 5}, {Name: "device:f", Free: 2}}, 3, Key{Name: "device:f", Free: 5}, 3},
	}
	for _, tt := range tests {
		if got := allowed(t, th, tt.keys...); got != tt.want {
			t.Errorf("%s: %d attempts allowed under %v, want %d", tt.name, got, tt.keys, tt.want)
		}
		if got := allowed(t, th, tt.then); got != tt.wantThen {
			t.Errorf("%s: then %d allowed under %v, want %d", tt.name, got, tt.then, tt.wantThen)
		}
	}
}

// PW-06: a refund gives an attempt's allowance back, under the keys it
// names only, and never takes a count below zero.
func testRefund(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 2, Base: time.Second, Now: clk.Now})
	ip, other := "ip:192.0.2.1", "ip:192.0.2.2"
	refund(t, th, ip) // nothing counted: not an error

	if got := allowed(t, th, Key{Name: ip}, Key{Name: other}); got != 3 {
		t.Fatalf("%d attempts allowed, want 3", got)
	}
	refund(t, th, ip)
	wantAttempt(t, th, 0, ip) // the refunded attempt
	wantAttempt(t, th, time.Second, ip)
	wantAttempt(t, th, time.Second, other) // not refunded

	for range 10 {
		refund(t, th, ip)
	}
	if got := allowed(t, th, Key{Name: ip}); got != 3 {
		t.Fatalf("after 10 refunds of 3 attempts: %d allowed, want 3 (the count stopped at 0)", got)
	}
	refund(t, th, ip, ip) // a key given twice is refunded once
	if got := allowed(t, th, Key{Name: ip}); got != 1 {
		t.Fatalf("after Refund(ip, ip): %d allowed, want 1", got)
	}
}

// PW-06: shared across processes and nodes: two connection pools on one
// database count together.
func testSharedAcrossProcesses(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	cfg := Config{Free: 3, Base: time.Second, Now: clk.Now}
	a, b := mustOpen(t, db, cfg), mustOpen(t, db, cfg)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			wait, err := []throttler{a, b}[i%2].Attempt(t.Context(), Key{Name: "user:alice"})
			if err != nil || wait != 0 {
				t.Errorf("Attempt = %v, %v; want 0, nil", wait, err)
			}
		})
	}
	wg.Wait()
	wantAttempt(t, a, time.Second, "user:alice")
	wantAttempt(t, b, time.Second, "user:alice")
	reset(t, b, "user:alice")
	if got := allowed(t, a, Key{Name: "user:alice"}); got != 4 {
		t.Fatalf("after a reset on the other node: %d allowed, want 4", got)
	}
}

// PW-06: an attempt counts before it is checked: a burst of attempts made
// at once, on one node or split between two, is allowed exactly as many
// as the same attempts made one after another (Free+1), never more, and
// the refused ones count nothing.
func testParallelBurstGetsNoExtraAttempts(t *testing.T, db database) {
	const burst = 64
	clk := testkit.NewClock(start)
	cfg := Config{Base: time.Second, Now: clk.Now} // Free: the default, 5
	nodes := []throttler{mustOpen(t, db, cfg), mustOpen(t, db, cfg)}
	tests := []struct {
		name  string
		free  int // of the key under attack; 0: Config.Free
		nodes int
		// keys are those of the i-th attempt, under attack the first
		keys func(attack Key, i int) []Key
	}{
		{"one key, Free 1", 1, 1, oneKey},
		{"one key, Config.Free", 0, 1, oneKey},
		{"one key, Free 1, two nodes", 1, 2, oneKey},
		{"one key, Config.Free, two nodes", 0, 2, oneKey},
		{"one key, Free 20, two nodes", 20, 2, oneKey},
		{"one IP, a new account each time, two nodes", 5, 2, func(attack Key, i int) []Key {
			return []Key{attack, {Name: fmt.Sprint("user:", i)}}
		}},
	}
	for n, tt := range tests {
		attack := Key{Name: fmt.Sprint("ip:192.0.2.", n), Free: tt.free}
		free := cmp.Or(tt.free, 5)
		ready := make(chan struct{})
		waits := make([]time.Duration, burst)
		errs := make([]error, burst)
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				<-ready
				waits[i], errs[i] = nodes[i%tt.nodes].Attempt(t.Context(), tt.keys(attack, i)...)
			})
		}
		close(ready) // all at once
		wg.Wait()
		got := 0
		for i := range burst {
			switch {
			case errs[i] != nil:
				t.Errorf("%s: attempt %d: %v", tt.name, i, errs[i])
			case waits[i] == 0:
				got++
			case waits[i] != time.Second:
				t.Errorf("%s: attempt %d waits %v, want 1s (refused at Free+1 counted)", tt.name, i, waits[i])
			}
		}
		if got != free+1 {
			t.Errorf("%s: %d of %d parallel attempts allowed, want %d as one after another", tt.name, got, burst, free+1)
		}
		// Free+1 counted, not more: the next waits Base, not 2 Base.
		if wait, err := nodes[0].Attempt(t.Context(), attack); err != nil || wait != time.Second {
			t.Errorf("%s: after the burst, Attempt = %v, %v; want 1s, nil", tt.name, wait, err)
		}
	}
}

func oneKey(attack Key, _ int) []Key { return []Key{attack} }

// PW-06: many callers on two pools, each attempting under the same keys in
// its own order, lose no attempt and never fail (a deadlock would);
// refunds and resets racing with attempts in every order don't fail
// either.
func testConcurrentCallsNeverDeadlock(t *testing.T, db database) {
	const callers, rounds = 12, 5
	clk := testkit.NewClock(start)
	cfg := Config{Free: callers*rounds - 1, Base: time.Second, Max: time.Minute, Now: clk.Now}
	pools := []throttler{mustOpen(t, db, cfg), mustOpen(t, db, cfg)}
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
	attempt := func(th throttler, names []string) error {
		wait, err := th.Attempt(t.Context(), keysOf(names...)...)
		if err == nil && wait != 0 {
			err = fmt.Errorf("Attempt = %v, want 0", wait)
		}
		return err
	}
	run(func(_ int, th throttler, keys []string) error { return attempt(th, keys) })
	for _, key := range []string{"a", "b", "c"} {
		wantAttempt(t, pools[0], time.Second, key) // every attempt counted: the next is the first past Free
	}
	reset(t, pools[0], "a", "b", "c")
	run(func(i int, th throttler, keys []string) error {
		switch i % 3 {
		case 0:
			return th.Reset(t.Context(), keys...)
		case 1:
			return th.Refund(t.Context(), keys...)
		}
		return attempt(th, keys)
	})
}

// Every call that fails returns an error and changes nothing: not the
// keys' counts, nor those of the keys it got to before failing. A Wait
// that fails never answers 0 without an error: the caller refuses.
func testFailuresChangeNothing(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	cfg := Config{Free: 1, Base: time.Second, Now: clk.Now}
	th := mustOpen(t, db, cfg)
	closed, closeDB, err := db.open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeDB()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	// decide calls Attempt or Wait, which must return 0 with its error.
	decide := func(f func(context.Context, ...Key) (time.Duration, error), ctx context.Context, keys ...Key) error {
		wait, err := f(ctx, keys...)
		if wait != 0 {
			t.Errorf("Attempt or Wait(%v) = %v, %v; want 0 with an error", keys, wait, err)
		}
		return err
	}
	negative := Key{Name: "user:alice", Free: -1}
	tests := []struct {
		name    string
		counted int // attempts counted under key before the call: 1 for
		// Attempt, which would count one more; 2 for Refund and Reset,
		// which would bring the count below Free+1, and for Wait, which
		// would answer 0 if it failed open.
		call func(key string) error
	}{
		{"attempt, context cancelled", 1, func(key string) error { return decide(th.Attempt, cancelled, Key{Name: key}) }},
		{"attempt, deadline passed", 1, func(key string) error { return decide(th.Attempt, expired, Key{Name: key}) }},
		{"attempt, database closed", 1, func(key string) error { return decide(closed.Attempt, t.Context(), Key{Name: key}) }},
		{"attempt, another key's write fails", 1,
			func(key string) error {
				return decide(th.Attempt, t.Context(), Key{Name: key}, Key{Name: brokenKey, Free: 5})
			}},
		{"attempt, a negative allowance", 1, func(key string) error { return decide(th.Attempt, t.Context(), Key{Name: key}, negative) }},
		{"wait, context cancelled", 2, func(key string) error { return decide(th.Wait, cancelled, Key{Name: key}) }},
		{"wait, deadline passed", 2, func(key string) error { return decide(th.Wait, expired, Key{Name: key}) }},
		{"wait, database closed", 2, func(key string) error { return decide(closed.Wait, t.Context(), Key{Name: key}) }},
		{"wait, a negative allowance", 2, func(key string) error { return decide(th.Wait, t.Context(), Key{Name: key}, negative) }},
		{"refund, context cancelled", 2, func(key string) error { return th.Refund(cancelled, key) }},
		{"refund, database closed", 2, func(key string) error { return closed.Refund(t.Context(), key) }},
		{"refund, another key's write fails", 2,
			func(key string) error { return th.Refund(t.Context(), key, brokenKey) }},
		{"reset, context cancelled", 2, func(key string) error { return th.Reset(cancelled, key) }},
		{"reset, database closed", 2, func(key string) error { return closed.Reset(t.Context(), key) }},
	}
	key := func(i int) string { return fmt.Sprint("ip:192.0.2.", i) }
	for i, tt := range tests {
		for range tt.counted {
			wantAttempt(t, th, 0, key(i))
		}
	}
	for range 2 { // a refund would write 1, an attempt 3 (with Free 5)
		wantAttempt(t, th, 0, brokenKey)
	}
	db.breakWrites(t)
	for i, tt := range tests {
		if err := tt.call(key(i)); err == nil {
			t.Errorf("%s: got no error, want one", tt.name)
		}
	}
	for i, tt := range tests {
		if got, want := allowed(t, th, Key{Name: key(i)}), 2-tt.counted; got != want {
			t.Errorf("%s: then %d attempts allowed, want %d as before the call", tt.name, got, want)
		}
	}
}

// PW-06: Wait answers what Attempt would decide at that moment (0 where
// it would count the attempt, else the same wait), through growing
// delays, allowances of their own, leaks, keys given twice, a clock
// ahead on another node, and forgetting.
func testWaitIsAttemptsDecision(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	cfg := Config{Free: 2, Base: time.Second, Max: 10 * time.Second, Forget: time.Hour, Now: clk.Now}
	behind := mustOpen(t, db, cfg)
	cfg.Now = func() time.Time { return clk.Now().Add(time.Minute) }
	ahead := mustOpen(t, db, cfg)
	ip := Key{Name: "ip:192.0.2.1", Free: 4, Leak: 3 * time.Second}
	alice, bob := Key{Name: "user:alice"}, Key{Name: "user:bob", Free: 1}
	sets := [][]Key{{alice}, {ip, alice}, {bob, ip}, {alice, {Name: alice.Name, Free: 1}}, {ip}, nil}
	advances := []time.Duration{0, 0, 700 * time.Millisecond, 0, 2 * time.Second, 0, 0, 5 * time.Second}
	check := func(step int, th throttler, keys []Key) time.Duration {
		t.Helper()
		wait, err := th.Wait(t.Context(), keys...)
		if err != nil {
			t.Fatalf("step %d: Wait(%v): %v", step, keys, err)
		}
		got, err := th.Attempt(t.Context(), keys...)
		if err != nil || got != wait {
			t.Fatalf("step %d: Wait(%v) = %v, then Attempt = %v, %v; want the same", step, keys, wait, got, err)
		}
		return wait
	}
	refused := 0
	for i := range 200 {
		clk.Advance(advances[i%len(advances)])
		th := behind
		if i%7 == 0 {
			th = ahead
		}
		if check(i, th, sets[i%len(sets)]) > 0 {
			refused++
		}
	}
	if refused == 0 || refused == 200 {
		t.Fatalf("%d of 200 attempts refused: the steps test nothing", refused)
	}
	clk.Advance(time.Hour + time.Minute) // past Forget, even for the clock ahead
	for _, keys := range sets {
		if wait, err := behind.Wait(t.Context(), keys...); err != nil || wait != 0 {
			t.Errorf("after Forget: Wait(%v) = %v, %v; want 0, nil", keys, wait, err)
		}
	}
}

// PW-06: Wait writes nothing: however often it is called, within the
// allowance or past it, the keys allow as many attempts and wait as long
// as before.
func testWaitCountsNothing(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	th := mustOpen(t, db, Config{Free: 2, Base: time.Second, Now: clk.Now})
	keys := keysOf("ip:192.0.2.1", "user:alice")
	wantWait := func(want time.Duration) {
		t.Helper()
		for range 20 {
			if got, err := th.Wait(t.Context(), keys...); err != nil || got != want {
				t.Fatalf("Wait = %v, %v; want %v, nil", got, err, want)
			}
		}
	}
	wantWait(0)
	if got := allowed(t, th, keys...); got != 3 {
		t.Fatalf("after Waits: %d attempts allowed, want 3", got)
	}
	wantWait(time.Second)
	clk.Advance(400 * time.Millisecond)
	wantWait(600 * time.Millisecond)
	clk.Advance(600 * time.Millisecond)
	wantWait(0)
	wantAttempt(t, th, 0, "ip:192.0.2.1", "user:alice")
	wantAttempt(t, th, 2*time.Second, "ip:192.0.2.1", "user:alice") // 4 counted, not more
}

// PW-06, checking first (see the package doc): when a burst of callers
// all call Wait before any of them counts its failure, every one of them
// gets to check, up to the burst's size, each time a delay ends; but the
// failures count one by one as Attempt allows them, so the delays grow
// exactly as without the burst. The interleaving is forced: every Wait,
// then every Attempt.
func testWaitBurstBoundedByConcurrency(t *testing.T, db database) {
	const burst = 32
	clk := testkit.NewClock(start)
	cfg := Config{Free: 3, Base: time.Second, Now: clk.Now}
	nodes := []throttler{mustOpen(t, db, cfg), mustOpen(t, db, cfg)}
	key := Key{Name: "client:billing"}
	round := func(wantCounted int, wantRefused time.Duration) {
		t.Helper()
		var checks, counted [burst]bool
		var waits [burst]time.Duration
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				wait, err := nodes[i%2].Wait(t.Context(), key)
				checks[i] = err == nil && wait == 0
			})
		}
		wg.Wait() // no failure counted yet
		for i := range burst {
			if !checks[i] {
				t.Fatalf("Wait %d of the burst refused: want every one let through to check", i)
			}
			wg.Go(func() { // each check failed: count it
				wait, err := nodes[i%2].Attempt(t.Context(), key)
				if err != nil {
					t.Errorf("Attempt %d: %v", i, err)
				}
				counted[i], waits[i] = wait == 0, wait
			})
		}
		wg.Wait()
		got := 0
		for i := range burst {
			if counted[i] {
				got++
			} else if waits[i] != wantRefused {
				t.Errorf("Attempt %d waits %v, want %v", i, waits[i], wantRefused)
			}
		}
		if got != wantCounted {
			t.Errorf("%d of %d failures counted, want %d", got, burst, wantCounted)
		}
	}
	round(cfg.Free+1, time.Second)
	if wait, err := nodes[0].Wait(t.Context(), key); err != nil || wait != time.Second {
		t.Fatalf("after the burst: Wait = %v, %v; want 1s, nil (Free+1 counted)", wait, err)
	}
	clk.Advance(time.Second)
	round(1, 2*time.Second) // the delay ended: the burst checks again, one failure counts
	wantAttempt(t, nodes[1], 2*time.Second, key.Name)
}

// A Wait keeps to its context's deadline when the database stops
// answering, and then fails: the caller refuses.
func testWaitKeepsItsDeadline(t *testing.T, db database) {
	if db.blockReads == nil {
		t.Skip("no read of this backend waits for a writer")
	}
	th := mustOpen(t, db, Config{})
	db.blockReads(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	wait, err := th.Wait(ctx, Key{Name: "ip:192.0.2.1"})
	if err == nil || wait != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with reads blocked = %v, %v; want 0 and an error that says the deadline passed", wait, err)
	}
}

func testRejectsBadConfig(t *testing.T, db database) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative free", Config{Free: -1}},
		{"max below base", Config{Base: time.Minute, Max: time.Second}},
		{"forget below max", Config{Max: time.Hour, Forget: time.Minute}},
	}
	for _, tt := range tests {
		if _, _, err := db.open(tt.cfg); err == nil {
			t.Errorf("%s: open(%+v): got no error, want one", tt.name, tt.cfg)
		}
	}
}

// Several processes or nodes starting at once on a fresh database all set
// it up without error, and then count together.
func testConcurrentStarts(t *testing.T, db database) {
	clk := testkit.NewClock(start)
	cfg := Config{Free: 3, Now: clk.Now}
	ths := make([]throttler, 4)
	errs := make([]error, len(ths))
	var wg sync.WaitGroup
	for i := range ths {
		wg.Go(func() { ths[i], _, errs[i] = db.open(cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	for i, th := range ths {
		wantAttempt(t, th, 0, fmt.Sprint("user:", i), "ip:192.0.2.1")
	}
	wantAttempt(t, ths[0], time.Second, "ip:192.0.2.1")
}

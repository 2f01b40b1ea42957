package throttle

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

func newThrottle(t *testing.T, db *sql.DB, cfg Config) *SQLite {
	t.Helper()
	th, err := NewSQLite(t.Context(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func wantWait(t *testing.T, th *SQLite, want time.Duration, keys ...string) {
	t.Helper()
	got, err := th.Wait(t.Context(), keys...)
	if err != nil || got != want {
		t.Fatalf("Wait(%q) = %v, %v; want %v, nil", keys, got, err, want)
	}
}

func fail(t *testing.T, th *SQLite, keys ...string) {
	t.Helper()
	if err := th.Fail(t.Context(), keys...); err != nil {
		t.Fatalf("Fail(%q): %v", keys, err)
	}
}

func TestConfigDelay(t *testing.T) {
	c := withDefaults(Config{})
	tests := []struct {
		failures int64
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {5, 0},
		{6, time.Second}, {7, 2 * time.Second}, {8, 4 * time.Second},
		{15, 512 * time.Second}, {16, 15 * time.Minute}, {17, 15 * time.Minute},
		{1 << 40, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := c.delay(tt.failures); got != tt.want {
			t.Errorf("delay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

// PW-06: delays grow after Free failures, are counted per key, and a try
// is allowed again once the delay has passed.
func TestPW06_GrowingDelays(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	th := newThrottle(t, testkit.OpenSQLite(t, filepath.Join(t.TempDir(), "t.db")),
		Config{Free: 2, Base: time.Second, Max: 10 * time.Second, Now: clk.Now})
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
func TestPW06_NeverPermanentLock(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := Config{Free: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour, Now: clk.Now}
	th := newThrottle(t, testkit.OpenSQLite(t, filepath.Join(t.TempDir(), "t.db")), cfg)
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
func TestPW06_LongestKeyWins(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	th := newThrottle(t, testkit.OpenSQLite(t, filepath.Join(t.TempDir(), "t.db")), Config{Free: 1, Now: clk.Now})
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

// PW-06: shared across nodes: two connection pools on one file (as two
// processes) count together.
func TestPW06_SharedAcrossProcesses(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "t.db")
	cfg := Config{Free: 3, Base: time.Second, Now: clk.Now}
	a := newThrottle(t, testkit.OpenSQLite(t, path), cfg)
	b := newThrottle(t, testkit.OpenSQLite(t, path), cfg)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := []*SQLite{a, b}[i%2].Fail(t.Context(), "user:alice"); err != nil {
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

func TestNewSQLiteRejectsBadConfig(t *testing.T) {
	db := testkit.OpenSQLite(t, filepath.Join(t.TempDir(), "t.db"))
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative free", Config{Free: -1}},
		{"max below base", Config{Base: time.Minute, Max: time.Second}},
		{"forget below max", Config{Max: time.Hour, Forget: time.Minute}},
	}
	for _, tt := range tests {
		if _, err := NewSQLite(t.Context(), db, tt.cfg); err == nil {
			t.Errorf("%s: NewSQLite(%+v): got no error, want one", tt.name, tt.cfg)
		}
	}
}

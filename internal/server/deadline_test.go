package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/throttle"
)

// hang waits until ctx ends, as a call to a store that stopped answering
// does, and first sends ctx's deadline on seen (zero: none).
func hang(ctx context.Context, seen chan<- time.Time) error {
	d, _ := ctx.Deadline()
	seen <- d
	<-ctx.Done()
	return ctx.Err()
}

// stuckAccounts is an account store whose ByName never answers.
type stuckAccounts struct {
	account.Store
	seen chan time.Time
}

func (s stuckAccounts) ByName(ctx context.Context, _ string) (*account.User, error) {
	return nil, hang(ctx, s.seen)
}

// stuckThrottle is a throttle whose Attempt and Wait never answer.
type stuckThrottle struct {
	Throttle
	seen chan time.Time
}

func (s stuckThrottle) Attempt(ctx context.Context, _ ...throttle.Key) (time.Duration, error) {
	return 0, hang(ctx, s.seen)
}

func (s stuckThrottle) Wait(ctx context.Context, _ ...throttle.Key) (time.Duration, error) {
	return 0, hang(ctx, s.seen)
}

// checkDeadline fails t unless d is set and at most timeout after start
// (with a margin for a loaded machine: the point is that there is one).
func checkDeadline(t *testing.T, d, start time.Time, timeout time.Duration) {
	t.Helper()
	if d.IsZero() {
		t.Fatal("the store call had no deadline")
	}
	if got := d.Sub(start); got > timeout+time.Second {
		t.Errorf("the store call's deadline was %v after the request began, want about %v", got, timeout)
	}
}

// TestMISC05_StuckStoresAnswer503: an account store or a throttle that
// stops answering fails a sign-in with 503 and Retry-After once
// StoreTimeout has passed, never a hang, never a 200 or a 500.
func TestMISC05_StuckStoresAnswer503(t *testing.T) {
	const timeout = 500 * time.Millisecond // the throttle's SQLite write comes first
	for _, tc := range []struct {
		name string
		opts func(seen chan time.Time) harnessOpts
	}{
		{"accounts", func(seen chan time.Time) harnessOpts {
			return harnessOpts{wrap: func(s account.Store) account.Store { return stuckAccounts{s, seen} }}
		}},
		{"throttle", func(seen chan time.Time) harnessOpts {
			return harnessOpts{wrapThrottle: func(th Throttle) Throttle { return stuckThrottle{th, seen} }}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan time.Time, 10)
			o := tc.opts(seen)
			o.storeTimeout = timeout
			h := newHarness(t, o)
			start := time.Now()
			res := h.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: "correct horse battery"}, "")
			if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
				t.Fatalf("got %d Retry-After %q, want 503 with Retry-After", res.status, res.header.Get("Retry-After"))
			}
			select {
			case d := <-seen:
				checkDeadline(t, d, start, timeout)
			default:
				t.Fatal("the sign-in failed before it reached the stuck store")
			}
		})
	}
}

// TestMISC05_StoreFailuresLoggedOnceASecond: while a store is stuck every
// request fails; the log gets one line a second, which counts the ones it
// left out, not one line per request.
func TestMISC05_StoreFailuresLoggedOnceASecond(t *testing.T) {
	seen := make(chan time.Time, 100)
	h := newHarness(t, harnessOpts{
		wrap:         func(s account.Store) account.Store { return stuckAccounts{s, seen} },
		storeTimeout: time.Millisecond,
	})
	c := h.client()
	login := func() {
		t.Helper()
		res := c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: "correct horse battery"}, "")
		if res.status != http.StatusServiceUnavailable {
			t.Fatalf("got %d, want 503", res.status)
		}
	}
	for range 5 {
		login()
	}
	if got := len(h.logs.Records(t, "request failed")); got != 1 {
		t.Fatalf("5 failures within a second logged %d lines, want 1", got)
	}
	h.clock.Advance(time.Second)
	login()
	recs := h.logs.Records(t, "request failed")
	if len(recs) != 2 {
		t.Fatalf("a failure a second later: %d lines in all, want 2", len(recs))
	}
	if got := recs[1]["unlogged_since_last"]; got != float64(4) {
		t.Errorf("second line: unlogged_since_last %v, want 4", got)
	}
}

// TestMISC05_ReadyzAnswersWithinItsDeadline: a readiness check that hangs
// makes /readyz answer 503 with Retry-After once ReadyTimeout has passed,
// logged once a second at most.
func TestMISC05_ReadyzAnswersWithinItsDeadline(t *testing.T) {
	const timeout = 20 * time.Millisecond
	seen := make(chan time.Time, 10)
	h := newHarness(t, harnessOpts{
		ready:        func(ctx context.Context) error { return hang(ctx, seen) },
		readyTimeout: timeout,
	})
	c := h.client()
	for i := range 3 {
		start := time.Now()
		res := c.do(http.MethodGet, "/readyz", nil)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" || res.errorCode(t) != "not_ready" {
			t.Fatalf("probe %d: got %d Retry-After %q %s, want 503 not_ready with Retry-After", i, res.status, res.header.Get("Retry-After"), res.body)
		}
		checkDeadline(t, <-seen, start, timeout)
	}
	if got := len(h.logs.Records(t, "not ready")); got != 1 {
		t.Errorf("3 failed probes within a second logged %d lines, want 1", got)
	}
}

package storekit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// Bench is the timed loop of a backend's benchmark: it reports
// allocations, resets the timer and calls op until b has run long enough,
// from the benchmark's goroutine or, with parallel, from b.RunParallel's.
// op is given the number of the call in its goroutine, from 0, to pick
// its input round-robin.
func Bench(b *testing.B, parallel bool, op func(ctx context.Context, i int) error) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		i := 0
		for b.Loop() {
			if err := op(b.Context(), i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := op(context.Background(), i); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// Sessions creates n sessions of user through m, each with a browser's
// user agent and a CSRF secret in its data, as a benchmark's working set,
// and returns their tokens. m's Config.MaxPerUser must allow n.
func Sessions(b *testing.B, m *session.Manager, user string, n int) []string {
	b.Helper()
	ctx := b.Context()
	tokens := make([]string, n)
	for i := range tokens {
		t, err := m.Begin(ctx, user)
		if err != nil {
			b.Fatal(err)
		}
		tok, s, err := m.Create(ctx, t, session.Meta{UserAgent: UserAgent, IP: "192.0.2.1"})
		if err == nil {
			_, err = m.PutString(ctx, s, "csrf", "0123456789abcdef0123456789abcdef")
		}
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	return tokens
}

// watchedStore tells when its feed first comes up, and hands every event
// the Manager handled to seen, if set.
type watchedStore struct {
	session.Store
	once sync.Once
	up   chan struct{}
	seen func(session.Event)
}

func (s *watchedStore) Watch(ctx context.Context, fn func(session.Event)) error {
	return s.Store.Watch(ctx, func(ev session.Event) {
		fn(ev)
		if ev.Kind == session.FeedUp {
			s.once.Do(func() { close(s.up) })
		}
		if s.seen != nil {
			s.seen(ev)
		}
	})
}

// RunManager returns a Manager over store, running (and so following the
// store's feed) until the test or benchmark ends. With the near-cache on,
// it returns once the feed is up, so that a benchmark measures the cache
// in use. seen, if not nil, gets every event after the Manager handled it.
func RunManager(b testing.TB, store session.Store, cfg session.Config, seen func(session.Event)) *session.Manager {
	b.Helper()
	s := &watchedStore{Store: store, up: make(chan struct{}), seen: seen}
	m, err := session.NewManager(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	if cfg.CacheSize >= 0 {
		<-s.up
	}
	return m
}

// RevocationPropagation is a backend's BenchmarkRevocationPropagation:
// RevocationDelays, one revocation per op, reported as p50-µs, p99-µs and
// max-µs over the run (run it with -benchtime 1000x for 1,000
// revocations).
func RevocationPropagation(b *testing.B, nodeA, nodeB session.Store) {
	b.ReportAllocs()
	delays := RevocationDelays(b, nodeA, nodeB, b.Loop)
	µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(µs(Percentile(delays, 50)), "p50-µs")
	b.ReportMetric(µs(Percentile(delays, 99)), "p99-µs")
	b.ReportMetric(µs(Percentile(delays, 100)), "max-µs")
}

// RevocationDelays runs two nodes, A and B, each a Manager over its own
// Store of the same data, while more says so. Each round creates a
// session on A, loads it on B (into B's near-cache), revokes the user on
// A, waits for B's feed to deliver the revocation and loads the session
// on B again, which must refuse it. It returns, sorted, how long after
// RevokeUser returned on A each refusal came. It waits on the feed rather
// than polling B in a loop, which on a small machine would take the CPU
// the feed needs.
func RevocationDelays(tb testing.TB, nodeA, nodeB session.Store, more func() bool) []time.Duration {
	const user = "revoked@example.com"
	revoked := make(chan struct{}, 1)
	a := RunManager(tb, nodeA, session.Config{}, nil)
	nb := RunManager(tb, nodeB, session.Config{}, func(ev session.Event) {
		if ev.Kind == session.UserRevoked && ev.UserID == user {
			revoked <- struct{}{}
		}
	})
	ctx := tb.Context()
	var delays []time.Duration
	for more() {
		t, err := a.Begin(ctx, user)
		if err != nil {
			tb.Fatal(err)
		}
		tok, _, err := a.Create(ctx, t, session.Meta{UserAgent: UserAgent})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := nb.Load(ctx, tok); err != nil {
			tb.Fatal(err)
		}
		if err := a.RevokeUser(ctx, user, nil); err != nil {
			tb.Fatal(err)
		}
		start := time.Now()
		<-revoked
		if _, err := nb.Load(ctx, tok); !errors.Is(err, session.ErrNoSession) {
			tb.Fatalf("Load on B after the revocation reached it: got error %v, want %v", err, session.ErrNoSession)
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	return delays
}

// Percentile returns the pth percentile (0 to 100) of sorted durations.
func Percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

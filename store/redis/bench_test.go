package redis_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/redis"
	"github.com/tetherauth/tether/storetest"
)

// upStore signals when its feed first comes up, so that a benchmark starts
// with the near-cache in use, and hands every event the Manager handled to
// seen, if set.
type upStore struct {
	*redis.Store
	once sync.Once
	up   chan struct{}
	seen func(session.Event)
}

func (s *upStore) Watch(ctx context.Context, fn func(session.Event)) error {
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

// newManager returns a Manager over store, running (and so following the
// feed) until the benchmark ends. With the near-cache on, it returns once
// the feed is up. seen, if not nil, gets every event after the Manager.
func newManager(b *testing.B, store *redis.Store, cfg session.Config, seen func(session.Event)) *session.Manager {
	b.Helper()
	s := &upStore{Store: store, up: make(chan struct{}), seen: seen}
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

// userAgent is a browser's, for records of a realistic size.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"

// sessions creates n sessions of one user through m, each with a CSRF
// secret in its data, and returns their tokens and one of the records.
func sessions(b *testing.B, m *session.Manager, store *redis.Store, n int) ([]string, *session.Record) {
	b.Helper()
	ctx := b.Context()
	tokens := make([]string, n)
	for i := range tokens {
		tok, s, err := m.Create(ctx, "bench@example.com", session.Meta{UserAgent: userAgent, IP: "192.0.2.1"})
		if err == nil {
			_, err = m.PutString(ctx, s, "csrf", "0123456789abcdef0123456789abcdef")
		}
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	list, err := store.List(ctx, "bench@example.com")
	if err != nil || len(list) != n {
		b.Fatalf("List: %d records, %v; want %d", len(list), err, n)
	}
	return tokens, list[0]
}

// load loads tokens round-robin, from one goroutine or from parallel ones.
func load(b *testing.B, m *session.Manager, tokens []string, parallel bool) {
	b.Helper()
	for _, tok := range tokens { // warm the near-cache, if any, and the pointers
		if _, err := m.Load(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
	storetest.Bench(b, parallel, func(ctx context.Context, i int) error {
		_, err := m.Load(ctx, tokens[i%len(tokens)])
		return err
	})
}

// BenchmarkManagerLoadCachedRedis: a session check from the near-cache,
// Redis behind it and the feed up.
func BenchmarkManagerLoadCachedRedis(b *testing.B) {
	store := redis.Nodes(b, 1)[0]
	m := newManager(b, store, session.Config{}, nil)
	tokens, _ := sessions(b, m, store, 1024)
	load(b, m, tokens, true)
}

// BenchmarkManagerLoadRedisMiss: a session check without the near-cache:
// the pointer from rueidis's client-side cache, then one script run on
// Redis. Compare with BenchmarkRueidisGET, sub-benchmark by sub-benchmark.
func BenchmarkManagerLoadRedisMiss(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			store := redis.Nodes(b, 1)[0]
			m := newManager(b, store, session.Config{CacheSize: -1}, nil)
			tokens, _ := sessions(b, m, store, 64)
			load(b, m, tokens, mode == "parallel")
		})
	}
}

// BenchmarkRueidisGET: the floor for BenchmarkManagerLoadRedisMiss, a bare
// GET of a value the size of a stored record, through the Store's own
// rueidis client.
func BenchmarkRueidisGET(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			store := redis.Nodes(b, 1)[0]
			m := newManager(b, store, session.Config{CacheSize: -1}, nil)
			_, r := sessions(b, m, store, 1)
			c := store.Client()
			key := store.KeyPrefix() + "bench-get"
			value := strings.Repeat("x", redis.StoredSize(r))
			if err := c.Do(b.Context(), c.B().Set().Key(key).Value(value).Build()).Error(); err != nil {
				b.Fatal(err)
			}
			storetest.Bench(b, mode == "parallel", func(ctx context.Context, _ int) error {
				_, err := c.Do(ctx, c.B().Get().Key(key).Build()).ToString()
				return err
			})
		})
	}
}

// BenchmarkRevocationPropagation: two nodes, A and B, each a Manager over
// a Store of its own. Each op creates a session on A, loads it on B (into
// B's near-cache), revokes the user on A, waits for B's feed to deliver
// the revocation and loads the session on B again, which must refuse it.
// It reports how long after RevokeUser returned on A that refusal came:
// p50-µs, p99-µs and max-µs over the run (run it with -benchtime 1000x for
// 1,000 revocations). It waits on the feed rather than polling B in a
// loop, which on a small machine would take the CPU the feed needs.
func BenchmarkRevocationPropagation(b *testing.B) {
	const user = "revoked@example.com"
	nodes := redis.Nodes(b, 2)
	revoked := make(chan struct{}, 1)
	a := newManager(b, nodes[0], session.Config{}, nil)
	nb := newManager(b, nodes[1], session.Config{}, func(ev session.Event) {
		if ev.Kind == session.UserRevoked && ev.UserID == user {
			revoked <- struct{}{}
		}
	})
	ctx := b.Context()
	var delays []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		tok, _, err := a.Create(ctx, user, session.Meta{UserAgent: userAgent})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := nb.Load(ctx, tok); err != nil {
			b.Fatal(err)
		}
		if err := a.RevokeUser(ctx, user, nil); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		<-revoked
		if _, err := nb.Load(ctx, tok); !errors.Is(err, session.ErrNoSession) {
			b.Fatalf("Load on B after the revocation reached it: got error %v, want %v", err, session.ErrNoSession)
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(µs(delays[len(delays)/2]), "p50-µs")
	b.ReportMetric(µs(delays[(len(delays)-1)*99/100]), "p99-µs")
	b.ReportMetric(µs(delays[len(delays)-1]), "max-µs")
}

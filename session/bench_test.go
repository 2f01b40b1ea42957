package session_test

import (
	"fmt"
	"testing"

	"github.com/tetherauth/tether/internal/metrics"
	"github.com/tetherauth/tether/session"
)

// benchTokens creates n sessions through m and returns their tokens.
func benchTokens(b *testing.B, m *session.Manager, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		// A user each: a user's sessions are capped (SES-13).
		tokens[i], _ = mustCreate(b, m, fmt.Sprint("user:bench", i), session.Meta{UserAgent: "bench"})
	}
	return tokens
}

// benchLoad loads the tokens round-robin from parallel goroutines.
func benchLoad(b *testing.B, m *session.Manager, tokens []string) {
	b.Helper()
	for _, tok := range tokens { // warm the near-cache, if any
		if _, err := m.Load(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := m.Load(ctx, tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkManagerLoadCached: a token string to a session, from the
// near-cache.
func BenchmarkManagerLoadCached(b *testing.B) {
	m := newManager(b, newMemory(b), session.Config{})
	benchLoad(b, m, benchTokens(b, m, 1024))
}

// BenchmarkManagerLoadCachedMetrics is BenchmarkManagerLoadCached with
// tether's metrics counting every load (Config.OnLoad): compare the two
// with benchstat.
func BenchmarkManagerLoadCachedMetrics(b *testing.B) {
	m := newManager(b, newMemory(b), session.Config{OnLoad: metrics.New().SessionLoad})
	benchLoad(b, m, benchTokens(b, m, 1024))
}

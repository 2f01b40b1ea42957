package redis_test

import (
	"context"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/redis"
)

// sessions creates n sessions of one user through m (storekit.Sessions)
// and returns their tokens and their records. m's Config.MaxPerUser must
// allow n.
func sessions(b *testing.B, m *session.Manager, store *redis.Store, n int) ([]string, []*session.Record) {
	b.Helper()
	ctx := b.Context()
	tokens := storekit.Sessions(b, m, "bench@example.com", n)
	list, err := store.List(ctx, "bench@example.com")
	if err != nil || len(list) != n {
		b.Fatalf("List: %d records, %v; want %d", len(list), err, n)
	}
	return tokens, list
}

// load loads tokens round-robin, from one goroutine or from parallel ones.
func load(b *testing.B, m *session.Manager, tokens []string, parallel bool) {
	b.Helper()
	for _, tok := range tokens { // warm the near-cache, if any, and the pointers
		if _, err := m.Load(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
	storekit.Bench(b, parallel, func(ctx context.Context, i int) error {
		_, err := m.Load(ctx, tokens[i%len(tokens)])
		return err
	})
}

// BenchmarkManagerLoadCachedRedis: a session check from the near-cache,
// Redis behind it and the feed up.
func BenchmarkManagerLoadCachedRedis(b *testing.B) {
	store := redis.Nodes(b, 1)[0]
	const n = 1024
	m := storekit.RunManager(b, store, session.Config{MaxPerUser: n}, nil)
	tokens, _ := sessions(b, m, store, n)
	load(b, m, tokens, true)
}

// missSessions is how many sessions BenchmarkManagerLoadRedisMiss loads
// round-robin, and BenchmarkRueidisGET reads.
const missSessions = 64

// BenchmarkManagerLoadRedisMiss: a session check without the near-cache:
// the owner the Store remembers, then one MGET of the record and its
// user's generation. Compare with BenchmarkRueidisGET,
// sub-benchmark by sub-benchmark.
func BenchmarkManagerLoadRedisMiss(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			store := redis.Nodes(b, 1)[0]
			m := storekit.RunManager(b, store, session.Config{CacheSize: -1}, nil)
			tokens, _ := sessions(b, m, store, missSessions)
			load(b, m, tokens, mode == "parallel")
		})
	}
}

// BenchmarkRueidisGET: the floor for BenchmarkManagerLoadRedisMiss, a bare
// GET of the same records, round-robin, through the Store's own rueidis
// client: the same round trip and the same bytes, without the pointer,
// the generation, decoding or the Manager's checks.
func BenchmarkRueidisGET(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			store := redis.Nodes(b, 1)[0]
			m := storekit.RunManager(b, store, session.Config{CacheSize: -1}, nil)
			_, records := sessions(b, m, store, missSessions)
			keys := make([]string, len(records))
			for i, r := range records {
				keys[i] = store.RecordKey(r)
			}
			c := store.Client()
			storekit.Bench(b, mode == "parallel", func(ctx context.Context, i int) error {
				_, err := c.Do(ctx, c.B().Get().Key(keys[i%len(keys)]).Build()).ToString()
				return err
			})
		})
	}
}

// BenchmarkRevocationPropagation: from RevokeUser returning on node A to
// node B refusing the session (storekit.RevocationPropagation).
func BenchmarkRevocationPropagation(b *testing.B) {
	nodes := redis.Nodes(b, 2)
	storekit.RevocationPropagation(b, nodes[0], nodes[1])
}

package postgres

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// benchManager returns a Manager without its near-cache over a Store in a
// fresh schema, and the tokens of n sessions of one user that it created,
// each with a browser's user agent and a CSRF secret in its data. Its cap
// of sessions per user is n, so that none of them is evicted.
func benchManager(b *testing.B, n int) (*Store, *session.Manager, []string) {
	b.Helper()
	s := openStore(b, openPool(b, pgtest.Schema(b)), "")
	m, err := session.NewManager(s, session.Config{CacheSize: -1, MaxPerUser: n})
	if err != nil {
		b.Fatal(err)
	}
	tokens := storekit.Sessions(b, m, "bench@example.com", n)
	return s, m, tokens
}

// benchLoop runs op in b's loop (storekit.Bench) after 16 untimed calls
// that prepare its statement on the pool's connections.
func benchLoop(b *testing.B, parallel bool, op func(ctx context.Context, i int) error) {
	b.Helper()
	for i := range 16 {
		if err := op(b.Context(), i); err != nil {
			b.Fatal(err)
		}
	}
	storekit.Bench(b, parallel, op)
}

var benchModes = []string{"serial", "parallel"}

// BenchmarkManagerLoadPostgres: a session check without the near-cache,
// one query on PostgreSQL. Compare with BenchmarkPgxSelect, sub-benchmark
// by sub-benchmark.
func BenchmarkManagerLoadPostgres(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			_, m, tokens := benchManager(b, 64)
			benchLoop(b, mode == "parallel", func(ctx context.Context, i int) error {
				_, err := m.Load(ctx, tokens[i%len(tokens)])
				return err
			})
		})
	}
}

// BenchmarkPgxSelect: the floor for BenchmarkManagerLoadPostgres, a bare
// SELECT of a stored record's row by its hash, through the Store's own
// pool, without the generation's check or decoding the data.
func BenchmarkPgxSelect(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			s, _, _ := benchManager(b, 1)
			records, err := s.List(b.Context(), "bench@example.com")
			if err != nil || len(records) != 1 {
				b.Fatalf("List: %d records, %v; want 1", len(records), err)
			}
			hash := records[0].Hash[:]
			benchLoop(b, mode == "parallel", func(ctx context.Context, _ int) error {
				var (
					h, userAgent, data       []byte
					id, user, ip             string
					gen, version             int64
					created, seen, idle, abs time.Time
				)
				return s.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM sessions s WHERE s.hash = $1`, hash).
					Scan(&h, &id, &user, &gen, &version, &created, &seen, &idle, &abs, &userAgent, &ip, &data)
			})
		})
	}
}

// BenchmarkStoreCreate: a sign-in's write, one Create of a new record, a
// user each, under the Manager's default cap: the transaction that locks
// the user's generation row, inserts, looks for records to evict and
// commits, in two round trips.
func BenchmarkStoreCreate(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			s := openStore(b, openPool(b, pgtest.Schema(b)), "")
			var n atomic.Int64
			benchLoop(b, mode == "parallel", func(ctx context.Context, _ int) error {
				i := int(n.Add(1))
				r := storekit.Record("user"+strconv.Itoa(i), i) // a user never revoked: generation 0
				return s.Create(ctx, r, session.CreateOptions{MaxPerUser: session.DefaultMaxPerUser})
			})
		})
	}
}

// BenchmarkRevocationPropagation: from RevokeUser returning on node A to
// node B refusing the session (storekit.RevocationPropagation), the two
// nodes on pools of their own on one schema.
func BenchmarkRevocationPropagation(b *testing.B) {
	newPool := pgtest.Schema(b)
	storekit.RevocationPropagation(b, openStore(b, openPool(b, newPool), "a"), openStore(b, openPool(b, newPool), "b"))
}

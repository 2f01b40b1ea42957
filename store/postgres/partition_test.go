package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest"
)

// SES-14: a node whose path to PostgreSQL is blackholed (packets dropped,
// not refused) stops accepting a session revoked on another node within
// MaxStaleness of the revocation, then fails closed until the path heals.
// Only the test's own connections pass the proxy.
func TestSES14_PartitionedNode(t *testing.T) {
	direct := openPool(t, pgtest.Schema(t))
	p, cut := proxied(t, direct)
	a := openStore(t, direct, "nodea")
	b := openStore(t, cut, "nodeb")
	storetest.PartitionedNode(t, a, b, p, session.DefaultMaxStaleness)
}

// BenchmarkFeedHeartbeat: one heartbeat's probe, a ping of a LISTENing
// connection (SES-14). A watch sends ten a second: the cost of the
// staleness bound.
func BenchmarkFeedHeartbeat(b *testing.B) {
	s := openStore(b, openPool(b, pgtest.Schema(b)), "")
	pooled, err := s.pool.Acquire(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer pooled.Release()
	conn := pooled.Conn()
	if _, err := conn.Exec(b.Context(), "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(b.Context()), "UNLISTEN *")
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.Ping(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// SES-14: what a node writes reaches another node's feed ahead of any
// heartbeat there that vouches for a later time (the notifications that
// came with the ping's answer are delivered first).
func TestSES14_HeartbeatOrder(t *testing.T) {
	newPool := pgtest.Schema(t)
	storetest.HeartbeatOrder(t, openStore(t, openPool(t, newPool), "nodea"), openStore(t, openPool(t, newPool), "nodeb"), 10)
}

package redis

import (
	"testing"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest"
	"github.com/tetherauth/tether/storetest/faultnet"
)

// SES-14: a node whose path to Redis is blackholed (packets dropped, not
// refused) stops accepting a session revoked on another node within
// MaxStaleness of the revocation, then fails closed until the path heals
// (issue 9, point 1: it used to serve it for up to 4.6 s). Redis is one
// of the test's own, so that cutting a path to it touches nobody else.
func TestSES14_PartitionedNode(t *testing.T) {
	srv := startServer(t)
	p, err := faultnet.Listen(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	direct := target{mode: standalone, addrs: []string{srv.addr}}
	opts := Options{KeyPrefix: testPrefix(t, direct)}
	a := openStore(t, direct, opts, "nodea")
	b := openStore(t, target{mode: standalone, addrs: []string{p.Addr()}}, opts, "nodeb")
	t.Cleanup(func() {
		b.Close()
		a.Close()
	})
	storetest.PartitionedNode(t, a, b, p, session.DefaultMaxStaleness)
}

// BenchmarkFeedHeartbeat: one heartbeat's probe, a PING on a subscribed
// connection (SES-14). A watch sends ten a second on each primary it
// follows: the cost of the staleness bound.
func BenchmarkFeedHeartbeat(b *testing.B) {
	s := newTestStore(b, sharedRedis(b), "")
	dc, release := s.client.Dedicate()
	defer release()
	dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(rueidis.PubSubMessage) {}})
	if err := dc.Do(b.Context(), dc.B().Subscribe().Channel(s.keys.channel()).Build()).Error(); err != nil {
		b.Fatal(err)
	}
	conns := []rueidis.DedicatedClient{dc}
	b.ReportAllocs()
	for b.Loop() {
		if err := probe(b.Context(), conns); err != nil {
			b.Fatal(err)
		}
	}
}

// SES-14: what a node writes reaches another node's feed ahead of any
// heartbeat there that vouches for a later time (rueidis hands pushed
// messages to the hooks before the PING's answer).
func TestSES14_HeartbeatOrder(t *testing.T) {
	tg := sharedRedis(t)
	opts := Options{KeyPrefix: testPrefix(t, tg)}
	a, b := openStore(t, tg, opts, "nodea"), openStore(t, tg, opts, "nodeb")
	t.Cleanup(func() {
		b.Close()
		a.Close()
	})
	storetest.HeartbeatOrder(t, a, b, 10)
}

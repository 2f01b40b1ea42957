package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest/faultnet"
)

// countedStore counts the Gets of a Store: a load that adds none was
// answered from the near-cache.
type countedStore struct {
	session.Store
	gets atomic.Int64
}

func (s *countedStore) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, h)
}

// guard bounds the suite's waits for what a broken store or node would
// never do (a heartbeat, a revocation reaching a partitioned node); it
// guards against a hang and measures nothing.
const guard = 30 * time.Second

// loadTimeout bounds each load PartitionedNode makes on the partitioned
// node: a store call there hangs until its deadline.
const loadTimeout = 50 * time.Millisecond

// PartitionedNode is a backend's TestSES14_PartitionedNode. Two nodes, A
// and B, each a Manager with Config.MaxStaleness maxStale over its own
// Store of the same data; B reaches the store only through p. B caches a
// session; p blackholes B (packets dropped, nothing refused: B's feed
// goes silent, nobody tells B); A revokes the session's user. B must stop
// accepting the session within maxStale of the revocation's
// acknowledgement (plus one heartbeat of margin, for the one in flight
// when the partition began), must then fail closed (an error, never the
// session) while partitioned, and must refuse the session once p heals.
// It returns how long after the acknowledgement B last accepted the
// session, for the test to report.
func PartitionedNode(t *testing.T, nodeA, nodeB session.Store, p *faultnet.Proxy, maxStale time.Duration) time.Duration {
	t.Helper()
	const user = "partitioned@example.com"
	cfg := session.Config{MaxStaleness: maxStale}
	a := storekit.RunManager(t, nodeA, cfg, nil)
	counted := &countedStore{Store: nodeB}
	b := storekit.RunManager(t, counted, cfg, nil)
	ctx := t.Context()

	tk, err := a.Begin(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := a.Create(ctx, tk, session.Meta{UserAgent: storekit.UserAgent})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(guard)
	for cached := false; !cached; {
		before := counted.gets.Load()
		if _, err := b.Load(ctx, token); err != nil {
			t.Fatalf("Load on B before the partition: %v", err)
		}
		cached = counted.gets.Load() == before
		if time.Now().After(deadline) {
			t.Fatalf("B's near-cache never served the session within %v", guard)
		}
	}

	p.Set(faultnet.Blackhole)
	t.Cleanup(func() { p.Set(faultnet.Pass) })
	if err := a.RevokeUser(ctx, user, nil); err != nil {
		t.Fatalf("RevokeUser on A: %v", err)
	}
	acked := time.Now()
	var served time.Duration
	for refused := 0; refused < 3; {
		if time.Since(acked) > guard {
			t.Fatalf("B still accepts the revoked session %v after the revocation", time.Since(acked))
		}
		lctx, cancel := context.WithTimeout(ctx, loadTimeout)
		_, err := b.Load(lctx, token)
		cancel()
		switch {
		case err == nil && refused > 0:
			t.Fatalf("B accepted the revoked session again after refusing it")
		case err == nil:
			served = time.Since(acked)
			time.Sleep(time.Millisecond)
		case errors.Is(err, session.ErrNoSession):
			t.Fatalf("B, partitioned, answered %v: its store can't have told it", err)
		default:
			refused++ // the store's deadline: fail closed
		}
	}
	t.Logf("B accepted the revoked session for %v after the revocation was acknowledged (MaxStaleness %v)", served, maxStale)
	if limit := maxStale + session.HeartbeatInterval; served > limit {
		t.Errorf("B accepted the revoked session %v after the revocation, want at most %v", served, limit)
	}

	p.Set(faultnet.Pass)
	for {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := b.Load(lctx, token)
		cancel()
		if err == nil {
			t.Fatalf("B accepted the revoked session after the partition healed")
		}
		if errors.Is(err, session.ErrNoSession) {
			break
		}
		if time.Since(acked) > 2*guard {
			t.Fatalf("B still fails %v after the partition healed: %v", guard, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return served
}

// HeartbeatOrder is a backend's test of what a heartbeat promises across
// nodes (SES-14): an invalidation written through nodeA, once the write
// has returned, is delivered on nodeB's feed before any heartbeat that
// vouches for a later time. It checks n revocations of sessions made
// through nodeA.
func HeartbeatOrder(t *testing.T, nodeA, nodeB session.Store, n int) {
	t.Helper()
	f := storekit.Follow(t, nodeB)
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	// vouched waits for B's first heartbeat for a time after since and
	// returns how often B delivered want before it.
	vouched := func(since time.Time, want session.Event) int {
		if !f.WaitBeats(ctx, 1, since) {
			t.Fatalf("no heartbeat on B vouching for a time after %v", since)
		}
		evs := f.Events()
		for _, b := range f.Beats() {
			if b.At.After(since) {
				return storekit.Count(evs[:b.After], want)
			}
		}
		panic("unreachable: WaitBeats saw one")
	}
	for i := range n {
		r := create(t, nodeA, newRecord("heartbeat-order", i))
		want := changed(r.Hash)
		before := vouched(time.Now(), want)
		if err := nodeA.Delete(ctx, r.Hash); err != nil {
			t.Fatalf("Delete on A: %v", err)
		}
		if got := vouched(time.Now(), want); got <= before {
			t.Fatalf("revocation %d: B delivered a heartbeat vouching for a time after the revocation returned on A before the revocation (events: %s)",
				i, storekit.Describe(f.Events()))
		}
	}
}

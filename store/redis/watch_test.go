package redis

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest"
)

var (
	feedUp   = session.Event{Kind: session.FeedUp}
	feedDown = session.Event{Kind: session.FeedDown}
)

// mustCreate creates r at its user's current generation, with opts.
func mustCreate(t *testing.T, s *Store, r *session.Record, opts session.CreateOptions) {
	t.Helper()
	gen, err := s.Generation(t.Context(), r.UserID)
	if err != nil {
		t.Fatalf("Generation(%q): %v", r.UserID, err)
	}
	r.Gen = gen
	if err := s.Create(t.Context(), r, opts); err != nil {
		t.Fatalf("Create %s: %v", r.ID, err)
	}
}

func mustSave(t *testing.T, s *Store, r *session.Record) {
	t.Helper()
	if err := s.Save(t.Context(), r); err != nil {
		t.Fatalf("Save %s: %v", r.ID, err)
	}
}

// testFeedAcrossNodes: every invalidating write through node A reaches a
// watcher of node B (the Changed messages of a create's evictions and
// rotation too, published from the user's slot); users spread over every
// slot range of a cluster.
func testFeedAcrossNodes(t *testing.T, tg target) {
	prefix := testPrefix(t, tg)
	a := openStore(t, tg, Options{KeyPrefix: prefix}, "a")
	t.Cleanup(func() { a.Close() })
	b := openStore(t, tg, Options{KeyPrefix: prefix}, "b")
	t.Cleanup(func() { b.Close() })
	f := storekit.Follow(t, b)

	for n := range 6 {
		user := "user" + strconv.Itoa(n)
		r := storekit.Record(user, n)
		mustCreate(t, a, r, session.CreateOptions{}) // no invalidation needed
		mustSave(t, a, r)
		f.Await(t, 0, session.Event{Kind: session.Changed, Hash: r.Hash})
		if err := a.Delete(t.Context(), r.Hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		f.Await(t, 1, session.Event{Kind: session.Changed, Hash: r.Hash})

		// A create past the cap evicts; a rotation replaces.
		first, second := storekit.Record(user, 100+n), storekit.Record(user, 200+n)
		mustCreate(t, a, first, session.CreateOptions{MaxPerUser: 1})
		mustCreate(t, a, second, session.CreateOptions{MaxPerUser: 1})
		f.Await(t, 0, session.Event{Kind: session.Changed, Hash: first.Hash})
		third := storekit.Record(user, 300+n)
		mustCreate(t, a, third, session.CreateOptions{Replace: &second.Hash, MaxPerUser: 1})
		f.Await(t, 0, session.Event{Kind: session.Changed, Hash: second.Hash})

		if err := a.RevokeUser(t.Context(), user, nil); err != nil {
			t.Fatalf("RevokeUser: %v", err)
		}
		f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: user})
	}
	if err := f.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch: %v", err)
	}
	storetest.TokenFeedAcrossNodes(t, a, b) // JWT-09: one denylist, in its own slot
}

func TestFeedAcrossNodes(t *testing.T) {
	testFeedAcrossNodes(t, sharedRedis(t))
}

// A write through a Store reaches the watchers of every Store of this
// process on the same URL and prefix before it returns, and comes back
// from Redis to none of them a second time.
func TestFeedWithinProcess(t *testing.T) {
	tg := sharedRedis(t)
	prefix := testPrefix(t, tg)
	a := openStore(t, tg, Options{KeyPrefix: prefix}, "")
	t.Cleanup(func() { a.Close() })
	b := openStore(t, tg, Options{KeyPrefix: prefix}, "")
	t.Cleanup(func() { b.Close() })
	if a.hub != b.hub {
		t.Fatal("two Stores of one URL and prefix: got different hubs, want one")
	}
	f := storekit.Follow(t, b)
	if err := a.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	revoked := session.Event{Kind: session.UserRevoked, UserID: "alice"}
	if got := storekit.Count(f.Events(), revoked); got != 1 {
		t.Fatalf("events when RevokeUser returned: got %s, want %s once", storekit.Describe(f.Events()), storekit.Describe([]session.Event{revoked}))
	}

	// A marker from another node: once it arrives, so would have the echo.
	other := openStore(t, tg, Options{KeyPrefix: prefix}, "other")
	t.Cleanup(func() { other.Close() })
	if err := other.RevokeUser(t.Context(), "marker", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: "marker"})
	if got := storekit.Count(f.Events(), revoked); got != 1 {
		t.Errorf("events: got %s, want %s once", storekit.Describe(f.Events()), storekit.Describe([]session.Event{revoked}))
	}
}

// killFeed kills the subscribed connections of the server at addr.
func killFeed(t *testing.T, tg target) {
	t.Helper()
	admin := adminClient(t, tg)
	if err := admin.Do(t.Context(), admin.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v", err)
	}
}

// testFeedRecovers: losing the subscription's connection is FeedDown,
// then FeedUp once subscribed again, and invalidations flow again.
func testFeedRecovers(t *testing.T, tg target, kill func()) {
	prefix := testPrefix(t, tg)
	s := openStore(t, tg, Options{KeyPrefix: prefix}, "")
	t.Cleanup(func() { s.Close() })
	other := openStore(t, tg, Options{KeyPrefix: prefix}, "other")
	t.Cleanup(func() { other.Close() })
	f := storekit.Follow(t, s)

	kill()
	f.Await(t, 0, feedDown)
	f.Await(t, 1, feedUp)
	if err := other.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: "alice"})
}

func TestFeedRecoversFromClientKill(t *testing.T) {
	srv := startServer(t)
	tg := target{mode: standalone, addrs: []string{srv.addr}}
	testFeedRecovers(t, tg, func() { killFeed(t, tg) })
}

// A server that goes away is FeedDown; Watch keeps trying, and delivers
// FeedUp when it is back.
func TestFeedRecoversFromRestart(t *testing.T) {
	srv := startServer(t)
	tg := target{mode: standalone, addrs: []string{srv.addr}}
	s := newTestStore(t, tg, "")
	f := storekit.Follow(t, s)

	srv.stop()
	f.Await(t, 0, feedDown)
	if _, err := s.Get(t.Context(), storekit.Record("alice", 1).Hash); err == nil {
		t.Errorf("Get with the server down: got no error, want one")
	}
	srv.restart(t)
	f.Await(t, 1, feedUp)
	mustCreate(t, s, storekit.Record("alice", 1), session.CreateOptions{})
}

// A message on the channel that no Store sent can't be understood: the
// watch starts over, so that the cache is emptied.
func TestFeedForeignMessage(t *testing.T) {
	tg := sharedRedis(t)
	s := newTestStore(t, tg, "")
	f := storekit.Follow(t, s)
	admin := adminClient(t, tg)
	if err := admin.Do(t.Context(), admin.B().Publish().Channel(s.keys.channel()).Message("hello").Build()).Error(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	f.Await(t, 0, feedDown)
	f.Await(t, 1, feedUp)
}

func TestWatchFeedUpWaitsForSubscription(t *testing.T) {
	tg := sharedRedis(t)
	s := newTestStore(t, tg, "")
	storekit.Follow(t, s)
	admin := adminClient(t, tg)
	n, err := admin.Do(context.Background(), admin.B().PubsubNumsub().Channel(s.keys.channel()).Build()).AsIntMap()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB: %v", err)
	}
	if got := n[s.keys.channel()]; got != 1 {
		t.Errorf("subscribers after FeedUp: got %d, want 1", got)
	}
}

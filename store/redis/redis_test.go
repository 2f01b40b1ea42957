package redis

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest"
)

// runSuite runs the conformance suite on tg, each store with a key prefix
// of its own.
func runSuite(t *testing.T, tg target, opts Options) {
	storetest.Run(t, func(t *testing.T) (session.Store, func() error) {
		opts.KeyPrefix = testPrefix(t, tg)
		s := openStore(t, tg, opts, "")
		return s, s.Close
	})
}

func TestStore(t *testing.T) {
	runSuite(t, sharedRedis(t), Options{})
}

func TestCluster(t *testing.T) {
	tg := startCluster(t)
	t.Run("Suite", func(t *testing.T) { runSuite(t, tg, Options{}) })
	t.Run("FeedAcrossNodes", func(t *testing.T) { testFeedAcrossNodes(t, tg) })
	for i, addr := range tg.addrs {
		// Losing any primary's subscription is losing the feed.
		t.Run("FeedRecoversFromClientKill/"+strconv.Itoa(i), func(t *testing.T) {
			testFeedRecovers(t, tg, func() { killFeed(t, target{mode: standalone, addrs: []string{addr}}) })
		})
	}
}

// Through Sentinel, with MinReplicas 1: every create and revocation waits
// for the replica, and the suite passes all the same.
func TestSentinel(t *testing.T) {
	tg, replica := startSentinel(t)
	// A WaitTimeout for a busy machine: it bounds a hang, it times nothing.
	t.Run("SuiteWithMinReplicas", func(t *testing.T) { runSuite(t, tg, Options{MinReplicas: 1, WaitTimeout: 10 * time.Second}) })
	t.Run("FeedAcrossNodes", func(t *testing.T) { testFeedAcrossNodes(t, tg) })

	// The replica has what was acknowledged.
	s := openStore(t, tg, Options{KeyPrefix: testPrefix(t, tg), MinReplicas: 1, WaitTimeout: 10 * time.Second}, "")
	t.Cleanup(func() { s.Close() })
	r := storekit.Record("alice", 1)
	mustCreate(t, s, r, session.CreateOptions{})
	if err := s.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	onReplica := target{mode: standalone, addrs: []string{replica.addr}}
	gen, err := adminClient(t, onReplica).Do(t.Context(), adminClient(t, onReplica).B().Get().Key(genKey(s.keys.user("alice"))).Build()).ToString()
	if err != nil || gen != "1" {
		t.Errorf("generation on the replica when RevokeUser returned: got %q, %v; want \"1\"", gen, err)
	}
	tok := session.Revocation{JTI: "jti-1", Exp: time.Now().Add(time.Hour)}
	if err := s.RevokeToken(t.Context(), tok); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	onReplicaClient := adminClient(t, onReplica)
	if ok, err := onReplicaClient.Do(t.Context(), onReplicaClient.B().Hexists().Key(s.keys.denylist()).Field("j:jti-1").Build()).AsBool(); err != nil || !ok {
		t.Errorf("denylist entry on the replica when RevokeToken returned: got %v, %v; want true", ok, err)
	}

	// Two replicas can't be had: creates and revocations fail, saying why.
	two := openStore(t, tg, Options{KeyPrefix: s.keys.prefix, MinReplicas: 2, WaitTimeout: 50 * time.Millisecond}, "")
	t.Cleanup(func() { two.Close() })
	if err := two.Create(t.Context(), storekit.Record("bob", 1), session.CreateOptions{}); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("create with MinReplicas 2 and one replica: got error %v, want %v", err, ErrNotReplicated)
	}
	if _, err := two.Get(t.Context(), storekit.Record("bob", 1).Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of a create that failed: got error %v, want %v", err, session.ErrNotFound)
	}
	f := storekit.Follow(t, two)
	if err := two.RevokeUser(t.Context(), "alice", nil); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("RevokeUser with MinReplicas 2 and one replica: got error %v, want %v", err, ErrNotReplicated)
	}
	// The primary has the revocation all the same: so must this process's
	// caches.
	if revoked := (session.Event{Kind: session.UserRevoked, UserID: "alice"}); storekit.Count(f.Events(), revoked) != 1 {
		t.Errorf("events when the failed RevokeUser returned: got %s, want %s", storekit.Describe(f.Events()), storekit.Describe([]session.Event{revoked}))
	}
	if err := two.RevokeToken(t.Context(), tok); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("RevokeToken with MinReplicas 2 and one replica: got error %v, want %v", err, ErrNotReplicated)
	}
	if revoked := (session.Event{Kind: session.TokenRevoked, Revocation: tok}); storekit.Count(f.Events(), revoked) != 1 {
		t.Errorf("events when the failed RevokeToken returned: got %s, want %s", storekit.Describe(f.Events()), storekit.Describe([]session.Event{revoked}))
	}

	// A primary that forgot the scripts (restarted, or promoted a moment
	// ago with no replica yet) makes a replicated write wait once, not once
	// for a NOSCRIPT answer and again for the retry.
	c := two.Client()
	if err := c.Do(t.Context(), c.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	before := waitCalls(t, c)
	if err := two.RevokeUser(t.Context(), "alice", nil); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("RevokeUser after SCRIPT FLUSH: got error %v, want %v", err, ErrNotReplicated)
	}
	if n := waitCalls(t, c) - before; n != 1 {
		t.Errorf("WAITs of one replicated write after SCRIPT FLUSH: %d, want 1", n)
	}
}

// waitCalls returns how many WAIT commands c's primary has run.
func waitCalls(t *testing.T, c rueidis.Client) int {
	t.Helper()
	info, err := c.Do(t.Context(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_wait:calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			if err != nil {
				t.Fatalf("INFO commandstats: %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// A Sentinel failover: the feed goes down and comes back on the new
// primary, and what was acknowledged with MinReplicas 1 is there: the live
// session lives, the revoked one stays dead.
func TestSentinelFailover(t *testing.T) {
	tg, _ := startSentinel(t)
	s := openStore(t, tg, Options{KeyPrefix: testPrefix(t, tg), MinReplicas: 1, WaitTimeout: 10 * time.Second}, "")
	t.Cleanup(func() { s.Close() })
	f := storekit.Follow(t, s)
	live, revoked := storekit.Record("alice", 1), storekit.Record("bob", 1)
	mustCreate(t, s, live, session.CreateOptions{})
	mustCreate(t, s, revoked, session.CreateOptions{})
	if err := s.RevokeUser(t.Context(), "bob", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	before := slices.Sorted(maps.Keys(s.client.Nodes()))

	// Sentinel refuses (NOGOODSLAVE) until it has a fresh view of the
	// replica.
	testkit.WaitFor(t, "Sentinel to start a failover", func() bool {
		return strings.Contains(redisCLI(t, tg.addrs[0], "sentinel", "failover", sentinelMaster), "OK")
	}, redisWait)
	f.Await(t, 0, feedDown)
	f.Await(t, 1, feedUp)
	if after := slices.Sorted(maps.Keys(s.client.Nodes())); slices.Equal(after, before) {
		t.Errorf("primary after the failover: got %v, want another than %v", after, before)
	}
	// Until Sentinel has made the old primary a replica of the new one,
	// creates fail with ErrNotReplicated.
	n, start := 0, time.Now()
	var err error
	testkit.WaitFor(t, "a create acknowledged by the new primary and its replica", func() bool {
		n++
		if err = s.Create(t.Context(), storekit.Record("carol", n), session.CreateOptions{}); err != nil && !errors.Is(err, ErrNotReplicated) {
			t.Logf("create after the failover: %v", err)
		}
		return err == nil
	}, redisWait)
	t.Logf("creates acknowledged again %v after FeedUp, at try %d", time.Since(start), n)
	if _, err := s.Get(t.Context(), live.Hash); err != nil {
		t.Errorf("Get of the live session after the failover: %v", err)
	}
	if _, err := s.Get(t.Context(), revoked.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of the revoked session after the failover: got error %v, want %v", err, session.ErrNotFound)
	}
}

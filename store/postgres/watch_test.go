package postgres

import (
	"crypto/rand"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/storetest"
	"github.com/tetherauth/tether/storetest/faultnet"
)

var (
	feedUp   = session.Event{Kind: session.FeedUp}
	feedDown = session.Event{Kind: session.FeedDown}
)

func revoke(t *testing.T, s *Store, user string) {
	t.Helper()
	if err := s.RevokeUser(t.Context(), user, nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
}

// Every invalidating write through node A reaches a watcher of node B, on
// a pool of its own, through PostgreSQL.
func TestFeedAcrossNodes(t *testing.T) {
	newPool := pgtest.Schema(t)
	a := openStore(t, openPool(t, newPool), "a")
	f := storekit.Follow(t, openStore(t, openPool(t, newPool), "b"))

	for n := range 3 {
		user := "user" + strconv.Itoa(n)
		r := storekit.Record(user, n)
		mustCreate(t, a, r) // no invalidation needed
		mustSave(t, a, r)
		f.Await(t, 0, session.Event{Kind: session.Changed, Hash: r.Hash})
		revoke(t, a, user)
		f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: user})
		if err := a.Delete(t.Context(), r.Hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		f.Await(t, 1, session.Event{Kind: session.Changed, Hash: r.Hash})
	}
}

// A write through a Store reaches the watchers of every Store of this
// process on the same schema before it returns, whatever pool they use,
// and comes back from PostgreSQL to none of them a second time.
func TestFeedWithinProcess(t *testing.T) {
	newPool := pgtest.Schema(t)
	a := openStore(t, openPool(t, newPool), "")
	b := openStore(t, openPool(t, newPool), "")
	if a.hub != b.hub {
		t.Fatal("two Stores of one schema: got different hubs, want one")
	}
	f := storekit.Follow(t, b)
	revoke(t, a, "alice")
	revoked := session.Event{Kind: session.UserRevoked, UserID: "alice"}
	if got := storekit.Count(f.Events(), revoked); got != 1 {
		t.Fatalf("events when RevokeUser returned: got %s, want %s once", storekit.Describe(f.Events()), storekit.Describe([]session.Event{revoked}))
	}

	// A marker from another node: once it arrives, so would have the echo.
	revoke(t, openStore(t, openPool(t, newPool), "other"), "marker")
	f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: "marker"})
	if got := storekit.Count(f.Events(), revoked); got != 1 {
		t.Errorf("events: got %s, want %s once", storekit.Describe(f.Events()), storekit.Describe([]session.Event{revoked}))
	}
}

// Schemas don't hear each other, though they share a database.
func TestFeedSchemasApart(t *testing.T) {
	here := pgtest.Schema(t)
	f := storekit.Follow(t, openStore(t, openPool(t, here), ""))
	revoke(t, openStore(t, openPool(t, pgtest.Schema(t)), "elsewhere"), "alice")

	revoke(t, openStore(t, openPool(t, here), "other"), "marker")
	f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: "marker"})
	if got := storekit.Count(f.Events(), session.Event{Kind: session.UserRevoked, UserID: "alice"}); got != 0 {
		t.Errorf("events: got %s, want none of the other schema", storekit.Describe(f.Events()))
	}
}

// reconfigured returns a new pool like pool but for what edit changes in
// its configuration. It is closed when the test ends (before the schema
// is dropped).
func reconfigured(t *testing.T, pool *pgxpool.Pool, edit func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config()
	edit(cfg)
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// proxied returns a faultnet proxy to pool's server, closed when the test
// ends, and a new pool like pool whose connections go through it.
func proxied(t *testing.T, pool *pgxpool.Pool) (*faultnet.Proxy, *pgxpool.Pool) {
	t.Helper()
	cc := pool.Config().ConnConfig
	p, err := faultnet.Listen(net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	n, err := strconv.ParseUint(p.Addr()[len("127.0.0.1:"):], 10, 16) // faultnet listens on 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	return p, reconfigured(t, pool, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = "127.0.0.1", uint16(n), nil
	})
}

// namedPool returns a new pool like pool whose connections carry an
// application_name of their own, and that name: a way to find them in
// pg_stat_activity.
func namedPool(t *testing.T, pool *pgxpool.Pool) (*pgxpool.Pool, string) {
	t.Helper()
	name := "tether-test-" + rand.Text()
	return reconfigured(t, pool, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["application_name"] = name
	}), name
}

// Losing the listening connection is FeedDown, then FeedUp once listening
// again, and invalidations flow again.
func TestFeedRecoversFromTerminate(t *testing.T) {
	admin := openPool(t, pgtest.Schema(t))
	watched, name := namedPool(t, admin)
	f := storekit.Follow(t, openStore(t, watched, ""))

	var killed int
	if err := admin.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("pg_terminate_backend: %d backends, error %v; want the watcher's at least", killed, err)
	}
	f.Await(t, 0, feedDown)
	f.Await(t, 1, feedUp)
	revoke(t, openStore(t, admin, "other"), "alice")
	f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: "alice"})
}

// A listening connection that stops answering, without being closed, is
// found out by the ping: FeedDown, then FeedUp once it answers again.
func TestFeedNoticesSilentConnection(t *testing.T) {
	admin := openPool(t, pgtest.Schema(t))
	p, watched := proxied(t, admin)
	f := storekit.Follow(t, openStore(t, watched, ""))

	p.Set(faultnet.Blackhole)
	f.Await(t, 0, feedDown) // within about a heartbeat + pingTimeout
	p.Set(faultnet.Pass)
	f.Await(t, 1, feedUp)
	revoke(t, openStore(t, admin, "other"), "alice")
	f.Await(t, 0, session.Event{Kind: session.UserRevoked, UserID: "alice"})
}

// A notification on the channel that no Store sent can't be understood:
// the watch starts over, so that caches are emptied, delivers nothing of
// it, and goes on.
func TestFeedForeignNotification(t *testing.T) {
	newPool := pgtest.Schema(t)
	s := openStore(t, openPool(t, newPool), "")
	f := storekit.Follow(t, s)
	admin := openPool(t, newPool)
	junk := []string{"", "hello", "c0000000000000007" + hashHex + "00", "u+000000000000007alice", "C0000000000000007" + hashHex}
	for _, payload := range junk {
		if _, err := admin.Exec(t.Context(), `SELECT pg_notify($1, $2)`, s.channel, payload); err != nil {
			t.Fatalf("pg_notify: %v", err)
		}
	}
	// Notifications arrive in the order of their commits: once the marker
	// is there, the junk was handled.
	marker := session.Event{Kind: session.UserRevoked, UserID: "marker"}
	revoke(t, openStore(t, admin, "other"), marker.UserID)
	f.Await(t, 0, marker)
	want := []session.Event{feedUp}
	for range junk {
		want = append(want, feedDown, feedUp)
	}
	if got := f.Events(); !slices.Equal(got, append(want, marker)) {
		t.Errorf("events: got %s, want %s", storekit.Describe(got), storekit.Describe(append(want, marker)))
	}
}

// Each running Watch takes a connection out of the pool, so that it holds
// none of the pool's, and closes it when done.
func TestWatchTakesItsConnectionOut(t *testing.T) {
	admin := openPool(t, pgtest.Schema(t))
	pool, name := namedPool(t, admin)
	f := storekit.Follow(t, openStore(t, pool, ""))
	if got := pool.Stat().AcquiredConns(); got != 0 {
		t.Errorf("connections acquired from the pool while watching: got %d, want 0", got)
	}
	outside := func() int { // the backends of pool's configuration that pool doesn't hold
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n - int(pool.Stat().TotalConns())
	}
	if got := outside(); got != 1 {
		t.Errorf("connections outside the pool while watching: got %d, want 1", got)
	}
	f.Stop()
	// The backend ends a moment after the connection is closed.
	testkit.WaitFor(t, "no connection outside the pool after the watch", func() bool { return outside() == 0 })
}

// JWT-09: the token denylist is the schema's: a revocation through node A
// reaches node B's watcher by NOTIFY, and B reads it back.
func TestTokenFeedAcrossNodes(t *testing.T) {
	newPool := pgtest.Schema(t)
	storetest.TokenFeedAcrossNodes(t, openStore(t, openPool(t, newPool), "a"), openStore(t, openPool(t, newPool), "b"))
}

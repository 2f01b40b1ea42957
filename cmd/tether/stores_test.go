package main

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
)

// The machine's shared Redis; the test keeps to a key prefix of its own.
const sharedRedis = "127.0.0.1:6379"

// Sessions in Redis, accounts in the file: serve and the admin commands
// agree through Redis, under the --redis-prefix given.
func TestServeSessionsInRedis(t *testing.T) {
	prefix, client := sharedRedisPrefix(t)
	testServeSessionsIn(t, []string{"--sessions", "redis://" + sharedRedis + "/0", "--redis-prefix", prefix}, func() int {
		return len(scanKeys(t, client, prefix+"*"))
	})
}

// sharedRedisPrefix skips the test if the shared Redis doesn't answer, and
// returns a key prefix of the test's own and a client that deletes every
// key under it when the test ends.
func sharedRedisPrefix(t *testing.T) (string, rueidis.Client) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", sharedRedis, time.Second)
	testkit.NeedService(t, "Redis on "+sharedRedis, err)
	conn.Close()
	prefix := "tethertest-cmd-" + rand.Text()[:8] + ":"
	return prefix, redisClient(t, prefix)
}

// Sessions in PostgreSQL, in a schema of the test's own; accounts in the
// file.
func TestServeSessionsInPostgres(t *testing.T) {
	pool, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	testServeSessionsIn(t, []string{"--sessions", pgtest.URL(t, pool)}, func() int {
		var n int
		if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM sessions").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// testServeSessionsIn runs serve and the admin commands with flags, which
// put sessions elsewhere than the file; stored counts what that store
// holds. A sign-in must land there, the commands must see it, and their
// revocation must reach the server through the store's feed (within a
// millisecond or so; the test allows a second).
func testServeSessionsIn(t *testing.T, flags []string, stored func() int) {
	data := dbPath(t)
	mustTether(t, data, alicePassword+"\n", append([]string{"user", "add", "alice", "--password-stdin", "--create"}, flags...)...)
	s := startServe(t, data, flags...)
	cookie := s.signIn(t, `{"username":"alice","password":"`+alicePassword+`"}`)
	if res := s.do(t, "GET", "/api/v1/me", "", cookie); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/me: got %s, want 200", res.Status)
	}
	if stored() == 0 {
		t.Fatal("nothing in the session store after a sign-in")
	}
	if out := mustTether(t, data, "", append([]string{"sessions", "list", "alice"}, flags...)...); strings.Count(out, "\n") != 2 {
		t.Fatalf("sessions list: got %q, want a header and one session", out)
	}
	mustTether(t, data, "", append([]string{"sessions", "revoke", "alice"}, flags...)...)
	s.expectSignedOut(t, cookie, time.Second)
}

// redisClient connects to the shared Redis and, when the test ends,
// deletes every key under prefix: only what the test made.
func redisClient(t *testing.T, prefix string) rueidis.Client {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{sharedRedis}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer client.Close()
		ctx := context.Background()
		for _, k := range scanKeys(t, client, prefix+"*") {
			client.Do(ctx, client.B().Del().Key(k).Build())
		}
	})
	return client
}

// scanKeys returns the keys matching pattern.
func scanKeys(t *testing.T, client rueidis.Client, pattern string) []string {
	t.Helper()
	var keys []string
	var cursor uint64
	for {
		e, err := client.Do(context.Background(), client.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			return keys
		}
	}
}

// SES-15: serve says at start which failures a revocation survives, for
// every session store (a warning when a host crash could undo one).
func TestServeSES15_SaysDurability(t *testing.T) {
	const said, warned = "revocation durability", "revocations can be undone by a host crash"
	t.Run("sqlite", func(t *testing.T) {
		logs := startServe(t, dbPath(t)).stderr.String()
		if !strings.Contains(logs, said) || !strings.Contains(logs, "synchronous FULL") {
			t.Errorf("got logs\n%s\nwant %q naming synchronous FULL", logs, said)
		}
	})
	t.Run("redis", func(t *testing.T) {
		prefix, _ := sharedRedisPrefix(t)
		logs := startServe(t, dbPath(t), "--sessions", "redis://"+sharedRedis+"/0", "--redis-prefix", prefix).stderr.String()
		if !strings.Contains(logs, said) && !strings.Contains(logs, warned) {
			t.Errorf("got logs\n%s\nwant %q or %q", logs, said, warned)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		pool, err := pgtest.Schema(t)()
		if err != nil {
			t.Fatal(err)
		}
		logs := startServe(t, dbPath(t), "--sessions", pgtest.URL(t, pool)).stderr.String()
		if !strings.Contains(logs, said) || !strings.Contains(logs, "synchronous_commit on") {
			t.Errorf("got logs\n%s\nwant %q naming synchronous_commit on", logs, said)
		}
	})
}

package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/store/redis"
)

// The risks serve finds in the durability of a Redis session store, and
// what it can't check when CONFIG GET is refused.
func TestSES15_RedisRisks(t *testing.T) {
	safe := redis.Durability{Local: redis.CrashProcess, Persistent: true, FsyncKnown: true, Eviction: redis.NoEviction}
	tests := []struct {
		name          string
		change        func(d *redis.Durability)
		want          []string // names of the risks found
		wantUnchecked int
	}{
		{"appendonly yes, noeviction", func(*redis.Durability) {}, nil, 0},
		{"nothing kept", func(d *redis.Durability) { d.Local, d.Persistent = redis.CrashHost, false }, nil, 0},
		{"snapshots only", func(d *redis.Durability) { d.Local = redis.CrashNone }, []string{riskPersistence}, 0},
		{"snapshots or not: CONFIG refused", func(d *redis.Durability) { d.Local, d.FsyncKnown = redis.CrashNone, false }, nil, 1},
		{"appendonly yes, CONFIG refused", func(d *redis.Durability) { d.FsyncKnown = false }, nil, 0},
		{"allkeys-lru", func(d *redis.Durability) { d.Eviction = "allkeys-lru" }, []string{riskEviction}, 0},
		{"volatile-ttl", func(d *redis.Durability) { d.Eviction = "volatile-ttl" }, []string{riskEviction}, 0},
		{"policy unknown", func(d *redis.Durability) { d.Eviction = "" }, nil, 1},
		{"replicas enough", func(d *redis.Durability) { d.Replicas, d.MinReplicas = 2, 2 }, nil, 0},
		{"replicas too few", func(d *redis.Durability) { d.Replicas, d.MinReplicas = 1, 2 }, []string{riskReplicas}, 0},
		{"everything", func(d *redis.Durability) { d.Local, d.Eviction, d.MinReplicas = redis.CrashNone, "allkeys-random", 1 },
			[]string{riskPersistence, riskEviction, riskReplicas}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := safe
			tc.change(&d)
			found, unchecked := redisRisks(d)
			var names []string
			for _, r := range found {
				names = append(names, r.name)
				if !strings.Contains(r.found, "Fix: ") {
					t.Errorf("risk %s: %q says no fix", r.name, r.found)
				}
			}
			if !slices.Equal(names, tc.want) || len(unchecked) != tc.wantUnchecked {
				t.Errorf("got risks %q, unchecked %q; want risks %q and %d unchecked", names, unchecked, tc.want, tc.wantUnchecked)
			}
		})
	}
}

// serveRefuses runs tether serve on the database file data with flags
// and returns the error it ends with, failing t if it serves instead.
func serveRefuses(t *testing.T, data string, flags ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := new(testkit.Buffer)
	done := make(chan error, 1)
	args := append([]string{"tether", "serve", "--addr", "127.0.0.1:0", "--data", data}, flags...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), io.Discard, stderr)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("tether serve ended without an error, want a refusal:\n%s", stderr)
			}
			return err
		case <-tick.C:
			if listeningRE.MatchString(stderr.String()) {
				cancel()
				<-done
				t.Fatalf("tether serve %q started, want a refusal:\n%s", flags, stderr)
			}
		}
	}
}

// SES-15: serve refuses to start on a Redis under which signed-out
// sessions can come back (snapshots without the append-only file, an
// evicting maxmemory-policy), or with fewer replicas than
// --redis-min-replicas, naming the setting and its fix; with
// --redis-accept-risk naming it, serve starts and warns instead.
func TestServeSES15_RefusesUnsafeRedis(t *testing.T) {
	tests := []struct {
		risk  string
		conf  []string // redis-server's settings
		flags []string
		fix   string // what the refusal must say
	}{
		{riskPersistence, []string{"--appendonly", "no", "--save", "3600 1"}, nil, "CONFIG SET appendonly yes"},
		{riskEviction, []string{"--appendonly", "no", "--save", "", "--maxmemory-policy", "allkeys-lru"}, nil, "CONFIG SET maxmemory-policy noeviction"},
		{riskReplicas, []string{"--appendonly", "no", "--save", ""}, []string{"--redis-min-replicas", "1"}, "--redis-min-replicas is 1, but a primary has 0 replica(s) online"},
	}
	for _, tc := range tests {
		t.Run(tc.risk, func(t *testing.T) {
			addr, _ := startRedis(t, tc.conf...)
			data := dbPath(t)
			flags := append([]string{"--sessions", "redis://" + addr + "/0"}, tc.flags...)
			err := serveRefuses(t, data, flags...)
			for _, want := range []string{"not safe to keep sessions in", tc.risk + ": ", tc.fix, "--redis-accept-risk " + tc.risk} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %v\nwant it to say %q", err, want)
				}
			}

			mustTether(t, data, alicePassword+"\n", append([]string{"user", "add", "alice", "--password-stdin", "--create"}, flags...)...)
			s := startServe(t, data, append(flags, "--redis-accept-risk", tc.risk)...)
			if logs := s.stderr.String(); !strings.Contains(logs, "session store risk accepted") || !strings.Contains(logs, "risk="+tc.risk) {
				t.Errorf("got logs\n%s\nwant a warning that the %s risk is accepted", logs, tc.risk)
			}
			login := `{"username":"alice","password":"` + alicePassword + `"}`
			if tc.risk != riskReplicas {
				s.signIn(t, login)
				return
			}
			// MISC-05: too few replicas acknowledge the new session (WAIT).
			res := s.do(t, "POST", "/api/v1/login", login, nil)
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Errorf("sign-in without the replica: got %s, Retry-After %q; want 503 with Retry-After", res.Status, res.Header.Get("Retry-After"))
			}
		})
	}
}

// SES-15: with enough replicas online, --redis-min-replicas passes the
// check at start.
func TestServeSES15_ReplicasOnline(t *testing.T) {
	primary, _ := startRedis(t)
	_, port, _ := strings.Cut(primary, ":")
	startRedis(t, "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", port)
	flags := []string{"--sessions", "redis://" + primary + "/0", "--redis-min-replicas", "1"}
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{primary}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	waitFor(t, "the replica to be online", func() bool {
		s, err := client.Do(t.Context(), client.B().Info().Section("replication").Build()).ToString()
		return err == nil && strings.Contains(s, "state=online")
	})
	data := dbPath(t)
	mustTether(t, data, alicePassword+"\n", append([]string{"user", "add", "alice", "--password-stdin", "--create"}, flags...)...)
	// The test is about the start-up check: a generous store timeout
	// keeps a loaded machine's slow WAIT (half of it) out of the sign-in.
	s := startServe(t, data, append(flags, "--store-timeout", "5s")...)
	s.signIn(t, `{"username":"alice","password":"`+alicePassword+`"}`)
}

// A managed Redis may hide CONFIG: serve can't tell whether it keeps
// snapshots, so it warns, and starts.
func TestServeSES15_ConfigHiddenWarns(t *testing.T) {
	addr, _ := startRedis(t, "--appendonly", "no", "--save", "", "--rename-command", "CONFIG", "")
	logs := startServe(t, dbPath(t), "--sessions", "redis://"+addr+"/0").stderr.String()
	if !strings.Contains(logs, "session store setting unchecked") || !strings.Contains(logs, "CONFIG GET save refused") {
		t.Errorf("got logs\n%s\nwant a warning that whether Redis keeps snapshots is unchecked", logs)
	}
}

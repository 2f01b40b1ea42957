package redis

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// This file starts and finds the Redis servers the tests use.

// sharedAddr is the machine's Redis, shared with other tests and CI: each
// test keeps to a key prefix of its own and removes its keys.
const sharedAddr = "127.0.0.1:6379"

// sharedRedis returns the target of the machine's Redis.
func sharedRedis(t testing.TB) target {
	t.Helper()
	testkit.NeedService(t, "Redis at "+sharedAddr, proc.RedisPing(sharedAddr))
	return target{mode: standalone, addrs: []string{sharedAddr}}
}

// testPrefix returns a key prefix no other test uses, and removes every key
// under it from tg's primaries when the test ends.
func testPrefix(t testing.TB, tg target) string {
	t.Helper()
	prefix := "tethertest:" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		admin := adminClient(t, tg)
		nodes := admin.Nodes()
		if tg.mode == cluster {
			primaries, err := (&Store{client: admin, target: tg}).primaries(context.Background())
			if err != nil {
				t.Errorf("cleanup: %v", err)
				return
			}
			nodes = map[string]rueidis.Client{}
			for _, p := range primaries {
				nodes[p] = admin.Nodes()[p]
			}
		}
		for addr, c := range nodes {
			if err := deletePrefix(c, prefix); err != nil {
				t.Errorf("cleanup of %s on %s: %v", prefix, addr, err)
			}
		}
	})
	return prefix
}

// deletePrefix deletes the keys under prefix with SCAN and DEL.
func deletePrefix(c rueidis.Client, prefix string) error {
	ctx := context.Background()
	var cursor uint64
	for {
		entry, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return err
		}
		for _, k := range entry.Elements {
			if err := c.Do(ctx, c.B().Del().Key(k).Build()).Error(); err != nil {
				return err
			}
		}
		if cursor = entry.Cursor; cursor == 0 {
			return nil
		}
	}
}

// adminClient returns a client of tg for the test's own commands, closed
// when the test ends.
func adminClient(t testing.TB, tg target) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(clientOption(tg, Options{}))
	if err != nil {
		t.Fatalf("admin client of %s: %v", tg, err)
	}
	t.Cleanup(c.Close)
	return c
}

// openStore returns a Store of tg, as a node of its own when node is set.
func openStore(t testing.TB, tg target, opts Options, node string) *Store {
	t.Helper()
	s, err := newStore(t.Context(), tg, opts, node)
	if err != nil {
		t.Fatalf("new store on %s: %v", tg, err)
	}
	return s
}

// newTestStore is openStore with a fresh key prefix, closed when the test
// ends.
func newTestStore(t testing.TB, tg target, node string) *Store {
	t.Helper()
	s := openStore(t, tg, Options{KeyPrefix: testPrefix(t, tg)}, node)
	t.Cleanup(func() { s.Close() })
	return s
}

// redisWait bounds the waits for Redis servers to get ready: a Sentinel
// failover takes a while.
var redisWait = testkit.Within(time.Minute)

// server is a redis-server (or Sentinel) the test started, logging to
// redis.log in dir, its data directory.
type server struct {
	addr, dir string
	bin       string
	args      []string
	run       *proc.Run
	proc      *proc.Proc
}

// startServer starts redis-server on a free port of 127.0.0.1 with args
// added to its command line, in a temporary directory, and stops it when
// the test ends.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startWithConfig(t, "", args...)
}

// startWithConfig is startServer with a configuration file holding conf.
func startWithConfig(t testing.TB, conf string, args ...string) *server {
	t.Helper()
	bin := proc.NeedRedis(t)
	run := proc.NewRun(t, "tether-redis-")
	confFile := filepath.Join(run.Dir, "redis.conf") // Sentinel needs a file it can write
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{dir: run.Dir, bin: bin, run: run, args: append([]string{confFile, "--dir", run.Dir}, args...)}
	var err error
	if s.proc, s.addr, err = run.StartRedis("redis", bin, s.args...); err != nil {
		t.Fatal(err)
	}
	return s
}

// restart starts the server again on its address, after stop, and waits
// until it answers.
func (s *server) restart(t testing.TB) {
	t.Helper()
	p, err := s.run.StartRedisAt("redis", s.bin, s.addr, s.args...)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
}

// stop kills the server, as a crash would, and waits for it to exit.
func (s *server) stop() {
	s.proc.Kill()
}

// startCluster starts a Redis Cluster of three primaries and returns its
// target. Under go test -short it skips t: a cluster takes seconds to form.
func startCluster(t testing.TB) target {
	t.Helper()
	testkit.SkipShort(t, "starts a Redis Cluster of its own")
	var addrs []string
	for range 3 {
		s := startServer(t, "--save", "", "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
		addrs = append(addrs, s.addr)
	}
	cli, err := exec.LookPath("redis-cli")
	testkit.NeedService(t, "redis-cli (Debian package redis-tools)", err)
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		testkit.WaitFor(t, "cluster node "+addr, func() bool {
			return strings.Contains(redisCLI(t, addr, "cluster", "info"), "cluster_state:ok")
		}, redisWait)
	}
	return target{mode: cluster, addrs: addrs}
}

// sentinelMaster is the master set name of startSentinel.
const sentinelMaster = "tethertest"

// startSentinel starts a primary, a replica of it and a Sentinel watching
// them, and returns the Sentinel deployment's target and the replica.
// Under go test -short it skips t, as startCluster does.
func startSentinel(t testing.TB) (target, *server) {
	t.Helper()
	testkit.SkipShort(t, "starts a Redis Sentinel deployment of its own")
	primary := startServer(t, "--save", "", "--appendonly", "no")
	replica := startServer(t, "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", port(primary.addr))
	testkit.WaitFor(t, "the replica to sync", func() bool {
		return strings.Contains(redisCLI(t, replica.addr, "info", "replication"), "master_link_status:up")
	}, redisWait)
	watcher := startWithConfig(t, "sentinel monitor "+sentinelMaster+" 127.0.0.1 "+port(primary.addr)+" 1\n"+
		"sentinel down-after-milliseconds "+sentinelMaster+" 1000\n"+
		"sentinel failover-timeout "+sentinelMaster+" 5000\n", "--sentinel")
	testkit.WaitFor(t, "the Sentinel to see the replica", func() bool {
		return strings.Contains(redisCLI(t, watcher.addr, "sentinel", "replicas", sentinelMaster), port(replica.addr))
	}, redisWait)
	return target{mode: sentinel, addrs: []string{watcher.addr}, master: sentinelMaster}, replica
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// redisCLI runs redis-cli against addr and returns what it printed.
func redisCLI(t testing.TB, addr string, args ...string) string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	testkit.NeedService(t, "redis-cli (Debian package redis-tools)", err)
	out, _ := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", port(addr)}, args...)...).CombinedOutput()
	return string(out)
}

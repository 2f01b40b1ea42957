package cluster

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/proxy"
	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// nginxTemplate is the configuration the test runs, from examples/.
const nginxTemplate = "../../examples/nginx/nginx.conf.tmpl"

// A cluster is everything one test runs: Redis, three tether nodes, nginx.
type cluster struct {
	*web.Client
	run   *proc.Run    // the processes, and the run's directory: logs, Redis's data, nginx's prefix
	bin   string       // the tether binary
	pg    string       // the PostgreSQL URL of the test's schema
	redis *redisServer // nil with the sessions in PostgreSQL
	nodes []*node      // node-a, node-b, node-c
	lb    string       // nginx: http://127.0.0.1:PORT
	nginx *proc.Proc
}

// A node is one `tether serve`.
type node struct {
	name string // its --node-name, in X-Tether-Node
	addr string // 127.0.0.1:PORT, once it has listened
	url  string // http://addr
	proc *proc.Proc
}

// redisServer is the test's own redis-server.
type redisServer struct {
	bin  string
	addr string // 127.0.0.1:PORT
	dir  string // its --dir, where the append-only file is
	proc *proc.Proc
}

// url is the --sessions URL of the nodes.
func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

// Where a cluster keeps its sessions.
const (
	sessionsInRedis    = "redis"    // a redis-server of the test's own
	sessionsInPostgres = "postgres" // the accounts' schema
)

// newCluster checks for the services, builds tether, starts Redis if the
// sessions are there, creates users, starts the three nodes and nginx in
// front of them. All is torn down when the test ends, failed or not.
func newCluster(t *testing.T, sessions string, users ...string) *cluster {
	t.Helper()
	nginxBin := proxy.NeedNginx(t)
	accounts := proc.NewAccounts(t) // its cleanup runs after ours

	testkit.SkipShort(t, "starts tether, Redis, PostgreSQL and nginx processes")
	c := &cluster{run: proc.NewRun(t, "tether-cluster-"), Client: web.NewClient(t)}
	c.pg = accounts.URL
	c.bin = proc.BuildTether(t, c.run.Dir)
	if sessions == sessionsInRedis {
		redisBin := proc.NeedRedis(t)
		c.redis = c.startRedis(t, redisBin)
	}

	for _, name := range users {
		c.cli(t, password+"\n", "user", "add", name, "--password-stdin", "--create")
	}
	// The users are in the test's schema, not anywhere else: the nodes
	// honour search_path from the URL.
	accounts.ExpectUsers(t, len(users))

	for _, name := range []string{"node-a", "node-b", "node-c"} {
		c.nodes = append(c.nodes, &node{name: name})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = c.startNode(n, "/readyz") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c.startNginx(t, nginxBin)
	return c
}

// storeFlags are the flags of every tether command of the cluster.
func (c *cluster) storeFlags() []string {
	sessions := c.pg
	if c.redis != nil {
		sessions = c.redis.url()
	}
	return []string{"--data", filepath.Join(c.run.Dir, "unused.db"), "--sessions", sessions, "--accounts", c.pg}
}

// cli runs a tether command on the cluster's stores with stdin as its
// input, and returns its standard output.
func (c *cluster) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return proc.Tether(t, c.bin, stdin, append(args, c.storeFlags()...)...)
}

// startNode starts n's `tether serve` (on a free port the first time, on
// the same address after that) and waits until ready (a path such as
// /healthz or /readyz) answers 200.
func (c *cluster) startNode(n *node, ready string) error {
	addr := n.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := append([]string{"serve", "--addr", addr, "--node-name", n.name, "--log-format", "json",
		"--trusted-proxies", "127.0.0.1"}, c.storeFlags()...)
	p, err := c.run.Start(n.name, c.bin, args...)
	if err != nil {
		return err
	}
	n.proc = p
	if n.addr == "" {
		if n.url, err = p.Listening(); err != nil {
			return err
		}
		n.addr = strings.TrimPrefix(n.url, "http://")
	}
	return c.WaitOK(p, n.url+ready)
}

// redisArgs are the test's redis-server's arguments, with its data in dir.
func redisArgs(dir string) []string {
	return []string{"--dir", dir, "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"}
}

// startRedis starts the test's redis-server on a free port, keeping its
// data in an append-only file in the run's directory.
func (c *cluster) startRedis(t *testing.T, bin string) *redisServer {
	t.Helper()
	r := &redisServer{bin: bin, dir: filepath.Join(c.run.Dir, "redis-data")}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.proc, r.addr, err = c.run.StartRedis("redis", bin, redisArgs(r.dir)...); err != nil {
		t.Fatal(err)
	}
	return r
}

// restartRedis shuts the test's Redis down with SHUTDOWN (which writes its
// append-only file out) and starts it again on the same port, with its old
// directory or, if keepData is false, a new empty one. In between, once
// the server has exited, it calls whileDown. It returns when the server
// answers PING again: the time just before SHUTDOWN was sent, the time it
// had exited, and the time of that PING's answer.
func (c *cluster) restartRedis(t *testing.T, keepData bool, whileDown func()) (down, exited, up time.Time) {
	t.Helper()
	down = time.Now()
	c.redis.proc.MarkStopped()
	if _, err := proc.RedisDo(c.redis.addr, "SHUTDOWN"); err != nil {
		t.Fatalf("SHUTDOWN: %v", err)
	}
	select {
	case <-c.redis.proc.Done():
	case <-time.After(proc.StopTimeout):
		t.Fatalf("redis-server still runs %v after SHUTDOWN", proc.StopTimeout)
	}
	exited = time.Now()
	whileDown()
	if !keepData {
		c.redis.dir += "-new"
		if err := os.MkdirAll(c.redis.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := c.run.StartRedisAt("redis", c.redis.bin, c.redis.addr, redisArgs(c.redis.dir)...)
	if err != nil {
		t.Fatal(err)
	}
	c.redis.proc = p
	return down, exited, time.Now()
}

// startNginx starts nginx with the configuration of examples/nginx for
// the three nodes, on a free port.
func (c *cluster) startNginx(t *testing.T, bin string) {
	t.Helper()
	var upstreams []string
	for _, n := range c.nodes {
		upstreams = append(upstreams, n.addr)
	}
	lb := proxy.Nginx(t, c.run, c.Client, bin, nginxTemplate, map[string]any{"Upstreams": upstreams}, "/healthz", http.StatusOK)
	c.nginx, c.lb = lb.Proc, lb.URL
}

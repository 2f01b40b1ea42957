package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// The bounds of waiting for something to happen: generous, since they only
// end a test that has already gone wrong. None is a time limit on speed.
const (
	startTimeout = 30 * time.Second // a process to start answering
	stopTimeout  = 15 * time.Second // a process to exit after SIGTERM
	pollEvery    = 5 * time.Millisecond
)

// serverRaceEnv, set to 1, builds the tether binary with -race. Off by
// default, as in e2e/browser: argon2id is about twenty times slower under
// the race detector. The server's code runs under -race in its own tests.
const serverRaceEnv = "TETHER_E2E_SERVER_RACE"

// keepEnv, set, keeps the run's directory even when the test passes.
const keepEnv = "TETHER_E2E_KEEP"

// nginxTemplate is the configuration the test runs, from examples/.
const nginxTemplate = "../../examples/nginx/nginx.conf.tmpl"

// A cluster is everything one test runs: Redis, three tether nodes, nginx.
type cluster struct {
	dir   string // the run's directory: logs, Redis's data, nginx's prefix
	bin   string // the tether binary
	pg    string // the PostgreSQL URL of the test's schema
	redis *redisServer
	nodes []*node // node-a, node-b, node-c
	lb    string  // nginx: http://127.0.0.1:PORT
	nginx *proc
	http  *http.Client

	mu    sync.Mutex // guards procs
	procs []*proc    // every process started, for the cleanup
}

// A node is one `tether serve`.
type node struct {
	name string // its --node-name, in X-Tether-Node
	addr string // 127.0.0.1:PORT, once it has listened
	url  string // http://addr
	proc *proc
}

// redisServer is the test's own redis-server.
type redisServer struct {
	addr string // 127.0.0.1:PORT
	dir  string // its --dir, where the append-only file is
	proc *proc
}

// url is the --sessions URL of the nodes.
func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

// newCluster checks for the services, builds tether, and starts Redis,
// creates users, starts the three nodes and nginx in front of them. All is
// torn down when the test ends, failed or not.
func newCluster(t *testing.T, users ...string) *cluster {
	t.Helper()
	nginxBin, err := lookPath("nginx", "/usr/sbin/nginx")
	testkit.NeedService(t, "nginx", err)
	redisBin, err := lookPath("redis-server", "/usr/bin/redis-server")
	testkit.NeedService(t, "redis-server", err)
	newPool := testkit.PostgresSchema(t) // its cleanup runs after ours
	pool, err := newPool()
	if err != nil {
		t.Fatal(err)
	}
	schema := pool.Config().ConnConfig.RuntimeParams["search_path"]

	dir, err := os.MkdirTemp("", "tether-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	// Readable by whoever nginx's workers run as.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{dir: dir, http: newClient()}
	t.Cleanup(func() { c.cleanup(t) })

	c.pg = postgresURL(t, schema)
	c.bin = buildTether(t, dir)
	c.redis = c.startRedis(t, redisBin)

	for _, name := range users {
		c.cli(t, password+"\n", "user", "add", name, "--password-stdin")
	}
	// The users are in the test's schema, not anywhere else: the nodes
	// honour search_path from the URL.
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM users").Scan(&n); err != nil || n != len(users) {
		t.Fatalf("users in schema %s: %d, %v; want %d", schema, n, err, len(users))
	}

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

// lookPath finds a command in PATH, or else at path (nginx is in
// /usr/sbin, which a user's PATH may lack).
func lookPath(name, path string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s is neither in PATH nor at %s (Debian package %s)", name, path, name)
	}
	return path, nil
}

// postgresURL returns the URL of the test database (testkit.PostgresEnv)
// with search_path set to schema: pgx passes it to the server as a runtime
// parameter of every connection.
func postgresURL(t *testing.T, schema string) string {
	t.Helper()
	raw := os.Getenv(testkit.PostgresEnv)
	if raw == "" {
		raw = testkit.DefaultPostgres
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s: this test needs a postgres:// URL (tether's --accounts takes no other form)", testkit.PostgresEnv)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// buildTether builds cmd/tether from this tree into dir.
func buildTether(t *testing.T, dir string) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building tether needs the go command: %v", err)
	}
	bin := filepath.Join(dir, "tether")
	args := []string{"build", "-o", bin}
	if os.Getenv(serverRaceEnv) == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command(gocmd, append(args, "github.com/tetherauth/tether/cmd/tether")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tether: %v\n%s", err, out)
	}
	return bin
}

// storeFlags are the flags of every tether command of the cluster.
func (c *cluster) storeFlags() []string {
	return []string{"--data", filepath.Join(c.dir, "unused.db"), "--sessions", c.redis.url(), "--accounts", c.pg}
}

// cli runs a tether command on the cluster's stores with stdin as its
// input, and returns its standard output.
func (c *cluster) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.bin, append(args, c.storeFlags()...)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tether %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
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
	p, err := c.start(n.name, c.bin, args...)
	if err != nil {
		return err
	}
	n.proc = p
	if n.addr == "" {
		if n.url, err = p.listening(); err != nil {
			return err
		}
		n.addr = strings.TrimPrefix(n.url, "http://")
		if host, _, _ := net.SplitHostPort(n.addr); host != "127.0.0.1" {
			return fmt.Errorf("%s listens on %s, want 127.0.0.1", n.name, n.addr)
		}
	}
	return c.waitOK(p, n.url+ready)
}

// waitOK polls GET url until it answers 200, while p runs.
func (c *cluster) waitOK(p *proc, url string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		res, err := c.http.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if p.exited() {
			return fmt.Errorf("%s exited before GET %s answered 200: %v\n%s", p.name, url, p.err, p.tail(40))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: no 200 within %v (last: %v)\n%s", url, startTimeout, err, p.tail(40))
		}
		time.Sleep(pollEvery)
	}
}

// startRedis starts the test's redis-server on a free port, keeping its
// data in an append-only file in the run's directory.
func (c *cluster) startRedis(t *testing.T, bin string) *redisServer {
	t.Helper()
	r := &redisServer{dir: filepath.Join(c.dir, "redis-data")}
	var err error
	for range 3 { // a free port may be taken before Redis binds it
		var port int
		if port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = c.runRedis(bin, r); err == nil {
			return r
		}
	}
	t.Fatal(err)
	return nil
}

// runRedis starts redis-server at r.addr with r.dir, and waits for PING.
func (c *cluster) runRedis(bin string, r *redisServer) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(r.addr)
	p, err := c.start("redis", bin, "--port", port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no")
	if err != nil {
		return err
	}
	r.proc = p
	deadline := time.Now().Add(startTimeout)
	for {
		pong, err := redisDo(r.addr, "PING")
		if err == nil && pong == "PONG" {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("redis-server exited: %v\n%s", p.err, p.tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server: no PONG within %v: %v\n%s", startTimeout, err, p.tail(20))
		}
		time.Sleep(pollEvery)
	}
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
	if _, err := redisDo(c.redis.addr, "SHUTDOWN"); err != nil {
		t.Fatalf("SHUTDOWN: %v", err)
	}
	select {
	case <-c.redis.proc.done:
	case <-time.After(stopTimeout):
		t.Fatalf("redis-server still runs %v after SHUTDOWN", stopTimeout)
	}
	c.redis.proc.markStopped()
	exited = time.Now()
	whileDown()
	if !keepData {
		c.redis.dir += "-new"
	}
	if err := c.runRedis(c.redis.proc.cmd.Path, c.redis); err != nil {
		t.Fatal(err)
	}
	return down, exited, time.Now()
}

// redisDo sends one command to the Redis at addr and returns its answer, a
// simple string or an integer. A connection closed without an answer, as
// after SHUTDOWN, is an empty answer.
func redisDo(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if errors.Is(err, io.EOF) && line == "" {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("redis: %s", line[1:])
	case strings.HasPrefix(line, "+"), strings.HasPrefix(line, ":"):
		return line[1:], nil
	}
	return "", fmt.Errorf("redis: unexpected answer %q", line)
}

// startNginx writes the configuration of examples/nginx for the three
// nodes and starts nginx with it on a free port.
func (c *cluster) startNginx(t *testing.T, bin string) {
	t.Helper()
	tmpl, err := template.ParseFiles(nginxTemplate)
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(c.dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(prefix, "nginx.conf")
	var upstreams []string
	for _, n := range c.nodes {
		upstreams = append(upstreams, n.addr)
	}
	for range 3 { // a free port may be taken before nginx binds it
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var b bytes.Buffer
		if err := tmpl.Execute(&b, map[string]any{"Listen": listen, "Upstreams": upstreams}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		// One process (master_process off), so that nothing outlives the
		// test if it is killed: see procAttr.
		p, err := c.start("nginx", bin, "-p", prefix, "-c", conf, "-e", "stderr", "-g", "daemon off; master_process off;")
		if err != nil {
			t.Fatal(err)
		}
		c.nginx, c.lb = p, "http://"+listen
		if err = c.waitOK(p, c.lb+"/healthz"); err == nil {
			return
		}
		if !p.exited() {
			t.Fatal(err)
		}
		t.Logf("nginx on %s: %v; trying another port", listen, err)
	}
	t.Fatal("nginx did not start on any of 3 free ports")
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanup stops every process still running, last started first, says
// which exited by themselves, and shows their logs if the test failed.
// The run's directory is removed if the test passed.
func (c *cluster) cleanup(t *testing.T) {
	c.mu.Lock()
	procs := c.procs
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p.exited() && !p.wasStopped() {
			t.Errorf("%s exited by itself: %v", p.name, p.err)
		}
		if err := p.stop(); err != nil {
			t.Errorf("stopping %s: %v", p.name, err)
		}
	}
	c.http.CloseIdleConnections()
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("%s reports a data race", l)
		}
	}
	if t.Failed() {
		for _, l := range logs {
			t.Logf("--- %s (its last lines) ---\n%s", filepath.Base(l), tailFile(l, 40))
		}
	}
	if t.Failed() || os.Getenv(keepEnv) != "" {
		t.Logf("logs, nginx's configuration and Redis's data kept in %s", c.dir)
	} else {
		os.RemoveAll(c.dir)
	}
}

package failover

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// masterName is the Sentinels' name of the primary.
const masterName = "tether"

// The Sentinels' settings: a fast failover.
const (
	downAfter       = 1000 * time.Millisecond // a primary silent this long is down, for one Sentinel
	failoverTimeout = 5000 * time.Millisecond // a failover not done in this time is tried again
	quorum          = 2                       // of the three Sentinels, how many must agree it is down
	parallelSyncs   = 1
)

// password is every user's password.
const password = "correct horse battery staple"

// A deployment is everything the test runs: Redis under Sentinel and two
// tether nodes.
type deployment struct {
	*web.Client
	run       *proc.Run
	redisBin  string
	bin       string // the tether binary
	pg        string // the PostgreSQL URL of the test's schema
	primary   *redisNode
	replica   *redisNode
	sentinels []*redisNode
	nodes     []*node // node-a, node-b
}

// A redisNode is a redis-server or a Sentinel the test started.
type redisNode struct {
	name string
	addr string // 127.0.0.1:PORT
	dir  string // its --dir: its data, or the Sentinel's configuration
	proc *proc.Proc
}

// A node is one `tether serve`.
type node struct {
	name string // its --node-name, in X-Tether-Node
	url  string // http://127.0.0.1:PORT
	proc *proc.Proc
}

// newDeployment checks for the services, builds tether, starts the Redis
// primary, its replica and three Sentinels, creates users, and starts the
// two nodes. All is torn down when the test ends, failed or not.
func newDeployment(t *testing.T, users ...string) *deployment {
	t.Helper()
	redisBin := proc.NeedRedis(t)
	accounts := proc.NewAccounts(t) // its cleanup runs after ours

	testkit.SkipShort(t, "starts tether, Redis and PostgreSQL processes")
	d := &deployment{run: proc.NewRun(t, "tether-failover-"), Client: web.NewClient(t), redisBin: redisBin}
	d.pg = accounts.URL
	d.bin = proc.BuildTether(t, d.run.Dir)
	d.startRedis(t)

	for _, name := range users {
		d.cli(t, password+"\n", "user", "add", name, "--password-stdin", "--create")
	}
	accounts.ExpectUsers(t, len(users))

	for _, name := range []string{"node-a", "node-b"} {
		d.nodes = append(d.nodes, &node{name: name})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(d.nodes))
	for i, n := range d.nodes {
		wg.Go(func() { errs[i] = d.startNode(n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return d
}

// sessionsURL is the nodes' --sessions: the three Sentinels.
func (d *deployment) sessionsURL() string {
	var addrs []string
	for _, s := range d.sentinels {
		addrs = append(addrs, s.addr)
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/" + masterName
}

// storeFlags are the flags of every tether command of the deployment.
func (d *deployment) storeFlags() []string {
	return []string{"--data", filepath.Join(d.run.Dir, "unused.db"), "--sessions", d.sessionsURL(), "--accounts", d.pg}
}

// cli runs a tether command on the deployment's stores with stdin as its
// input.
func (d *deployment) cli(t *testing.T, stdin string, args ...string) {
	t.Helper()
	proc.Tether(t, d.bin, stdin, append(args, d.storeFlags()...)...)
}

// startNode starts n's `tether serve` on a free port, with
// --redis-min-replicas 1, and waits until /readyz answers 200.
func (d *deployment) startNode(n *node) error {
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--node-name", n.name, "--log-format", "json",
		"--redis-min-replicas", "1"}, d.storeFlags()...)
	p, err := d.run.Start(n.name, d.bin, args...)
	if err != nil {
		return err
	}
	n.proc = p
	if n.url, err = p.Listening(); err != nil {
		return err
	}
	return d.WaitOK(p, n.url+"/readyz")
}

// redisArgs are the arguments of both redis-servers, with their data in
// dir. The replica serves a full sync at once (no diskless-sync delay),
// which is how the old primary rejoins.
func redisArgs(dir string) []string {
	return []string{"--dir", dir, "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction",
		"--repl-diskless-sync-delay", "0"}
}

// startRedis starts the primary, its replica, and the three Sentinels
// watching them, and waits until every Sentinel sees the replica and the
// other two Sentinels.
func (d *deployment) startRedis(t *testing.T) {
	t.Helper()
	d.primary = d.startServer(t, "redis-primary")
	d.replica = d.startServer(t, "redis-replica", "--replicaof", "127.0.0.1", port(d.primary.addr))
	testkit.WaitFor(t, "the replica to sync with the primary", func() bool { return linkUp(d.replica.addr) })

	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s %[3]d\n"+
		"sentinel down-after-milliseconds %[1]s %[4]d\n"+
		"sentinel failover-timeout %[1]s %[5]d\n"+
		"sentinel parallel-syncs %[1]s %[6]d\n",
		masterName, port(d.primary.addr), quorum, downAfter.Milliseconds(), failoverTimeout.Milliseconds(), parallelSyncs)
	for i := range 3 {
		name := fmt.Sprintf("sentinel-%d", i+1)
		dir := d.mkdir(t, name)
		file := filepath.Join(dir, "sentinel.conf") // a file Sentinel can rewrite
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p, addr, err := d.run.StartRedis(name, d.redisBin, file, "--sentinel", "--dir", dir)
		if err != nil {
			t.Fatal(err)
		}
		d.sentinels = append(d.sentinels, &redisNode{name: name, addr: addr, dir: dir, proc: p})
	}
	want := fmt.Sprintf("status=ok,address=%s,slaves=1,sentinels=3", d.primary.addr)
	for _, s := range d.sentinels {
		testkit.WaitFor(t, s.name+" to see the replica and the other Sentinels", func() bool {
			info, err := proc.RedisDo(s.addr, "INFO", "sentinel")
			return err == nil && strings.Contains(info, want)
		})
	}
	if ok, err := proc.RedisDo(d.sentinels[0].addr, "SENTINEL", "CKQUORUM", masterName); err != nil {
		t.Fatalf("SENTINEL CKQUORUM: %v", err)
	} else {
		t.Logf("Sentinels: %s", ok)
	}
}

// startServer starts a redis-server on a free port with its data in a
// directory of its own.
func (d *deployment) startServer(t *testing.T, name string, args ...string) *redisNode {
	t.Helper()
	r := &redisNode{name: name, dir: d.mkdir(t, name)}
	var err error
	if r.proc, r.addr, err = d.run.StartRedis(name, d.redisBin, append(redisArgs(r.dir), args...)...); err != nil {
		t.Fatal(err)
	}
	return r
}

// restartAsReplica starts r again, on its address and with its data, as a
// replica of primary: how an operator brings a crashed primary back.
func (d *deployment) restartAsReplica(t *testing.T, r *redisNode, primary string) {
	t.Helper()
	args := append(redisArgs(r.dir), "--replicaof", "127.0.0.1", port(primary))
	p, err := d.run.StartRedisAt(r.name, d.redisBin, r.addr, args...)
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p
}

func (d *deployment) mkdir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(d.run.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// masterOf returns the address Sentinel s gives for the primary.
func masterOf(s *redisNode) (string, error) {
	a, err := proc.RedisStrings(s.addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
	if err != nil {
		return "", err
	}
	if len(a) != 2 {
		return "", fmt.Errorf("%s: SENTINEL GET-MASTER-ADDR-BY-NAME answered %q", s.name, a)
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// settled reports whether every Sentinel names addr the primary and
// takes it for up, with no failover under way: SENTINEL MASTER's flags are
// just "master".
func (d *deployment) settled(addr string) bool {
	for _, s := range d.sentinels {
		kv, err := proc.RedisStrings(s.addr, "SENTINEL", "MASTER", masterName)
		if err != nil || len(kv)%2 != 0 {
			return false
		}
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		if net.JoinHostPort(m["ip"], m["port"]) != addr || m["flags"] != "master" {
			return false
		}
	}
	return true
}

// role returns the role line of INFO replication of the Redis at addr:
// "master" or "slave".
func role(addr string) (string, error) {
	info, err := proc.RedisDo(addr, "INFO", "replication")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no role in INFO replication of %s", addr)
}

// linkUp reports whether the Redis at addr is a replica in sync with its
// primary.
func linkUp(addr string) bool {
	info, err := proc.RedisDo(addr, "INFO", "replication")
	return err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

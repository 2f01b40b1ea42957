package chaos

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
	"github.com/tetherauth/tether/storetest/faultnet"
)

// The documented bounds the Redis scenarios hold tether to.
const (
	// maxStaleness is how long a node may answer from its near-cache
	// without news from its feed (SES-14): every node runs with
	// --max-staleness set to it, below the default of 1 s to show that
	// the bound is what the flag says.
	maxStaleness = 500 * time.Millisecond
	// storeTimeout is every store call's deadline (MISC-05): every node
	// runs with --store-timeout set to it (its default).
	storeTimeout = time.Second
	// failMargin is what I3 adds to storeTimeout for a 503 to arrive: the
	// request's own work and a loaded machine's scheduling.
	failMargin = 2 * time.Second
	// hashWait is what I3 adds for a request that checks a password (a
	// sign-in, a password change): before its last store call it may wait
	// for an argon2 slot, up to the hasher's default wait, and then hash.
	// (A sign-in was answered 503 after 3.15 s on a loaded CI machine:
	// its hash comes between store calls, the last of which may take the
	// whole store deadline.)
	hashWait = time.Second
)

// A redisServer is a redis-server of the scenario's own.
type redisServer struct {
	addr string
	dir  string
	args []string
	proc *proc.Proc
}

// startRedis starts a redis-server on a free port, with its data in a
// directory of its own, no snapshots, and args.
func (s *scenario) startRedis(bin string, args ...string) *redisServer {
	s.t.Helper()
	r := &redisServer{dir: s.dataFile("redis")}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	r.args = append([]string{"--dir", r.dir, "--save", "", "--maxmemory-policy", "noeviction"}, args...)
	var err error
	if r.proc, r.addr, err = s.run.StartRedis("redis", bin, r.args...); err != nil {
		s.t.Fatal(err)
	}
	return r
}

// restartRedis starts r again on its address, with whatever its directory
// holds.
func (s *scenario) restartRedis(bin string, r *redisServer) {
	s.t.Helper()
	p, err := s.run.StartRedisAt("redis", bin, r.addr, r.args...)
	if err != nil {
		s.t.Fatal(err)
	}
	r.proc = p
}

// proxy puts a faultnet proxy in front of addr, closed when the test ends.
func (s *scenario) proxy(addr string) *faultnet.Proxy {
	s.t.Helper()
	p, err := faultnet.Listen(addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { p.Close() })
	return p
}

// redisNodes starts two nodes with sessions in the Redis at addrs[i]
// (accounts in a SQLite file they share), the users of workers, and sets
// the ledger's bounds: a node that did not acknowledge a revocation
// learns of it through the feed, within maxStaleness.
func (s *scenario) redisNodes(workers int, addrs ...string) []*node {
	s.t.Helper()
	data := s.dataFile("accounts.db")
	admin := []string{"--data", data, "--sessions", "redis://" + addrs[0] + "/0"} // the address the deployment records
	s.flags = admin
	s.addUsers(users(workers + 1)...)
	var nodes []*node
	for i, a := range addrs {
		s.flags = []string{"--data", data, "--sessions", "redis://" + a + "/0"}
		nodes = append(nodes, s.startNode("node-"+strconv.Itoa(i)))
	}
	s.flags = admin // for the commands that follow
	s.ledger.staleBound = maxStaleness
	s.ledger.fastFail = storeTimeout + failMargin
	return nodes
}

// urlsOf returns the nodes' URLs.
func urlsOf(nodes []*node) func() []string {
	var u []string
	for _, n := range nodes {
		u = append(u, n.url)
	}
	return func() []string { return u }
}

// TestChaosRedisKill9: Redis (appendonly yes, appendfsync always) killed
// with SIGKILL under load, then started again three ways: on its data,
// with its data gone, and with the tail of its append-only file lost (a
// host crash, simulated by truncating the file to what was synced at the
// last acknowledged action).
func TestChaosRedisKill9(t *testing.T) {
	for _, c := range []struct {
		name, title, what string
		after             func(s *scenario, r *redisServer, sizes *aofSizes, lastAck time.Time)
	}{
		{"Restart", "Redis kill -9 and restart",
			"Two nodes, sessions in one Redis (appendonly yes, appendfsync always); Redis killed with SIGKILL under load and started again on its data.",
			func(*scenario, *redisServer, *aofSizes, time.Time) {}},
		{"DataGone", "Redis kill -9, restarted with its data gone",
			"As above, but Redis comes back empty (its directory wiped): every session is gone, so people are signed out (never let in), and sign-ins work again; " +
				"revoked tokens stay refused: their revocations are in the account store's journal too, and disabled clients there.",
			func(s *scenario, r *redisServer, _ *aofSizes, _ time.Time) {
				if err := os.RemoveAll(r.dir); err != nil {
					s.t.Fatal(err)
				}
				if err := os.MkdirAll(r.dir, 0o755); err != nil {
					s.t.Fatal(err)
				}
				s.ledger.destroyed.Store(true)
			}},
		{"AOFTail", "Redis loses the tail of its append-only file",
			"As above, and the append-only file is cut back to its size at the first sample (taken every 20 ms) after the last acknowledged action: " +
				"what a host crash may lose when every acknowledged write was fsynced before its answer (appendfsync always). No acknowledged action may come back undone.",
			cutAOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			redisBin := proc.NeedRedis(t)
			s := newScenario(t, c.title, c.what)
			r := s.startRedis(redisBin, "--appendonly", "yes", "--appendfsync", "always")
			const workers = 4
			nodes := s.redisNodes(workers, r.addr, r.addr)
			s.enableTokens(workers, nodes[0], nodes[0].url)
			s.probeTokens(nodes)
			for _, n := range nodes { // SES-15: serve says what a revocation survives
				if !n.logged("revocation durability") || n.logged("revocations can be undone by a host crash") {
					t.Errorf("%s: no 'revocation durability' at start, or a warning of host crashes, with appendfsync always", n.name)
				}
			}
			sizes := sampleAOF(t, r)
			killed := s.killUnderLoad(nodes, workers, func() {
				if err := r.proc.Kill(); err != nil {
					t.Fatal(err)
				}
			})
			c.after(s, r, sizes, s.ledger.lastAck())
			s.restartRedis(redisBin, r)
			s.fig.Recovery = s.recover(nodes, killed)
			s.ledger.verify(t.Context(), urlsOf(nodes)()...)
			s.ledger.verifyTokens(t.Context(), urlsOf(nodes)()...)
			x, _ := s.ledger.signIn(t.Context(), nodes[0].url, users(workers + 1)[workers], password, web.NewDevice("after"))
			if x == nil {
				t.Error("a sign-in after Redis came back was refused")
			}
			s.finish(nodes...)
		})
	}
}

// killUnderLoad puts workers under load on nodes, kills their store with
// kill after 1.5 s, lets the load meet the dead store for 0.5 s (the nodes
// answer 503), stops the load and returns when the store was killed.
func (s *scenario) killUnderLoad(nodes []*node, workers int, kill func()) (killed time.Time) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(s.t.Context())
	defer cancel()
	wait := s.ledger.load(ctx, urlsOf(nodes), loadOpts{workers: workers, ops: 2000, pace: 2 * time.Millisecond, passwords: true})
	time.Sleep(1500 * time.Millisecond)
	kill()
	killed = time.Now()
	s.fig.Faults++
	time.Sleep(500 * time.Millisecond)
	cancel()
	wait()
	return killed
}

// recover waits until every node's /readyz answers 200 again (it asks
// the session store) and returns how long that took since from.
func (s *scenario) recover(nodes []*node, from time.Time) time.Duration {
	s.t.Helper()
	for _, n := range nodes {
		testkit.WaitFor(s.t, n.name+" to be ready again", func() bool { return s.status(n.url+"/readyz", nil) == http.StatusOK })
	}
	return time.Since(from)
}

// aofSizes are samples of the size of a Redis's append-only file.
type aofSizes struct {
	file string
	mu   sync.Mutex // guards at and size
	at   []time.Time
	size []int64
}

// sampleAOF samples the size of r's newest append-only file every 20 ms
// until the test ends.
func sampleAOF(t *testing.T, r *redisServer) *aofSizes {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(r.dir, "appendonlydir", "*.incr.aof"))
	if len(files) == 0 {
		t.Fatalf("no append-only file in %s", r.dir)
	}
	slices.SortFunc(files, func(a, b string) int { return aofSeq(a) - aofSeq(b) })
	a := &aofSizes{file: files[len(files)-1]}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := os.Stat(a.file); err == nil {
				a.mu.Lock()
				a.at, a.size = append(a.at, time.Now()), append(a.size, st.Size())
				a.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return a
}

// aofSeq is the sequence number of an append-only file called
// appendonly.aof.N.incr.aof.
func aofSeq(path string) int {
	parts := strings.Split(filepath.Base(path), ".")
	if len(parts) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(parts[2])
	return n
}

// after returns the size of the first sample taken after t, or -1 if
// there is none.
func (a *aofSizes) after(t time.Time) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, at := range a.at {
		if at.After(t) {
			return a.size[i]
		}
	}
	return -1
}

// cutAOF cuts r's append-only file back to its size at the first sample
// after lastAck: every acknowledged write is in it (appendfsync always
// fsyncs before Redis answers), what came after may be lost by a host
// crash.
func cutAOF(s *scenario, r *redisServer, sizes *aofSizes, lastAck time.Time) {
	s.t.Helper()
	size := sizes.after(lastAck)
	st, err := os.Stat(sizes.file)
	if err != nil {
		s.t.Fatal(err)
	}
	if size < 0 || size > st.Size() {
		size = st.Size()
	}
	if err := os.Truncate(sizes.file, size); err != nil {
		s.t.Fatal(err)
	}
	s.fig.note("the append-only file cut from %d to %d bytes", st.Size(), size)
}

// TestChaosRedisFaults: two nodes, each reaching one Redis through a TCP
// proxy of its own, under load: Redis refused to both, frozen (SIGSTOP),
// and cut off from one node only (its proxy drops everything, as a
// partition does). While the store fails, requests that need it answer
// 503 within the store's deadline; a node cut off from its feed stops
// answering from its near-cache within maxStaleness, so a session signed
// out on the other node is refused there within that bound.
func TestChaosRedisFaults(t *testing.T) {
	redisBin := proc.NeedRedis(t)
	s := newScenario(t, "Redis refused, frozen, and partitioned from one node",
		"Two nodes, each reaching one Redis (no persistence) through a TCP proxy of the test's, under load: "+
			"connections refused to both for 2 s; Redis frozen with SIGSTOP for 3 s; then three times, one node's path to Redis "+
			"blackholed (every byte dropped, nothing answered) while a session is signed out on the other node, which must be refused "+
			"on the cut-off node within the staleness bound.")
	r := s.startRedis(redisBin, "--appendonly", "no")
	proxies := []*faultnet.Proxy{s.proxy(r.addr), s.proxy(r.addr)}
	const workers = 4
	nodes := s.redisNodes(workers, proxies[0].Addr(), proxies[1].Addr())
	stream := s.proxy(nodes[1].addr) // the remote verifier's path to node-1's stream
	s.enableTokens(workers, nodes[1], "http://"+stream.Addr())
	s.probeTokens(nodes)
	cutOff := s.addMachine("partitioned", "read")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := s.ledger.load(ctx, urlsOf(nodes), loadOpts{workers: workers, ops: 4000, pace: 2 * time.Millisecond, passwords: true})
	time.Sleep(time.Second)

	// Refused.
	for _, p := range proxies {
		p.Set(faultnet.Refuse)
	}
	s.fig.Faults++
	time.Sleep(2 * time.Second)
	for _, p := range proxies {
		p.Set(faultnet.Pass)
	}
	s.fig.Recovery = max(s.fig.Recovery, s.recover(nodes, time.Now()))
	time.Sleep(500 * time.Millisecond)

	// Frozen.
	if err := r.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.fig.Faults++
	time.Sleep(3 * time.Second)
	if err := r.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s.fig.Recovery = max(s.fig.Recovery, s.recover(nodes, time.Now()))

	// Partitioned from node-1 only.
	probe := users(workers + 1)[workers]
	a, b := nodes[0], nodes[1]
	for range 3 {
		x, _ := s.ledger.signIn(t.Context(), a.url, probe, password, web.NewDevice("probe"))
		if x == nil {
			t.Fatal("the probe's sign-in was refused")
		}
		if got := s.ledger.check(t.Context(), b.url, x); got != http.StatusOK {
			t.Fatalf("%s: the probe's fresh session got %d, want 200", b.name, got)
		}
		y := s.ledger.issue(t.Context(), a.url, cutOff)
		if y == nil {
			t.Fatal("the probe's token was refused")
		}
		proxies[1].Set(faultnet.Blackhole)
		s.fig.Faults++
		s.ledger.signOut(t.Context(), a.url, x)
		s.ledger.revoke(t.Context(), a.url, y)
		if x.state != revoked || y.state != revoked {
			t.Fatal("the probe's sign-out or token revocation was not acknowledged")
		}
		testkit.WaitFor(s.t, b.name+", cut off, to stop accepting a session signed out on "+a.name, func() bool {
			return s.ledger.check(t.Context(), b.url, x) != http.StatusOK
		})
		testkit.WaitFor(s.t, b.name+", cut off, to stop calling active a token revoked on "+a.name, func() bool {
			_, active := s.ledger.introspect(t.Context(), b.url, y)
			return !active
		})
		testkit.WaitFor(s.t, "the remote verifier following "+b.name+" to stop accepting a token revoked on "+a.name, func() bool {
			return s.ledger.verifyRemote(t.Context(), y) != nil
		})
		proxies[1].Set(faultnet.Pass)
		s.fig.Recovery = max(s.fig.Recovery, s.recover(nodes, time.Now()))
	}
	s.cutRemote(stream, a.url)
	cancel()
	wait()
	s.ledger.verify(t.Context(), urlsOf(nodes)()...)
	s.ledger.verifyTokens(t.Context(), urlsOf(nodes)()...)
	s.finish(nodes...)
}

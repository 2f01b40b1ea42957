package chaos

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// password is every user's first password.
const password = "correct horse battery staple"

// The bounds of I4: a node's goroutines after a scenario, its load
// stopped and its clients' connections closed, may exceed those of the
// same node freshly started by goroutineSlack (pools and feed connections
// grown under load); its resident memory stays under rssMax.
const (
	goroutineSlack = 40
	rssMax         = 512 << 20
)

// The tether binary, built once for the package.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos report:", err)
		code = 1
	}
	os.Exit(code)
}

// tetherBin builds tether once for every scenario of the run.
func tetherBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tether-chaos-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
		binPath = proc.BuildTether(t, dir)
	})
	if binPath == "" {
		t.Fatal("building tether failed in an earlier test")
	}
	return binPath
}

// A scenario is one test's processes, clients, ledger and figures.
type scenario struct {
	t      *testing.T
	run    *proc.Run
	client *web.Client
	bin    string
	flags  []string // the store flags of every tether command
	ledger *ledger
	fig    *figures
}

// newScenario starts a scenario called name, described by what (its
// section of the report). Its figures go into the report when it passes.
func newScenario(t *testing.T, name, what string) *scenario {
	t.Helper()
	testkit.SkipShort(t, "starts tether, Redis and PostgreSQL processes")
	s := &scenario{t: t, run: proc.NewRun(t, "tether-chaos-"), client: web.NewClient(t), bin: tetherBin(t)}
	s.fig = &figures{Name: name, What: what, Command: "go test ./e2e/chaos -v -run '^" + t.Name() + "$'"}
	s.ledger = newLedger(s)
	t.Cleanup(func() {
		s.ledger.fill(s.fig)
		if !t.Failed() && !t.Skipped() {
			record(s.fig)
			t.Logf("figures: %s; %s", s.fig, strings.Join(s.fig.Notes, "; "))
		}
	})
	return s
}

// addUsers creates the users, each with password, on the scenario's
// stores.
func (s *scenario) addUsers(users ...string) {
	s.t.Helper()
	for _, u := range users {
		proc.Tether(s.t, s.bin, password+"\n", append([]string{"user", "add", u, "--password-stdin", "--create"}, s.flags...)...)
	}
}

// A node is one `tether serve`, always on the same address, so that it
// can be killed and started again where clients expect it.
type node struct {
	name string
	addr string // 127.0.0.1:PORT
	url  string // http://addr
	args []string
	proc *proc.Proc
	rss  int64 // the largest resident memory seen, bytes
	base int   // goroutines of the node freshly started
}

// startNode starts `tether serve` as name on a free port with the
// suite's staleness bound, store deadline and issuer, the scenario's
// store flags and extra, waits until /readyz answers 200, and
// counts the goroutines of the fresh node (see node.base).
func (s *scenario) startNode(name string, extra ...string) *node {
	s.t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		s.t.Fatal(err)
	}
	n := &node{name: name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	n.url = "http://" + n.addr
	n.args = append([]string{"serve", "--addr", n.addr, "--node-name", name, "--log-format", "json",
		"--max-staleness", maxStaleness.String(), "--store-timeout", storeTimeout.String(), "--issuer", issuer}, s.flags...)
	n.args = append(n.args, extra...)
	s.start(n)
	if n.base, err = n.proc.Goroutines(); err != nil {
		s.t.Fatal(err)
	}
	s.start(n)
	return n
}

// start starts n (again) and waits until its /readyz answers 200.
func (s *scenario) start(n *node) {
	s.t.Helper()
	p, err := s.run.Start(n.name, s.bin, n.args...)
	if err != nil {
		s.t.Fatal(err)
	}
	n.proc = p
	if err := s.client.WaitOK(p, n.url+"/readyz"); err != nil {
		s.t.Fatal(err)
	}
}

// logged reports whether n's log has a record whose msg is msg.
func (n *node) logged(msg string) bool {
	b, err := os.ReadFile(n.proc.Log)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
			return true
		}
	}
	return false
}

// sample records n's resident memory, and fails the test past rssMax (I4).
func (s *scenario) sample(n *node) {
	s.t.Helper()
	rss, err := n.proc.RSS()
	if err != nil {
		s.t.Fatal(err)
	}
	n.rss = max(n.rss, rss)
	if rss > rssMax {
		s.t.Errorf("I4: %s uses %d MiB of memory, over %d MiB", n.name, rss>>20, rssMax>>20)
	}
}

// finish checks I4 on every node, which it ends: each still runs (no
// crash), its memory stayed bounded, and once the clients' connections
// (the remote verifier's stream among them) are closed, it holds at most
// goroutineSlack more goroutines than when it was fresh.
func (s *scenario) finish(nodes ...*node) {
	s.t.Helper()
	if s.ledger.remote != nil {
		s.ledger.remote.stop()
	}
	s.client.HTTP.CloseIdleConnections()
	for _, n := range nodes {
		if n.proc.Exited() {
			s.t.Errorf("I4: %s has exited: %v\n%s", n.name, n.proc.Err(), n.proc.Tail(20))
			continue
		}
		s.sample(n)
	}
	time.Sleep(200 * time.Millisecond) // the server's side of the closed connections ends
	for _, n := range nodes {
		if n.proc.Exited() {
			continue
		}
		g, err := n.proc.Goroutines()
		if err != nil {
			s.t.Fatal(err)
		}
		s.fig.note("I4, %s: %d goroutines fresh, %d after; at most %d MiB of memory", n.name, n.base, g, n.rss>>20)
		if g > n.base+goroutineSlack {
			s.t.Errorf("I4: %s has %d goroutines after the scenario, %d when fresh: a leak", n.name, g, n.base)
		}
	}
}

// status returns the status of GET url as d (0 if it got no answer).
func (s *scenario) status(url string, d *web.Device) int {
	r, err := s.client.Send(s.t.Context(), http.MethodGet, url, d, nil)
	if err != nil {
		return 0
	}
	return r.Status
}

// dataFile is a SQLite file in the run's directory.
func (s *scenario) dataFile(name string) string { return filepath.Join(s.run.Dir, name) }

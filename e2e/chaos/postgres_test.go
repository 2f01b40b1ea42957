package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tetherauth/tether/internal/testkit"

	"github.com/tetherauth/tether/internal/testkit/proc"
	"github.com/tetherauth/tether/storetest/faultnet"
)

// TestChaosPostgres: one node with its accounts in PostgreSQL, reached
// through a TCP proxy of the test's, sessions in its SQLite file, under
// load: PostgreSQL refused for 2 s, then blackholed for 3 s. Sign-ins,
// password changes and account reads answer 503 within the store's
// deadline, /readyz too, and so do the OAuth endpoints, which read the
// client there; nothing hangs, and all is well again once the path heals.
func TestChaosPostgres(t *testing.T) {
	accounts := proc.NewAccounts(t)
	s := newScenario(t, "PostgreSQL refused and blackholed",
		"One node, accounts and throttles in PostgreSQL through a TCP proxy of the test's, sessions in its SQLite file, under load: "+
			"connections to PostgreSQL refused for 2 s, then blackholed (every byte dropped, nothing answered) for 3 s. "+
			"Machine tokens: the clients are in PostgreSQL, their revocations in the SQLite file.")
	u, err := url.Parse(accounts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := s.proxy(u.Host)
	u.Host = p.Addr()
	s.flags = []string{"--data", s.dataFile("tether.db"), "--accounts", u.String()}
	const workers = 4
	s.addUsers(users(workers)...)
	n := s.startNode("node")
	s.ledger.fastFail = storeTimeout + failMargin
	s.enableTokens(workers, n, n.url)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := s.ledger.load(ctx, urlsOf([]*node{n}), loadOpts{workers: workers, ops: 4000, pace: 2 * time.Millisecond, passwords: true})
	time.Sleep(time.Second)
	for _, f := range []struct {
		mode faultnet.Mode
		hold time.Duration
	}{{faultnet.Refuse, 2 * time.Second}, {faultnet.Blackhole, 3 * time.Second}} {
		p.Set(f.mode)
		s.fig.Faults++
		time.Sleep(f.hold)
		p.Set(faultnet.Pass)
		s.fig.Recovery = max(s.fig.Recovery, s.recover([]*node{n}, time.Now()))
		time.Sleep(500 * time.Millisecond)
	}
	cancel()
	wait()
	s.ledger.verify(t.Context(), n.url)
	s.ledger.verifyTokens(t.Context(), n.url)
	s.finish(n)
}

// TestChaosPostgresKill9: two nodes with their sessions and accounts in a
// PostgreSQL server of the test's, killed with SIGKILL (the postmaster
// and every process of it, as a crash) under load, then started again on
// its data: it recovers from its WAL. Meanwhile the nodes answer 503
// within the store's deadline; afterwards no acknowledged sign-in,
// sign-out, password change or token revocation is undone (SES-15:
// revocations commit with synchronous_commit on).
func TestChaosPostgresKill9(t *testing.T) {
	s := newScenario(t, "PostgreSQL kill -9 and restart",
		"Two nodes, sessions and accounts in one PostgreSQL server of the test's, under load (machine tokens too); "+
			"PostgreSQL's processes killed with SIGKILL and the server started again on its data.")
	pg := s.startPostgres()
	s.flags = []string{"--sessions", pg.url(), "--accounts", pg.url()}
	const workers = 4
	s.addUsers(users(workers + 1)...)
	nodes := []*node{s.startNode("node-0"), s.startNode("node-1")}
	s.ledger.staleBound = maxStaleness
	s.ledger.fastFail = storeTimeout + failMargin
	s.enableTokens(workers, nodes[0], nodes[0].url)
	s.probeTokens(nodes)

	killed := s.killUnderLoad(nodes, workers, func() { pg.kill(t) })
	s.startPostgresAgain(pg)
	s.fig.Recovery = s.recover(nodes, killed)
	s.ledger.verify(t.Context(), urlsOf(nodes)()...)
	s.ledger.verifyTokens(t.Context(), urlsOf(nodes)()...)
	s.finish(nodes...)
}

// A pgServer is a PostgreSQL server of the scenario's own, on a free
// port of 127.0.0.1, run as the postgres user when the test runs as root
// (postgres refuses to).
type pgServer struct {
	port int
	cred []string // setpriv's arguments before the command: run as postgres; none when not root
	args []string // postgres's
	proc *proc.Proc
}

// startPostgres makes a data directory with initdb and starts postgres
// on it; it skips the test (or fails it, when services are required)
// without PostgreSQL's server binaries.
func (s *scenario) startPostgres() *pgServer {
	s.t.Helper()
	initdb, err := exec.LookPath("initdb")
	testkit.NeedService(s.t, "initdb and postgres (PostgreSQL's server binaries on PATH)", err)
	pg := &pgServer{}
	dir := s.dataFile("pg")
	if err := os.Mkdir(dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		testkit.NeedService(s.t, "a postgres user to run the server as (the test runs as root)", err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			s.t.Fatal(err)
		}
		setpriv, err := exec.LookPath("setpriv")
		testkit.NeedService(s.t, "setpriv (util-linux), to run postgres as its user", err)
		pg.cred = []string{setpriv, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups"}
	}
	cmd := pg.command(initdb, "-D", dir, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
	if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		s.t.Fatalf("initdb: %v\n%s", err, out)
	}
	if pg.port, err = testkit.FreePort(); err != nil {
		s.t.Fatal(err)
	}
	bin, err := exec.LookPath("postgres")
	testkit.NeedService(s.t, "postgres (PostgreSQL's server binaries on PATH)", err)
	pg.args = pg.command(bin, "-D", dir, "-p", strconv.Itoa(pg.port), "-k", dir, "-c", "listen_addresses=127.0.0.1")
	s.startPostgresAgain(pg)
	s.t.Cleanup(func() { // a fast shutdown, before the run's cleanup: postgres's SIGTERM waits for its clients
		if !pg.proc.Exited() {
			pg.proc.MarkStopped()
			pg.proc.Signal(syscall.SIGINT)
			<-pg.proc.Done()
		}
	})
	return pg
}

// command is name and args, run as postgres's user.
func (pg *pgServer) command(name string, args ...string) []string {
	return slices.Concat(pg.cred, []string{name}, args)
}

// startPostgresAgain starts pg on its data directory and waits until it
// accepts connections. A server that exits at once because processes of
// the one killed before still hold its shared memory is started again.
func (s *scenario) startPostgresAgain(pg *pgServer) {
	s.t.Helper()
	testkit.WaitFor(s.t, "postgres to accept connections", func() bool {
		if pg.proc == nil || pg.proc.Exited() {
			p, err := s.run.Start("postgres", pg.args[0], pg.args[1:]...)
			if err != nil {
				s.t.Fatal(err)
			}
			p.MarkStopped() // an exit at start is retried, not a crash
			pg.proc = p
		}
		ctx, cancel := context.WithTimeout(s.t.Context(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.url())
		if err != nil {
			return false
		}
		defer c.Close(ctx)
		return c.Ping(ctx) == nil
	})
}

// url is the server's, for tether's --sessions and --accounts.
func (pg *pgServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=5", pg.port)
}

// kill kills the postmaster and every process it started with SIGKILL, as
// a crash would: what sat in their shared memory, and nowhere else, is
// gone.
func (pg *pgServer) kill(t *testing.T) {
	t.Helper()
	children := childrenOf(pg.proc.Pid())
	if err := pg.proc.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range children {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// childrenOf returns the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			if child, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

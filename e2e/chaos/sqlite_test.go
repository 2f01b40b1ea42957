package chaos

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
)

// killRounds is how many times the SQLite node is killed under load.
const killRounds = 5

// TestChaosSQLiteKill9: one node on its SQLite file, killed with SIGKILL
// under load and started again on the same file, killRounds times. Every
// acknowledged sign-in, sign-out and password change, and every
// acknowledged token revocation, must survive each crash (SQLite's WAL: a
// committed transaction outlives the process); the remote verifier, its
// stream gone with the node, fails closed and follows the new node.
func TestChaosSQLiteKill9(t *testing.T) {
	s := newScenario(t, "One node on SQLite: kill -9 under load",
		"One `tether serve` on its SQLite file; four users sign in, check their sessions, sign some out and change their passwords, "+
			"while the node is killed with SIGKILL and started again on the same file, 5 times. After each restart every session of the ledger is checked. "+
			"Machine tokens: each user's client gets tokens and revokes some, checked by introspection and by a remote verifier following the node's stream; "+
			"after each restart every token of the ledger is checked at both.")
	s.flags = []string{"--data", s.dataFile("tether.db")}
	const workers = 4
	s.addUsers(users(workers)...)
	n := s.startNode("node")
	s.enableTokens(workers, n, n.url)
	s.probeTokens([]*node{n})
	urls := func() []string { return []string{n.url} }

	for range killRounds {
		ctx, cancel := context.WithCancel(t.Context())
		wait := s.ledger.load(ctx, urls, loadOpts{workers: workers, ops: 1000, pace: 2 * time.Millisecond, passwords: true})
		time.Sleep(1500 * time.Millisecond)
		s.ledger.down.Store(true)
		if err := n.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		s.fig.Faults++
		killed := time.Now()
		cancel()
		wait()
		s.start(n)
		s.fig.Recovery = max(s.fig.Recovery, time.Since(killed))
		s.ledger.down.Store(false)
		s.ledger.verify(t.Context(), n.url)
		s.ledger.verifyTokens(t.Context(), n.url)
		s.sample(n)
	}
	s.finish(n)
}

// TestChaosSQLiteTwoProcesses: two nodes on one SQLite file. A session
// or a token revoked on one must be refused by the other within
// --max-staleness (SES-14): the other node learns of it by polling the file's
// data_version every 100 ms, and stops answering from its cache when its
// poll falls behind by more than the bound.
func TestChaosSQLiteTwoProcesses(t *testing.T) {
	s := newScenario(t, "Two processes on one SQLite file",
		"Two `tether serve` on one SQLite file, under load on both; sessions signed in on one and signed out on the other, "+
			"each then checked on both until refused: the staleness is how long the node that did not sign it out still accepted it. "+
			"Machine tokens: revoked on one, checked on both and by a remote verifier following node-a's stream until refused.")
	s.flags = []string{"--data", s.dataFile("tether.db")}
	const workers = 2
	s.addUsers(users(workers + 1)...)
	a, b := s.startNode("node-a"), s.startNode("node-b")
	s.ledger.staleBound = maxStaleness
	s.enableTokens(workers, a, a.url)
	s.probeTokens([]*node{a, b})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := s.ledger.load(ctx, func() []string { return []string{a.url, b.url} },
		loadOpts{workers: workers, ops: 400, pace: 2 * time.Millisecond})

	const revocations = 20
	user := users(workers + 1)[workers]
	var worst time.Duration
	for i := range revocations {
		x, _ := s.ledger.signIn(t.Context(), a.url, user, password, web.NewDevice("probe"))
		if x == nil {
			t.Fatal("sign-in of the probe refused")
		}
		if got := s.ledger.check(t.Context(), b.url, x); got != http.StatusOK {
			t.Fatalf("the other node: a fresh session got %d, want 200", got)
		}
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		s.ledger.signOut(t.Context(), from.url, x)
		if x.state != revoked {
			t.Fatalf("sign-out at %s not acknowledged", from.name)
		}
		worst = max(worst, testkit.WaitFor(s.t, "the other node to refuse a signed-out session", func() bool {
			return s.ledger.check(t.Context(), to.url, x) == http.StatusUnauthorized
		}))
	}
	cancel()
	wait()
	s.fig.note("%d sign-outs on one node, each polled on the other until refused: the slowest took %v", revocations, ms(worst))
	s.ledger.verify(t.Context(), a.url, b.url)
	s.ledger.verifyTokens(t.Context(), a.url, b.url)
	s.finish(a, b)
}

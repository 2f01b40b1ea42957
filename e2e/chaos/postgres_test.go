package chaos

import (
	"context"
	"net/url"
	"testing"
	"time"

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

package chaos

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ReportEnv names the file the run's report is written to, in Markdown:
// docs/reliability.md is that report.
const ReportEnv = "TETHER_CHAOS_REPORT"

// figures are what one scenario measured.
type figures struct {
	Name, What, Command string

	Acked      int           // actions whose success clients were told
	Faults     int           // faults injected
	Refused    int           // requests with a revoked session, refused
	Lost       int           // acknowledged actions undone: must be 0
	N503       int           // answers 503
	Unanswered int           // requests unanswered while a node was down on purpose
	Requests   int           // requests answered
	Staleness  time.Duration // the longest a revoked session was accepted after its acknowledgement
	StaleBound time.Duration // what I1 allowed
	Recovery   time.Duration // the longest from a fault's end to the service answering again
	P99        time.Duration // of every answered request
	Notes      []string      // other figures, one line each
	Tokens     *tokenFigures // nil: the scenario had no machine tokens
}

// tokenFigures are what a scenario measured of machine tokens.
type tokenFigures struct {
	Issued        int              // acknowledged issuances
	Revoked       int              // acknowledged revocations
	Refused       int              // introspections of a revoked token answered inactive
	RemoteRefused int              // remote verifications of a revoked token refused as revoked
	FailClosed    int              // remote verifications refused for want of a heartbeat
	Lost          int              // acknowledged issuances or revocations undone: must be 0
	Stale         time.Duration    // the longest a node called a revoked token active
	RemoteStale   time.Duration    // the longest the remote verifier accepted one
	Delay         [3]time.Duration // the probes' revocation to a node's refusal: p50, p99, max
	RemoteDelay   [3]time.Duration // the same, to the remote verifier's refusal
}

func (f *tokenFigures) String() string {
	return fmt.Sprintf("tokens: issued %d, revoked %d, refused %d by nodes and %d remotely, remote fail-closed %d, lost %d, "+
		"staleness %v (bound %v) at nodes and %v (bound %v) remotely, revocation to refusal p50/p99/max %v at nodes and %v remotely",
		f.Issued, f.Revoked, f.Refused, f.RemoteRefused, f.FailClosed, f.Lost, ms(f.Stale), ms(maxStaleness), ms(f.RemoteStale),
		ms(maxStaleness+remoteStaleness), msAll(f.Delay), msAll(f.RemoteDelay))
}

// msAll is ms of each of ds, joined by slashes; "-" when the scenario
// timed none.
func msAll(ds [3]time.Duration) string {
	if ds[2] == 0 {
		return "-"
	}
	return fmt.Sprintf("%v / %v / %v", ms(ds[0]), ms(ds[1]), ms(ds[2]))
}

func (f *figures) String() string {
	s := fmt.Sprintf("acknowledged %d, faults %d, refused %d, lost %d, staleness %v (bound %v), recovery %v, 503s %d, p99 %v, requests %d",
		f.Acked, f.Faults, f.Refused, f.Lost, ms(f.Staleness), ms(f.StaleBound), ms(f.Recovery), f.N503, ms(f.P99), f.Requests)
	if f.Tokens != nil {
		s += "; " + f.Tokens.String()
	}
	return s
}

// note adds a line to the scenario's figures.
func (f *figures) note(format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf(format, args...))
}

// ms rounds d for reading.
func ms(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

var (
	reportMu sync.Mutex // guards reports
	reports  []*figures
)

// record adds a scenario's figures to the report.
func record(f *figures) {
	reportMu.Lock()
	reports = append(reports, f)
	reportMu.Unlock()
}

const reportHead = `# Reliability

What tether does when things break, measured by the fault suite in
` + "`e2e/chaos`" + ` (see its package doc): every scenario runs real tether
processes, and Redis and PostgreSQL processes of its own, on 127.0.0.1,
injects its faults (kill -9, SIGSTOP, a TCP proxy that refuses or drops
everything), keeps a ledger of what clients were told, and checks
afterwards, through the API, that

- **I1** no revoked session is accepted after its revocation was
  acknowledged, but within the stated staleness bound, which it measures;
- **I2** no session whose creation was acknowledged disappears before its
  timeouts, unless the store's data was really destroyed (then people are
  signed out, never let in);
- **I3** no request is answered as signed in without a valid session; a
  failing store gives 503 within its deadline, never 500, never a hang;
- **I4** no crash, no goroutine leak (counted before and after from the
  Go runtime's dump), memory bounded.

Machine tokens go through the same faults in the scenarios whose
section has a "Machine tokens" table: each simulated user also has an
OAuth client that gets tokens (` + "`POST /oauth2/token`" + `) and revokes some
(` + "`POST /oauth2/revoke`" + `, and ` + "`tether client disable`" + ` for all of a
client's); every token is checked by introspection on every node and by
a remote verifier in the test process (` + "`token.Verifier`" + ` with
` + "`token.RevocationStream`" + ` following one node's ` + "`GET /oauth2/revocations`" + `).
I1 holds for them too: a revoked token is refused by every node within
` + "`--max-staleness`" + ` of its revocation's acknowledgement, and by the remote
verifier within that plus its own MaxStaleness, after which a remote
verifier that no longer hears its stream refuses every token (**remote
fail-closed**); I2: an acknowledged revocation is never undone, across
kill -9 of tether, of Redis and of PostgreSQL; I3: no 500.

This file is the report of a run of ` + "`.ci/run`" + ` (CI, with -race) on the 2-core
development machine, which writes it; by hand:

    TETHER_CHAOS_REPORT=$PWD/docs/reliability.md go test ./e2e/chaos -v

The figures: **acknowledged**, actions clients were told succeeded
(sign-ins, sign-outs, password changes, and token issuances and
revocations); **faults**, faults injected;
**refused**, requests with a revoked session refused; **lost**,
acknowledged actions undone (must be 0); **staleness**, the longest a
revoked session was still accepted after its revocation was acknowledged,
and the bound the scenario allows; **recovery**, from a fault's end to
the service answering again; **503s**; **p99** of every answered request.
For tokens: **issued** and **revoked**, acknowledged; **refused**,
checks of a revoked token that refused it (nodes' introspection / the
remote verifier); **staleness**, the longest a revoked token was still
accepted; **revocation to refusal**, timed by probes (a token revoked on
one node, then checked everywhere until every verifier refuses it).
The machine is a shared 2-core one: read the times as orders of magnitude.

Two scenarios live elsewhere: a Redis failover under Sentinel, under
load, is ` + "`go test ./e2e/failover -v`" + ` (its package doc says what it
proves); clock jumps forward and back across the idle and absolute
deadlines need an injected clock, which the binary can't take:
` + "`go test ./internal/server -run TestSES07_ClockJumps -v`" + ` (an expired
session is never revived by a step back).
`

// writeReport writes the report to the file ReportEnv names, if any, and
// if a scenario ran: a run of no scenario (go test -list, which .ci/fuzz
// runs with .ci/run's environment, or -run matching none) leaves the last
// report alone.
func writeReport() error {
	path := os.Getenv(ReportEnv)
	reportMu.Lock()
	defer reportMu.Unlock()
	if path == "" || len(reports) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(reportHead)
	for _, f := range reports {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", f.Name, f.What)
		b.WriteString("| acknowledged | faults | refused | lost | staleness (bound) | recovery | 503s | p99 | requests |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %v (%v) | %v | %d | %v | %d |\n\n",
			f.Acked, f.Faults, f.Refused, f.Lost, ms(f.Staleness), ms(f.StaleBound), ms(f.Recovery), f.N503, ms(f.P99), f.Requests)
		if t := f.Tokens; t != nil {
			b.WriteString("Machine tokens:\n\n")
			b.WriteString("| issued | revoked | refused (nodes / remote) | remote fail-closed | lost | staleness at nodes (bound) | remote staleness (bound) | revocation to refusal, p50 / p99 / max: nodes | remote |\n")
			b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
			fmt.Fprintf(&b, "| %d | %d | %d / %d | %d | %d | %v (%v) | %v (%v) | %s | %s |\n\n",
				t.Issued, t.Revoked, t.Refused, t.RemoteRefused, t.FailClosed, t.Lost, ms(t.Stale), ms(maxStaleness),
				ms(t.RemoteStale), ms(maxStaleness+remoteStaleness), msAll(t.Delay), msAll(t.RemoteDelay))
		}
		for _, n := range f.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		fmt.Fprintf(&b, "\nReproduce: `%s`\n", f.Command)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

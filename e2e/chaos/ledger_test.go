package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
)

// What the ledger knows of a session.
type state int

const (
	live    state = iota // its sign-in was answered 200, and nothing revoked it
	revoked              // its revocation was acknowledged (204, or 200 to a password change)
	unsure               // a revocation was sent and not acknowledged: it may or may not have happened
)

// A sess is a session whose sign-in a client was told succeeded.
type sess struct {
	user  string
	dev   *web.Device
	state state
	ackAt time.Time // when its revocation's acknowledgement arrived
}

// A ledger records what clients were told, and checks every answer
// against it as it arrives (I1 to I3); verify checks every session once
// the faults are over.
type ledger struct {
	s *scenario

	// Set by the scenario, before the load or between its phases:
	staleBound time.Duration // I1: a revoked session may be accepted until this long after its acknowledgement
	fastFail   time.Duration // I3: a 503 comes within this; 0: not checked
	down       atomic.Bool   // a node is down on purpose: requests may go unanswered
	destroyed  atomic.Bool   // the store's data was destroyed: sessions may be gone (signed out, never let in)

	mu         sync.Mutex // guards the fields below
	workers    []*worker  // the load's, kept from one phase to the next
	sessions   []*sess
	acked      int             // acknowledged actions
	ackAt      time.Time       // when the latest acknowledgement arrived
	refused    int             // requests with a revoked session, refused
	lost       int             // acknowledged actions undone: must be 0
	n503       int             // answers 503
	slow503    time.Duration   // the slowest 503
	unanswered int             // requests without an answer while a node was down
	stale      time.Duration   // the longest a revoked session was accepted after its acknowledgement
	latencies  []time.Duration // of every answered request
	violations int             // of I1 to I3
	tok        tokenTally      // machine tokens, when the scenario has them (tokens_test.go)

	// Set by enableTokens: the resource server's client, which
	// introspects, and the remote verifier.
	rs     *machine
	remote *remote
}

// maxReported is how many violations a scenario reports one by one; the
// rest are counted.
const maxReported = 10

// violate reports a violation of an invariant. l.mu is held.
func (l *ledger) violate(format string, args ...any) {
	l.violations++
	if l.violations <= maxReported {
		l.s.t.Errorf(format, args...)
	}
}

func newLedger(s *scenario) *ledger { return &ledger{s: s} }

// answered counts r (or err) of a request made with ctx, and checks I3: an answer, no 5xx but 503,
// and a 503 within fastFail, plus hashWait for a request that checks a
// password (hashes). It reports whether r is an answer.
func (l *ledger) answered(ctx context.Context, what string, hashes bool, r web.Reply, err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return false // the load ended: not an answer, not a fault
		}
		if l.down.Load() {
			l.unanswered++
		} else {
			l.violate("I3: %s: no answer after %v: %v", what, r.At.Sub(r.Sent), err)
		}
		return false
	}
	lat := r.At.Sub(r.Sent)
	l.latencies = append(l.latencies, lat)
	switch {
	case r.Status == http.StatusServiceUnavailable:
		l.n503++
		l.slow503 = max(l.slow503, lat)
		bound := l.fastFail
		if hashes {
			bound += hashWait
		}
		if l.fastFail > 0 && lat > bound {
			l.violate("I3: %s: 503 after %v, over the store deadline's %v", what, lat, bound)
		}
	case r.Status >= 500:
		l.violate("I3: %s: %v", what, r)
	}
	return true
}

// ack counts an acknowledged action, answered at. l.mu is held.
func (l *ledger) ack(at time.Time) {
	l.acked++
	if at.After(l.ackAt) {
		l.ackAt = at
	}
}

// lastAck is when the latest acknowledgement arrived.
func (l *ledger) lastAck() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ackAt
}

// signIn signs user in at url with pw as d (web.NewDevice for a new
// one), and returns the session, or nil if the sign-in was not answered
// 200, and the answer's status.
func (l *ledger) signIn(ctx context.Context, url, user, pw string, d *web.Device) (*sess, int) {
	return l.signInVia(ctx, l.s.client, url, user, pw, d)
}

// signInVia is signIn through the client c: a flood's, whose connections
// come and go, apart from those a real browser keeps.
func (l *ledger) signInVia(ctx context.Context, c *web.Client, url, user, pw string, d *web.Device) (*sess, int) {
	prev, _ := d.State()
	r, err := c.Send(ctx, http.MethodPost, url+"/api/v1/login", d, map[string]string{"username": user, "password": pw})
	if !l.answered(ctx, "sign-in of "+user, true, r, err) || r.Status != http.StatusOK {
		return nil, r.Status
	}
	x := &sess{user: user, dev: d}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A sign-in ends the session the device had (SES-03).
	for _, y := range l.sessions {
		if token, _ := y.dev.State(); prev != "" && token == prev && y.state == live {
			y.state, y.ackAt = revoked, r.At
		}
	}
	l.sessions = append(l.sessions, x)
	l.ack(r.At)
	return x, r.Status
}

// signOut signs x out at url.
func (l *ledger) signOut(ctx context.Context, url string, x *sess) {
	r, err := l.s.client.Send(ctx, http.MethodPost, url+"/api/v1/logout", x.dev.Copy(x.dev.Name), nil)
	l.answered(ctx, "sign-out", false, r, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && r.Status == http.StatusNoContent {
		l.ack(r.At)
		x.state, x.ackAt = revoked, r.At
	} else if x.state == live {
		x.state = unsure // 202 (its end pending), 503 or no answer
	}
}

// changePassword changes x's user's password from old to pw at url, and
// returns x's old token as a revoked session of its own if the change was
// acknowledged (200): then every other session of the user is revoked,
// and x's device holds a fresh session. Answered 5xx or not at all, the
// change may or may not have happened (maybe): every session of the user
// is unsure.
func (l *ledger) changePassword(ctx context.Context, url string, x *sess, old, pw string) (was *sess, maybe bool) {
	before := x.dev.Copy(x.dev.Name + " (before the password change)")
	r, err := l.s.client.Send(ctx, http.MethodPost, url+"/api/v1/password", x.dev, map[string]string{"current": old, "new": pw})
	l.answered(ctx, "password change", true, r, err)
	ok := err == nil && r.Status == http.StatusOK
	maybe = err != nil || r.Status >= 500
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, y := range l.sessions {
		if y.user != x.user || y.state != live || y == x {
			continue
		}
		if ok {
			y.state, y.ackAt = revoked, r.At
		} else if maybe {
			y.state = unsure
		}
	}
	if ok {
		l.ack(r.At)
		was = &sess{user: x.user, dev: before, state: revoked, ackAt: r.At}
		l.sessions = append(l.sessions, was)
	} else if maybe {
		x.state = unsure // the fresh session may have been issued, and the old one revoked
	}
	return was, maybe
}

// check asks url for x's session (GET /api/v1/me), and checks the answer
// against the ledger: I1 (a revoked session refused, but within
// staleBound of its acknowledgement) and I2 (a live one accepted unless
// its store's data was destroyed).
func (l *ledger) check(ctx context.Context, url string, x *sess) int {
	r, err := l.s.client.Send(ctx, http.MethodGet, url+"/api/v1/me", x.dev.Copy(x.dev.Name), nil)
	if !l.answered(ctx, "session check", false, r, err) {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case x.state == revoked && r.Status == http.StatusOK:
		l.stale = max(l.stale, r.At.Sub(x.ackAt))
		if late := r.Sent.Sub(x.ackAt); late > l.staleBound {
			l.lost++
			l.violate("I1: %s accepted a session %v after its revocation was acknowledged (bound %v)", url, late, l.staleBound)
		}
	case x.state == revoked && r.Status == http.StatusUnauthorized:
		l.refused++
	case x.state == live && r.Status == http.StatusUnauthorized && !l.destroyed.Load():
		l.lost++
		l.violate("I2: %s refused a session of %s whose sign-in was acknowledged", url, x.user)
	case r.Status != http.StatusOK && r.Status != http.StatusUnauthorized && r.Status != http.StatusServiceUnavailable:
		l.violate("session check at %s: %v", url, r)
	}
	return r.Status
}

// verify checks every session of the ledger at every url once the faults
// are over: live ones accepted (I2; refused only if the store's data was
// destroyed), revoked ones refused (I1). An unsure one accepted is signed
// out again, as a client would, and must then be refused.
func (l *ledger) verify(ctx context.Context, urls ...string) {
	l.s.t.Helper()
	l.mu.Lock()
	all := slices.Clone(l.sessions)
	l.mu.Unlock()
	for _, x := range all {
		for _, url := range urls {
			got := l.check(ctx, url, x)
			switch {
			case x.state == unsure && got == http.StatusOK:
				l.signOut(ctx, url, x)
				if got := l.check(ctx, url, x); got != http.StatusUnauthorized {
					l.s.t.Errorf("a session signed out again at %s: check got %d, want 401", url, got)
				}
			case got == http.StatusServiceUnavailable || got == 0:
				l.s.t.Errorf("verify at %s, the faults over: got %d", url, got)
			}
		}
	}
}

// fill puts the ledger's figures into f.
func (l *ledger) fill(f *figures) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f.Acked, f.Refused, f.Lost, f.N503, f.Unanswered = l.acked, l.refused, l.lost, l.n503, l.unanswered
	f.Requests, f.Staleness, f.StaleBound = len(l.latencies), l.stale, l.staleBound
	if l.n503 > 0 {
		f.note("the slowest 503 came after %v", ms(l.slow503))
	}
	if l.violations > maxReported {
		l.s.t.Errorf("%d violations in all; the first %d are above", l.violations, maxReported)
	}
	f.P99 = percentiles(l.latencies)[1]
	l.fillTokens(f)
}

// The load's bounds: each worker does at most ops operations, one every
// pace at most, until its context ends.
type loadOpts struct {
	workers   int
	ops       int
	pace      time.Duration
	passwords bool // change passwords now and then
}

// A worker is one user's client: it signs in, checks its sessions, signs
// some out and, if told to, changes its password; in a scenario with
// tokens, its machine gets, revokes and checks tokens too (tokenStep).
// One worker per user, so that the ledger's state of the user's sessions
// and tokens is settled before each request.
type worker struct {
	l     *ledger
	user  string
	pw    string // the password
	pwAlt string // the password a change not acknowledged may have set; "" if none
	mine  []*sess
	n     int      // password changes, for fresh passwords
	m     *machine // its client, when the scenario has tokens
	toks  []*tok   // the tokens it got
}

// load runs o.workers workers (users "user-0", "user-1", …, created by
// the caller; the same workers, with their sessions, from one call to
// the next) against the nodes urls returns (asked before each
// operation), until ctx ends or each has done o.ops operations. The
// returned function waits for them.
func (l *ledger) load(ctx context.Context, urls func() []string, o loadOpts) (wait func()) {
	var wg sync.WaitGroup
	for w, wk := range l.workersFor(o.workers) {
		wg.Go(func() {
			t := time.NewTicker(o.pace)
			defer t.Stop()
			for i := range o.ops {
				us := urls()
				wk.step(ctx, i, us[(i+w)%len(us)], o.passwords)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	return wg.Wait
}

// workersFor returns the first n workers, made as needed: the same from
// one call to the next.
func (l *ledger) workersFor(n int) []*worker {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := len(l.workers); w < n; w++ {
		l.workers = append(l.workers, &worker{l: l, user: fmt.Sprintf("user-%d", w), pw: password})
	}
	return l.workers[:n]
}

// users returns the names of n workers' users.
func users(n int) []string {
	var u []string
	for w := range n {
		u = append(u, fmt.Sprintf("user-%d", w))
	}
	return u
}

// A stated is what the ledger follows the state of: a session or a
// token.
type stated interface{ current() state }

func (x *sess) current() state { return x.state }

// liveOf returns those of xs that are live, reading their states under
// l.mu.
func liveOf[T stated](l *ledger, xs []T) []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lv []T
	for _, x := range xs {
		if x.current() == live {
			lv = append(lv, x)
		}
	}
	return lv
}

// step is the worker's i-th operation, at url.
func (w *worker) step(ctx context.Context, i int, url string, passwords bool) {
	lv := liveOf(w.l, w.mine)
	switch {
	case len(lv) == 0 || (i%40 == 0 && len(lv) < 4):
		w.signIn(ctx, url)
	case i%15 == 7 && len(lv) > 1:
		w.l.signOut(ctx, url, lv[0])
	case w.m != nil && i%5 == 1:
		w.tokenStep(ctx, i, url)
	case passwords && i%50 == 25:
		w.n++
		pw := fmt.Sprintf("%s %s %d", w.user, password, w.n)
		if was, maybe := w.l.changePassword(ctx, url, lv[len(lv)-1], w.pw, pw); was != nil {
			w.pw, w.pwAlt = pw, ""
			w.mine = append(w.mine, was)
		} else if maybe {
			w.pwAlt = pw
		}
	default:
		recent := w.mine[max(0, len(w.mine)-8):]
		w.l.check(ctx, url, recent[i%len(recent)])
	}
}

// signIn signs the worker's user in with a new device, trying the
// password a change not acknowledged may have set if the known one is
// refused. A refusal of the right password is an acknowledged password
// change lost.
func (w *worker) signIn(ctx context.Context, url string) {
	name := fmt.Sprintf("%s device %d", w.user, len(w.mine))
	x, status := w.l.signIn(ctx, url, w.user, w.pw, web.NewDevice(name))
	if x == nil && status == http.StatusForbidden && w.pwAlt != "" { // invalid_credentials
		if x, status = w.l.signIn(ctx, url, w.user, w.pwAlt, web.NewDevice(name)); x != nil {
			w.pw = w.pwAlt
		}
		w.pwAlt = ""
	}
	if x == nil && status == http.StatusForbidden && !w.l.destroyed.Load() {
		w.l.mu.Lock()
		w.l.lost++
		w.l.violate("I2: %s refused %s's acknowledged password", url, w.user)
		w.l.mu.Unlock()
	}
	if x != nil {
		w.mine = append(w.mine, x)
	}
}

package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
)

// The load's bounds: a few signers and checkers, each at most
// maxIterations rounds, one every pace at most, for at most loadMax in
// all; only to the two nodes on 127.0.0.1.
const (
	signers       = 4 // each signs in as a user of its own
	checkers      = 2
	maxIterations = 2000
	pace          = 10 * time.Millisecond
	loadMax       = 90 * time.Second
	// keepLive: a signer revokes only while it has more live sessions
	// than this, so that it has one to revoke others from.
	keepLive = 3
	// settleMax bounds how long a node that did not acknowledge a
	// revocation may accept the session, until the invalidation reaches
	// it (see followUp). It only ends a test that has already gone wrong.
	settleMax = 2 * time.Second
)

// What an operation is.
type kind int

const (
	signIn kind = iota
	check
	logout  // POST /api/v1/logout as the session itself
	deleted // DELETE /api/v1/sessions/{id} from another session of the user
)

func (k kind) String() string {
	return [...]string{"sign-in", "check", "sign-out", "DELETE /api/v1/sessions/{id}"}[k]
}

// What the test knows of a session when it sends a request with it.
type state int

const (
	live    state = iota // signed in (200), not revoked
	revoked              // its revocation was acknowledged (204)
	unsure               // its revocation is under way, or was answered otherwise: it may or may not have happened
)

// A session is one the test signed in (the sign-in answered 200). Its
// fields but n, user, dev, node and signed are guarded by the load's mu
// while the load runs.
type session struct {
	n      int         // its index in the load's sessions
	user   string      // its user
	dev    *web.Device // its cookie and CSRF token as the sign-in gave them; requests send copies
	node   string      // the node that signed it in
	signed time.Time   // when the sign-in's answer arrived

	id        string // its public id, once a check told it
	state     state
	revoking  bool      // a revocation of it is under way
	how       kind      // how it was revoked (or tried): logout or deleted
	ackNode   int       // the node that acknowledged its revocation
	revokedAt time.Time // when the acknowledgement arrived
	// settled is when the signer saw the other node refuse it after the
	// acknowledgement (see followUp). Until then, the other node may still
	// accept it: the invalidation is on its way.
	settled time.Time
	tried   time.Time // when the answer to its last revocation arrived
	retry   int       // the status of signing it out again after the failover, if its revocation was answered otherwise than 204
}

// An op is one request of the load, and what was right to answer it.
type op struct {
	kind   kind
	worker int // a signer's index, or signers + a checker's
	node   int // index in the deployment's nodes
	sess   int // the session concerned (for a sign-in, the new one), or -1
	state  state
	// inFlight: a check of a revoked session, sent to the node that did
	// not acknowledge the revocation before the signer saw that node
	// refuse it.
	inFlight bool
	status   int // 0 if the request failed
	err      error
	sent     time.Time
	at       time.Time
	wrong    string // why the answer is wrong whatever the phase; "" if it may be right
}

// A load runs the signers and checkers and records every op.
type load struct {
	d      *deployment
	cancel context.CancelFunc
	stop   atomic.Bool
	wg     sync.WaitGroup

	mu       sync.Mutex // guards ops, sessions and the sessions' changing fields
	ops      []op
	sessions []*session
}

// startLoad starts the signers, one per user, and the checkers.
func (d *deployment) startLoad(users []string) *load {
	ctx, cancel := context.WithTimeout(context.Background(), loadMax)
	l := &load{d: d, cancel: cancel}
	for w, user := range users {
		l.wg.Go(func() { l.sign(ctx, w, user) })
	}
	for c := range checkers {
		l.wg.Go(func() { l.checkAll(ctx, signers+c) })
	}
	return l
}

// finish stops the load after the rounds under way, waits for it and
// returns what it did. Calling it again does no harm.
func (l *load) finish() ([]op, []*session) {
	l.stop.Store(true)
	l.wg.Wait()
	l.cancel()
	return l.ops, l.sessions
}

// snapshot returns the ops so far.
func (l *load) snapshot() []op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]op(nil), l.ops...)
}

// rounds runs round up to maxIterations times, one every pace at most,
// until the load stops.
func (l *load) rounds(ctx context.Context, round func(i int)) {
	for i := 0; i < maxIterations && !l.stop.Load() && ctx.Err() == nil; i++ {
		next := time.Now().Add(pace)
		round(i)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
}

// sign is signer w's loop. In round i it signs in on one node and checks
// the new session on the other (which tells it the session's id); every
// other round it also revokes its oldest live session of odd index (those
// of even index are never revoked, so that many live through the
// failover) on the first node, by signing it out or by DELETE from its
// newest, and then checks it on both nodes (see followUp).
func (l *load) sign(ctx context.Context, w int, user string) {
	l.rounds(ctx, func(i int) {
		a, b := (w+i)%2, (w+i+1)%2
		if s := l.signIn(ctx, w, a, user, fmt.Sprintf("%s device %d", user, i)); s != nil {
			l.check(ctx, w, b, s)
		}
		if i%2 == 0 {
			return
		}
		l.mu.Lock()
		var alive, revocable []*session
		for _, s := range l.sessions {
			if s.user == user && s.state == live {
				alive = append(alive, s)
				if s.n%2 == 1 {
					revocable = append(revocable, s)
				}
			}
		}
		var target, by *session
		how := logout
		if len(alive) > keepLive && len(revocable) > 0 {
			target, by = revocable[0], alive[len(alive)-1]
			if by == target {
				by = alive[len(alive)-2]
			}
			if i%4 == 3 && target.id != "" {
				how = deleted
			}
			target.state, target.revoking, target.how = unsure, true, how
		}
		l.mu.Unlock()
		if target != nil && l.revoke(ctx, w, a, target, by, how) {
			l.check(ctx, w, a, target)
			l.followUp(ctx, w, b, target)
		}
	})
}

// checkAll is a checker's loop: it checks every session in turn, on both
// nodes in turn, live, revoked or unsure.
func (l *load) checkAll(ctx context.Context, w int) {
	next := w
	l.rounds(ctx, func(i int) {
		l.mu.Lock()
		var s *session
		if len(l.sessions) > 0 {
			s = l.sessions[next%len(l.sessions)]
			next += checkers
		}
		l.mu.Unlock()
		if s != nil {
			l.check(ctx, w, (w+i)%2, s)
		}
	})
}

// record adds o to the load's ops, unless the load was cancelled under it.
func (l *load) record(ctx context.Context, o op) {
	if o.err != nil && ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	l.ops = append(l.ops, o)
	l.mu.Unlock()
}

// signIn signs user in on node n as a new device, and returns the new
// session if the sign-in was acknowledged (200), else nil.
func (l *load) signIn(ctx context.Context, w, n int, user, device string) *session {
	dev := web.NewDevice(device)
	r, err := l.d.Send(ctx, "POST", l.d.nodes[n].url+"/api/v1/login", dev, map[string]string{"username": user, "password": password})
	o := op{kind: signIn, worker: w, node: n, sess: -1, status: r.Status, err: err, sent: r.Sent, at: r.At}
	var s *session
	switch {
	case err != nil:
		o.wrong = "no answer"
	case r.Status == http.StatusServiceUnavailable:
	case r.Status != http.StatusOK:
		o.wrong = "not 200 or 503"
	default:
		var v web.Me
		cookie, csrf := dev.State()
		if json.Unmarshal(r.Body, &v) != nil || v.User.Name != user || cookie == "" || csrf == "" {
			o.wrong = fmt.Sprintf("200 without %s's session cookie, CSRF token and name: %s", user, r.Body)
			break
		}
		s = &session{user: user, dev: dev, node: l.d.nodes[n].name, signed: r.At}
		l.mu.Lock()
		s.n = len(l.sessions)
		l.sessions = append(l.sessions, s)
		l.mu.Unlock()
		o.sess = s.n
	}
	l.record(ctx, o)
	return s
}

// check sends GET /api/v1/me with s to node n, judges the answer by what
// the test knew of s when it sent it, and returns the status (0 for no
// answer). It learns s's id.
func (l *load) check(ctx context.Context, w, n int, s *session) int {
	l.mu.Lock()
	o := op{kind: check, worker: w, node: n, sess: s.n, state: s.state}
	o.inFlight = s.state == revoked && n != s.ackNode && s.settled.IsZero()
	revokedAt, id := s.revokedAt, s.id
	l.mu.Unlock()

	r, err := l.d.Send(ctx, "GET", l.d.nodes[n].url+"/api/v1/me", s.dev.Copy(s.dev.Name), nil)
	o.status, o.err, o.sent, o.at = r.Status, err, r.Sent, r.At
	var v web.Me
	switch {
	case err != nil:
		o.wrong = "no answer"
	case r.Status == http.StatusServiceUnavailable:
	case r.Status == http.StatusUnauthorized:
		// A revocation another worker began while this check was in
		// flight may have been applied before the check was served.
		if o.state == live && l.stateOf(s) == live {
			o.wrong = "a session whose sign-in was acknowledged is refused"
		}
	case r.Status != http.StatusOK:
		o.wrong = "not 200, 401 or 503"
	case o.state == revoked && !o.inFlight:
		o.wrong = fmt.Sprintf("a session whose revocation was acknowledged %v before is accepted", r.Sent.Sub(revokedAt))
	case json.Unmarshal(r.Body, &v) != nil || v.User.Name != s.user || v.Session.ID == "" || (id != "" && v.Session.ID != id):
		o.wrong = fmt.Sprintf("200 for another user or session: %s", r.Body)
	case id == "":
		l.mu.Lock()
		s.id = v.Session.ID
		l.mu.Unlock()
	}
	l.record(ctx, o)
	return o.status
}

// stateOf returns what the test knows of s now.
func (l *load) stateOf(s *session) state {
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.state
}

// revoke revokes target on node n, by signing it out or by DELETE from
// by, and reports whether that was acknowledged (204). Any other answer
// (503, or 202: a sign-out the node will finish once the store answers)
// leaves target unsure.
func (l *load) revoke(ctx context.Context, w, n int, target, by *session, how kind) bool {
	base := l.d.nodes[n].url
	var r web.Reply
	var err error
	if how == logout {
		r, err = l.d.Send(ctx, "POST", base+"/api/v1/logout", target.dev.Copy(target.dev.Name), nil)
	} else {
		l.mu.Lock()
		id := target.id
		l.mu.Unlock()
		r, err = l.d.Send(ctx, "DELETE", base+"/api/v1/sessions/"+id, by.dev.Copy(by.dev.Name), nil)
	}
	o := op{kind: how, worker: w, node: n, sess: target.n, state: live, status: r.Status, err: err, sent: r.Sent, at: r.At}
	switch {
	case err != nil:
		o.wrong = "no answer"
	case r.Status == http.StatusServiceUnavailable:
	case r.Status == http.StatusAccepted && how == logout:
		// Sign-out while the store is unreachable: the cookie is cleared
		// and the node ends the session once the store answers. Not
		// acknowledged: as unsure as a 503.
	case r.Status != http.StatusNoContent:
		// A live session, and its revoker, are signed in: nothing else is
		// right.
		o.wrong = "not 204, 503 (or 202 to a sign-out)"
	}
	acked := err == nil && r.Status == http.StatusNoContent
	l.mu.Lock()
	target.revoking, target.tried = false, r.At
	if acked {
		target.state, target.ackNode, target.revokedAt = revoked, n, r.At
	}
	l.mu.Unlock()
	l.record(ctx, o)
	return acked
}

// followUp checks s, just revoked through the other node, on node n until
// n refuses it, which it must within settleMax (the invalidation reaches
// n through Redis, asynchronously), and from then on any node must refuse
// it.
func (l *load) followUp(ctx context.Context, w, n int, s *session) {
	deadline := time.Now().Add(settleMax)
	status := l.check(ctx, w, n, s)
	for status == http.StatusOK && time.Now().Before(deadline) && ctx.Err() == nil {
		status = l.check(ctx, w, n, s)
	}
	l.mu.Lock()
	s.settled = time.Now()
	l.mu.Unlock()
	if status == http.StatusOK {
		l.check(ctx, w, n, s) // now judged as any check of a revoked session
	}
}

package chaos

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/storetest/faultnet"
	"github.com/tetherauth/tether/token"
)

// Machine tokens (issue 11) under the same faults: each worker also has an
// OAuth client of its own, which gets tokens (POST /oauth2/token) and
// revokes some of them (POST /oauth2/revoke); every token is checked by
// the nodes' introspection (as the resource server's client, which shares
// the workers' audience) and by a remote verifier in the test process
// (token.Verifier over keys.Remote and a token.RevocationStream following
// one node's GET /oauth2/revocations), against the ledger:
//
//   - I1: a revoked token is refused by every node within maxStaleness
//     of its revocation's acknowledgement (--max-staleness: the node's
//     revocation view answers from memory only while its feed is that
//     fresh), and by the remote verifier within maxStaleness plus its
//     own MaxStaleness, remoteStaleness (the stream's heartbeat vouches for
//     what the node knew within its bound); a remote verifier that heard
//     no heartbeat within remoteStaleness refuses every token, which is
//     counted (fail closed), not a violation;
//   - I2: a token whose issuance was acknowledged is active until it is
//     revoked; an acknowledged revocation (200 to /oauth2/revoke, or
//     `tether client disable` exiting 0) is never undone, across kill -9
//     of tether, of Redis and of PostgreSQL;
//   - I3: a failing store gives 503 within its deadline, never 500.
const (
	// issuer is every node's --issuer: a token of one node is valid at
	// every other, as behind a load balancer.
	issuer = "http://127.0.0.1"
	// audience is the API every client's tokens are for.
	audience = "api://chaos"
	// remoteStaleness is the remote verifier's MaxStaleness: above the
	// stream's heartbeat interval (1 s), so that a late heartbeat on a
	// loaded machine doesn't make it fail closed.
	remoteStaleness = 2 * time.Second
	// tokenProbes is how many revocations each probe times.
	tokenProbes = 25
)

// A machine is an OAuth client of the scenario's.
type machine struct {
	id, secret string
}

// addMachine registers the client id with the scenario's stores.
func (s *scenario) addMachine(id, scopes string) *machine {
	s.t.Helper()
	secret := proc.AddClient(s.t, s.bin, append([]string{id, "--scopes", scopes, "--audience", audience}, s.flags...)...)
	return &machine{id: id, secret: secret}
}

// A tok is an access token whose issuance a client was told succeeded.
type tok struct {
	m     *machine
	raw   string
	jti   string
	state state
	ackAt time.Time // when its revocation's acknowledgement arrived
	// refused, for a token of probeTokens, holds the verifiers (a node's
	// URL, or the remote verifier) that refused it since its revocation:
	// the first refusal of each is timed.
	refused map[string]bool
}

func (x *tok) current() state { return x.state }

// tokenTally is the ledger's count of tokens (guarded by ledger.mu).
type tokenTally struct {
	tokens        []*tok
	probes        int // calls of probeTokens, which names its clients after them
	issued        int // acknowledged issuances
	revoked       int // acknowledged revocations (one per token, a disable's included)
	refused       int // introspections of a revoked token answered inactive
	remoteRefused int // remote verifications of a revoked token refused as revoked
	failClosed    int // remote verifications refused because the stream was stale
	lost          int // acknowledged revocations or issuances undone: must be 0
	// resurrected holds the tokens revoked by jti that a node accepted
	// again after the session store's data was destroyed: the documented
	// limit of that disaster (README, "What survives a crash").
	resurrected  map[string]bool
	stale        time.Duration // the longest a node called a revoked token active after the acknowledgement
	remoteStale  time.Duration // the longest the remote verifier accepted one
	delays       []time.Duration
	remoteDelays []time.Duration
}

// A remote is the test's resource server: a Verifier whose revocations
// come from one node's stream.
type remote struct {
	stream   *token.RevocationStream
	verifier *token.Verifier
	stop     func()
}

// enableTokens gives the scenario's workers (created by the caller with
// users) a client each, and the resource server's client, and starts the
// remote verifier following follow's stream at streamURL (follow.url, or
// a proxy in front of it). Call it once the store exists.
func (s *scenario) enableTokens(workers int, follow *node, streamURL string) {
	s.t.Helper()
	l := s.ledger
	l.rs = s.addMachine("resource-server", "introspect")
	for _, w := range l.workersFor(workers) {
		w.m = s.addMachine("machine-"+w.user, "read,write")
	}
	// The scenario's connections, closed by finish; the stream's client
	// has no Timeout (it would cut the stream).
	c := &http.Client{Transport: s.client.HTTP.Transport, CheckRedirect: s.client.HTTP.CheckRedirect}
	jwks, err := keys.NewRemote(keys.RemoteConfig{URL: follow.url + "/.well-known/jwks.json", Client: c})
	if err != nil {
		s.t.Fatal(err)
	}
	stream, err := token.NewRevocationStream(token.RevocationStreamConfig{
		URL:          streamURL + "/oauth2/revocations",
		Client:       c,
		Authorize:    func(r *http.Request) error { r.SetBasicAuth(l.rs.id, l.rs.secret); return nil },
		MaxStaleness: remoteStaleness,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		s.t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: issuer, Audience: audience, Keys: jwks, Revocations: stream})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		stream.Run(ctx)
	}()
	var once sync.Once
	r := &remote{stream: stream, verifier: v, stop: func() { once.Do(func() { cancel(); <-done }) }}
	s.t.Cleanup(r.stop)
	l.remote = r
	testkit.WaitFor(s.t, "the remote verifier to hear "+follow.name+"'s stream", stream.Current)
	s.fig.note("tokens: every worker also gets, checks and revokes machine tokens; the remote verifier follows %s's revocation stream (MaxStaleness %v)",
		follow.name, remoteStaleness)
}

// oauth sends an OAuth request to path at base as m (HTTP Basic), form in
// the body.
func (l *ledger) oauth(ctx context.Context, base, path string, m *machine, form url.Values) (web.Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return web.Reply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(m.id, m.secret)
	sent := time.Now()
	res, err := l.s.client.HTTP.Do(req)
	if err != nil {
		return web.Reply{Sent: sent, At: time.Now()}, err
	}
	defer res.Body.Close()
	r := web.Reply{Status: res.StatusCode, Node: res.Header.Get("X-Tether-Node"), Sent: sent, At: time.Now()}
	r.Body, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return r, err
}

// issue gets a token for m at base, and returns it if it was answered
// 200.
func (l *ledger) issue(ctx context.Context, base string, m *machine) *tok {
	r, err := l.oauth(ctx, base, "/oauth2/token", m, url.Values{"grant_type": {"client_credentials"}})
	if !l.answered(ctx, "token for "+m.id, false, r, err) || r.Status != http.StatusOK {
		return nil
	}
	x, err := tokenOf(r.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.violate("token for %s at %s: %v", m.id, base, err)
		return nil
	}
	x.m = m
	l.tok.tokens = append(l.tok.tokens, x)
	l.tok.issued++
	l.ack(r.At)
	return x
}

// tokenOf reads a token response: its token, named by its jti, read
// unverified (the verifiers under test check it).
func tokenOf(body []byte) (*tok, error) {
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	parts := strings.Split(v.AccessToken, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %q", v.AccessToken)
	}
	var c struct {
		ID string `json:"jti"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return nil, fmt.Errorf("no jti in the token's claims: %v", err)
	}
	return &tok{raw: v.AccessToken, jti: c.ID}, nil
}

// revoke revokes x at base as its client (RFC 7009): 200 is the
// acknowledgement; 503 or no answer leaves it unsure.
func (l *ledger) revoke(ctx context.Context, base string, x *tok) {
	r, err := l.oauth(ctx, base, "/oauth2/revoke", x.m, url.Values{"token": {x.raw}})
	l.answered(ctx, "token revocation", false, r, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil && r.Status == http.StatusOK:
		if x.state != revoked {
			l.tok.revoked++
			x.state, x.ackAt = revoked, r.At
		}
		l.ack(r.At)
	case x.state == live:
		x.state = unsure
	}
}

// introspect asks base whether x is active, as the resource server's
// client, and checks the answer against the ledger: I1 (a revoked token
// inactive, but within maxStaleness of its acknowledgement) and I2 (a
// live one active). It returns the answer's status, and whether x was
// active.
func (l *ledger) introspect(ctx context.Context, base string, x *tok) (status int, active bool) {
	r, err := l.oauth(ctx, base, "/oauth2/introspect", l.rs, url.Values{"token": {x.raw}})
	if !l.answered(ctx, "introspection", false, r, err) {
		return 0, false
	}
	if r.Status != http.StatusOK {
		if r.Status != http.StatusServiceUnavailable {
			l.mu.Lock()
			l.violate("introspection at %s: %v", base, r)
			l.mu.Unlock()
		}
		return r.Status, false
	}
	var v struct {
		Active bool   `json:"active"`
		JTI    string `json:"jti"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil || (v.Active && v.JTI != x.jti) || (!v.Active && string(bytes.TrimSpace(r.Body)) != `{"active":false}`) {
		l.mu.Lock()
		l.violate("introspection at %s of %s: %v (%v)", base, x.jti, r, err)
		l.mu.Unlock()
		return r.Status, false
	}
	l.judge(base, x, v.Active, r.Sent, r.At, maxStaleness, &l.tok.stale, &l.tok.refused, &l.tok.delays)
	return r.Status, v.Active
}

// judge checks a verifier's answer on x, asked at sent and answered at
// at, against the ledger: accepted, a revoked token may be only within
// bound of its acknowledgement (I1; the longest is kept in *stale);
// refused, it is counted in *refused (and, for a probe's token, the
// verifier's first refusal's delay from the acknowledgement goes in
// *delays), and a live one refused is an acknowledged issuance lost
// (I2).
func (l *ledger) judge(verifier string, x *tok, accepted bool, sent, at time.Time, bound time.Duration, stale *time.Duration, refused *int, delays *[]time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case x.state == revoked && accepted:
		*stale = max(*stale, at.Sub(x.ackAt))
		late := sent.Sub(x.ackAt)
		switch {
		case late <= bound:
		case l.destroyed.Load():
			// Sessions die with the store's data; a token doesn't: it is
			// self-contained. Its revocation must survive in the account
			// store's journal (revocation.Durable).
			l.tok.lost++
			l.violate("I1: %s accepted token %s of %s %v after its revocation was acknowledged: "+
				"the session store's data was destroyed, and the revocation with it", verifier, x.jti, x.m.id, late)
		default:
			l.tok.lost++
			l.violate("I1: %s accepted token %s of %s %v after its revocation was acknowledged (bound %v)", verifier, x.jti, x.m.id, late, bound)
		}
	case x.state == revoked:
		*refused++
		if x.refused != nil && !x.refused[verifier] {
			x.refused[verifier] = true
			*delays = append(*delays, at.Sub(x.ackAt))
		}
	case x.state == live && !accepted:
		l.tok.lost++
		l.violate("I2: %s refused token %s of %s, whose issuance was acknowledged and which nobody revoked", verifier, x.jti, x.m.id)
	}
}

// verifyRemote checks x with the remote verifier, against the ledger (see
// judge); a refusal because its stream is stale is counted, and tells
// nothing about x. It returns the verifier's error.
func (l *ledger) verifyRemote(ctx context.Context, x *tok) error {
	sent := time.Now()
	_, err := l.remote.verifier.Verify(ctx, x.raw)
	at := time.Now()
	switch {
	case errors.Is(err, token.ErrRevocationsStale):
		l.mu.Lock()
		l.tok.failClosed++
		l.mu.Unlock()
	case err == nil || errors.Is(err, token.ErrRevoked):
		l.judge(remoteName, x, err == nil, sent, at, maxStaleness+remoteStaleness, &l.tok.remoteStale, &l.tok.remoteRefused, &l.tok.remoteDelays)
	default:
		l.mu.Lock()
		l.violate("the remote verifier on token %s of %s: %v", x.jti, x.m.id, err)
		l.mu.Unlock()
	}
	return err
}

// remoteName is the remote verifier's in the ledger's reports.
const remoteName = "the remote verifier"

// tokenStep is a worker's token operation, its i-th, at url: a token got
// when it has none live or now and then, one revoked now and then, else
// one of its recent ones checked by url's introspection or by the remote
// verifier.
func (w *worker) tokenStep(ctx context.Context, i int, url string) {
	lv := liveOf(w.l, w.toks)
	switch {
	case len(lv) == 0 || i%20 == 1:
		if x := w.l.issue(ctx, url, w.m); x != nil {
			w.toks = append(w.toks, x)
		}
	case i%20 == 11:
		w.l.revoke(ctx, url, lv[0])
	case i%10 == 6:
		recent := w.toks[max(0, len(w.toks)-8):]
		w.l.verifyRemote(ctx, recent[i%len(recent)])
	default:
		recent := w.toks[max(0, len(w.toks)-8):]
		w.l.introspect(ctx, url, recent[i%len(recent)])
	}
}

// verifyTokens checks every token of the ledger at every url and at the
// remote verifier, once the faults are over and the remote verifier hears
// its stream again: live ones active (I2), revoked ones not (I1). An
// unsure one still active is revoked again, as its client would, and
// must then be refused.
func (l *ledger) verifyTokens(ctx context.Context, urls ...string) {
	l.s.t.Helper()
	if l.remote == nil {
		return
	}
	testkit.WaitFor(l.s.t, "the remote verifier to hear its stream again", l.remote.stream.Current)
	l.mu.Lock()
	all := slices.Clone(l.tok.tokens)
	l.mu.Unlock()
	for _, x := range all {
		for _, url := range urls {
			status, active := l.introspect(ctx, url, x)
			switch {
			case status != http.StatusOK:
				l.s.t.Errorf("introspection at %s, the faults over: got %d", url, status)
			case x.state == unsure && active:
				l.revoke(ctx, url, x)
				if _, active := l.introspect(ctx, url, x); active {
					l.s.t.Errorf("a token revoked again at %s is still active there", url)
				}
			}
		}
		// A heartbeat late on a loaded machine makes it fail closed for a
		// moment: ask again once it hears the stream.
		for errors.Is(l.verifyRemote(ctx, x), token.ErrRevocationsStale) {
			testkit.WaitFor(l.s.t, "the remote verifier to hear its stream again", l.remote.stream.Current)
		}
	}
}

// probeTokens times tokenProbes revocations from their acknowledgement
// to their refusal: each token, got at one node, is revoked at the next
// and then checked at every node and at the remote verifier until each
// refuses it (the revocation-to-refusal delays of the report). Then a
// client of its own is disabled with `tether client disable`, and its
// two tokens must be refused likewise (every token of a disabled client
// ends: its subject's generation moves).
func (s *scenario) probeTokens(nodes []*node) {
	s.t.Helper()
	l := s.ledger
	ctx := s.t.Context()
	urls := urlsOf(nodes)()
	l.mu.Lock()
	l.tok.probes++
	m := &machine{id: fmt.Sprintf("probe-%d", l.tok.probes)}
	l.mu.Unlock()
	m = s.addMachine(m.id, "read")
	for i := range tokenProbes {
		x := l.issue(ctx, urls[i%len(urls)], m)
		if x == nil {
			s.t.Fatal("the probe's token was refused")
		}
		x.refused = map[string]bool{}
		l.revoke(ctx, urls[(i+1)%len(urls)], x)
		if x.state != revoked {
			s.t.Fatal("the probe's revocation was not acknowledged")
		}
		s.untilRefused(urls, x)
	}
	d := s.addMachine(m.id+"-disabled", "read")
	xs := []*tok{l.issue(ctx, urls[0], d), l.issue(ctx, urls[len(urls)-1], d)}
	if xs[0] == nil || xs[1] == nil {
		s.t.Fatal("a token for the client to disable was refused")
	}
	proc.Tether(s.t, s.bin, "", append([]string{"client", "disable", d.id}, s.flags...)...)
	at := time.Now() // the command's acknowledgement: it exited 0
	l.mu.Lock()
	for _, x := range xs {
		x.state, x.ackAt, x.refused = revoked, at, map[string]bool{}
		l.tok.revoked++
	}
	l.ack(at)
	l.mu.Unlock()
	for _, x := range xs {
		s.untilRefused(urls, x)
	}
}

// untilRefused checks x, revoked, at every url and at the remote verifier
// until each has refused it: judge times each first refusal.
func (s *scenario) untilRefused(urls []string, x *tok) {
	l := s.ledger
	testkit.WaitFor(s.t, "every verifier to refuse a revoked token", func() bool {
		for _, u := range urls {
			if !x.refused[u] {
				l.introspect(s.t.Context(), u, x)
			}
		}
		if !x.refused[remoteName] {
			l.verifyRemote(s.t.Context(), x)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(x.refused) == len(urls)+1
	})
}

// fillTokens puts the ledger's token figures into f, if the scenario had
// tokens. l.mu is held.
func (l *ledger) fillTokens(f *figures) {
	if l.remote == nil {
		return
	}
	t := &l.tok
	f.Tokens = &tokenFigures{
		Issued: t.issued, Revoked: t.revoked, Refused: t.refused, RemoteRefused: t.remoteRefused,
		FailClosed: t.failClosed, Lost: t.lost, Stale: t.stale, RemoteStale: t.remoteStale,
		Delay: percentiles(t.delays), RemoteDelay: percentiles(t.remoteDelays),
	}
}

// percentiles returns the p50, p99 and maximum of ds, which it sorts.
func percentiles(ds []time.Duration) [3]time.Duration {
	if len(ds) == 0 {
		return [3]time.Duration{}
	}
	slices.Sort(ds)
	return [3]time.Duration{ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]}
}

// cutRemote blackholes p, the remote verifier's path to its stream, and
// revokes a token at base meanwhile: the verifier may accept it only
// within its bound (judge), must fail closed once no heartbeat came for
// remoteStaleness, and, the path healed, must hear its stream again by
// itself and refuse the token as revoked.
func (s *scenario) cutRemote(p *faultnet.Proxy, base string) {
	s.t.Helper()
	l, ctx := s.ledger, s.t.Context()
	m := s.addMachine("cut-off", "read")
	x := l.issue(ctx, base, m)
	if x == nil {
		s.t.Fatal("a token for the cut-off remote verifier was refused")
	}
	testkit.WaitFor(s.t, "the remote verifier to hear its stream before the cut", l.remote.stream.Current)
	p.Set(faultnet.Blackhole)
	cut := time.Now()
	s.fig.Faults++
	l.revoke(ctx, base, x)
	if x.state != revoked {
		s.t.Fatal("the revocation while the remote verifier is cut off was not acknowledged")
	}
	// Until it fails closed it may accept x, within its bound (judge).
	var err error
	testkit.WaitFor(s.t, "the remote verifier, cut off, to fail closed", func() bool {
		err = l.verifyRemote(ctx, x)
		return err != nil
	})
	closed := time.Since(cut)
	if !errors.Is(err, token.ErrRevocationsStale) {
		s.t.Errorf("the remote verifier, cut off before the revocation, refused the token with %v, want %v", err, token.ErrRevocationsStale)
	}
	p.Set(faultnet.Pass)
	back := testkit.WaitFor(s.t, "the remote verifier to hear its stream again", l.remote.stream.Current)
	if err := l.verifyRemote(ctx, x); !errors.Is(err, token.ErrRevoked) {
		s.t.Errorf("the remote verifier, its stream back, on a token revoked while it was cut off: %v, want %v", err, token.ErrRevoked)
	}
	s.fig.Recovery = max(s.fig.Recovery, back)
	s.fig.note("the remote verifier cut off from its stream (blackholed): failed closed %v after the cut (bound: its MaxStaleness %v after the last heartbeat, "+
		"which comes every second); heard the stream again %v after the path healed, and refused the token revoked meanwhile", ms(closed), remoteStaleness, ms(back))
}

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cookieName is tether's session cookie (SES-05).
const cookieName = "__Host-tether"

// newClient returns the test's HTTP client: it dials 127.0.0.1 and nothing
// else, uses no proxy, and follows no redirect.
func newClient() *http.Client {
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			if host, _, err := net.SplitHostPort(address); err != nil || host != "127.0.0.1" {
				return fmt.Errorf("the test only talks to 127.0.0.1, not %s", address)
			}
			return nil
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: 16,
			DisableCompression:  true,
		},
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// A device is one browser of a user: its session cookie and CSRF token,
// kept by hand. The cookie is __Host- and Secure, which a cookie jar never
// sends over plain http, even to 127.0.0.1. A device is safe for
// concurrent use.
type device struct {
	name string // its User-Agent

	mu     sync.Mutex // guards the fields below
	cookie string     // the session token; "" for none
	csrf   string     // the latest CSRF token tether gave it
}

func (d *device) state() (cookie, csrf string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cookie, d.csrf
}

// A reply is what a request got.
type reply struct {
	status int
	node   string // X-Tether-Node
	body   []byte
	sent   time.Time // when it was sent
	at     time.Time // when its headers arrived
}

func (r reply) String() string {
	body := r.body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("%d from %q: %s", r.status, r.node, bytes.TrimSpace(body))
}

// send sends a request as d would (d may be nil: no cookie), with body, if
// not nil, as JSON. Like a browser, d keeps the session cookie and the CSRF
// token it is given.
func (c *cluster) send(ctx context.Context, method, url string, d *device, body any) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d != nil {
		cookie, csrf := d.state()
		req.Header.Set("User-Agent", d.name)
		if cookie != "" {
			req.Header.Set("Cookie", cookieName+"="+cookie)
		}
		if method != http.MethodGet && csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
	}
	sent := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return reply{sent: sent, at: time.Now()}, err
	}
	defer res.Body.Close()
	r := reply{status: res.StatusCode, node: res.Header.Get("X-Tether-Node"), sent: sent, at: time.Now()}
	if r.body, err = io.ReadAll(io.LimitReader(res.Body, 1<<20)); err != nil {
		return reply{}, fmt.Errorf("%s %s: reading the body: %w", method, url, err)
	}
	if d != nil {
		var v struct {
			CSRFToken string `json:"csrf_token"`
		}
		json.Unmarshal(r.body, &v)
		d.mu.Lock()
		for _, ck := range res.Cookies() {
			if ck.Name == cookieName {
				d.cookie = ck.Value
				if ck.MaxAge < 0 {
					d.cookie = ""
				}
			}
		}
		if v.CSRFToken != "" {
			d.csrf = v.CSRFToken
		}
		d.mu.Unlock()
	}
	return r, nil
}

// must sends a request and fails the test unless it is answered want.
func (c *cluster) must(t *testing.T, want int, method, url string, d *device, body any) reply {
	t.Helper()
	r, err := c.send(t.Context(), method, url, d, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if r.status != want {
		t.Fatalf("%s %s as %s: got %v, want %d", method, url, deviceName(d), r, want)
	}
	return r
}

func deviceName(d *device) string {
	if d == nil {
		return "nobody"
	}
	return d.name
}

// login signs user in at base (nginx or a node) as a new device.
func (c *cluster) login(t *testing.T, base, user, pw, deviceName string) *device {
	t.Helper()
	d := &device{name: deviceName}
	c.must(t, http.StatusOK, "POST", base+"/api/v1/login", d, map[string]string{"username": user, "password": pw})
	if cookie, csrf := d.state(); cookie == "" || csrf == "" {
		t.Fatalf("sign-in of %s gave no session cookie or no CSRF token", user)
	}
	return d
}

// sessionID returns the public id of d's session, asking base.
func (c *cluster) sessionID(t *testing.T, base string, d *device) string {
	t.Helper()
	r := c.must(t, http.StatusOK, "GET", base+"/api/v1/me", d, nil)
	var v struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.Session.ID == "" {
		t.Fatalf("GET /api/v1/me: no session id in %s (%v)", r.body, err)
	}
	return v.Session.ID
}

// expectEverywhere fails the test unless GET /api/v1/me as d is answered
// want by every node, asked directly.
func (c *cluster) expectEverywhere(t *testing.T, want int, d *device) {
	t.Helper()
	for _, n := range c.nodes {
		c.must(t, want, "GET", n.url+"/api/v1/me", d, nil)
	}
}

// A refusal is how a node first answered a revoked session.
type refusal struct {
	node   string
	first  int           // the status of the node's first answer
	tries  int           // requests until the first 401
	delay  time.Duration // from the acknowledgement to the first 401
	status []int         // every answer but the last 401
	err    error
}

// firstRefusals sends, at once to each of nodes, GET /api/v1/me as d until
// it is refused (401), and reports for each node its first answer and the
// delay from acked to the refusal. It gives up on a node after a few
// seconds.
func (c *cluster) firstRefusals(ctx context.Context, acked time.Time, d *device, nodes ...*node) []refusal {
	out := make([]refusal, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			rf := refusal{node: n.name}
			defer func() { out[i] = rf }()
			deadline := acked.Add(5 * time.Second)
			for {
				r, err := c.send(ctx, "GET", n.url+"/api/v1/me", d, nil)
				if err != nil {
					rf.err = err
					return
				}
				rf.tries++
				if rf.tries == 1 {
					rf.first = r.status
				}
				if r.status == http.StatusUnauthorized {
					rf.delay = r.at.Sub(acked)
					return
				}
				rf.status = append(rf.status, r.status)
				if r.at.After(deadline) {
					rf.err = fmt.Errorf("still not refused %v after the acknowledgement", r.at.Sub(acked))
					return
				}
			}
		})
	}
	wg.Wait()
	return out
}

// checkRefusals fails the test unless every node refused on its very
// first request, and logs the delays.
func checkRefusals(t *testing.T, what string, rs []refusal) {
	t.Helper()
	for _, rf := range rs {
		switch {
		case rf.err != nil:
			t.Errorf("%s: %s: %v (answers before: %v)", what, rf.node, rf.err, rf.status)
		case rf.first != http.StatusUnauthorized:
			t.Errorf("%s: %s answered %d to the very next request, and 401 only after %d requests, %v after the acknowledgement (answers: %v)",
				what, rf.node, rf.first, rf.tries, ms(rf.delay), rf.status)
		default:
			t.Logf("%s: %s refused the very next request (401) %v after the acknowledgement", what, rf.node, ms(rf.delay))
		}
	}
}

// ms formats d in milliseconds with microsecond precision.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

// A probe sends GET /api/v1/me through nginx as each of its devices in
// turn, from several workers at once, until stopped, and records every
// answer.
type probe struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards answers
	answers []answer
}

// An answer is one request of a probe.
type answer struct {
	device int // index in the probe's devices
	reply
	err error
}

// probeMax bounds a probe: it stops by itself after this.
const probeMax = 60 * time.Second

// startProbe starts a probe of devices through nginx: workers loops, each
// sending a request every pace at most (0: one after the other).
func (c *cluster) startProbe(workers int, pace time.Duration, devices ...*device) *probe {
	ctx, cancel := context.WithTimeout(context.Background(), probeMax)
	p := &probe{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				next := time.Now().Add(pace)
				di := i % len(devices)
				r, err := c.send(ctx, "GET", c.lb+"/api/v1/me", devices[di], nil)
				if ctx.Err() != nil {
					return
				}
				r.body = nil // keep little
				p.mu.Lock()
				p.answers = append(p.answers, answer{device: di, reply: r, err: err})
				p.mu.Unlock()
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(d):
					}
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
	return p
}

// count returns how many answers the probe has had since from.
func (p *probe) count(from time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.answers {
		if !a.at.Before(from) {
			n++
		}
	}
	return n
}

// stop stops the probe and returns its answers.
func (p *probe) stop() []answer {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answers
}

// waitFor polls cond every pollEvery until it is true, or fails the test
// after timeout, saying what it waited for.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(pollEvery)
	}
}

// Package web is the HTTP client of tether's end-to-end tests: it talks to
// 127.0.0.1 only, and keeps each simulated browser's session cookie and
// CSRF token by hand. It is shared by the packages under e2e/ and holds no
// test of its own.
//
//	c := web.NewClient(t)
//	phone := c.Login(t, nodeURL, "alice", password, "alice phone")
//	id := c.SessionID(t, nodeURL, phone)
//	c.Must(t, http.StatusNoContent, "DELETE", nodeURL+"/api/v1/sessions/"+id, laptop, nil)
//	r, err := c.Send(ctx, "GET", otherURL+"/api/v1/me", phone, nil) // r.Status, r.Node (X-Tether-Node)
package web

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

	"github.com/tetherauth/tether/internal/testkit/proc"
)

// CookieName is tether's session cookie (SES-05).
const CookieName = "__Host-tether"

// DeviceCookieName is the cookie of a browser that signed in to an
// account before (PW-06): its sign-ins are throttled apart from
// strangers'.
const DeviceCookieName = "__Host-tether-device"

// A Client sends the test's requests.
type Client struct {
	HTTP *http.Client
}

// NewClient returns a client that dials 127.0.0.1 and nothing else, uses
// no proxy, and follows no redirect. Its idle connections are closed when
// the test ends.
func NewClient(t testing.TB) *Client { return NewClientFrom(t, nil) }

// NewClientFrom is NewClient with its connections made from the loopback
// address from, such as 127.0.0.2 (nil: the system's choice, 127.0.0.1):
// a peer other than 127.0.0.1, which the nodes trust as their proxy.
func NewClientFrom(t testing.TB, from net.IP) *Client {
	var local net.Addr
	if from != nil {
		local = &net.TCPAddr{IP: from}
	}
	dialer := &net.Dialer{
		LocalAddr: local,
		Timeout:   5 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			if host, _, err := net.SplitHostPort(address); err != nil || host != "127.0.0.1" {
				return fmt.Errorf("the test only talks to 127.0.0.1, not %s", address)
			}
			return nil
		},
	}
	c := &Client{HTTP: &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: 16,
			DisableCompression:  true,
		},
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// A Device is one browser of a user: its session cookie and CSRF token,
// kept by hand, so that copies of a device, and what the ledger knows of
// it, are explicit rather than whatever a cookie jar decides to keep. A
// Device is safe for concurrent use.
type Device struct {
	Name string // its User-Agent
	// From, if not empty, is sent as X-Forwarded-For: the address the
	// device signs in from, for a node that trusts 127.0.0.1 as a proxy.
	From string

	mu     sync.Mutex // guards the fields below
	cookie string     // the session token; "" for none
	csrf   string     // the latest CSRF token tether gave it
	known  string     // the device cookie; "" for none
}

// NewDevice returns a device without a session.
func NewDevice(name string) *Device { return &Device{Name: name} }

// State returns d's session token ("" for none) and CSRF token.
func (d *Device) State() (cookie, csrf string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cookie, d.csrf
}

// Copy returns a device called name with d's cookie and CSRF token as they
// are now.
func (d *Device) Copy(name string) *Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &Device{Name: name, From: d.From, cookie: d.cookie, csrf: d.csrf, known: d.known}
}

// A Reply is what a request got.
type Reply struct {
	Status int
	Node   string // X-Tether-Node
	Body   []byte
	Sent   time.Time // when it was sent
	At     time.Time // when its headers arrived
}

func (r Reply) String() string {
	body := r.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("%d from %q: %s", r.Status, r.Node, bytes.TrimSpace(body))
}

// Send sends a request as d would (d may be nil: no cookie), with body, if
// not nil, as JSON. Like a browser, d keeps the session cookie and the CSRF
// token it is given.
func (c *Client) Send(ctx context.Context, method, url string, d *Device, body any) (Reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return Reply{}, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d != nil {
		cookie, csrf := d.State()
		req.Header.Set("User-Agent", d.Name)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
		}
		d.mu.Lock()
		if d.known != "" {
			req.AddCookie(&http.Cookie{Name: DeviceCookieName, Value: d.known})
		}
		d.mu.Unlock()
		if d.From != "" {
			req.Header.Set("X-Forwarded-For", d.From)
		}
		if method != http.MethodGet && csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
	}
	sent := time.Now()
	res, err := c.HTTP.Do(req)
	if err != nil {
		return Reply{Sent: sent, At: time.Now()}, err
	}
	defer res.Body.Close()
	r := Reply{Status: res.StatusCode, Node: res.Header.Get("X-Tether-Node"), Sent: sent, At: time.Now()}
	if r.Body, err = io.ReadAll(io.LimitReader(res.Body, 1<<20)); err != nil {
		return Reply{}, fmt.Errorf("%s %s: reading the body: %w", method, url, err)
	}
	if d != nil {
		var v struct {
			CSRFToken string `json:"csrf_token"`
		}
		json.Unmarshal(r.Body, &v)
		d.mu.Lock()
		for _, ck := range res.Cookies() {
			value := ck.Value
			if ck.MaxAge < 0 {
				value = ""
			}
			switch ck.Name {
			case CookieName:
				d.cookie = value
			case DeviceCookieName:
				d.known = value
			}
		}
		if v.CSRFToken != "" {
			d.csrf = v.CSRFToken
		}
		d.mu.Unlock()
	}
	return r, nil
}

// Must sends a request and fails the test unless it is answered want.
func (c *Client) Must(t testing.TB, want int, method, url string, d *Device, body any) Reply {
	t.Helper()
	r, err := c.Send(t.Context(), method, url, d, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if r.Status != want {
		t.Fatalf("%s %s as %s: got %v, want %d", method, url, deviceName(d), r, want)
	}
	return r
}

// deviceName is d's name, or "nobody" for no device.
func deviceName(d *Device) string {
	if d == nil {
		return "nobody"
	}
	return d.Name
}

// Login signs user in at base (nginx or a node) as a new device.
func (c *Client) Login(t testing.TB, base, user, pw, deviceName string) *Device {
	t.Helper()
	d := NewDevice(deviceName)
	c.Must(t, http.StatusOK, "POST", base+"/api/v1/login", d, map[string]string{"username": user, "password": pw})
	if cookie, csrf := d.State(); cookie == "" || csrf == "" {
		t.Fatalf("sign-in of %s gave no session cookie or no CSRF token", user)
	}
	return d
}

// Me is the part of GET /api/v1/me's answer the tests read.
type Me struct {
	User struct {
		Name string `json:"name"`
	} `json:"user"`
	Session struct {
		ID string `json:"id"`
	} `json:"session"`
}

// SessionID returns the public id of d's session, asking base.
func (c *Client) SessionID(t testing.TB, base string, d *Device) string {
	t.Helper()
	r := c.Must(t, http.StatusOK, "GET", base+"/api/v1/me", d, nil)
	var v Me
	if err := json.Unmarshal(r.Body, &v); err != nil || v.Session.ID == "" {
		t.Fatalf("GET /api/v1/me: no session id in %s (%v)", r.Body, err)
	}
	return v.Session.ID
}

// WaitOK polls GET url until it answers 200, while p runs.
func (c *Client) WaitOK(p *proc.Proc, url string) error {
	return c.WaitStatus(p, url, http.StatusOK)
}

// WaitStatus polls GET url until it answers want, while p runs.
func (c *Client) WaitStatus(p *proc.Proc, url string, want int) error {
	deadline := time.Now().Add(proc.StartTimeout)
	for {
		res, err := c.HTTP.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before GET %s answered %d: %v\n%s", p.Name, url, want, p.Err(), p.Tail(40))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: no %d within %v (last: %v)\n%s", url, want, proc.StartTimeout, err, p.Tail(40))
		}
		time.Sleep(proc.PollEvery)
	}
}

package server

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/password"
)

// PW-03: a password whose hash is weaker than the hasher's parameters is
// rehashed when its user signs in.
func TestPW03_RehashOnSignIn(t *testing.T) {
	stronger := password.DefaultParams
	stronger.Time++
	h := newHarness(t, harnessOpts{hasher: password.HasherConfig{Params: stronger}})
	weak, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u := h.addUser("alice", alicePW, false)
	old, err := weak.Hash(t.Context(), alicePW)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.accounts.SetPassword(t.Context(), u.ID, u.PasswordHash, old); err != nil {
		t.Fatal(err)
	}
	h.client().login("alice", alicePW)
	got, err := h.accounts.ByID(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash == old || password.NeedsRehash(got.PasswordHash, stronger) {
		t.Fatalf("hash after sign-in: %q, want one with t=%d", got.PasswordHash, stronger.Time)
	}
	h.client().login("alice", alicePW) // and it still verifies
}

// PW-04: request bodies and passwords are capped before any hashing, and a
// busy hasher answers 503 with Retry-After.
func TestPW04_SizeCapsAndBusy(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	long := strings.Repeat("x", password.MaxBytes+1)
	res := c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: long}, "")
	if res.status != http.StatusBadRequest || res.errorCode(t) != "password_too_long" {
		t.Errorf("1 KiB + 1 password: %d %s, want 400 password_too_long", res.status, res.body)
	}
	big := `{"username":"alice","password":"` + strings.Repeat("x", maxBody) + `"}`
	res = c.do(http.MethodPost, "/api/v1/login", strings.NewReader(big), "Content-Type", "application/json")
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "64 KiB") {
		t.Errorf("64 KiB body: %d %s, want 400 naming the cap", res.status, res.body)
	}
	token := c.login("alice", alicePW)
	res = c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: long}, token)
	if res.status != http.StatusBadRequest || res.errorCode(t) != "password_too_long" {
		t.Errorf("1 KiB + 1 new password: %d %s, want 400 password_too_long", res.status, res.body)
	}

	// ErrBusy from the hasher, however wrapped, is 503 with Retry-After.
	rec := httptest.NewRecorder()
	s := &server{log: slog.New(slog.DiscardHandler)}
	s.failJSON(rec, httptest.NewRequest(http.MethodPost, "/api/v1/login", nil), fmt.Errorf("sign in: %w", password.ErrBusy))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("ErrBusy: %d Retry-After %q, want 503 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// PW-05: an unknown user, a wrong password and a disabled user get the same
// status and body: 403, the status of a wrong current password at a
// password change too, so that 401 means only "no session".
func TestPW05_SameAnswerForUnknownWrongDisabled(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addAliceAndDisabledCarol()
	var first *response
	for _, tc := range []struct{ name, user, pw string }{
		{"unknown user", "nobody", alicePW},
		{"wrong password", "alice", "not the password"},
		{"disabled user", "carol", alicePW},
	} {
		c := h.client()
		res := c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: tc.user, Password: tc.pw}, "")
		if first == nil {
			first = res
		}
		if res.status != http.StatusForbidden || res.body != first.body || c.cookie(sessionCookie) != "" {
			t.Errorf("%s: %d %q, want 403 %q and no session", tc.name, res.status, res.body, first.body)
		}
		if res.errorCode(t) != "invalid_credentials" {
			t.Errorf("%s: error %q, want invalid_credentials", tc.name, res.errorCode(t))
		}
		page := c.pageLogin(tc.user, tc.pw)
		if page.status != http.StatusForbidden || !strings.Contains(page.body, "The username or password is wrong.") {
			t.Errorf("%s through the form: status %d, want 403 and the same message", tc.name, page.status)
		}
	}
}

// PW-06: failures slow down further tries per canonical account and per
// client IP; X-Forwarded-For counts only from a trusted proxy.
func TestPW06_ThrottlePerAccountAndIP(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip + ", 127.0.0.1"} }
	login := func(c *client, user, pw string, hdr []string) *response {
		return c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: user, Password: pw}, "", hdr...)
	}

	t.Run("account", func(t *testing.T) {
		h := newHarness(t, harnessOpts{free: 2, proxies: proxy})
		h.addUser("alice", alicePW, false)
		c := h.client()
		for i := range 3 { // each from another address, in other spellings of the name
			login(c, []string{"alice", "ALICE", " Alice"}[i], "wrong", from(fmt.Sprintf("198.51.100.%d", i)))
		}
		if !h.throttled(t, login(c, "alice", alicePW, from("198.51.100.99"))) {
			t.Fatal("right password after 3 failures: not throttled")
		}
		if res := login(c, "bob", alicePW, from("198.51.100.99")); res.status != http.StatusForbidden {
			t.Fatalf("another account from the same address: status %d, want 403", res.status)
		}
		h.clock.Advance(time.Second)
		if res := login(c, "alice", alicePW, from("198.51.100.99")); res.status != http.StatusOK {
			t.Fatalf("after waiting: status %d, want 200", res.status)
		}
	})

	t.Run("ip", func(t *testing.T) {
		h := newHarness(t, harnessOpts{free: 2, proxies: proxy})
		h.addUser("alice", alicePW, false)
		c := h.client()
		for i := range 3 {
			login(c, fmt.Sprintf("nobody%d", i), "wrong", from("203.0.113.7"))
		}
		if !h.throttled(t, login(c, "alice", alicePW, from("203.0.113.7"))) {
			t.Fatal("from the failing address: not throttled")
		}
		if res := login(c, "alice", alicePW, from("203.0.113.8")); res.status != http.StatusOK {
			t.Fatalf("from another address: status %d, want 200", res.status)
		}
		_, me := c.me()
		if me.Session.IP != "203.0.113.8" {
			t.Fatalf("session IP %q, want the forwarded 203.0.113.8", me.Session.IP)
		}
	})

	t.Run("untrusted forwarded-for", func(t *testing.T) {
		h := newHarness(t, harnessOpts{free: 2}) // no trusted proxies
		h.addUser("alice", alicePW, false)
		c := h.client()
		for i := range 3 {
			login(c, fmt.Sprintf("nobody%d", i), "wrong", from(fmt.Sprintf("192.0.2.%d", i)))
		}
		if !h.throttled(t, login(c, "alice", alicePW, from("192.0.2.200"))) {
			t.Fatal("spoofed X-Forwarded-For escaped the throttle")
		}
		h.clock.Advance(time.Second)
		login(c, "alice", alicePW, from("192.0.2.200"))
		if _, me := c.me(); me.Session.IP != "127.0.0.1" {
			t.Fatalf("session IP %q, want the peer 127.0.0.1", me.Session.IP)
		}
	})
}

// clientIPTrusted are the trusted proxies of clientIPCases.
var clientIPTrusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// clientIPCases are peers and X-Forwarded-For headers with the client
// address clientIP should find. They also seed FuzzClientIP.
var clientIPCases = []struct {
	name, remote, xff, want string
}{
	{"untrusted peer, header ignored", "198.51.100.1:1234", "203.0.113.1", "198.51.100.1"},
	{"trusted peer, no header", "10.0.0.1:1234", "", "10.0.0.1"},
	{"trusted peer", "10.0.0.1:1234", "203.0.113.1", "203.0.113.1"},
	{"client-chosen left entries ignored", "10.0.0.1:1234", "1.2.3.4, 203.0.113.1", "203.0.113.1"},
	{"chain of trusted proxies", "10.0.0.1:1234", "203.0.113.1, 10.0.0.2,10.0.0.3", "203.0.113.1"},
	{"all trusted", "10.0.0.1:1234", "10.0.0.2", "10.0.0.2"},
	{"garbage stops the walk", "10.0.0.1:1234", "203.0.113.1, nonsense, 10.0.0.2", "10.0.0.2"},
	{"empty entry stops the walk", "10.0.0.1:1234", "203.0.113.1,,", "10.0.0.1"},
	{"IPv4-mapped", "[::ffff:198.51.100.1]:1234", "", "198.51.100.1"},
	{"IPv6 trusted peer", "[::1]:1234", " 2001:db8::1 ", "2001:db8::1"},
	{"zone dropped", "[fe80::1%eth0]:1234", "", "fe80::1"},
	{"unreadable peer", "pipe", "203.0.113.1", "invalid IP"},
	{"IPv4 and port", "10.0.0.1:1234", "203.0.113.1:5678", "203.0.113.1"},
	{"trusted hop with a port", "10.0.0.1:1234", "203.0.113.1, 10.0.0.2:8080", "203.0.113.1"},
	{"IPv6 in brackets", "10.0.0.1:1234", "[2001:db8::1]", "2001:db8::1"},
	{"IPv6 in brackets and port", "10.0.0.1:1234", "[2001:db8::1]:5678", "2001:db8::1"},
	{"IPv4-mapped with a port", "10.0.0.1:1234", "[::ffff:203.0.113.1]:5678", "203.0.113.1"},
	{"IPv6 with a port, no brackets: an address", "10.0.0.1:1234", "::1:80", "::1:80"},
	{"IPv4 in brackets stops the walk", "10.0.0.1:1234", "203.0.113.1, [10.0.0.2]:80", "10.0.0.1"},
	{"bad port stops the walk", "10.0.0.1:1234", "203.0.113.1, 10.0.0.2, 198.51.100.1:99999", "10.0.0.1"},
	{"empty port stops the walk", "10.0.0.1:1234", "203.0.113.1, 10.0.0.2:", "10.0.0.1"},
	{"Forwarded-style quoting stops the walk", "10.0.0.1:1234", `203.0.113.1, "[2001:db8::1]:80"`, "10.0.0.1"},
}

// PW-06: the client address, as the throttle and the session list see it.
func TestPW06_ClientIP(t *testing.T) {
	for _, tc := range clientIPCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientIP(forwarded(tc.remote, tc.xff), clientIPTrusted).String(); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	r := forwarded("10.0.0.1:1234", "203.0.113.1")
	r.Header.Add("X-Forwarded-For", "10.0.0.2") // a second header line, as a second proxy may add
	if got := clientIP(r, clientIPTrusted).String(); got != "203.0.113.1" {
		t.Errorf("two header lines: got %v, want 203.0.113.1", got)
	}
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.1", "ip:203.0.113.1"},
		{"2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"},
	} {
		if got := ipThrottleKey(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("ipThrottleKey(%s): got %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// PW-06: an X-Forwarded-For entry may carry a port, as some proxies write
// it: 1.2.3.4:5678 and [::1]:5678 are hops like 1.2.3.4 and ::1, and do not
// end the walk (which would leave the throttle counting every client of a
// proxy as one). Anything else still stops the walk at the last good hop.
func TestPW06_XForwardedForWithPorts(t *testing.T) {
	tests := []struct {
		hop, want string // want "": not an entry
	}{
		{"1.2.3.4", "1.2.3.4"},
		{"1.2.3.4:5678", "1.2.3.4"},
		{"1.2.3.4:0", "1.2.3.4"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[::1]:5678", "::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]:65535", "2001:db8::1"},
		{"[::ffff:1.2.3.4]:80", "::ffff:1.2.3.4"},
		{"[fe80::1%eth0]:80", "fe80::1%eth0"},
		{"::1:80", "::1:80"}, // without brackets, a whole address
		{"", ""},
		{"unknown", ""},
		{"[1.2.3.4]", ""},
		{"[1.2.3.4]:80", ""},
		{"1.2.3.4:", ""},
		{"[::1]:", ""},
		{"1.2.3.4:65536", ""},
		{"1.2.3.4:-1", ""},
		{"1.2.3.4:+80", ""},
		{"1.2.3.4:http", ""},
		{"[::1", ""},
		{"::1]", ""},
		{"[]", ""},
		{"[[::1]]", ""},
		{"[::1]:80:90", ""},
		{"1.2.3.4 :80", ""},
		{`"[::1]:80"`, ""},
		{"for=1.2.3.4", ""},
		{"_hidden", ""},
	}
	for _, tc := range tests {
		t.Run(tc.hop, func(t *testing.T) {
			a, ok := parseHop(tc.hop)
			got := ""
			if ok {
				got = a.String()
			}
			if got != tc.want {
				t.Errorf("parseHop(%q): got %q, want %q", tc.hop, got, tc.want)
			}
		})
	}
	// Through clientIP, behind two trusted proxies that each add a port.
	r := forwarded("10.0.0.1:1234", "198.51.100.7, 203.0.113.1:40000")
	r.Header.Add("X-Forwarded-For", "[::1]:443")
	if got := clientIP(r, clientIPTrusted).String(); got != "203.0.113.1" {
		t.Errorf("hops with ports: got %v, want 203.0.113.1", got)
	}
}

// FuzzClientIP: whatever the peer and header, clientIP doesn't panic; it
// returns the peer when the peer isn't trusted, and otherwise the peer or
// an address that appears in the header, with or without a port.
func FuzzClientIP(f *testing.F) {
	for _, tc := range clientIPCases {
		f.Add(tc.remote, tc.xff)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := forwarded(remote, xff)
		got := clientIP(r, clientIPTrusted)
		peer, err := netip.ParseAddrPort(remote)
		if err != nil {
			if got.IsValid() {
				t.Fatalf("unreadable peer %q: got %v", remote, got)
			}
			return
		}
		p := peer.Addr().Unmap().WithZone("")
		if got == p {
			return
		}
		if !isTrusted(p, clientIPTrusted) {
			t.Fatalf("untrusted peer %v: got %v from the header", p, got)
		}
		for hop := range strings.SplitSeq(xff, ",") {
			if slices.Contains(addressesIn(strings.TrimSpace(hop)), got) {
				return
			}
		}
		t.Fatalf("clientIP(%q, %q) = %v: neither the peer nor in the header", remote, xff, got)
	})
}

// addressesIn returns every address one could read in a header entry, with
// or without a port or brackets, unmapped and without zone: more than
// parseHop accepts, and found without it.
func addressesIn(hop string) []netip.Addr {
	forms := []string{hop}
	if i := strings.LastIndexByte(hop, ':'); i >= 0 {
		forms = append(forms, hop[:i])
	}
	var out []netip.Addr
	for _, f := range forms {
		for _, g := range []string{f, strings.TrimSuffix(strings.TrimPrefix(f, "["), "]")} {
			if a, err := netip.ParseAddr(g); err == nil {
				out = append(out, a.Unmap().WithZone(""))
			}
		}
	}
	return out
}

// forwarded is a request from remote with X-Forwarded-For xff (none if "").
func forwarded(remote, xff string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	return r
}

// PW-07: every sign-in success and failure is an audit event with who,
// when, from where; no password, token or cookie is ever logged.
func TestPW07_AuditLog(t *testing.T) {
	h := newHarness(t, harnessOpts{free: 2})
	h.addAliceAndDisabledCarol()
	c := h.client()
	var secrets []string
	secrets = append(secrets, alicePW, "wrong password 1", c.login("alice", alicePW), c.cookie(sessionCookie))
	c.pageLogin("alice", "wrong password 1")
	c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "nobody", Password: "wrong password 2"}, "", "User-Agent", "audit-test/1.0")
	c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "carol", Password: alicePW}, "")
	stranger := h.client() // no device cookie of alice's: counted by address, unlike c's guess at alice
	stranger.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "nobody", Password: "wrong password 3"}, "")
	stranger.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, "") // throttled: 3 failures from this address
	long := strings.Repeat("x", password.MaxBytes+1)
	stranger.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "dave", Password: long}, "")
	stranger.do(http.MethodPost, "/api/v1/login", strings.NewReader(`{"username":"erin","password":`), "Content-Type", "application/json")
	secrets = append(secrets, "wrong password 2", "wrong password 3", long)

	type event struct{ user, outcome, reason string }
	var got []event
	for _, rec := range h.logs.Records(t, "audit") {
		if rec["event"] != "sign-in" {
			continue
		}
		for _, k := range []string{"time", "ip", "user_agent"} {
			if rec[k] == nil || rec[k] == "" {
				t.Errorf("audit record %v lacks %s", rec, k)
			}
		}
		reason, _ := rec["reason"].(string)
		got = append(got, event{rec["user"].(string), rec["outcome"].(string), reason})
	}
	want := []event{
		{"alice", "success", ""},
		{"alice", "failure", "wrong password"},
		{"nobody", "failure", "unknown user"},
		{"carol", "failure", "disabled user"},
		{"nobody", "failure", "unknown user"},
		{"alice", "failure", "throttled"},
		{"dave", "failure", "password too long"},
		{"", "failure", "malformed request"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sign-in audit events:\ngot  %v\nwant %v", got, want)
	}
	if !strings.Contains(h.logs.String(), `"user_agent":"audit-test/1.0"`) {
		t.Errorf("the user agent of a failed sign-in is not logged")
	}
	logs := h.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the log contains a secret %q", s)
		}
	}
}

// writeGate holds every account creation until n have arrived, or until
// it is opened: so that n setups, each past its own checks, write at the
// same moment.
type writeGate struct {
	n    int
	mu   sync.Mutex // guards seen
	seen int
	all  chan struct{} // closed once n arrived or the gate is opened
	once sync.Once
}

func newWriteGate(n int) *writeGate { return &writeGate{n: n, all: make(chan struct{})} }

func (g *writeGate) open() { g.once.Do(func() { close(g.all) }) }

func (g *writeGate) wait() {
	g.mu.Lock()
	g.seen++
	if g.seen == g.n {
		g.open()
	}
	g.mu.Unlock()
	<-g.all
}

// gatedAccounts is an account.Store whose creations pass a writeGate.
type gatedAccounts struct {
	account.Store
	gate *writeGate
}

func (g gatedAccounts) Create(ctx context.Context, u *account.User) error {
	g.gate.wait()
	return g.Store.Create(ctx, u)
}

func (g gatedAccounts) CreateFirst(ctx context.Context, u *account.User, setup account.SetupHash, now time.Time) error {
	g.gate.wait()
	return g.Store.CreateFirst(ctx, u, setup, now)
}

// PW-08: two nodes on one empty database each print a setup link; each
// link is opened on the other node, both are used at once, both setups
// pass their checks and write at the same moment. Exactly one admin is
// created; the other setup gets the "invalid, expired or already used"
// answer and no session.
func TestPW08_OneFirstAdminAcrossNodes(t *testing.T) {
	data := filepath.Join(t.TempDir(), "tether.db")
	gate := newWriteGate(2)
	type node struct {
		h      *harness
		c      *client
		fields url.Values
	}
	nodes := make([]*node, 2)
	harnesses := make([]*harness, len(nodes))
	tokens := make([]string, len(nodes))
	clock := newHarnessClock()
	for i := range nodes {
		harnesses[i] = newHarness(t, harnessOpts{data: data, clock: clock, wrap: func(s account.Store) account.Store {
			return gatedAccounts{Store: s, gate: gate}
		}})
		tokens[i] = harnesses[i].newSetup()
	}
	for i := range nodes {
		h, token := harnesses[i], tokens[1-i] // the other node's link
		c := h.client()
		page := c.do(http.MethodGet, "/setup?token="+url.QueryEscape(token), nil)
		if page.status != http.StatusOK {
			t.Fatalf("node %d: GET /setup: status %d", i, page.status)
		}
		nodes[i] = &node{h: h, c: c, fields: url.Values{
			"csrf_token": {formToken(t, page.body, "/setup")},
			"token":      {token}, "username": {fmt.Sprintf("root%d", i)}, "password": {alicePW}, "confirm": {alicePW},
		}}
	}

	type answer struct {
		node   int
		status int
		body   string
		err    error
	}
	answers := make(chan answer, len(nodes))
	for i, n := range nodes {
		go func() {
			// Not c.form: it would fail the test from this goroutine.
			res, err := n.c.hc.PostForm(n.h.srv.URL+"/setup", n.fields)
			a := answer{node: i, err: err}
			if err == nil {
				b, rerr := io.ReadAll(res.Body)
				res.Body.Close()
				a.status, a.body, a.err = res.StatusCode, string(b), rerr
			}
			answers <- a
		}()
	}
	got := []answer{<-answers}
	gate.open() // if one setup ended before writing, the other needn't wait for it
	got = append(got, <-answers)

	var created, refused []int
	for _, a := range got {
		switch {
		case a.err != nil:
			t.Fatalf("node %d: POST /setup: %v", a.node, a.err)
		case a.status == http.StatusSeeOther:
			created = append(created, a.node)
		case a.status == http.StatusNotFound && strings.Contains(a.body, "invalid, expired or already used"):
			refused = append(refused, a.node)
			if nodes[a.node].c.cookie(sessionCookie) != "" {
				t.Errorf("node %d: the refused setup got a session", a.node)
			}
		default:
			t.Errorf("node %d: POST /setup: status %d, want 303 or 404 setup_invalid:\n%s", a.node, a.status, a.body)
		}
	}
	if len(created) != 1 || len(refused) != 1 {
		t.Errorf("setups: created by nodes %v, refused by %v; want one of each", created, refused)
	}
	users, err := nodes[0].h.accounts.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || !users[0].Admin {
		var names []string
		for _, u := range users {
			names = append(names, u.Name)
		}
		t.Fatalf("users after both setups: %v, want exactly one admin", names)
	}
}

// PW-08: no account exists until the one-time setup link creates the first
// admin; the link works once, for an hour, and never once a user exists.
func TestPW08_SetupCreatesFirstAdminOnce(t *testing.T) {
	submit := func(c *client, token, user, pw, confirm string) *response {
		page := c.do(http.MethodGet, "/setup?token="+url.QueryEscape(token), nil)
		if page.status != http.StatusOK {
			c.t.Fatalf("GET /setup: status %d", page.status)
		}
		return c.form("/setup", url.Values{
			"csrf_token": {formToken(c.t, page.body, "/setup")},
			"token":      {token}, "username": {user}, "password": {pw}, "confirm": {confirm},
		})
	}

	t.Run("once", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		token := h.newSetup()
		c := h.client()
		if res := c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "admin", Password: "admin"}, ""); res.status != http.StatusForbidden {
			t.Fatalf("sign-in on an empty database: status %d, want 403", res.status)
		}
		if res := c.do(http.MethodGet, "/setup?token=wrong", nil); res.status != http.StatusNotFound {
			t.Fatalf("wrong token: status %d, want 404", res.status)
		}
		if res := submit(c, token, "root", alicePW, "typo"); res.status != http.StatusBadRequest || !strings.Contains(res.body, "differ") {
			t.Fatalf("mismatched passwords: status %d, want 400", res.status)
		}
		if res := submit(c, token, "root", "password", "password"); res.status != http.StatusBadRequest || !strings.Contains(res.body, "Password is too common:") {
			t.Fatalf("a common password: status %d, want 400 saying it is too common:\n%s", res.status, res.body)
		}
		if res := submit(c, token, "Root", alicePW, alicePW); res.status != http.StatusSeeOther || res.header.Get("Location") != "/account" {
			t.Fatalf("setup: %d %s, want 303 to /account", res.status, res.header.Get("Location"))
		}
		res, me := c.me()
		if res.status != http.StatusOK || me.User.Name != "root" || !me.User.Admin {
			t.Fatalf("after setup: %d %+v, want signed in as admin root", res.status, me.User)
		}
		if res := h.client().do(http.MethodGet, "/setup?token="+token, nil); res.status != http.StatusNotFound {
			t.Fatalf("setup link used twice: status %d, want 404", res.status)
		}
		if n, _ := h.accounts.Count(t.Context()); n != 1 {
			t.Fatalf("%d users, want 1", n)
		}
	})

	t.Run("expired", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		token := h.newSetup()
		h.clock.Advance(DefaultSetupTTL)
		if res := h.client().do(http.MethodGet, "/setup?token="+token, nil); res.status != http.StatusNotFound {
			t.Fatalf("after an hour: status %d, want 404", res.status)
		}
	})

	t.Run("users exist", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		token := h.newSetup()
		c := h.client()
		page := c.do(http.MethodGet, "/setup?token="+token, nil)
		h.addUser("alice", alicePW, false) // e.g. by `tether user add` meanwhile
		res := c.form("/setup", url.Values{
			"csrf_token": {formToken(t, page.body, "/setup")},
			"token":      {token}, "username": {"root"}, "password": {alicePW}, "confirm": {alicePW},
		})
		if res.status != http.StatusNotFound || c.cookie(sessionCookie) != "" {
			t.Fatalf("setup once a user exists: status %d, want 404 and no session", res.status)
		}
		if res := c.do(http.MethodGet, "/setup?token="+token, nil); res.status != http.StatusNotFound {
			t.Fatalf("setup form once a user exists: status %d, want 404", res.status)
		}
	})

	t.Run("token", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		token := h.newSetup()
		for _, tc := range []struct {
			token string
			want  bool
		}{{token, true}, {token[1:], false}, {token + "A", false}, {"", false}} {
			res := h.client().do(http.MethodGet, "/setup?token="+url.QueryEscape(tc.token), nil)
			if got := res.status == http.StatusOK; got != tc.want {
				t.Errorf("GET /setup?token=%q: status %d, want the form: %v", tc.token, res.status, tc.want)
			}
		}
		if len(token) != 43 {
			t.Errorf("token %q: want 43 base64url characters", token)
		}
		if _, err := NewSetup(t.Context(), h.accounts, time.Now(), -time.Second); err == nil {
			t.Fatalf("NewSetup with a negative ttl: got nil error")
		}
	})

	t.Run("no setup", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		if res := h.client().do(http.MethodGet, "/setup?token=x", nil); res.status != http.StatusNotFound {
			t.Fatalf("without a setup link: status %d, want 404", res.status)
		}
	})
}

// PW-09: the JSON API and the sign-in form check the same password for the
// same text, however it is spelt (NFKC), and refuse invalid UTF-8 alike.
func TestPW09_FormAndJSONSeeTheSameText(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const typed = "Ｓｅｃｒｅｔ ﬁne passphrase"  // full-width letters and a ligature
	const plain = "Secret fine passphrase" // its NFKC form
	h.addUser("alice", typed, false)
	if res := h.client().guess("alice", plain, ""); res.status != http.StatusOK {
		t.Errorf("JSON sign-in with the NFKC spelling: status %d, want 200", res.status)
	}
	if res := h.client().pageLogin("alice", typed); res.status != http.StatusSeeOther {
		t.Errorf("form sign-in with the typed spelling: status %d, want 303", res.status)
	}
	if res := h.client().pageLogin("alice", plain); res.status != http.StatusSeeOther {
		t.Errorf("form sign-in with the NFKC spelling: status %d, want 303", res.status)
	}

	bad := "pass\xffword long enough"
	form := h.client().pageLogin("alice", bad)
	if form.status != http.StatusBadRequest || !strings.Contains(form.body, html.EscapeString(errInvalidUTF8.message)) {
		t.Errorf("form sign-in with invalid UTF-8: status %d, want 400 saying so:\n%s", form.status, form.body)
	}
	api := h.client().do(http.MethodPost, "/api/v1/login", strings.NewReader(`{"username":"alice","password":"`+bad+`"}`), "Content-Type", "application/json")
	if api.status != http.StatusBadRequest || api.errorCode(t) != errInvalidUTF8.code {
		t.Errorf("JSON sign-in with invalid UTF-8: %d %s, want 400 %s", api.status, api.body, errInvalidUTF8.code)
	}
}

// PW-07: with an audit log of its own (Config.Audit), the events go
// there, not to the main log; one it fails to write is an error in the
// main log, naming the event, and the request it records is done.
func TestPW07_AuditLogOfItsOwn(t *testing.T) {
	var buf testkit.Buffer
	h := newHarness(t, harnessOpts{audit: audit.New(slog.NewJSONHandler(&buf, nil))})
	h.addAliceAndDisabledCarol()
	h.client().login("alice", alicePW)
	if len(h.logs.Records(t, "audit")) != 0 || !strings.Contains(buf.String(), `"event":"sign-in"`) {
		t.Errorf("audit log %q, main log %q: want the sign-in in the audit log only", buf.String(), h.logs.String())
	}

	h = newHarness(t, harnessOpts{audit: audit.New(slog.NewJSONHandler(testkit.FullWriter{}, nil))})
	h.addAliceAndDisabledCarol()
	h.client().login("alice", alicePW)
	lost := h.logs.Records(t, "audit event lost")
	if len(lost) != 1 || lost[0]["event"] != "sign-in" || !strings.Contains(fmt.Sprint(lost[0]["err"]), "no space left") {
		t.Errorf("got %v, want one error naming the sign-in and the write's error", lost)
	}
}

// PW-07, PW-06: an audit event says where the request came from as
// --trusted-proxies decide it: the address a trusted proxy forwarded, the
// peer's own when the peer is not trusted, whatever it claims.
func TestPW07_AuditAddressFromTrustedProxiesOnly(t *testing.T) {
	for _, tt := range []struct {
		name    string
		proxies []netip.Prefix
		want    string
	}{
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "203.0.113.7"},
		{"untrusted peer", nil, "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{proxies: tt.proxies})
			h.addAliceAndDisabledCarol()
			h.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: "wrong password"}, "",
				"X-Forwarded-For", "203.0.113.7")
			recs := h.logs.Records(t, "audit")
			if len(recs) != 1 || recs[0]["ip"] != tt.want {
				t.Errorf("got %v, want one event with ip %s", recs, tt.want)
			}
		})
	}
}

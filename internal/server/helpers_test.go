package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/internal/metrics"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/internal/throttle"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

// The test stack is the real one: session.Manager over store/sqlite
// (wrapped by failingStore), accounts and the throttle in the same SQLite
// file, argon2id at the OWASP parameters, the csrf Protector, all behind an
// httptest TLS server so that __Host-/Secure cookies flow through a cookie
// jar.

var errStoreDown = errors.New("store down (test)")

// failingStore wraps a session.Store; its methods fail while told to,
// and its token revocation state's hang while stuck is set (see hang).
type failingStore struct {
	session.Store
	all         atomic.Bool // every method fails
	revokeUser  atomic.Bool // RevokeUser fails
	revokeToken atomic.Bool // RevokeToken fails
	stuck       atomic.Pointer[chan time.Time]
	// afterGeneration, when set, runs once, after the next Generation of
	// its subject has read its answer: a hook to force an interleaving.
	afterGeneration atomic.Pointer[generationHook]
	// beforeGeneration, the same, runs before the read.
	beforeGeneration atomic.Pointer[generationHook]
	// records makes Get and Save fail; recordCalls counts their calls.
	records     atomic.Bool
	recordCalls atomic.Int64
}

// generationHook is a failingStore's afterGeneration or
// beforeGeneration.
type generationHook struct {
	subject string
	run     func()
}

// fails returns what a method of the token revocation state fails with,
// if it does, once it has hung while stuck.
func (f *failingStore) fails(ctx context.Context) error {
	if seen := f.stuck.Load(); seen != nil {
		return hang(ctx, *seen)
	}
	if f.all.Load() {
		return errStoreDown
	}
	return nil
}

func (f *failingStore) RevokeToken(ctx context.Context, r session.Revocation) error {
	if err := f.fails(ctx); err != nil {
		return err
	}
	if f.revokeToken.Load() {
		return errStoreDown
	}
	return f.Store.RevokeToken(ctx, r)
}

func (f *failingStore) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if err := f.fails(ctx); err != nil {
		return false, err
	}
	return f.Store.TokenRevoked(ctx, jti)
}

func (f *failingStore) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	f.recordCalls.Add(1)
	if f.all.Load() || f.records.Load() {
		return nil, errStoreDown
	}
	return f.Store.Get(ctx, h)
}

func (f *failingStore) Generation(ctx context.Context, userID string) (uint64, error) {
	if err := f.fails(ctx); err != nil {
		return 0, err
	}
	if h := f.beforeGeneration.Load(); h != nil && h.subject == userID && f.beforeGeneration.CompareAndSwap(h, nil) {
		h.run()
	}
	gen, err := f.Store.Generation(ctx, userID)
	if h := f.afterGeneration.Load(); h != nil && h.subject == userID && f.afterGeneration.CompareAndSwap(h, nil) {
		h.run()
	}
	return gen, err
}

func (f *failingStore) Create(ctx context.Context, r *session.Record, opts session.CreateOptions) error {
	if f.all.Load() {
		return errStoreDown
	}
	return f.Store.Create(ctx, r, opts)
}

func (f *failingStore) Save(ctx context.Context, r *session.Record) error {
	f.recordCalls.Add(1)
	if f.all.Load() || f.records.Load() {
		return errStoreDown
	}
	return f.Store.Save(ctx, r)
}

func (f *failingStore) Delete(ctx context.Context, h session.Hash) error {
	if f.all.Load() {
		return errStoreDown
	}
	return f.Store.Delete(ctx, h)
}

func (f *failingStore) List(ctx context.Context, userID string) ([]*session.Record, error) {
	if f.all.Load() {
		return nil, errStoreDown
	}
	return f.Store.List(ctx, userID)
}

func (f *failingStore) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	if f.all.Load() || f.revokeUser.Load() {
		return errStoreDown
	}
	return f.Store.RevokeUser(ctx, userID, keep)
}

// harness is one server with its stores.
type harness struct {
	t        testing.TB
	srv      *httptest.Server
	clock    *testkit.Clock
	store    *failingStore
	sessions *session.Manager
	accounts *account.SQLite
	pats     *PATCheck // over accounts (wrapped by harnessOpts.wrapPATs), fed by sessions' feed
	hasher   *password.Hasher
	logs     *testkit.Buffer
	pauses   pauses // the throttled sign-ins' waits (Config.Pause), recorded, not waited
	// url is what clients reach the server by: srv.URL, or
	// https://auth.COOKIEDOMAIN:PORT with harnessOpts.cookieDomain.
	url string
}

// harnessOpts changes how newHarness builds the server.
type harnessOpts struct {
	free    int // throttle: failures before delays; default 100 (no throttling in most tests)
	proxies []netip.Prefix
	ready   func(context.Context) error
	plain   bool // plain HTTP instead of TLS
	hasher  password.HasherConfig
	data    string // the SQLite file; default a new one
	// clock is the harness's clock; default a new one. Nodes on one data
	// file share one: each made its own, two nodes started on either
	// side of a second would disagree by that second, and a throttle's
	// 1 s delay set by one would be over on the other.
	clock *testkit.Clock
	wrap  func(account.Store) account.Store // wraps the accounts the server uses
	hosts []string                          // Config.Hosts; default: loopback
	// cookieDomain is the session Manager's CookieDomain; with it,
	// clients reach the server as auth.COOKIEDOMAIN (add it to hosts).
	cookieDomain string
	// wrapThrottle wraps the throttle the server uses.
	wrapThrottle func(Throttle) Throttle
	// tokens, when set, gives Config.Tokens for the harness and the
	// server's own URL.
	tokens func(h *harness, url string) *Tokens
	// wrapPATs wraps the personal access tokens the server and h.pats
	// use.
	wrapPATs func(account.PATs) account.PATs
	// allowed is Config.AllowedHosts; asserted Config.Assertions.
	allowed, asserted []string
	// storeTimeout is Config.StoreTimeout and the session Manager's,
	// default slowStoreTimeout; readyTimeout is Config.ReadyTimeout,
	// default the server's.
	storeTimeout, readyTimeout time.Duration
	// audit is Config.Audit; default: the harness's log.
	audit *audit.Logger
	// metrics, when set, is fed by the session Manager and the server.
	metrics *metrics.Metrics
}

// newHarnessClock returns a clock for harnesses, at the real time: the
// jar expires cookies by the real clock.
func newHarnessClock() *testkit.Clock {
	return testkit.NewClock(time.Now().UTC().Truncate(time.Second))
}

// slowStoreTimeout is the harness's default store timeout: the tests that
// aren't about timeouts run bursts (64 parallel sign-ins on one SQLite
// file, whose writers take turns) on a machine loaded by other tests and
// the race detector, where a turn can come after the production default of
// a second.
const slowStoreTimeout = 30 * time.Second

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.storeTimeout == 0 {
		o.storeTimeout = slowStoreTimeout
	}
	if o.clock == nil {
		o.clock = newHarnessClock()
	}
	ctx := t.Context()
	h := &harness{
		t:     t,
		clock: o.clock,
		logs:  &testkit.Buffer{},
	}
	log := h.logs.Logger()
	if o.data == "" {
		o.data = filepath.Join(t.TempDir(), "tether.db")
	}
	db := sqlitetest.Open(t, o.data)
	sessionStore, err := sqlite.New(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sessionStore.Close() })
	h.store = &failingStore{Store: sessionStore}
	if h.accounts, err = account.NewSQLite(ctx, db); err != nil {
		t.Fatal(err)
	}
	if o.free == 0 {
		o.free = 100
	}
	var thr Throttle
	if thr, err = throttle.NewSQLite(ctx, db, throttle.Config{Free: o.free, Now: h.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if o.wrapThrottle != nil {
		thr = o.wrapThrottle(thr)
	}
	var pats account.PATs = h.accounts
	if o.wrapPATs != nil {
		pats = o.wrapPATs(pats)
	}
	onEvent := func(e session.Event) { h.pats.Handle(e); o.metrics.FeedEvent(e) } // h.pats is set before the feed runs
	sessionConfig := session.Config{CookieName: SessionCookie, CookieDomain: o.cookieDomain, Now: h.clock.Now, Logger: log, StoreTimeout: o.storeTimeout, OnEvent: onEvent}
	if o.metrics != nil {
		sessionConfig.OnLoad = o.metrics.SessionLoad
	}
	if h.sessions, err = session.NewManager(h.store, sessionConfig); err != nil {
		t.Fatal(err)
	}
	if h.pats, err = NewPATCheck(PATCheckConfig{PATs: pats, Revocations: StoreRevocations{h.sessions}, StoreTimeout: o.storeTimeout, Now: h.clock.Now, Logger: log}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		h.sessions.Run(runCtx)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		h.pats.Run(runCtx)
	}()
	t.Cleanup(func() { stop(); <-done; <-done })
	if h.hasher, err = password.NewHasher(o.hasher); err != nil {
		t.Fatal(err)
	}
	protector, err := csrf.New(bytes.Repeat([]byte{7}, 32), csrf.WithPreSessionCookie(PreSessionCookie))
	if err != nil {
		t.Fatal(err)
	}
	if o.ready == nil {
		o.ready = db.PingContext
	}
	var accounts account.Store = h.accounts
	if o.wrap != nil {
		accounts = o.wrap(accounts)
	}
	h.srv = httptest.NewUnstartedServer(nil) // its listener, hence its URL, before its handler
	t.Cleanup(h.srv.Close)
	var tokens *Tokens
	if o.tokens != nil {
		scheme := "https://"
		if o.plain {
			scheme = "http://"
		}
		tokens = o.tokens(h, scheme+h.srv.Listener.Addr().String())
	}
	handler, err := New(Config{
		Logger:         log,
		Sessions:       h.sessions,
		Accounts:       accounts,
		Throttle:       thr,
		Hasher:         h.hasher,
		CSRF:           protector,
		DeviceSecret:   bytes.Repeat([]byte{8}, 32),
		AddressFree:    o.free,
		TrustedProxies: o.proxies,
		Ready:          o.ready,
		Hosts:          o.hosts,
		AllowedHosts:   o.allowed,
		Assertions:     o.asserted,
		Now:            h.clock.Now,
		Pause:          h.pauses.record,
		StoreTimeout:   o.storeTimeout,
		ReadyTimeout:   o.readyTimeout,
		Tokens:         tokens,
		PATs:           pats,
		Audit:          o.audit,
		Metrics:        o.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = handler
	if o.plain {
		h.srv.Start()
	} else {
		h.srv.StartTLS()
	}
	h.url = h.srv.URL
	if o.cookieDomain != "" {
		_, port, _ := net.SplitHostPort(h.srv.Listener.Addr().String())
		h.url = "https://auth." + o.cookieDomain + ":" + port
	}
	return h
}

// newSetup keeps a first-admin setup link in the harness's account store,
// valid for DefaultSetupTTL by the harness's clock, and returns its token.
func (h *harness) newSetup() string {
	h.t.Helper()
	token, err := NewSetup(h.t.Context(), h.accounts, h.clock.Now(), 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return token
}

// addUser creates a user with password pw.
func (h *harness) addUser(name, pw string, admin bool) *account.User {
	h.t.Helper()
	hash, err := h.hasher.Hash(h.t.Context(), pw)
	if err != nil {
		h.t.Fatal(err)
	}
	u := &account.User{Name: name, PasswordHash: hash, Admin: admin}
	if err := h.accounts.Create(h.t.Context(), u); err != nil {
		h.t.Fatal(err)
	}
	return u
}

// addAliceAndDisabledCarol creates alice, and carol disabled, both with
// alicePW: the accounts of the PW-05 and PW-07 tests.
func (h *harness) addAliceAndDisabledCarol() {
	h.t.Helper()
	h.addUser("alice", alicePW, false)
	carol := h.addUser("carol", alicePW, false)
	if err := h.accounts.SetDisabled(h.t.Context(), carol.ID, true); err != nil {
		h.t.Fatal(err)
	}
}

// client is a browser-like client: a cookie jar, redirects not followed.
type client struct {
	t  testing.TB
	h  *harness
	hc *http.Client
}

func (h *harness) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	hc := *h.srv.Client() // a copy: the server's client is shared
	hc.Jar = jar
	if h.url != h.srv.URL { // every name leads to the server, as DNS would
		tr := hc.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate's name
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, h.srv.Listener.Addr().String())
		}
		hc.Transport = tr
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: h.t, h: h, hc: &hc}
}

// response is a read response.
type response struct {
	status int
	header http.Header
	body   string
}

// decodeJSON decodes the body into v.
func (r *response) decodeJSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// errorCode is the "error" member of a JSON error body.
func (r *response) errorCode(t testing.TB) string {
	t.Helper()
	var e errorBody
	r.decodeJSON(t, &e)
	return e.Error
}

// do sends a request; hdr are header name, value pairs.
func (c *client) do(method, path string, body io.Reader, hdr ...string) *response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.h.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// json sends v as a JSON body, with the csrf token when not empty, and
// extra headers.
func (c *client) json(method, path string, v any, token string, hdr ...string) *response {
	c.t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(b)
		hdr = append(hdr, "Content-Type", "application/json")
	}
	if token != "" {
		hdr = append(hdr, csrf.HeaderName, token)
	}
	return c.do(method, path, body, hdr...)
}

// form posts form fields.
func (c *client) form(path string, fields url.Values, hdr ...string) *response {
	c.t.Helper()
	hdr = append(hdr, "Content-Type", "application/x-www-form-urlencoded")
	return c.do(http.MethodPost, path, strings.NewReader(fields.Encode()), hdr...)
}

// login signs in through the API and returns the csrf token.
func (c *client) login(name, pw string) string {
	c.t.Helper()
	res := c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: name, Password: pw}, "")
	if res.status != http.StatusOK {
		c.t.Fatalf("login %s: status %d %s", name, res.status, res.body)
	}
	var out signedInResponse
	res.decodeJSON(c.t, &out)
	return out.CSRFToken
}

// me returns GET /api/v1/me.
func (c *client) me() (*response, signedInResponse) {
	c.t.Helper()
	res := c.do(http.MethodGet, "/api/v1/me", nil)
	var out signedInResponse
	if res.status == http.StatusOK {
		res.decodeJSON(c.t, &out)
	}
	return res, out
}

// cookie returns the value of the jar's cookie name, "" if none.
func (c *client) cookie(name string) string {
	u, err := url.Parse(c.h.url)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// setCookie puts a cookie into the jar, as if the server had set it.
func (c *client) setCookie(name, value string) {
	u, err := url.Parse(c.h.url)
	if err != nil {
		c.t.Fatal(err)
	}
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true}})
}

// formToken returns the csrf token of the form posting to action in page.
func formToken(t testing.TB, page, action string) string {
	t.Helper()
	_, form, ok := strings.Cut(page, `action="`+action+`"`)
	const field = `name="csrf_token" value="`
	if _, after, found := strings.Cut(form, field); ok && found {
		if token, _, found := strings.Cut(after, `"`); found {
			return token
		}
	}
	t.Fatalf("no csrf token for a form to %s in page:\n%s", action, page)
	return ""
}

// pageLogin signs in through the sign-in form.
func (c *client) pageLogin(name, pw string) *response {
	c.t.Helper()
	page := c.do(http.MethodGet, "/login", nil)
	if page.status != http.StatusOK {
		c.t.Fatalf("GET /login: status %d", page.status)
	}
	return c.form("/login", url.Values{
		"csrf_token": {formToken(c.t, page.body, "/login")},
		"username":   {name},
		"password":   {pw},
	})
}

package server

import (
	"cmp"
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/token"
)

// The forward-auth tests run on the PAT harness: alice signed in (a
// session cookie in her client's jar), the client billing, personal
// access tokens, a key ring.

// verify asks c's /auth/verify with query and extra headers.
func verify(c *client, query string, hdr ...string) *response {
	c.t.Helper()
	path := verifyPath
	if query != "" {
		path += "?" + query
	}
	return c.do(http.MethodGet, path, nil, hdr...)
}

// wantIdentity checks that res is a 200 without a body naming who.
func wantIdentity(t *testing.T, res *response, who identity) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200", res.status)
	}
	if res.body != "" {
		t.Errorf("body %q, want none", res.body)
	}
	checkIdentityHeaders(t, res, who)
}

// checkIdentityHeaders checks that res carries every identity header,
// with who's values.
func checkIdentityHeaders(t *testing.T, res *response, who identity) {
	t.Helper()
	for _, h := range []struct{ name, want string }{
		{HeaderUser, who.name}, {HeaderUserID, who.id}, {HeaderSessionID, who.sessionID},
		{HeaderScopes, who.scopes}, {HeaderSubjectType, who.kind}, {HeaderAssertion, who.assertion},
	} {
		if got := res.header.Values(h.name); len(got) != 1 || got[0] != h.want {
			t.Errorf("%s: %q, want exactly [%q]", h.name, got, h.want)
		}
	}
}

// aliceSession is the identity of alice's session in ph.
func (ph *patHarness) aliceSession() identity {
	ph.t.Helper()
	_, me := ph.alice.me()
	return identity{name: "alice", id: ph.userID("alice"), sessionID: me.Session.ID, kind: "user"}
}

// bearerTokens returns an access token of billing's (scope
// invoices:read, audiences apiBilling and apiReports) and a personal
// access token of alice's (scope repo:read).
func (ph *patHarness) bearerTokens() (jwt, pat string) {
	ph.t.Helper()
	jwt = ph.token("billing", ph.secret, url.Values{"scope": {"invoices:read"}}).AccessToken
	pat = ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read"}}).Token
	return jwt, pat
}

func TestForwardAuth_Session(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	wantIdentity(t, verify(ph.alice, ""), ph.aliceSession())
}

func TestForwardAuth_PAT(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read", "repo:write"}})
	res := verify(ph.client(), "scope=repo:read", "Authorization", "Bearer "+made.Token)
	wantIdentity(t, res, identity{name: "alice", id: ph.userID("alice"), scopes: "repo:read repo:write", kind: "user"})
}

func TestForwardAuth_JWT(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	tok := ph.token("billing", ph.secret, url.Values{"scope": {"invoices:read"}}).AccessToken
	res := verify(ph.client(), "audience="+url.QueryEscape(apiBilling)+"&scope=invoices:read", "Authorization", "Bearer "+tok)
	wantIdentity(t, res, identity{name: "billing", id: "billing", scopes: "invoices:read", kind: "client"})
}

func TestForwardAuth_Refusals(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	jwt, pat := ph.bearerTokens()
	billing := "audience=" + url.QueryEscape(apiBilling)
	tests := []struct {
		name   string
		c      *client
		query  string
		hdr    []string
		status int
	}{
		{"no credentials", ph.client(), "", nil, http.StatusUnauthorized},
		{"unknown cookie", withCookie(ph.harness, "x"), "", nil, http.StatusUnauthorized},
		{"session lacks the scope", ph.alice, "scope=repo:read", nil, http.StatusForbidden},
		{"PAT lacks the scope", ph.client(), "scope=repo:write", []string{"Authorization", "Bearer " + pat}, http.StatusForbidden},
		{"PAT mistyped", ph.client(), "", []string{"Authorization", "Bearer " + pat[:len(pat)-1] + "!"}, http.StatusUnauthorized},
		{"JWT without audience", ph.client(), "", []string{"Authorization", "Bearer " + jwt}, http.StatusUnauthorized},
		{"JWT of another audience", ph.client(), "audience=https://other.example", []string{"Authorization", "Bearer " + jwt}, http.StatusForbidden},
		{"JWT lacks the scope", ph.client(), billing + "&scope=invoices:write", []string{"Authorization", "Bearer " + jwt}, http.StatusForbidden},
		{"JWT tampered", ph.client(), billing, []string{"Authorization", "Bearer " + jwt + "x"}, http.StatusUnauthorized},
		{"JWT in the query (JWT-11)", ph.client(), billing + "&access_token=" + jwt, nil, http.StatusUnauthorized},
		{"Basic", ph.client(), "", []string{"Authorization", basic("billing", ph.secret)}, http.StatusUnauthorized},
		{"two Authorization headers", ph.client(), billing, []string{"Authorization", "Bearer " + jwt, "Authorization", "Bearer " + jwt}, http.StatusUnauthorized},
		{"bad token beside a good cookie", ph.alice, "", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"two audiences", ph.alice, "audience=a&audience=b", nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := verify(tt.c, tt.query, tt.hdr...)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d", res.status, tt.status)
			}
			if res.body != "" {
				t.Errorf("body %q, want none", res.body)
			}
			if res.status != http.StatusBadRequest && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want the Bearer scheme", res.header.Get("WWW-Authenticate"))
			}
			checkIdentityHeaders(t, res, identity{})
		})
	}
}

func TestForwardAuth_StoreDown(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	jwt, pat := ph.bearerTokens()
	ph.addUser("bob", alicePW, false)
	bob := ph.client()
	bob.login("bob", alicePW) // a session not yet in the near-cache, which serves while the feed is up (SES-14)
	ph.store.all.Store(true)
	for name, res := range map[string]*response{
		"session": verify(bob, ""),
		"PAT":     verify(ph.client(), "", "Authorization", "Bearer "+pat),
		"JWT":     verify(ph.client(), "audience="+url.QueryEscape(apiBilling), "Authorization", "Bearer "+jwt),
	} {
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Errorf("%s: status %d, Retry-After %q; want 503 with Retry-After", name, res.status, res.header.Get("Retry-After"))
		}
		checkIdentityHeaders(t, res, identity{})
	}
}

// A bearer check is decided by its token: a session cookie beside it is
// neither loaded nor touched, so a session store that fails its records
// costs the check nothing, and a session due for a touch keeps its idle
// deadline.
func TestForwardAuth_TokenIgnoresSession(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	pat := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read"}}).Token
	ph.addUser("bob", alicePW, false)
	bob := ph.client()
	bob.login("bob", alicePW) // a session not yet in the near-cache
	for _, tt := range []struct {
		name    string
		c       *client
		advance time.Duration
	}{
		{"session not cached", bob, 0},
		{"session due for a touch", ph.alice, 2 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ph.clock.Advance(tt.advance)
			ph.store.records.Store(true)
			defer ph.store.records.Store(false)
			calls := ph.store.recordCalls.Load()
			res := verify(tt.c, "", "Authorization", "Bearer "+pat)
			wantIdentity(t, res, identity{name: "alice", id: ph.userID("alice"), scopes: "repo:read", kind: "user"})
			if n := ph.store.recordCalls.Load() - calls; n != 0 {
				t.Errorf("%d reads or writes of session records, want 0", n)
			}
		})
	}
}

// countingAccounts counts the reads of the account store.
type countingAccounts struct {
	account.Store
	reads *atomic.Int64
}

func (c countingAccounts) ByID(ctx context.Context, id string) (*account.User, error) {
	c.reads.Add(1)
	return c.Store.ByID(ctx, id)
}

func (c countingAccounts) ByName(ctx context.Context, name string) (*account.User, error) {
	c.reads.Add(1)
	return c.Store.ByName(ctx, name)
}

// Once a node has checked a session and a personal access token, checking
// them again reads neither the account store nor the token store: the
// session and the token come from the near-caches, the user's name from
// the node's copy.
func TestForwardAuth_CacheHitReadsNoAccount(t *testing.T) {
	var reads atomic.Int64
	ph := newPATHarness(t, oauthOpts{harnessOpts: harnessOpts{wrap: func(s account.Store) account.Store { return countingAccounts{s, &reads} }}})
	pat := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read"}}).Token
	ph.waitCurrent()
	anon := ph.client()
	bearer := []string{"Authorization", "Bearer " + pat}
	for _, first := range []*response{verify(ph.alice, ""), verify(anon, "", bearer...)} {
		if first.status != http.StatusOK {
			t.Fatalf("first check: status %d", first.status)
		}
	}
	reads.Store(0)
	tokenReads := ph.patStore.byHash.Load()
	for range 20 {
		if res := verify(ph.alice, ""); res.status != http.StatusOK {
			t.Fatalf("session: status %d", res.status)
		}
		if res := verify(anon, "", bearer...); res.status != http.StatusOK {
			t.Fatalf("token: status %d", res.status)
		}
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d reads of the account store on cache hits, want 0", n)
	}
	if n := ph.patStore.byHash.Load() - tokenReads; n != 0 {
		t.Errorf("%d reads of the token store on cache hits, want 0", n)
	}
}

// A user disabled or deleted in the account store alone (no revocation
// written) is refused once the user cache lets go of them, as at
// introspection (INT-01).
func TestForwardAuth_DisabledOwner(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	pat := ph.mustCreate(map[string]any{"name": "ci"}).Token
	u, _ := ph.accounts.ByName(t.Context(), "alice")
	for _, step := range []struct {
		name   string
		change func() error
		status int
	}{
		{"disabled", func() error { return ph.accounts.SetDisabled(t.Context(), u.ID, true) }, http.StatusUnauthorized},
		{"enabled again", func() error { return ph.accounts.SetDisabled(t.Context(), u.ID, false) }, http.StatusOK},
		{"deleted", func() error { return ph.accounts.Delete(t.Context(), u.ID) }, http.StatusUnauthorized},
	} {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ph.clock.Advance(DefaultUserCacheTTL + time.Millisecond)
		for kind, res := range map[string]*response{
			"session": verify(ph.alice, ""),
			"token":   verify(ph.client(), "", "Authorization", "Bearer "+pat),
		} {
			if res.status != step.status {
				t.Errorf("owner %s, %s: status %d, want %d", step.name, kind, res.status, step.status)
			}
		}
	}
}

// An access token of a client disabled or deleted in the account store
// alone (no revocation written, as when the session store lost the
// client's generation) is refused once the client cache lets go of the
// client, as at introspection (INT-01); while the copy is fresh, checks
// read no client.
func TestINT01_ForwardAuthTokenOfGoneClient(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	ci := ph.addClient("ci", nil, []string{apiBilling}, 0)
	tok := ph.token("ci", ci, nil).AccessToken
	check := func() int {
		t.Helper()
		return verify(ph.client(), "audience="+url.QueryEscape(apiBilling), "Authorization", "Bearer "+tok).status
	}
	if status := check(); status != http.StatusOK {
		t.Fatalf("a live client's token: status %d", status)
	}
	var reads atomic.Int64
	count := func(string) { reads.Add(1) }
	ph.clients.onClient.Store(&count)
	for range 5 {
		if status := check(); status != http.StatusOK {
			t.Fatalf("a live client's token, again: status %d", status)
		}
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d reads of the clients on cache hits, want 0", n)
	}
	ph.clients.onClient.Store(nil)
	for _, step := range []struct {
		name   string
		change func() error
		status int
	}{
		{"disabled", func() error { return ph.clients.SetClientDisabled(t.Context(), "ci", true) }, http.StatusUnauthorized},
		{"enabled again", func() error { return ph.clients.SetClientDisabled(t.Context(), "ci", false) }, http.StatusOK},
		{"deleted", func() error { return ph.clients.DeleteClient(t.Context(), "ci") }, http.StatusUnauthorized},
	} {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ph.clock.Advance(DefaultUserCacheTTL + time.Millisecond)
		if status := check(); status != step.status {
			t.Errorf("client %s: status %d, want %d", step.name, status, step.status)
		}
	}
}

// browserAllowed are the browser flow harness's allowed hosts.
var browserAllowed = []string{"app.example.com"}

// The browser flow's harness: the test client's address (loopback) is a
// trusted proxy unless untrusted, and app.example.com is allowed.
func newBrowserHarness(t testing.TB, untrusted bool) *patHarness {
	o := oauthOpts{harnessOpts: harnessOpts{allowed: browserAllowed}}
	if !untrusted {
		o.proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	return newPATHarness(t, o)
}

// appURL is the URL the browser asked the app for, in the tests.
const appURL = "https://app.example.com/docs/a%20b?x=1&y=2"

// appForwarded are the headers Caddy and Traefik send for appURL.
var appForwarded = []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com", "X-Forwarded-Uri", "/docs/a%20b?x=1&y=2"}

// browser are the headers of a browser's navigation.
var browser = []string{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}

func TestForwardAuth_BrowserFlow(t *testing.T) {
	ph := newBrowserHarness(t, false)
	login := ph.issuer + "/login"
	back := login + "?return=" + url.QueryEscape(appURL)
	tests := []struct {
		name     string
		query    string
		hdr      []string
		status   int
		location string
	}{
		{"X-Forwarded-*", "", append(browser, appForwarded...), http.StatusUnauthorized, back},
		{"X-Original-URL", "", append(browser, "X-Original-URL", appURL), http.StatusUnauthorized, back},
		{"redirect=1", "redirect=1", append(browser, appForwarded...), http.StatusFound, back},
		{"no return address", "", browser, http.StatusUnauthorized, login},
		{"return address on another host", "", append(browser, "X-Original-URL", "https://evil.example/"), http.StatusUnauthorized, login},
		{"return address with userinfo", "", append(browser, "X-Original-URL", "https://app.example.com@evil.example/"), http.StatusUnauthorized, login},
		{"two X-Original-URL", "", append(browser, "X-Original-URL", appURL, "X-Original-URL", appURL), http.StatusUnauthorized, login},
		{"not a browser", "", appForwarded, http.StatusUnauthorized, ""},
		{"not a browser, redirect=1", "redirect=1", appForwarded, http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := verify(ph.client(), tt.query, tt.hdr...)
			if res.status != tt.status || res.header.Get("Location") != tt.location {
				t.Errorf("status %d, Location %q; want %d, %q", res.status, res.header.Get("Location"), tt.status, tt.location)
			}
			if res.body != "" {
				t.Errorf("body %q, want none", res.body)
			}
		})
	}
}

// GW-02: X-Forwarded-* and X-Original-URL from a peer that is not a
// trusted proxy are ignored: the sign-in page gets no return address.
func TestGW02_ForwardedFromUntrustedPeerIgnored(t *testing.T) {
	ph := newBrowserHarness(t, true)
	for name, hdr := range map[string][]string{
		"X-Forwarded-*":  append(browser, appForwarded...),
		"X-Original-URL": append(browser, "X-Original-URL", appURL),
	} {
		res := verify(ph.client(), "", hdr...)
		if want := ph.issuer + "/login"; res.status != http.StatusUnauthorized || res.header.Get("Location") != want {
			t.Errorf("%s: status %d, Location %q; want 401, %q", name, res.status, res.header.Get("Location"), want)
		}
	}
}

// The round trip: forward-auth sends the browser to sign in, the form
// signs in with the return address, and the browser lands on the app's
// URL, where forward-auth now lets it through.
func TestForwardAuth_LoginReturnRoundTrip(t *testing.T) {
	ph := newBrowserHarness(t, false)
	ph.addUser("bob", alicePW, false)
	bob := ph.client()
	res := verify(bob, "", append(browser, appForwarded...)...)
	path, ok := strings.CutPrefix(res.header.Get("Location"), ph.issuer)
	if res.status != http.StatusUnauthorized || !ok {
		t.Fatalf("status %d, Location %q: want 401 to the sign-in page", res.status, res.header.Get("Location"))
	}
	page := bob.do(http.MethodGet, path, nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, page.status)
	}
	signedIn := bob.form("/login", url.Values{
		"csrf_token": {formToken(t, page.body, "/login")},
		"return":     {formField(t, page.body, "return")},
		"username":   {"bob"},
		"password":   {alicePW},
	})
	if signedIn.status != http.StatusSeeOther || signedIn.header.Get("Location") != appURL {
		t.Fatalf("sign-in: status %d, Location %q; want 303 to %s", signedIn.status, signedIn.header.Get("Location"), appURL)
	}
	if res := verify(bob, "", append(browser, appForwarded...)...); res.status != http.StatusOK || res.header.Get(HeaderUser) != "bob" {
		t.Errorf("after sign-in: status %d, user %q; want 200, bob", res.status, res.header.Get(HeaderUser))
	}
}

// GW-01: the sign-in form and the JSON API follow only an allowed return
// address; anything else falls back to the account page.
func TestGW01_SignInReturn(t *testing.T) {
	ph := newBrowserHarness(t, false)
	ph.addUser("bob", alicePW, false)
	for _, tt := range []struct{ raw, want string }{
		{appURL, appURL},
		{"/account?done=x", "/account?done=x"},
		{"https://evil.example/", ""},
		{"//evil.example/", ""},
		{`/\evil.example`, ""},
		{"javascript:alert(1)", ""},
	} {
		page := ph.client().do(http.MethodGet, "/login?return="+url.QueryEscape(tt.raw), nil)
		if got := strings.Contains(page.body, `name="return"`); got != (tt.want != "") {
			t.Errorf("GET /login?return=%q: return field %v, want %v", tt.raw, got, tt.want != "")
		}
		// Browsers hold the form's redirect to form-action (MISC-01).
		if csp, want := page.header.Get("Content-Security-Policy"), contentSecurityPolicy(returnOrigin(tt.want)); csp != want {
			t.Errorf("GET /login?return=%q: CSP %q, want %q", tt.raw, csp, want)
		}
		c := ph.client()
		form := c.do(http.MethodGet, "/login", nil)
		res := c.form("/login", url.Values{"csrf_token": {formToken(t, form.body, "/login")}, "return": {tt.raw}, "username": {"bob"}, "password": {alicePW}})
		if want := cmp.Or(tt.want, "/account"); res.status != http.StatusSeeOther || res.header.Get("Location") != want {
			t.Errorf("form with return %q: status %d, Location %q; want 303, %q", tt.raw, res.status, res.header.Get("Location"), want)
		}
		api := ph.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "bob", Password: alicePW, Return: tt.raw}, "")
		var out signedInResponse
		api.decodeJSON(t, &out)
		if api.status != http.StatusOK || out.ReturnTo != tt.want {
			t.Errorf("API with return %q: status %d, return_to %q; want 200, %q", tt.raw, api.status, out.ReturnTo, tt.want)
		}
	}
}

// formField returns the value of the hidden field name in page.
func formField(t *testing.T, page, name string) string {
	t.Helper()
	_, after, ok := strings.Cut(page, `name="`+name+`" value="`)
	value, _, found := strings.Cut(after, `"`)
	if !ok || !found {
		t.Fatalf("no field %s in page:\n%s", name, page)
	}
	return html.UnescapeString(value)
}

// GW-02: identity headers a client sends never come back as tether's:
// every answer carries each of them exactly once, tether's value or
// empty, so a proxy copying them overwrites the client's.
func TestGW02_ClientIdentityHeadersNeverEchoed(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	spoof := []string{HeaderUser, "admin", HeaderUserID, "u_admin", HeaderSessionID, "s", HeaderScopes, "admin:all", HeaderSubjectType, "user"}
	checkIdentityHeaders(t, verify(ph.client(), "", spoof...), identity{})
	wantIdentity(t, verify(ph.alice, "", spoof...), ph.aliceSession())
}

// GW-03: /auth/verify decides the same for every method and whatever the
// original request's path, and refuses a malformed request, an oversized
// header or a duplicated session cookie with a 4xx, never a 5xx or a 200.
func TestGW03_SameDecisionEveryMethod(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"}
	uris := []string{"/", "/admin", "//admin", "/a/../admin", "/%61dmin", "/admin?x=1", "*", ""}
	for _, c := range []struct {
		name   string
		client *client
		status int
	}{{"signed in", ph.alice, http.StatusOK}, {"anonymous", ph.client(), http.StatusUnauthorized}} {
		for _, m := range methods {
			for _, uri := range uris {
				res := c.client.do(m, verifyPath, nil, "X-Forwarded-Method", m, "X-Forwarded-Uri", uri)
				if res.status != c.status {
					t.Errorf("%s, %s %q: status %d, want %d", c.name, m, uri, res.status, c.status)
				}
			}
		}
	}
	dup := ph.client()
	cookie := sessionCookie + "=" + ph.alice.cookie(sessionCookie)
	for _, tt := range []struct {
		name string
		c    *client
		hdr  []string
	}{
		{"duplicated session cookie (SES-06)", dup, []string{"Cookie", cookie + "; " + cookie}},
		{"oversized cookie", ph.client(), []string{"Cookie", sessionCookie + "=" + strings.Repeat("a", 32<<10)}},
		{"oversized token", ph.client(), []string{"Authorization", "Bearer " + strings.Repeat("a.", 16<<10) + "a"}},
		{"oversized personal access token", ph.client(), []string{"Authorization", "Bearer tether_pat_" + strings.Repeat("a", 32<<10)}},
		{"empty bearer", ph.client(), []string{"Authorization", "Bearer "}},
		{"scheme only", ph.client(), []string{"Authorization", "Bearer"}},
		{"bearer in lower case, bad token", ph.client(), []string{"Authorization", "bearer x.y.z"}},
	} {
		res := tt.c.do(http.MethodGet, verifyPath, nil, tt.hdr...)
		if res.status < 400 || res.status >= 500 {
			t.Errorf("%s: status %d, want a 4xx", tt.name, res.status)
		}
		checkIdentityHeaders(t, res, identity{})
	}
	for _, q := range []string{"%zz", "scope=%", "audience=a&audience=b"} {
		if res := verify(ph.alice, q); res.status != http.StatusBadRequest {
			t.Errorf("query %q: status %d, want 400", q, res.status)
		}
	}
}

// A revoked session or token is refused at the next check.
func TestForwardAuth_Revoked(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	ph.waitCurrent()
	made := ph.mustCreate(map[string]any{"name": "ci"})
	jwt := ph.token("billing", ph.secret, nil).AccessToken
	billing := "audience=" + url.QueryEscape(apiBilling)
	kept := withCookie(ph.harness, ph.alice.cookie(sessionCookie)) // sign-out clears alice's
	checks := map[string]func() *response{
		"session": func() *response { return verify(kept, "") },
		"PAT":     func() *response { return verify(ph.client(), "", "Authorization", "Bearer "+made.Token) },
		"JWT":     func() *response { return verify(ph.client(), billing, "Authorization", "Bearer "+jwt) },
	}
	for name, check := range checks {
		if res := check(); res.status != http.StatusOK {
			t.Fatalf("%s before revocation: status %d", name, res.status)
		}
	}
	if res := ph.alice.json(http.MethodDelete, "/api/v1/tokens/"+made.ID, nil, ph.csrf); res.status != http.StatusNoContent {
		t.Fatalf("revoke PAT: %d %s", res.status, res.body)
	}
	ph.revoke("billing", ph.secret, jwt)
	if res := ph.alice.json(http.MethodPost, "/api/v1/logout", nil, ph.csrf); res.status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", res.status, res.body)
	}
	for name, check := range checks {
		if res := check(); res.status != http.StatusUnauthorized {
			t.Errorf("%s after revocation: status %d, want 401", name, res.status)
		}
	}
}

// ?assertion= adds X-Tether-Assertion, a 60 s access token for that
// upstream alone that token.Verifier accepts, revocations included; an
// audience not allowed is the proxy's error (400).
func TestForwardAuth_Assertion(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{harnessOpts: harnessOpts{asserted: []string{apiReports}}})
	alice := ph.userID("alice")
	ph.revokeSubject(token.UserSubject(alice)) // a generation above 0, which the assertions must carry
	ph.revokeSubject(token.ClientSubject("billing"))
	jwt, pat := ph.bearerTokens()
	assertion := "assertion=" + url.QueryEscape(apiReports)
	tests := []struct {
		name                      string
		res                       *response
		subject, clientID, scopes string
	}{
		{"session", verify(ph.alice, assertion), token.UserSubject(alice), assertionClientID, ""},
		{"PAT", verify(ph.client(), assertion, "Authorization", "Bearer "+pat), token.UserSubject(alice), assertionClientID, "repo:read"},
		{"JWT", verify(ph.client(), assertion+"&audience="+url.QueryEscape(apiBilling), "Authorization", "Bearer "+jwt), token.ClientSubject("billing"), "billing", "invoices:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.res.status != http.StatusOK {
				t.Fatalf("status %d", tt.res.status)
			}
			c, err := ph.verifier(apiReports).Verify(t.Context(), tt.res.header.Get(HeaderAssertion))
			if err != nil {
				t.Fatalf("the assertion doesn't verify: %v", err)
			}
			if c.Subject != tt.subject || c.ClientID != tt.clientID || c.Scope != tt.scopes ||
				len(c.Audience) != 1 || c.Audience[0] != apiReports || c.Expiry.Sub(c.IssuedAt) != AssertionTTL {
				t.Errorf("claims %+v: want sub %s, client_id %s, scope %q, aud [%s], %v", c, tt.subject, tt.clientID, tt.scopes, apiReports, AssertionTTL)
			}
			if _, err := ph.verifier(apiBilling).Verify(t.Context(), tt.res.header.Get(HeaderAssertion)); !errors.Is(err, token.ErrAudience) {
				t.Errorf("verified for another audience: %v, want ErrAudience", err)
			}
		})
	}
	for _, q := range []string{"assertion=" + url.QueryEscape(apiBilling), assertion + "&" + assertion} {
		if res := verify(ph.alice, q); res.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, res.status)
		}
	}
	if res := verify(ph.alice, ""); res.header.Get(HeaderAssertion) != "" {
		t.Errorf("an assertion nobody asked for: %q", res.header.Get(HeaderAssertion))
	}
}

// TestCHG03_AssertionRacingRevocation: a revocation of everything of the
// user's (her sessions, then her token generation) that lands after the
// session check and before the generation read leaves no assertion
// signed with the new generation: the session is checked again, in the
// store, after the read.
func TestCHG03_AssertionRacingRevocation(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{harnessOpts: harnessOpts{asserted: []string{apiReports}}})
	alice := ph.userID("alice")
	subject := token.UserSubject(alice)
	ph.store.beforeGeneration.Store(&generationHook{subject: subject, run: func() {
		if err := ph.sessions.RevokeUser(t.Context(), alice, nil); err != nil {
			t.Error(err)
		}
		if _, err := ph.sessions.RevokeSubject(t.Context(), subject); err != nil {
			t.Error(err)
		}
	}})
	res := verify(ph.alice, "assertion="+url.QueryEscape(apiReports))
	if ph.store.beforeGeneration.Load() != nil {
		t.Fatal("the revocation never ran")
	}
	if a := res.header.Get(HeaderAssertion); a != "" {
		if _, err := ph.verifier(apiReports).Verify(t.Context(), a); err == nil {
			t.Error("an assertion signed after the revocation verifies")
		}
	}
	if res.status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", res.status)
	}
}

// The identity headers' names are canonical, as setIdentity's direct
// map writes need them to be.
func TestForwardAuth_HeaderNamesCanonical(t *testing.T) {
	for _, name := range []string{HeaderUser, HeaderUserID, HeaderSessionID, HeaderScopes, HeaderSubjectType, HeaderAssertion} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("%s is not canonical: %s", name, c)
		}
	}
}

// FuzzForwardAuth sends /auth/verify requests with anything in the query,
// the credentials and the proxy's headers, from a trusted proxy: none of
// them is signed in, so each answer is a refusal of the client (400, 401
// or 403, never a 5xx or a 200, GW-03) with the identity headers empty
// (GW-02), and a Location only to the sign-in page, with a return
// address only if returnTo follows it (GW-01).
func FuzzForwardAuth(f *testing.F) {
	ph := newBrowserHarness(f, false)
	handler := ph.srv.Config.Handler
	host := strings.TrimPrefix(ph.issuer, "https://")
	allowed, err := newHostSet(browserAllowed)
	if err != nil {
		f.Fatal(err)
	}
	follows := &server{allowed: allowed} // the harness's return-address check
	f.Add("", "", "", appURL, "app.example.com", "/docs")
	f.Add("redirect=1", "", "", "", "app.example.com", "/docs?a=b")
	f.Add("redirect=1&scope=a", "Bearer x.y.z", sessionCookie+"=x", "", "app.example.com", "//evil")
	f.Add("audience=a&assertion=b", "Bearer tether_pat_x", "", "https://app.example.com@evil/", "evil", "/")
	f.Add("access_token=x", "Basic eA==", sessionCookie+"=a; "+sessionCookie+"=b", "/\\evil", "", "")
	f.Fuzz(func(t *testing.T, query, auth, cookie, original, fwdHost, fwdURI string) {
		r := httptest.NewRequest(http.MethodGet, verifyPath, nil)
		r.Host, r.URL.RawQuery, r.RemoteAddr = host, query, "127.0.0.1:1234" // a trusted proxy
		r.Header.Set("Accept", "text/html")
		for name, v := range map[string]string{"Authorization": auth, "Cookie": cookie, "X-Original-URL": original, "X-Forwarded-Host": fwdHost, "X-Forwarded-Uri": fwdURI} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusFound:
		default:
			t.Fatalf("status %d", w.Code)
		}
		res := &response{status: w.Code, header: w.Header()}
		checkIdentityHeaders(t, res, identity{})
		loc := w.Header().Get("Location")
		if loc == "" {
			return
		}
		rest, ok := strings.CutPrefix(loc, ph.issuer+"/login")
		if !ok {
			t.Fatalf("Location %q is not the sign-in page", loc)
		}
		if rest == "" {
			return
		}
		q, err := url.ParseQuery(strings.TrimPrefix(rest, "?"))
		if err != nil || !strings.HasPrefix(rest, "?return=") || len(q) != 1 {
			t.Fatalf("Location %q: more than a return address", loc)
		}
		if _, ok := follows.returnTo(q.Get("return")); !ok {
			t.Fatalf("Location %q: a return address returnTo refuses", loc)
		}
	})
}

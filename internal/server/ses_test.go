package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

const sessionCookie = SessionCookie

// SES-03: signing in while signed in ends the earlier session and issues a
// new token; neither the earlier session nor the pre-session is promoted.
func TestSES03_SignInIssuesNewSessionAndKillsOld(t *testing.T) {
	for _, tc := range []struct {
		name  string
		login func(c *client)
	}{
		{"api", func(c *client) { c.login("bob", alicePW) }},
		{"page", func(c *client) {
			if res := c.pageLogin("bob", alicePW); res.status != http.StatusSeeOther {
				t.Fatalf("POST /login: status %d", res.status)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.addUser("alice", alicePW, false)
			bob := h.addUser("bob", alicePW, false)
			c := h.client()
			c.login("alice", alicePW)
			_, before := c.me()
			oldToken := c.cookie(sessionCookie)

			tc.login(c)
			newToken := c.cookie(sessionCookie)
			if newToken == "" || newToken == oldToken {
				t.Fatalf("session token after sign-in: %q, want a new one", newToken)
			}
			if pre := c.cookie(preCookie); pre != "" {
				t.Fatalf("pre-session cookie survives sign-in")
			}
			_, after := c.me()
			if after.User.ID != bob.ID || after.Session.ID == before.Session.ID {
				t.Fatalf("after sign-in: user %s session %s; want %s and a new session", after.User.ID, after.Session.ID, bob.ID)
			}
			// The old token is dead in the store, not just replaced in the jar.
			c.setCookie(sessionCookie, oldToken)
			if res, _ := c.me(); res.status != http.StatusUnauthorized {
				t.Fatalf("old session token after sign-in: status %d, want 401", res.status)
			}
			list, err := h.sessions.List(t.Context(), before.User.ID)
			if err != nil || len(list) != 0 {
				t.Fatalf("alice's sessions after bob signed in on her device: %d, %v; want 0", len(list), err)
			}
		})
	}
}

// SES-04: a token the server didn't issue, a malformed one and an expired
// one get exactly the answer of no cookie at all.
func TestSES04_BadTokenIsLikeNoCookie(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	expired := h.client()
	expired.login("alice", alicePW)
	h.clock.Advance(31 * time.Minute) // past the idle timeout

	none := h.client()
	want := none.do(http.MethodGet, "/api/v1/me", nil)
	wantPage := none.do(http.MethodGet, "/account", nil)
	if want.status != http.StatusUnauthorized {
		t.Fatalf("no cookie: status %d, want 401", want.status)
	}
	for _, tc := range []struct {
		name string
		c    *client
	}{
		{"expired", expired},
		{"unknown", withCookie(h, strings.Repeat("A", 43))},
		{"malformed", withCookie(h, "not a token!")},
		{"empty", withCookie(h, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.do(http.MethodGet, "/api/v1/me", nil)
			if got.status != want.status || got.body != want.body {
				t.Errorf("GET /api/v1/me: got %d %q, want %d %q", got.status, got.body, want.status, want.body)
			}
			page := tc.c.do(http.MethodGet, "/account", nil)
			if page.status != wantPage.status || page.header.Get("Location") != wantPage.header.Get("Location") {
				t.Errorf("GET /account: got %d %s, want %d %s", page.status, page.header.Get("Location"), wantPage.status, wantPage.header.Get("Location"))
			}
		})
	}
}

func withCookie(h *harness, token string) *client {
	c := h.client()
	c.setCookie(sessionCookie, token)
	return c
}

// SES-05: the session cookie is __Host-, Secure, HttpOnly, Path=/,
// SameSite=Lax, without Domain; so is the pre-session cookie. With a
// cookie domain, the session cookie is __Secure- with that Domain, the
// rest the same, and the pre-session cookie, which only tether reads,
// stays host-only; sign-out expires the session cookie with the Domain it
// was set with (SES-08).
func TestSES05_CookieAttributes(t *testing.T) {
	for _, d := range []struct {
		name, cookie, domain string
		opts                 harnessOpts
	}{
		{"host-only", sessionCookie, "", harnessOpts{}},
		{"cookie domain", "__Secure-tether", "example.com", harnessOpts{cookieDomain: "example.com", hosts: []string{"auth.example.com"}}},
	} {
		t.Run(d.name, func(t *testing.T) {
			h := newHarness(t, d.opts)
			h.addUser("alice", alicePW, false)
			c := h.client()
			res := c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, "")
			var in signedInResponse
			res.decodeJSON(t, &in)
			pre := c.do(http.MethodGet, "/login", nil)
			out := c.json(http.MethodPost, "/api/v1/logout", struct{}{}, in.CSRFToken)
			for _, tc := range []struct {
				name, domain string
				header       http.Header
				maxAge       string
			}{
				{d.cookie, d.domain, res.header, ""},
				{preCookie, "", pre.header, "Max-Age=3600"},
				{d.cookie, d.domain, out.header, "Max-Age=0"},
			} {
				var line string
				for _, l := range tc.header.Values("Set-Cookie") {
					if strings.HasPrefix(l, tc.name+"=") {
						line = l
					}
				}
				if line == "" {
					t.Fatalf("no Set-Cookie for %s in %q", tc.name, tc.header.Values("Set-Cookie"))
				}
				for _, want := range []string{"Path=/", "Secure", "HttpOnly", "SameSite=Lax", tc.maxAge} {
					if !strings.Contains(line, want) {
						t.Errorf("Set-Cookie %q lacks %q", line, want)
					}
				}
				if c, err := http.ParseSetCookie(line); err != nil || c.Domain != tc.domain {
					t.Errorf("Set-Cookie %q: want Domain %q (%v)", line, tc.domain, err)
				}
			}
		})
	}
}

// SES-06: two session cookies in one request are refused.
func TestSES06_DuplicateSessionCookieRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	c.login("alice", alicePW)
	good := c.cookie(sessionCookie)
	plain := h.srv.Client() // no jar: the Cookie header is ours
	for _, cookies := range []string{
		sessionCookie + "=" + good + "; " + sessionCookie + "=" + strings.Repeat("A", 43),
		sessionCookie + "=" + strings.Repeat("A", 43) + "; " + sessionCookie + "=" + good,
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.srv.URL+"/api/v1/me", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Cookie", cookies)
		res, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body errorBody
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || err != nil || body.Error != "duplicate_cookie" {
			t.Errorf("two session cookies: %d %+v (%v), want 400 duplicate_cookie in JSON", res.StatusCode, body, err)
		}
	}
}

// SES-08: sign-out is POST only, deletes the session in the store, expires
// the cookie and sends Clear-Site-Data.
func TestSES08_LogoutClearsEverything(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logout func(c *client, token string) *response
		status int
	}{
		{"api", func(c *client, token string) *response {
			return c.json(http.MethodPost, "/api/v1/logout", nil, token)
		}, http.StatusNoContent},
		{"page", func(c *client, _ string) *response {
			page := c.do(http.MethodGet, "/account", nil)
			return c.form("/logout", url.Values{"csrf_token": {formToken(t, page.body, "/logout")}})
		}, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			u := h.addUser("alice", alicePW, false)
			c := h.client()
			token := c.login("alice", alicePW)
			stolen := c.cookie(sessionCookie)

			for _, m := range []string{http.MethodGet, http.MethodHead} {
				for _, path := range []string{"/logout", "/api/v1/logout"} {
					if res := c.do(m, path, nil); res.status != http.StatusMethodNotAllowed {
						t.Errorf("%s %s: status %d, want 405", m, path, res.status)
					}
				}
			}
			res := tc.logout(c, token)
			if res.status != tc.status {
				t.Fatalf("sign-out: status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if got, want := res.header.Get("Clear-Site-Data"), `"cache", "storage"`; got != want { // SES-08: never "cookies"
				t.Errorf("Clear-Site-Data = %q, want %q", got, want)
			}
			var expired bool
			for _, l := range res.header.Values("Set-Cookie") {
				expired = expired || strings.HasPrefix(l, sessionCookie+"=;") && strings.Contains(l, "Max-Age=0")
			}
			if !expired {
				t.Errorf("Set-Cookie %q doesn't expire the session cookie", res.header.Values("Set-Cookie"))
			}
			if list, err := h.sessions.List(t.Context(), u.ID); err != nil || len(list) != 0 {
				t.Errorf("sessions in the store after sign-out: %d, %v; want 0", len(list), err)
			}
			replay := withCookie(h, stolen)
			if res, _ := replay.me(); res.status != http.StatusUnauthorized {
				t.Errorf("token replayed after sign-out: status %d, want 401", res.status)
			}
		})
	}
}

// SES-09: authenticated responses, and every page and JSON answer, carry
// Cache-Control: no-store and Vary: Cookie.
func TestSES09_NoStoreOnAuthenticatedResponses(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	responses := map[string]*response{"sign-in form": c.pageLogin("alice", alicePW)}
	for _, path := range []string{"/api/v1/me", "/api/v1/sessions", "/account", "/login"} {
		responses[path] = c.do(http.MethodGet, path, nil)
	}
	for name, res := range responses {
		if got := res.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, got)
		}
		if got := res.header.Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
			t.Errorf("%s: Vary %q, want [Cookie]", name, got)
		}
	}
}

// SES-10: a user lists their sessions and ends any of them; an admin ends
// all of a user's sessions; a disabled user is signed out everywhere.
func TestSES10_ListEndAndRevokeAll(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.addUser("alice", alicePW, false)
	a, b, c := h.client(), h.client(), h.client()
	token := a.login("alice", alicePW)
	b.login("alice", alicePW)
	c.login("alice", alicePW)

	if res := a.json(http.MethodPost, "/api/v1/sessions/revoke-others", nil, token); res.status != http.StatusNoContent {
		t.Fatalf("revoke-others: status %d %s", res.status, res.body)
	}
	for name, cl := range map[string]*client{"b": b, "c": c} {
		if res, _ := cl.me(); res.status != http.StatusUnauthorized {
			t.Errorf("%s after revoke-others: status %d, want 401", name, res.status)
		}
	}
	if res, _ := a.me(); res.status != http.StatusOK {
		t.Fatalf("the device that revoked the others: status %d, want 200", res.status)
	}

	// Someone else's session id can't be ended.
	h.addUser("mallory", alicePW, false)
	m := h.client()
	mt := m.login("mallory", alicePW)
	_, me := a.me()
	if res := m.json(http.MethodDelete, "/api/v1/sessions/"+me.Session.ID, nil, mt); res.status != http.StatusNotFound {
		t.Fatalf("ending another user's session: status %d, want 404", res.status)
	}

	// An admin's revoke-all (tether sessions revoke) ends it at once.
	if err := h.sessions.RevokeUser(t.Context(), u.ID, nil); err != nil {
		t.Fatal(err)
	}
	if res, _ := a.me(); res.status != http.StatusUnauthorized {
		t.Fatalf("after the admin revoked all: status %d, want 401", res.status)
	}

	// A disabled user's session is not served, even if it survived: once
	// the node's copy of the user is older than the user cache allows.
	a.login("alice", alicePW)
	if err := h.accounts.SetDisabled(t.Context(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(DefaultUserCacheTTL)
	if res, _ := a.me(); res.status != http.StatusUnauthorized {
		t.Fatalf("disabled user: status %d, want 401", res.status)
	}
}

// SES-11: when the session store fails, requests with a session cookie get
// 503, never a signed-in answer; sign-in fails with 503 too.
func TestSES11_StoreErrorFailsClosed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	token := c.login("alice", alicePW)
	h.store.all.Store(true)
	for _, tc := range []struct {
		name string
		do   func() *response
	}{
		{"me", func() *response { return c.do(http.MethodGet, "/api/v1/me", nil) }},
		{"account", func() *response { return c.do(http.MethodGet, "/account", nil) }},
		{"revoke others", func() *response { return c.json(http.MethodPost, "/api/v1/sessions/revoke-others", nil, token) }},
		{"login", func() *response {
			return h.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.do()
			if res.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", res.status, res.body)
			}
			if strings.Contains(res.body, "alice") || strings.Contains(res.body, errStoreDown.Error()) {
				t.Fatalf("503 body %q says too much", res.body)
			}
			if tc.name != "account" && !strings.Contains(res.body, `"error":"unavailable"`) {
				t.Fatalf("API 503 body %q is not the API's JSON error", res.body)
			}
		})
	}
}

// SES-11: with the session store down, the routes that need no session
// answer as usual, even to a request with a session cookie; the ones that
// need it answer 503 with Retry-After, never as signed in.
func TestSES11_RoutesWithoutSessionWorkDuringOutage(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	c.login("alice", alicePW)
	h.store.all.Store(true)
	for _, path := range []string{"/healthz", "/login", "/static/style.css"} {
		if res := c.do(http.MethodGet, path, nil); res.status != http.StatusOK {
			t.Errorf("GET %s with the session store down: status %d, want 200", path, res.status)
		}
	}
	for _, path := range []string{"/api/v1/me", "/account"} {
		res := c.do(http.MethodGet, path, nil)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Errorf("GET %s with the session store down: status %d, Retry-After %q; want 503 with Retry-After", path, res.status, res.header.Get("Retry-After"))
		}
	}
}

// SES-08: sign-out during a session store outage still clears the
// browser's cookie and says the server-side end is pending; the node ends
// the session once the store answers. A cross-site sign-out is still
// refused (CSRF-01).
func TestSES08_SignOutDuringOutage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		logout  func(c *client) *response
		pending func(res *response) bool
	}{
		{"api", func(c *client) *response { return c.json(http.MethodPost, "/api/v1/logout", nil, "") },
			func(res *response) bool {
				return res.status == http.StatusAccepted && strings.Contains(res.body, `"status":"pending"`)
			}},
		{"page", func(c *client) *response { return c.form("/logout", nil) },
			func(res *response) bool {
				return res.status == http.StatusSeeOther && res.header.Get("Location") == "/login?done=signedout-pending"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.addUser("alice", alicePW, false)
			c := h.client()
			c.login("alice", alicePW)
			stolen := c.cookie(sessionCookie)
			h.store.all.Store(true)

			cross := h.client()
			cross.setCookie(sessionCookie, stolen)
			if res := cross.do(http.MethodPost, "/logout", nil, "Sec-Fetch-Site", "cross-site"); !refusedWith(res, true, errCrossOrigin) {
				t.Errorf("cross-site sign-out during the outage: %d %s, want 403 %s", res.status, res.body, errCrossOrigin.code)
			}

			res := tc.logout(c)
			if !tc.pending(res) {
				t.Fatalf("sign-out during the outage: %d %s %s", res.status, res.header.Get("Location"), res.body)
			}
			if c.cookie(sessionCookie) != "" {
				t.Error("the session cookie survived the sign-out")
			}
			if got := res.header.Get("Clear-Site-Data"); strings.Contains(got, "cookies") {
				t.Errorf("Clear-Site-Data %q clears every sibling app's cookies", got)
			}
			h.store.all.Store(false)
			thief := h.client()
			thief.setCookie(sessionCookie, stolen)
			testkit.WaitFor(t, "the pending sign-out", func() bool {
				res, _ := thief.me()
				return res.status == http.StatusUnauthorized
			})
		})
	}
}

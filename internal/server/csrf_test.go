package server

import (
	"bytes"
	"encoding/json"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// unsafeRoute is one unsafe route that needs the session's csrf token, and
// how to send it a request that would succeed with the token.
type unsafeRoute struct {
	method, path string
	form         bool // an HTML form route, else JSON
	body         any  // JSON body
}

// unsafeRoutes lists every route of routes.go that changes state for a
// signed-in user; TestCSRF02 holds each of them to the token.
func unsafeRoutes(otherID string) []unsafeRoute {
	return []unsafeRoute{
		{method: http.MethodPost, path: "/api/v1/logout"},
		{method: http.MethodDelete, path: "/api/v1/sessions/" + otherID},
		{method: http.MethodPost, path: "/api/v1/sessions/revoke-others"},
		{method: http.MethodPost, path: "/api/v1/password", body: passwordRequest{Current: alicePW, New: "a brand new passphrase"}},
		{method: http.MethodPost, path: "/account/sessions/" + otherID + "/revoke", form: true},
		{method: http.MethodPost, path: "/account/revoke-others", form: true},
		{method: http.MethodPost, path: "/account/password", form: true},
		{method: http.MethodPost, path: "/logout", form: true},
	}
}

// send sends r with token (none if empty) and extra headers.
func (c *client) send(r unsafeRoute, token string, hdr ...string) *response {
	c.t.Helper()
	if r.form {
		fields := url.Values{"current": {alicePW}, "new": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}}
		if token != "" {
			fields.Set("csrf_token", token)
		}
		return c.form(r.path, fields, hdr...)
	}
	body := r.body
	if body == nil {
		body = struct{}{}
	}
	return c.json(r.method, r.path, body, token, hdr...)
}

// signedInPair signs alice in on two clients and returns the first, its
// token, and the other session's id.
func signedInPair(t *testing.T, h *harness) (*client, string, string) {
	t.Helper()
	a, b := h.client(), h.client()
	token := a.login("alice", alicePW)
	b.login("alice", alicePW)
	_, other := b.me()
	return a, token, other.Session.ID
}

// refusedWith reports whether res is p's answer: p's status, and p's code
// from the API or a page with p's message from a form route. A status
// alone doesn't say which check refused: a 403 is cross_origin,
// csrf_token_missing, csrf_token_invalid or invalid_credentials.
func refusedWith(res *response, form bool, p *problem) bool {
	if res.status != p.status {
		return false
	}
	if form {
		return strings.HasPrefix(res.header.Get("Content-Type"), "text/html") && strings.Contains(res.body, html.EscapeString(pageMessage(p)))
	}
	var e errorBody
	return json.Unmarshal([]byte(res.body), &e) == nil && e.Error == p.code
}

// CSRF-01: unsafe requests from another site are refused before anything
// else, sign-in included, whether Sec-Fetch-Site or only Origin says so.
func TestCSRF01_CrossSiteRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	crossOriginRefused(t, h, sessionCookie, [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.example"},
	})
}

// CSRF-01, CSRF-02 with a cookie domain: tether on auth.example.com, its
// session cookie for every host under example.com, which
// evil.example.com (a subdomain taken over) therefore receives. A page
// there is of the same site but another origin: its unsafe requests are
// refused like another site's, whether Sec-Fetch-Site or only Origin
// says so, and even a same-origin-looking one without the session's
// token is.
func TestCSRF01_CrossSubdomainRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{cookieDomain: "example.com", hosts: []string{"auth.example.com"}})
	const cookie = "__Secure-tether"
	crossOriginRefused(t, h, cookie, [][]string{
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.example.com"},
		{"Origin", "https://example.com"},
		{"Sec-Fetch-Site", "same-site", "Origin", "https://evil.example.com"},
	})
	c, _, other := signedInPair(t, h)
	evil, err := url.Parse("https://evil.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(c.hc.Jar.Cookies(evil), func(ck *http.Cookie) bool { return ck.Name == cookie }) {
		t.Fatalf("the jar sends no %s to %s: the test proves nothing", cookie, evil)
	}
	for _, r := range unsafeRoutes(other) {
		if res := c.send(r, ""); !refusedWith(res, r.form, errCSRFMissing) {
			t.Errorf("%s %s without the token: %d %s, want 403 %s", r.method, r.path, res.status, res.body, errCSRFMissing.code)
		}
	}
}

// crossOriginRefused signs alice in on h, whose session cookie is named
// cookie, and checks that each of hdrs (header names and values, in
// pairs) makes sign-in and every unsafe route refused as cross-origin,
// a valid csrf token notwithstanding, and leaves the session alive.
func crossOriginRefused(t *testing.T, h *harness, cookie string, hdrs [][]string) {
	t.Helper()
	h.addUser("alice", alicePW, false)
	for _, hdr := range hdrs {
		t.Run(strings.Join(hdr, "="), func(t *testing.T) {
			c, token, other := signedInPair(t, h)
			login := h.client()
			res := login.do(http.MethodPost, "/api/v1/login", strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`),
				append([]string{"Content-Type", "application/json"}, hdr...)...)
			if res.status != http.StatusForbidden || res.errorCode(t) != "cross_origin" || login.cookie(cookie) != "" {
				t.Errorf("POST /api/v1/login: %d %s, want 403 cross_origin and no session", res.status, res.body)
			}
			page := login.do(http.MethodGet, "/login", nil)
			res = login.form("/login", url.Values{"csrf_token": {formToken(t, page.body, "/login")}, "username": {"alice"}, "password": {alicePW}}, hdr...)
			if !refusedWith(res, true, errCrossOrigin) || login.cookie(cookie) != "" {
				t.Errorf("POST /login: %d %s, want 403 %s and no session", res.status, res.body, errCrossOrigin.code)
			}
			for _, r := range unsafeRoutes(other) {
				if res := c.send(r, token, hdr...); !refusedWith(res, r.form, errCrossOrigin) {
					t.Errorf("%s %s with a valid token: %d %s, want 403 %s", r.method, r.path, res.status, res.body, errCrossOrigin.code)
				}
			}
			if res, _ := c.me(); res.status != http.StatusOK {
				t.Errorf("session after refused requests: status %d, want 200", res.status)
			}
		})
	}
}

// CSRF-02: every unsafe signed-in route needs the token bound to the
// session: none, a forged one, or one of another session is refused; the
// right one works.
func TestCSRF02_EveryUnsafeRouteNeedsSessionToken(t *testing.T) {
	for _, r := range unsafeRoutes("x") {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.addUser("alice", alicePW, false)
			h.addUser("eve", alicePW, false)
			eveToken := h.client().login("eve", alicePW)
			preToken := formToken(t, h.client().do(http.MethodGet, "/login", nil).body, "/login")
			c, token, other := signedInPair(t, h)
			r.path = strings.Replace(r.path, "/x", "/"+other, 1)
			for _, bad := range []struct {
				name, token string
				want        *problem
			}{
				{"none", "", errCSRFMissing},
				{"forged", strings.Repeat("A", len(token)), errCSRFInvalid},
				{"other session", eveToken, errCSRFInvalid},
				{"pre-session", preToken, errCSRFInvalid},
			} {
				if res := c.send(r, bad.token); !refusedWith(res, r.form, bad.want) {
					t.Errorf("token %s: %d %s, want 403 %s", bad.name, res.status, res.body, bad.want.code)
				}
			}
			if res, _ := c.me(); res.status != http.StatusOK {
				t.Fatalf("session after refused requests: status %d, want 200", res.status)
			}
			if res := c.send(r, token); res.status >= 400 {
				t.Errorf("with the session's token: status %d: %s", res.status, res.body)
			}
		})
	}
}

// CSRF-03: nothing changes state on GET or HEAD, and no method override is
// honoured.
func TestCSRF03_NoStateChangeOnSafeMethodsNoOverride(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c, token, other := signedInPair(t, h)
	for _, r := range unsafeRoutes(other) {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			if res := c.do(m, r.path+"?csrf_token="+url.QueryEscape(token), nil); res.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, r.path, res.status)
			}
		}
	}
	for _, tc := range []struct {
		name string
		res  func() *response
	}{
		{"header", func() *response {
			return c.do(http.MethodPost, "/api/v1/sessions/"+other, nil, "X-HTTP-Method-Override", "DELETE", "X-CSRF-Token", token)
		}},
		{"query", func() *response {
			return c.do(http.MethodPost, "/api/v1/sessions/"+other+"?_method=DELETE", nil, "X-CSRF-Token", token)
		}},
		{"form", func() *response {
			return c.form("/api/v1/sessions/"+other, url.Values{"_method": {"DELETE"}, "csrf_token": {token}})
		}},
		{"get with override", func() *response {
			return c.do(http.MethodGet, "/api/v1/logout", nil, "X-HTTP-Method-Override", "POST", "X-CSRF-Token", token)
		}},
	} {
		if res := tc.res(); res.status != http.StatusMethodNotAllowed {
			t.Errorf("override by %s: status %d, want 405", tc.name, res.status)
		}
	}
	var list struct{ Sessions []sessionView }
	c.do(http.MethodGet, "/api/v1/sessions", nil).decodeJSON(t, &list)
	if len(list.Sessions) != 2 {
		t.Fatalf("sessions after safe and overridden requests: %d, want 2", len(list.Sessions))
	}
}

// CSRF-04: JSON endpoints take only application/json; text/plain, form and
// multipart bodies get 415, even with a valid token.
func TestCSRF04_JSONEndpointsRefuseOtherBodies(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	token := c.login("alice", alicePW)

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("username", "alice")
	mw.WriteField("password", alicePW)
	mw.Close()
	bodies := []struct {
		name, contentType, body string
	}{
		{"text/plain", "text/plain", `{"username":"alice","password":"` + alicePW + `"}`},
		{"form", "application/x-www-form-urlencoded", "username=alice&password=x"},
		{"multipart", mw.FormDataContentType(), mp.String()},
		{"none", "", `{"username":"alice","password":"` + alicePW + `"}`},
		{"json with another charset", "application/json; charset=utf-16", `{}`},
	}
	for _, path := range []string{"/api/v1/login", "/api/v1/password"} {
		for _, b := range bodies {
			t.Run(path+" "+b.name, func(t *testing.T) {
				hdr := []string{csrfHeader, token}
				if b.contentType != "" {
					hdr = append(hdr, "Content-Type", b.contentType)
				}
				res := c.do(http.MethodPost, path, strings.NewReader(b.body), hdr...)
				if res.status != http.StatusUnsupportedMediaType || res.errorCode(t) != "unsupported_media_type" {
					t.Errorf("status %d %s, want 415 unsupported_media_type", res.status, res.body)
				}
			})
		}
	}
}

const (
	csrfHeader = "X-CSRF-Token"
	preCookie  = PreSessionCookie
)

// CSRF-05: the sign-in form needs the token bound to the pre-session
// cookie; a token without its cookie, or of another pre-session, is
// refused.
func TestCSRF05_SignInFormNeedsPreSessionToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	attacker := h.client()
	attackerToken := formToken(t, attacker.do(http.MethodGet, "/login", nil).body, "/login")

	victim := h.client()
	victimToken := formToken(t, victim.do(http.MethodGet, "/login", nil).body, "/login")
	fields := func(token string) url.Values {
		return url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {alicePW}}
	}
	for _, bad := range []struct {
		name, token string
		want        *problem
	}{
		{"none", "", errCSRFMissing},
		{"another pre-session's", attackerToken, errCSRFInvalid},
		{"forged", strings.Repeat("A", 86), errCSRFInvalid},
	} {
		if res := victim.form("/login", fields(bad.token)); !refusedWith(res, true, bad.want) || victim.cookie(sessionCookie) != "" {
			t.Errorf("%s token: %d %s, want 403 %s and no session", bad.name, res.status, res.body, bad.want.code)
		}
	}
	noCookie := h.client()
	if res := noCookie.form("/login", fields(victimToken)); !refusedWith(res, true, errCSRFMissing) || noCookie.cookie(sessionCookie) != "" {
		t.Errorf("token without its pre-session cookie: %d %s, want 403 %s and no session", res.status, res.body, errCSRFMissing.code)
	}
	if res := victim.form("/login", fields(victimToken)); res.status != http.StatusSeeOther || victim.cookie(sessionCookie) == "" {
		t.Fatalf("the right token: status %d, want 303 and a session", res.status)
	}
	// The token died with the pre-session: it can't sign in again.
	if res := victim.form("/login", fields(victimToken)); !refusedWith(res, true, errCSRFMissing) {
		t.Errorf("pre-session token reused after sign-in: %d %s, want 403 %s", res.status, res.body, errCSRFMissing.code)
	}
}

// CSRF-01, CSRF-02, CSRF-05: every kind of refusal keeps its answer, on each
// kind of route: on the API a 403 with its error code; on the pages a 403
// page saying what to do; without a session, the answer of signedIn.
func TestCSRF_RefusalAnswers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	token := c.login("alice", alicePW)
	forged := strings.Repeat("A", len(token))
	crossSite := []string{"Sec-Fetch-Site", "cross-site"}

	type answer struct {
		status   int
		problem  *problem // its code (API) or its message (page)
		location string   // of a redirect
		passes   bool     // not refused by the CSRF checks: none of their answers
	}
	check := func(t *testing.T, res *response, api bool, want answer) {
		t.Helper()
		if want.passes {
			for _, p := range []*problem{errCSRFMissing, errCSRFInvalid, errCrossOrigin} {
				if res.status == p.status && (strings.Contains(res.body, `"`+p.code+`"`) || strings.Contains(res.body, html.EscapeString(p.message))) {
					t.Errorf("status %d %s, want the request let through", res.status, res.body)
				}
			}
			return
		}
		if res.status != want.status {
			t.Fatalf("status %d %s, want %d", res.status, res.body, want.status)
		}
		switch {
		case want.location != "":
			if got := res.header.Get("Location"); got != want.location {
				t.Errorf("Location %q, want %q", got, want.location)
			}
		case api:
			if got := res.errorCode(t); got != want.problem.code {
				t.Errorf("error %q, want %q", got, want.problem.code)
			}
		default:
			if got := res.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q, want a page", got)
			}
			if msg := html.EscapeString(pageMessage(want.problem)); !strings.Contains(res.body, msg) {
				t.Errorf("page lacks %q:\n%s", msg, res.body)
			}
		}
	}
	missing := answer{status: http.StatusForbidden, problem: errCSRFMissing}
	invalid := answer{status: http.StatusForbidden, problem: errCSRFInvalid}
	cross := answer{status: http.StatusForbidden, problem: errCrossOrigin}

	t.Run("session routes", func(t *testing.T) {
		for _, r := range []unsafeRoute{
			{method: http.MethodPost, path: "/api/v1/sessions/revoke-others"},
			{method: http.MethodPost, path: "/account/revoke-others", form: true},
		} {
			signedOut := answer{status: http.StatusUnauthorized, problem: errSignedOut}
			if r.form {
				signedOut = answer{status: http.StatusSeeOther, location: "/login"}
			}
			for _, tc := range []struct {
				name  string
				res   func() *response
				wants answer
			}{
				{"no token", func() *response { return c.send(r, "") }, missing},
				{"forged token", func() *response { return c.send(r, forged) }, invalid},
				{"cross-site", func() *response { return c.send(r, token, crossSite...) }, cross},
				{"signed out", func() *response { return h.client().send(r, token) }, signedOut},
			} {
				t.Run(r.method+" "+r.path+" "+tc.name, func(t *testing.T) { check(t, tc.res(), !r.form, tc.wants) })
			}
		}
	})

	t.Run("pre-session routes", func(t *testing.T) {
		for _, path := range []string{"/login", "/setup"} {
			// The setup form is there only while there are no users.
			h := newHarness(t, harnessOpts{})
			setupToken := h.newSetup()
			// form GETs the form on a new client and returns the client, the
			// form's fields with its token, and the pre-session cookie.
			form := func(t *testing.T) (*client, url.Values, string) {
				t.Helper()
				c := h.client()
				page := c.do(http.MethodGet, path+"?token="+url.QueryEscape(setupToken), nil)
				fields := url.Values{
					"csrf_token": {formToken(t, page.body, path)}, "token": {setupToken},
					"username": {"root"}, "password": {alicePW}, "confirm": {alicePW},
				}
				return c, fields, c.cookie(preCookie)
			}
			for _, tc := range []struct {
				name  string
				res   func(t *testing.T) *response
				wants answer
			}{
				{"no token", func(t *testing.T) *response {
					c, fields, _ := form(t)
					fields.Del("csrf_token")
					return c.form(path, fields)
				}, missing},
				{"forged token", func(t *testing.T) *response {
					c, fields, _ := form(t)
					fields.Set("csrf_token", forged)
					return c.form(path, fields)
				}, invalid},
				{"another pre-session's token", func(t *testing.T) *response {
					c, _, _ := form(t)
					_, fields, _ := form(t)
					return c.form(path, fields)
				}, invalid},
				{"a session's token", func(t *testing.T) *response {
					c, fields, _ := form(t)
					fields.Set("csrf_token", token) // the same csrf secret
					return c.form(path, fields)
				}, invalid},
				{"cross-site", func(t *testing.T) *response {
					c, fields, _ := form(t)
					return c.form(path, fields, crossSite...)
				}, cross},
				{"no pre-session cookie", func(t *testing.T) *response {
					_, fields, _ := form(t)
					return h.client().form(path, fields)
				}, missing},
				{"pre-session cookie twice", func(t *testing.T) *response {
					_, fields, pre := form(t)
					return h.client().form(path, fields, "Cookie", preCookie+"="+pre+"; "+preCookie+"="+pre)
				}, missing},
				{"malformed pre-session cookie", func(t *testing.T) *response {
					_, fields, pre := form(t)
					return h.client().form(path, fields, "Cookie", preCookie+"="+pre[1:])
				}, missing},
				// Last: on /setup, it creates the admin, which closes the form.
				{"the form as served", func(t *testing.T) *response {
					c, fields, _ := form(t)
					return c.form(path, fields)
				}, answer{passes: true}},
			} {
				t.Run(strings.TrimPrefix(path, "/")+" "+tc.name, func(t *testing.T) { check(t, tc.res(t), false, tc.wants) })
			}
		}
	})
}

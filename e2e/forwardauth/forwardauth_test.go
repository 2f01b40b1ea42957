package forwardauth

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tetherauth/tether/e2e/internal/proxy"
	"github.com/tetherauth/tether/e2e/internal/web"
)

// TestNginx runs examples/nginx/forward-auth.conf.tmpl. nginx can't
// remove headers by prefix: an X-Tether-* header tether doesn't send
// passes through it (examples/nginx/README.md).
func TestNginx(t *testing.T) {
	testForwardAuth(t, nginx(proxy.NeedNginx(t)), http.StatusServiceUnavailable, false)
}

// TestCaddy runs examples/caddy/Caddyfile.tmpl, which removes every
// X-Tether-* header the client sent.
func TestCaddy(t *testing.T) {
	testForwardAuth(t, caddy(proxy.NeedCaddy(t)), http.StatusBadGateway, true)
}

// spoofed are identity headers a client makes up: every one of those
// tether sends, and spellings with underscores, which CGI, PHP, WSGI and
// Rack read as the same header (HTTP_X_TETHER_USER).
var spoofed = http.Header{
	"X-Tether-User":         {"mallory"},
	"X-Tether-User-Id":      {"0"},
	"X-Tether-Session-Id":   {"forged"},
	"X-Tether-Scopes":       {"admin"},
	"X-Tether-Subject-Type": {"client"},
	"X-Tether-Assertion":    {"forged"},
	"X_Tether_User":         {"mallory"},
	"X-Tether_User":         {"mallory"},
	"x_tether-user":         {"mallory"},
}

// madeUp is an X-Tether-* header tether never sends, which an application
// might read all the same.
const madeUp = "X-Tether-Role"

// testForwardAuth runs the checks through the proxy start starts; down is
// what the proxy answers once tether is gone; byPrefix says the proxy
// removes every X-Tether-* header of the client's, madeUp included.
func testForwardAuth(t *testing.T, start startProxy, down int, byPrefix bool) {
	f := newFront(t, start)
	alice := f.Login(t, f.tether, user, password, "alice laptop")
	sessionID := f.SessionID(t, f.tether, alice)
	cookie, _ := alice.State()

	t.Run("signed in", func(t *testing.T) {
		got := f.reach(t, request{path: "/reports?q=1", cookie: cookie})
		if got["X-Tether-User"] != user || got["X-Tether-Subject-Type"] != "user" ||
			got["X-Tether-Session-Id"] != sessionID || got["X-Tether-User-Id"] == "" {
			t.Errorf("upstream got %v, want %s's identity and session %s", got, user, sessionID)
		}
	})

	t.Run("GW02_spoofed identity headers", func(t *testing.T) {
		got := f.reach(t, request{cookie: cookie, header: spoofed.Clone()})
		if got["X-Tether-User"] != user || got["X-Tether-Session-Id"] != sessionID ||
			got["X-Tether-Scopes"] != "" || got["X-Tether-Subject-Type"] != "user" ||
			got["X-Tether-Assertion"] != "" || got["X-Tether-User-Id"] == "0" {
			t.Errorf("upstream got %v: a client's X-Tether-* reached it", got)
		}
		// Anonymous, the request never reaches the upstream at all.
		f.refused(t, request{header: spoofed.Clone()}, http.StatusUnauthorized)
		if byPrefix {
			// reach fails t on any X-Tether-* header that is not one of
			// tether's; madeUp is checked by name too, to say so.
			h := spoofed.Clone()
			h.Set(madeUp, "admin")
			if got := f.reach(t, request{cookie: cookie, header: h}); got[madeUp] != "" {
				t.Errorf("upstream got %s %q: a client's made-up X-Tether-* reached it", madeUp, got[madeUp])
			}
		}
	})

	t.Run("anonymous API request", func(t *testing.T) {
		a := f.refused(t, request{path: "/reports"}, http.StatusUnauthorized)
		if loc := a.header.Get("Location"); loc != "" {
			t.Errorf("401 with Location %q: an API client is not sent to sign in", loc)
		}
	})

	t.Run("anonymous browser signs in and comes back", func(t *testing.T) {
		back := "http://" + appHost + ":" + portOf(t, f.proxy.URL) + "/reports?q=1"
		// What the client says the URL was is not believed: the proxy
		// says it (GW-02).
		lies := http.Header{"X-Original-Url": {"http://" + appHost + "/elsewhere"},
			"X-Forwarded-Host": {appHost + ":1"}, "X-Forwarded-Uri": {"/elsewhere"}}
		a := f.refused(t, request{path: "/reports?q=1", host: appHost + ":" + portOf(t, f.proxy.URL), html: true, header: lies},
			http.StatusFound)
		want := f.tether + "/login?return=" + url.QueryEscape(back)
		if loc := a.header.Get("Location"); loc != want {
			t.Fatalf("sent to %q, want %q", loc, want)
		}
		cookie, to := f.signInForm(t, want)
		if to != back {
			t.Errorf("after signing in, sent to %q, want %q", to, back)
		}
		got := f.reach(t, request{path: "/reports?q=1", host: appHost, cookie: cookie})
		if got["X-Tether-User"] != user {
			t.Errorf("upstream got %v after the sign-in, want %s", got, user)
		}
	})

	t.Run("session signed out", func(t *testing.T) {
		d := f.Login(t, f.tether, user, password, "alice phone")
		phone, _ := d.State()
		f.reach(t, request{cookie: phone})
		f.Must(t, http.StatusNoContent, "POST", f.tether+"/api/v1/logout", d, nil)
		f.refused(t, request{cookie: phone}, http.StatusUnauthorized)
	})

	t.Run("personal access token", func(t *testing.T) {
		tok, id := f.pat(t, alice)
		got := f.reach(t, request{bearer: tok, header: spoofed.Clone()})
		if got["X-Tether-User"] != user || got["X-Tether-Subject-Type"] != "user" || got["X-Tether-Session-Id"] != "" {
			t.Errorf("upstream got %v, want %s's identity without a session", got, user)
		}
		f.Must(t, http.StatusNoContent, "DELETE", f.tether+"/api/v1/tokens/"+id, alice, nil)
		f.refused(t, request{bearer: tok}, http.StatusUnauthorized)
	})

	t.Run("JWT access token", func(t *testing.T) {
		tok := f.jwt(t)
		got := f.reach(t, request{bearer: tok, header: spoofed.Clone()})
		if got["X-Tether-User"] != clientID || got["X-Tether-Subject-Type"] != "client" ||
			got["X-Tether-Scopes"] != clientScope || got["X-Tether-Session-Id"] != "" {
			t.Errorf("upstream got %v, want the client %s with scope %s", got, clientID, clientScope)
		}
		f.oauth(t, "/oauth2/revoke", url.Values{"token": {tok}, "token_type_hint": {"access_token"}})
		f.refused(t, request{bearer: tok}, http.StatusUnauthorized)
	})

	// Last: with tether gone, the proxy fails closed (nginx 503, as its
	// config says; Caddy 502), even for a session that was good.
	t.Run("tether down", func(t *testing.T) {
		if err := f.serve.Stop(); err != nil {
			t.Fatal(err)
		}
		if a := f.send(t, request{cookie: cookie}); a.echo != nil || a.status != down {
			t.Errorf("with tether stopped: got %d %q, want %d from the proxy", a.status, a.body, down)
		}
	})
}

// portOf is the port of the URL u.
func portOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || p.Port() == "" {
		t.Fatalf("no port in %q", u)
	}
	return p.Port()
}

// hiddenInput is a hidden field of tether's sign-in form.
var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// signInForm does what a browser does at the sign-in page login (a URL of
// tether's): it opens the page, keeps the cookies it is given, and posts
// the form back with every hidden field, the user's name and password. It
// returns the session cookie it got, and where tether sent it.
func (f *front) signInForm(t *testing.T, login string) (cookie, to string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", login, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	res, page := f.do(t, req, http.StatusOK)
	form := url.Values{"username": {user}, "password": {password}}
	for _, m := range hiddenInput.FindAllSubmatch(page, -1) {
		form.Set(html.UnescapeString(string(m[1])), html.UnescapeString(string(m[2])))
	}
	post, err := http.NewRequestWithContext(t.Context(), "POST", login, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", f.tether)
	post.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, c := range res.Cookies() {
		post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, _ = f.do(t, post, http.StatusSeeOther)
	for _, c := range res.Cookies() {
		if c.Name == web.CookieName {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("POST %s: no session cookie", login)
	}
	return cookie, res.Header.Get("Location")
}

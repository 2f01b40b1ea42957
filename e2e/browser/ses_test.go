package browser

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestXSS_SessionTokenNotReadableByScript is the argument for HttpOnly
// cookies, made in the browser: a script running in tether's pages, as an
// injected one would, finds the session token nowhere it can read. Not in
// document.cookie, on any page; not in localStorage or sessionStorage; not
// in the page's HTML nor in what the JSON API answers it. It can't
// overwrite the cookie either. (It can still act as the user while it runs:
// HttpOnly keeps the token from being stolen and used elsewhere, later.)
// And a script typed into the sign-in form doesn't run at all.
func TestXSS_SessionTokenNotReadableByScript(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	b := newBrowser(t, "alice")
	b.open(srv.URL + "/login")
	pre := b.cookie(srv, preSessionCookie)
	if pre == nil {
		t.Fatalf("the sign-in page set no %s cookie", preSessionCookie)
	}
	if got := get(b, chromedp.Evaluate[string](`document.cookie`)); got != "" {
		t.Errorf("document.cookie on the sign-in page = %q, want empty (the pre-session cookie is HttpOnly too)", got)
	}
	b.signIn(srv, "alice", alicePW)
	token := b.cookie(srv, sessionCookie).Value

	for _, path := range []string{"/account", "/account?done=password", "/login", "/setup?token=wrong", "/"} {
		b.open(srv.URL + path)
		seen := get(b, chromedp.Evaluate[map[string]string](`({
			cookie: document.cookie,
			local: JSON.stringify(Object.entries(localStorage)),
			session: JSON.stringify(Object.entries(sessionStorage)),
			html: document.documentElement.outerHTML,
		})`))
		for where, v := range seen {
			if strings.Contains(v, token) || strings.Contains(v, sessionCookie+"=") {
				t.Errorf("%s: a script reads the session token from %s", path, where)
			}
		}
		if seen["cookie"] != "" {
			t.Errorf("%s: document.cookie = %q, want empty", path, seen["cookie"])
		}
	}

	// An injected script tries its best with the API and the cookie jar.
	b.open(srv.URL + "/account")
	got := get(b, chromedp.Evaluate[map[string]string](`(async () => {
		const res = await fetch('/api/v1/me');
		const out = {me: await res.text(), setCookie: String(res.headers.get('set-cookie'))};
		document.cookie = '__Host-tether=planted-by-script; Secure; Path=/';
		document.cookie = 'tether=planted-by-script; Path=/';
		out.cookie = document.cookie;
		return out;
	})()`, chromedp.EvalAwaitPromise))
	if !strings.Contains(got["me"], `"alice"`) {
		t.Errorf("fetch('/api/v1/me') from the page: %s, want alice's details", got["me"])
	}
	for where, v := range got {
		if strings.Contains(v, token) {
			t.Errorf("the script read the session token from %s", where)
		}
	}
	if c := b.cookie(srv, sessionCookie); c == nil || c.Value != token {
		t.Errorf("a script replaced or removed the HttpOnly session cookie")
	}
	if !srv.signedIn(token) {
		t.Errorf("the session ended after the script's attempts")
	}

	// Markup typed into the form comes back as text; a script in it does
	// not run (html/template escapes it, and the CSP allows no inline
	// script anyway).
	b.fillSignIn(srv, `"><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`, "wrong password")
	if pwned := get(b, chromedp.Evaluate[string](`String(window.pwned)`)); pwned != "undefined" {
		t.Errorf("window.pwned = %s: markup typed into the sign-in form ran", pwned)
	}
	if get(b, chromedp.Value(chromedp.ID("username"))) != `"><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>` {
		t.Errorf("the sign-in form did not keep the typed user name as text")
	}
}

// TestSES03_SessionFixation: a session cookie planted in the browser before
// sign-in (by a sibling site, say, or anyone who could set cookies for
// tether) is not the one in use after sign-in: signing in issues a new
// token and ends the planted session rather than promoting it (SES-03).
// Nor is the pre-session cookie of the sign-in form promoted.
func TestSES03_SessionFixation(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}, {"mallory", malloryPW}})
	status, mallorys := srv.apiLogin("mallory", malloryPW)
	if status != http.StatusOK || mallorys == "" {
		t.Fatalf("mallory's sign-in: status %d", status)
	}

	for _, tc := range []struct {
		name, planted string
	}{
		{"a live session of the attacker's", mallorys},
		{"a token tether never issued", randomToken(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, "victim")
			b.plantCookie(srv, sessionCookie, tc.planted)
			b.open(srv.URL + "/login")
			pre := b.cookie(srv, preSessionCookie)
			if pre == nil {
				t.Fatalf("the sign-in page set no %s cookie", preSessionCookie)
			}
			if tc.planted == mallorys && !b.has(`form[action="/logout"]`) {
				t.Fatalf("the planted session isn't in use before sign-in: the test plants it wrong")
			}

			b.signIn(srv, "alice", alicePW)
			b.mustContain("Your account", "alice")
			c := b.cookie(srv, sessionCookie)
			switch {
			case c == nil:
				t.Fatalf("no session cookie after sign-in")
			case c.Value == tc.planted:
				t.Fatalf("the planted token is still the session cookie after sign-in")
			case c.Value == pre.Value:
				t.Fatalf("the pre-session value became the session token")
			}
			if b.cookie(srv, preSessionCookie) != nil {
				t.Errorf("the pre-session cookie is still there after sign-in")
			}
			if srv.signedIn(tc.planted) {
				t.Errorf("the planted token is a live session after the victim's sign-in")
			}
			if !srv.signedIn(c.Value) {
				t.Errorf("the new session cookie is not a live session")
			}
		})
	}
}

// plantCookie sets a cookie for srv in the browser through the DevTools
// protocol, with the attributes tether's own cookie has.
func (b *browser) plantCookie(srv *tether, name, value string) {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{
			Name: name, Value: value, URL: srv.URL + "/", Path: "/",
			Secure: new(true), HTTPOnly: new(true), SameSite: network.CookieSameSiteLax,
		})
		return err
	}))
	if c := b.cookie(srv, name); c == nil || c.Value != value {
		b.t.Fatalf("planting the cookie %s failed", name)
	}
}

func randomToken(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestSES08_SES09_BackButtonAndReplay: the account page is sent with
// Cache-Control: no-store and Vary: Cookie (SES-09); after signing out with
// the header's button, the browser has no session cookie, and its back
// button doesn't show the account page from a cache: going back asks the
// server, which sends it to the sign-in page. The old cookie value,
// replayed by a plain HTTP client, is refused (SES-08).
func TestSES08_SES09_BackButtonAndReplay(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	b := newBrowser(t, "alice")
	b.signIn(srv, "alice", alicePW)
	res := get(b, chromedp.NavigateResponse(srv.URL+"/account"))
	if cc := header(res.Headers, "Cache-Control"); cc != "no-store" {
		t.Errorf("GET /account: Cache-Control %q, want no-store", cc)
	}
	if vary := header(res.Headers, "Vary"); !strings.Contains(vary, "Cookie") {
		t.Errorf("GET /account: Vary %q, want Cookie in it", vary)
	}
	token := b.cookie(srv, sessionCookie).Value

	b.submit(`header form[action="/logout"] button[type=submit]`)
	if p := b.path(); p != "/login?done=signedout" {
		t.Fatalf("after signing out: at %s, want /login?done=signedout", p)
	}
	b.mustContain("You are signed out.")
	if c := b.cookie(srv, sessionCookie); c != nil {
		t.Errorf("the session cookie is still in the browser after sign-out")
	}

	b.do(chromedp.NavigateBack())
	text := b.text()
	if p := b.path(); p == "/account" || strings.Contains(text, "Signed-in devices") || strings.Contains(text, "Change password") {
		t.Errorf("the back button shows the account page after sign-out (at %s):\n%s", p, text)
	}
	if p := b.path(); p != "/login" {
		t.Errorf("back after sign-out: at %s, want /login (the server's redirect)", p)
	}

	if status, _, _ := srv.request(http.MethodGet, "/api/v1/me", token, nil); status != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/me with the old cookie: status %d, want 401", status)
	}
	if status, loc, _ := srv.request(http.MethodGet, "/account", token, nil); status != http.StatusSeeOther || loc != "/login" {
		t.Errorf("GET /account with the old cookie: %d to %q, want 303 to /login", status, loc)
	}
}

// header returns the value of the header called name in h, whatever the
// case of its name.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// TestSES07_IdleTimeout: with --idle-timeout 5s, a browser left alone for
// longer than that is signed out, while one kept busy over the same time
// (a request every quarter second) is not (SES-07).
//
// It runs on the real clock, as the server process does. The busy session's
// idle deadline is written back at most every 2.5 s (half the timeout), so
// it stays signed in as long as no request of its loop is held up for more
// than 2.5 s: the margin a loaded CI machine gets.
func TestSES07_IdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 5 * time.Second
	srv := startTether(t, []user{{"alice", alicePW}}, "--idle-timeout", idle.String())
	left, busy := newBrowser(t, "left alone"), newBrowser(t, "kept busy")
	left.signIn(srv, "alice", alicePW)
	lastUsed := time.Now() // its last request: the account page after sign-in
	busy.signIn(srv, "alice", alicePW)

	// Busy for longer than the idle timeout since the other's last use,
	// with a margin for the server's clock ticks.
	keepBusy := time.Until(lastUsed.Add(idle + 1500*time.Millisecond))
	got := get(busy, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const end = Date.now() + %d;
		let n = 0;
		while (Date.now() < end) {
			const res = await fetch('/api/v1/me');
			if (res.status !== 200) return 'status ' + res.status + ' after ' + n + ' requests';
			n++;
			await new Promise(r => setTimeout(r, 250));
		}
		return 'ok';
	})()`, keepBusy.Milliseconds()), chromedp.EvalAwaitPromise))
	if got != "ok" {
		t.Fatalf("the busy browser was signed out while busy: %s", got)
	}
	if since := time.Since(lastUsed); since <= idle {
		t.Fatalf("only %v since the idle browser's last request, want more than %v", since, idle)
	}

	// The busy one first: its deadline is at least half the timeout away.
	busy.open(srv.URL + "/account")
	if p := busy.path(); p != "/account" {
		t.Errorf("the busy browser: /account shows %s, want still signed in", p)
	}
	left.open(srv.URL + "/account")
	if p := left.path(); p != "/login" {
		t.Errorf("the browser left alone: /account shows %s, want the sign-in page", p)
	}
}

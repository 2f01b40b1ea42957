package browser

import (
	"maps"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestSES08_SignOutKeepsSiblingCookies: signing out of tether, at
// https://auth.tether.test, leaves alone the cookies of a sibling app on
// the same site, https://app.tether.test: its host-only session cookie and
// a cookie of the whole domain (Domain=tether.test) are still in the
// browser, and sent to the app, after tether's sign-out; while tether's own
// session cookie is gone and its session ended (SES-08).
//
// What it guards against: with Clear-Site-Data: "cookies", which tether's
// sign-out used to send, Chromium deletes every cookie of the registrable
// domain, whatever host set it, so signing out of tether signed the person
// out of every app of the company. The header tether sends now ("cache",
// "storage") still clears what this origin stored in the browser, and the
// test checks that it did: a Clear-Site-Data the browser ignored (over
// plain HTTP, say, where it doesn't apply) would make the test pass for
// nothing.
func TestSES08_SignOutKeepsSiblingCookies(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}}, "--hosts", authHost)
	set := map[string]string{appCookie: randomToken(t), domainCookie: randomToken(t)}
	s := newSite(t, srv, set)
	auth := s.tether(srv)
	b := newBrowser(t, "alice")

	b.open(s.appURL + "/signin")
	if got := b.appSees(); !maps.Equal(got, set) {
		t.Fatalf("the app got cookies %v right after setting them, want %v: the test sets them wrong", got, set)
	}

	b.signIn(auth, "alice", alicePW)
	if b.cookie(auth, sessionCookie) == nil {
		t.Fatalf("no %s cookie after sign-in at %s; cookies: %v", sessionCookie, s.authURL, names(b.cookies(auth)))
	}
	if n := srv.sessionCount("alice"); n != 1 {
		t.Fatalf("alice has %d sessions after signing in, want 1", n)
	}
	// Something only Clear-Site-Data removes: a page's storage.
	get(b, chromedp.Evaluate[bool](`localStorage.setItem('ses08', 'before sign-out'), true`))

	b.submit(`header form[action="/logout"] button[type=submit]`)
	if p := b.path(); p != "/login?done=signedout" {
		t.Fatalf("after signing out: at %s, want /login?done=signedout", p)
	}
	if v := get(b, chromedp.Evaluate[string](`String(localStorage.getItem('ses08'))`)); v != "null" {
		t.Errorf("tether's localStorage still holds %q after sign-out: tether sent no Clear-Site-Data \"storage\", or the browser ignored it; "+
			"either way, this test no longer shows that the header spares sibling apps' cookies", v)
	}
	if c := b.cookie(auth, sessionCookie); c != nil {
		t.Errorf("tether's session cookie is still in the browser after sign-out")
	}
	if n := srv.sessionCount("alice"); n != 0 {
		t.Errorf("alice has %d sessions after signing out, want 0", n)
	}

	b.open(s.appURL + "/")
	got := b.appSees()
	for _, name := range []string{appCookie, domainCookie} {
		if got[name] != set[name] {
			t.Errorf("after signing out of tether, the app got no %s cookie, or another one: tether's sign-out cleared a sibling app's cookie (in the browser for the app: %v)",
				name, names(b.cookiesFor(s.appURL)))
		}
	}
}

// appSees returns the cookies the sibling app says it got with the page the
// browser shows (see newSite), by name.
func (b *browser) appSees() map[string]string {
	b.t.Helper()
	text := get(b, chromedp.Evaluate[string](`document.getElementById('cookies').textContent`))
	got := map[string]string{}
	for line := range strings.Lines(text) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), "=")
		got[name] = value
	}
	return got
}

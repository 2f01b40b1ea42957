package browser

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// domainSessionCookie is tether's session cookie under --cookie-domain.
const domainSessionCookie = "__Secure-tether"

// TestSES05_CookieDomainAcrossSubdomains: tether at
// https://auth.tether.test with --cookie-domain tether.test. Signing in
// through the real form in Chromium sets __Secure-tether for the whole
// domain (HttpOnly, Secure, SameSite=Lax, Path=/), which the browser then
// sends to the sibling app at https://app.tether.test. A page there (same
// site, another origin: what a subdomain taken over would serve) has the
// browser send tether's sign-out and "sign out my other devices" with the
// cookie; tether refuses both as cross-origin (CSRF-01), and the person is
// still signed in. Signing out at tether takes the cookie from the app's
// host too (SES-08).
func TestSES05_CookieDomainAcrossSubdomains(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}}, "--hosts", authHost, "--cookie-domain", siteDomain)
	s := newSite(t, srv, nil)
	auth := s.tether(srv)
	b := newBrowser(t, "alice")
	b.signIn(auth, "alice", alicePW)

	var c *network.Cookie
	for _, k := range b.cookiesFor(s.appURL) {
		if k.Name == domainSessionCookie {
			c = k
		}
	}
	if c == nil {
		t.Fatalf("no %s cookie for %s after sign-in; cookies: %v", domainSessionCookie, s.appURL, names(b.cookiesFor(s.appURL)))
	}
	checkSessionCookie(t, c, "."+siteDomain) // a leading dot: set with Domain=
	if b.cookie(auth, sessionCookie) != nil {
		t.Errorf("a %s cookie too", sessionCookie)
	}
	b.open(s.appURL + "/")
	if got := b.appSees()[domainSessionCookie]; got != c.Value {
		t.Fatalf("the app at %s did not get tether's session cookie", s.appURL)
	}

	rec := b.record(auth)
	get(b, chromedp.Evaluate[bool](fetchScript(map[string]any{
		s.authURL + "/api/v1/logout":                 map[string]string{},
		s.authURL + "/api/v1/sessions/revoke-others": map[string]string{},
	})+", true"))
	b.waitTitle("done")
	for _, path := range []string{"/api/v1/logout", "/api/v1/sessions/revoke-others"} {
		x := rec.wait(http.MethodPost, path)
		t.Logf("fetch POST %s from %s: status %d; Sec-Fetch-Site: %s; Origin: %s; %s", path, s.appURL, x.status, x.secFetchSite, x.origin, x.cookie)
		if x.status != http.StatusForbidden || !strings.Contains(x.cookie, domainSessionCookie+" sent") {
			t.Errorf("fetch POST %s from %s: status %d, cookie %q; want 403 with the session cookie sent", path, s.appURL, x.status, x.cookie)
		}
	}
	b.open(s.authURL + "/account")
	if p := b.path(); p != "/account" {
		t.Fatalf("after the sibling's requests: at %s, want still signed in at /account", p)
	}

	b.submit(`header form[action="/logout"] button[type=submit]`)
	if p := b.path(); p != "/login?done=signedout" {
		t.Fatalf("after signing out: at %s, want /login?done=signedout", p)
	}
	for _, k := range b.cookiesFor(s.appURL) {
		if k.Name == domainSessionCookie {
			t.Errorf("after signing out, the browser still sends %s to %s", domainSessionCookie, s.appURL)
		}
	}
	if n := srv.sessionCount("alice"); n != 0 {
		t.Errorf("alice has %d sessions after signing out, want 0", n)
	}
}

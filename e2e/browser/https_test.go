package browser

import (
	"strings"
	"testing"
)

// TestPlainHTTPSaysWhy: tether reached over plain HTTP at a name other
// than localhost (http://auth.tether.test:PORT) can't sign anyone in, since
// the browser drops its __Host- Secure cookies there. The sign-in page says
// so and links to https://, and sending the form says so again, where it
// used to say "Requests from other sites are refused": over plain HTTP
// Chromium sends no Sec-Fetch-Site, and under tether's Referrer-Policy its
// form sends Origin: null, which the cross-origin check refused.
func TestPlainHTTPSaysWhy(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}}, "--hosts", authHost)
	plain := *srv
	plain.URL = "http://" + authHost + ":" + srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	b := newBrowser(t, "alice")
	rec := b.record(&plain)

	b.fillSignIn(&plain, "alice", alicePW)
	// Why the cross-origin check used to refuse it.
	if x := rec.wait("POST", "/login"); x.secFetchSite != "<nil>" || x.origin != "null" {
		t.Errorf("the form's POST over plain HTTP: Sec-Fetch-Site %s, Origin %s; want none and null", x.secFetchSite, x.origin)
	}
	b.mustContain("This page was loaded over plain HTTP, so your browser will not keep the sign-in cookie")
	if text := b.text(); strings.Contains(text, "other sites") {
		t.Errorf("sending the form over plain HTTP: the page blames other sites:\n%s", text)
	}
	if !b.has(`a[href="https://` + authHost + `/login"]`) {
		t.Errorf("no link to https://%s/login; the page says:\n%s", authHost, b.text())
	}
	if n := srv.sessionCount("alice"); n != 0 {
		t.Errorf("alice has %d sessions, want none: the password went over plain HTTP", n)
	}
}

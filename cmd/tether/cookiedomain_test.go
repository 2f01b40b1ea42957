package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/csrf"
)

// SES-05, SES-08, CSRF-01: tether serve --cookie-domain example.com, over
// TLS as it runs. A real sign-in at auth.example.com sets __Secure-tether
// with Domain=example.com, Secure, HttpOnly, SameSite=Lax and Path=/, and
// no __Host-tether; the client sends it to app.example.com as well. A
// sign-out posted from a sibling subdomain's page (same site, another
// origin) is refused; the real one expires that same Domain cookie, so no
// host under the domain keeps it.
func TestServeSES05_CookieDomainOverHTTPS(t *testing.T) {
	cert := newTestCert(t, t.TempDir(), "auth", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "auth.example.com", "127.0.0.1")
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	client := newNamedClient(t, cert)
	s := startServeWith(t, client.Client, data, "--hosts", "auth.example.com", "--cookie-domain", "example.com",
		"--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	base := "https://auth.example.com:" + client.reach(t, s)
	app, err := url.Parse("https://app.example.com:" + strings.TrimPrefix(base, "https://auth.example.com:") + "/")
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, body string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	// sessionCookie returns the Set-Cookie of res for the session cookie,
	// failing t unless there is exactly one, and it is __Secure-tether
	// with every attribute of the Domain cookie.
	sessionCookie := func(what string, res *http.Response) *http.Cookie {
		t.Helper()
		var found []*http.Cookie
		for _, line := range res.Header.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(line)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(c.Name, "-tether") {
				found = append(found, c)
				if c.Name != "__Secure-tether" || c.Domain != "example.com" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
					t.Errorf("%s: Set-Cookie %q, want __Secure-tether, Domain=example.com, Secure, HttpOnly, SameSite=Lax, Path=/", what, line)
				}
			}
		}
		if len(found) != 1 {
			t.Fatalf("%s: session cookies %v, want one", what, found)
		}
		return found[0]
	}

	res := send("POST", "/api/v1/login", `{"username":"alice","password":"`+alicePassword+`"}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sign in: got %s, want 200", res.Status)
	}
	sessionCookie("sign in", res)
	var signedIn struct {
		CSRFToken string `json:"csrf_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&signedIn); err != nil || signedIn.CSRFToken == "" {
		t.Fatalf("sign in: no csrf token (%v)", err)
	}
	if !hasCookie(client.Jar, app, "__Secure-tether") {
		t.Fatalf("the client keeps no session cookie for %s", app)
	}
	if res := send("GET", "/api/v1/me", ""); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/me: got %s, want 200", res.Status)
	}

	for _, hdr := range [][]string{
		{"Origin", "https://app.example.com"},
		{"Sec-Fetch-Site", "same-site", "Origin", "https://app.example.com"},
	} {
		if res := send("POST", "/api/v1/logout", "{}", append(hdr, csrf.HeaderName, signedIn.CSRFToken)...); res.StatusCode != http.StatusForbidden {
			t.Errorf("sign-out with %q and the csrf token: got %s, want 403", hdr, res.Status)
		}
	}
	if res := send("GET", "/api/v1/me", ""); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/me after the refused sign-outs: got %s, want 200", res.Status)
	}

	res = send("POST", "/api/v1/logout", "{}", csrf.HeaderName, signedIn.CSRFToken)
	if res.StatusCode >= 300 {
		t.Fatalf("sign out: got %s", res.Status)
	}
	if c := sessionCookie("sign out", res); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("sign out: Set-Cookie %v does not expire the cookie", c)
	}
	if hasCookie(client.Jar, app, "__Secure-tether") {
		t.Errorf("after sign-out, the client still sends a session cookie to %s", app)
	}
	if res := send("GET", "/api/v1/me", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/me after sign-out: got %s, want 401", res.Status)
	}
}

func hasCookie(jar http.CookieJar, u *url.URL, name string) bool {
	for _, c := range jar.Cookies(u) {
		if c.Name == name {
			return true
		}
	}
	return false
}

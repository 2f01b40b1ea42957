package browser

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const (
	malloryPW  = "mallory's own passphrase"
	attackerPW = "the attacker's choice of password"
)

// TestCSRF01_CrossSiteFormsRefused: pages of other origins make the victim's
// signed-in browser send forms to change her password and to sign out all
// her other devices, and fetch (mode no-cors, text/plain, with credentials)
// the same actions of the JSON API. Each is refused (CSRF-01, CSRF-02,
// CSRF-04), and afterwards she is still signed in, on both her devices,
// with her old password.
//
// Two attackers: one on another site (http://localhost:PORT), where the
// browser keeps the SameSite=Lax session cookie home, so tether sees a
// signed-out request; and one on the same site but another origin
// (http://127.0.0.1:OTHERPORT: sites have no ports), where the cookie goes
// along and tether's own origin check (Sec-Fetch-Site) is what refuses it.
// The forms carry the right current password, so that only the CSRF
// defences stand in the way.
func TestCSRF01_CrossSiteFormsRefused(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	victim := newBrowser(t, "victim")
	victim.signIn(srv, "alice", alicePW)
	phone := newBrowser(t, "victim's phone")
	phone.signIn(srv, "alice", alicePW)
	token := victim.cookie(srv, sessionCookie).Value

	pages := map[string]string{
		"/password": autoSubmit(srv.URL+"/account/password",
			"csrf_token", "forged", "current", alicePW, "new", attackerPW, "confirm", attackerPW),
		"/revoke-others": autoSubmit(srv.URL+"/account/revoke-others", "csrf_token", "forged"),
		"/api": fetchPage(map[string]any{
			srv.URL + "/api/v1/password":               map[string]string{"current": alicePW, "new": attackerPW},
			srv.URL + "/api/v1/sessions/revoke-others": map[string]string{},
		}),
	}
	for _, a := range []*attacker{newAttacker(t, "localhost", pages), newAttacker(t, "127.0.0.1", pages)} {
		sameSite := strings.HasPrefix(a.name, "same-site")
		t.Run(a.name, func(t *testing.T) {
			v := victim.in(t)
			rec := v.record(srv)
			for _, form := range []struct{ page, action string }{
				{"/password", "/account/password"},
				{"/revoke-others", "/account/revoke-others"},
			} {
				v.open(a.URL + form.page)
				x := rec.wait(http.MethodPost, form.action)
				v.waitTether()
				t.Logf("form POST %s: status %d; Sec-Fetch-Site: %s; %s", form.action, x.status, x.secFetchSite, x.cookie)
				if sameSite {
					// The cookie went along; tether refused the origin.
					if x.status != http.StatusForbidden || !strings.Contains(x.cookie, sessionCookie+" sent") {
						t.Errorf("POST %s: status %d, cookie %q; want 403 with the session cookie sent", form.action, x.status, x.cookie)
					}
					v.mustContain("Requests from other sites are refused.")
				} else {
					// SameSite=Lax kept the cookie home: to tether the
					// request was signed out, and went to the sign-in page.
					if x.status != http.StatusSeeOther || strings.Contains(x.cookie, sessionCookie+" sent") {
						t.Errorf("POST %s: status %d, cookie %q; want 303 to the sign-in page, without the session cookie", form.action, x.status, x.cookie)
					}
					if p := v.path(); p != "/login" {
						t.Errorf("POST %s led to %s, want /login", form.action, p)
					}
				}
			}

			v.open(a.URL + "/api")
			v.waitTitle("done")
			for _, path := range []string{"/api/v1/password", "/api/v1/sessions/revoke-others"} {
				x := rec.wait(http.MethodPost, path)
				t.Logf("fetch POST %s: status %d; Sec-Fetch-Site: %s; %s", path, x.status, x.secFetchSite, x.cookie)
				want := http.StatusUnauthorized // no cookie: signed out
				if sameSite {
					want = http.StatusForbidden // cross-origin
				}
				if x.status != int64(want) {
					t.Errorf("fetch POST %s: status %d, want %d", path, x.status, want)
				}
			}
		})
	}

	// Afterwards, by the server's own state: nothing changed.
	if c := victim.cookie(srv, sessionCookie); c == nil || c.Value != token {
		t.Errorf("the victim's session cookie changed or went")
	}
	for _, b := range []*browser{victim, phone} {
		b.open(srv.URL + "/account")
		if p := b.path(); p != "/account" {
			t.Errorf("%s after the attacks: at %s, want still signed in at /account", b.name, p)
		}
	}
	if status, _ := srv.apiLogin("alice", alicePW); status != http.StatusOK {
		t.Errorf("signing in with the old password: status %d, want 200 (unchanged)", status)
	}
	if status, _ := srv.apiLogin("alice", attackerPW); status != http.StatusForbidden {
		t.Errorf("signing in with the attacker's password: status %d, want 403 (invalid_credentials)", status)
	}
}

// TestCSRF05_LoginCSRF: a page of another origin posts the attacker's own
// name and password, with a sign-in form token the attacker got for
// himself, to tether's sign-in form in the victim's browser. It is refused,
// and the victim's browser doesn't end up signed in as the attacker: not
// when she was signed out, nor when she was signed in as herself (CSRF-05).
func TestCSRF05_LoginCSRF(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}, {"mallory", malloryPW}})
	// The attacker's sign-in form, with its pre-session cookie and token,
	// fetched as any client can.
	status, _, page := srv.get("/login")
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("GET /login: status %d, no csrf token", status)
	}
	pages := map[string]string{
		"/login": autoSubmit(srv.URL+"/login", "csrf_token", m[1], "username", "mallory", "password", malloryPW),
	}

	for _, a := range []*attacker{newAttacker(t, "localhost", pages), newAttacker(t, "127.0.0.1", pages)} {
		for _, as := range []string{"", "alice"} {
			name := a.name + ", victim signed out"
			if as != "" {
				name = a.name + ", victim signed in as " + as
			}
			t.Run(name, func(t *testing.T) {
				v := newBrowser(t, "victim")
				// She had the sign-in page open before, so she has a
				// pre-session cookie of her own.
				v.open(srv.URL + "/login")
				if as != "" {
					v.signIn(srv, as, alicePW)
				}
				before := v.cookie(srv, sessionCookie)
				rec := v.record(srv)

				v.open(a.URL + "/login")
				x := rec.wait(http.MethodPost, "/login")
				v.waitTether()
				t.Logf("form POST /login: status %d; Sec-Fetch-Site: %s; %s", x.status, x.secFetchSite, x.cookie)
				if x.status != http.StatusForbidden {
					t.Errorf("POST /login: status %d, want 403", x.status)
				}
				v.mustContain("Requests from other sites are refused.")

				after := v.cookie(srv, sessionCookie)
				switch {
				case as == "" && after != nil:
					t.Errorf("the victim's browser has a session cookie now")
				case as != "" && (after == nil || after.Value != before.Value):
					t.Errorf("the victim's session cookie changed or went")
				}
				v.open(srv.URL + "/account")
				if as == "" {
					if p := v.path(); p != "/login" {
						t.Errorf("the signed-out victim: /account shows %s, want the sign-in page", p)
					}
				} else {
					v.mustContain("Your account", as)
					if strings.Contains(v.text(), "mallory") {
						t.Errorf("the victim's account page names the attacker")
					}
				}
			})
		}
	}
	if n := srv.sessionCount("mallory"); n != 0 {
		t.Errorf("mallory has %d sessions, want 0: a browser signed in as the attacker", n)
	}
}

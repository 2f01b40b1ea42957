package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const alicePW = "correct horse battery staple"

// TestAPIFlow signs in through the JSON API, looks at itself and its
// sessions, ends another device's session and signs out.
func TestAPIFlow(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.addUser("alice", alicePW, true)
	laptop, phone := h.client(), h.client()
	token := laptop.login("Alice", alicePW)
	phone.login("alice", alicePW)

	res, me := laptop.me()
	if res.status != http.StatusOK {
		t.Fatalf("GET /api/v1/me: status %d %s", res.status, res.body)
	}
	if me.User.ID != u.ID || me.User.Name != "alice" || !me.User.Admin || me.Session == nil || !me.Session.Current || me.CSRFToken == "" {
		t.Fatalf("GET /api/v1/me = %+v", me)
	}
	if strings.Contains(res.body, u.PasswordHash) || strings.Contains(res.body, laptop.cookie(SessionCookie)) {
		t.Fatalf("GET /api/v1/me leaks the hash or the token: %s", res.body)
	}

	var list struct{ Sessions []sessionView }
	res = laptop.do(http.MethodGet, "/api/v1/sessions", nil)
	res.decodeJSON(t, &list)
	if res.status != http.StatusOK || len(list.Sessions) != 2 {
		t.Fatalf("GET /api/v1/sessions: status %d, %d sessions; want 200, 2", res.status, len(list.Sessions))
	}
	var other string
	for _, s := range list.Sessions {
		if s.Current != (s.ID == me.Session.ID) {
			t.Errorf("session %s: current %v, want %v", s.ID, s.Current, s.ID == me.Session.ID)
		}
		if !s.Current {
			other = s.ID
		}
		if s.IP != "127.0.0.1" || !strings.HasPrefix(s.UserAgent, "Go-http-client") || s.Created.IsZero() || s.LastSeen.IsZero() {
			t.Errorf("session %+v: want IP, user agent, created and last seen", s)
		}
	}

	if res := laptop.json(http.MethodDelete, "/api/v1/sessions/"+other, nil, token); res.status != http.StatusNoContent {
		t.Fatalf("DELETE other session: status %d %s", res.status, res.body)
	}
	if res, _ := phone.me(); res.status != http.StatusUnauthorized {
		t.Fatalf("phone after its session was ended: status %d, want 401", res.status)
	}
	if res := laptop.json(http.MethodDelete, "/api/v1/sessions/"+other, nil, token); res.status != http.StatusNotFound {
		t.Fatalf("DELETE ended session again: status %d, want 404", res.status)
	}
	if res := laptop.json(http.MethodPost, "/api/v1/logout", nil, token); res.status != http.StatusNoContent {
		t.Fatalf("POST /api/v1/logout: status %d %s", res.status, res.body)
	}
	if res, _ := laptop.me(); res.status != http.StatusUnauthorized {
		t.Fatalf("after sign-out: status %d, want 401", res.status)
	}
}

// TestPagesFlow does the same through the pages, reading the csrf tokens
// from the forms.
func TestPagesFlow(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	laptop, phone := h.client(), h.client()

	if res := laptop.do(http.MethodGet, "/", nil); res.status != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Fatalf("GET / signed out: %d %s, want 303 to /login", res.status, res.header.Get("Location"))
	}
	if res := laptop.pageLogin("alice", alicePW); res.status != http.StatusSeeOther || res.header.Get("Location") != "/account" {
		t.Fatalf("POST /login: %d %s, want 303 to /account", res.status, res.header.Get("Location"))
	}
	phone.pageLogin("alice", alicePW)
	if res := laptop.do(http.MethodGet, "/", nil); res.header.Get("Location") != "/account" {
		t.Fatalf("GET / signed in: redirect to %q, want /account", res.header.Get("Location"))
	}

	page := laptop.do(http.MethodGet, "/account", nil)
	for _, want := range []string{"alice", "This device", "A Go program", `title="Go-http-client/1.1"`, "127.0.0.1", "Active now", "just now",
		"Sign out all other devices", "Yes, sign out 1 other device", "Change password", `action="/logout"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if n := strings.Count(page.body, "/revoke\""); n != 2 {
		t.Fatalf("account page lists %d devices, want 2", n)
	}
	// The phone's session is the one without "This device"; sign it out.
	_, mine := laptop.me()
	var otherID string
	for _, part := range strings.Split(page.body, `action="/account/sessions/`)[1:] {
		if id, _, _ := strings.Cut(part, "/"); id != mine.Session.ID {
			otherID = id
		}
	}
	action := "/account/sessions/" + otherID + "/revoke"
	res := laptop.form(action, url.Values{"csrf_token": {formToken(t, page.body, action)}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?done=revoked" {
		t.Fatalf("POST %s: %d %s", action, res.status, res.header.Get("Location"))
	}
	if res := phone.do(http.MethodGet, "/account", nil); res.status != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Fatalf("phone after being signed out: %d %s, want 303 to /login", res.status, res.header.Get("Location"))
	}
	page = laptop.do(http.MethodGet, "/account?done=revoked", nil)
	if !strings.Contains(page.body, "That device was signed out.") || strings.Count(page.body, "/revoke\"") != 1 ||
		!strings.Contains(page.body, "No other device is signed in.") {
		t.Fatalf("account page after revoking: want the notice and one device:\n%s", page.body)
	}

	res = laptop.form("/logout", url.Values{"csrf_token": {formToken(t, page.body, "/logout")}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/login?done=signedout" {
		t.Fatalf("POST /logout: %d %s", res.status, res.header.Get("Location"))
	}
	if res := laptop.do(http.MethodGet, "/account", nil); res.status != http.StatusSeeOther {
		t.Fatalf("GET /account after sign-out: status %d, want 303", res.status)
	}
	if page := laptop.do(http.MethodGet, "/login?done=signedout", nil); !strings.Contains(page.body, "You are signed out.") {
		t.Fatalf("sign-in page lacks the signed-out notice")
	}
}

// TestPagesStylesheet: the pages' stylesheet is served as CSS, and there is
// no directory listing.
func TestPagesStylesheet(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.client()
	res := c.do(http.MethodGet, "/static/style.css", nil)
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/css") || !strings.Contains(res.body, "body") {
		t.Fatalf("GET /static/style.css: %d %s", res.status, res.header.Get("Content-Type"))
	}
	if res := c.do(http.MethodGet, "/static/", nil); res.status != http.StatusNotFound {
		t.Fatalf("GET /static/: status %d, want 404", res.status)
	}
}

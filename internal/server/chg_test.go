package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const newPW = "a brand new passphrase"

// CHG-01: changing the password needs a session and the current password;
// wrong current passwords count towards the throttle of that session
// (PW-06), not the account's: they neither lock the owner out of signing
// in nor slow down the owner's other sessions.
func TestCHG01_NeedsSessionAndCurrentPassword(t *testing.T) {
	h := newHarness(t, harnessOpts{free: 2})
	h.addUser("alice", alicePW, false)
	anon := h.client()
	if res := anon.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, ""); res.status != http.StatusUnauthorized {
		t.Fatalf("without a session: status %d, want 401", res.status)
	}
	c := h.client()
	token := c.login("alice", alicePW)
	for range 3 {
		res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: "wrong", New: newPW}, token)
		if res.status != http.StatusForbidden || res.errorCode(t) != "invalid_credentials" {
			t.Fatalf("wrong current password: %d %s, want 403 invalid_credentials", res.status, res.body)
		}
	}
	res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, token)
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("after 3 wrong current passwords: status %d, want 429", res.status)
	}
	other := h.client()
	otherToken := other.login("alice", alicePW) // the account is not throttled
	if res := other.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: "short"}, otherToken); res.status != http.StatusBadRequest || res.errorCode(t) != "password_too_short" {
		t.Fatalf("another session's password change: %d %s, want it checked (400 password_too_short), not throttled", res.status, res.body)
	}
	h.clock.Advance(2 * time.Second)
	if res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: "short"}, token); res.status != http.StatusBadRequest || res.errorCode(t) != "password_too_short" {
		t.Fatalf("a too short new password: %d %s, want 400 password_too_short", res.status, res.body)
	}
	if res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: "password123"}, token); res.status != http.StatusBadRequest || res.errorCode(t) != "password_too_common" {
		t.Fatalf("a common password: %d %s, want 400 password_too_common", res.status, res.body)
	}
	h.client().login("alice", alicePW) // unchanged so far
}

// CHG-02: on success every session of the user ends at once, the caller's
// old one included, and the caller gets a fresh session and csrf token.
func TestCHG02_ChangeEndsEverySessionButAFreshOne(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *client, token string) string // returns the new csrf token
	}{
		{"api", func(c *client, token string) string {
			res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, token)
			if res.status != http.StatusOK {
				t.Fatalf("POST /api/v1/password: status %d %s", res.status, res.body)
			}
			var out csrfResponse
			res.decodeJSON(t, &out)
			return out.CSRFToken
		}},
		{"page", func(c *client, _ string) string {
			page := c.do(http.MethodGet, "/account", nil)
			res := c.form("/account/password", url.Values{
				"csrf_token": {formToken(t, page.body, "/account/password")},
				"current":    {alicePW}, "new": {newPW}, "confirm": {newPW},
			})
			if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?done=password" {
				t.Fatalf("POST /account/password: %d %s", res.status, res.header.Get("Location"))
			}
			page = c.do(http.MethodGet, "/account?done=password", nil)
			// The only device left: no "sign out all other devices" form.
			if strings.Contains(page.body, `action="/account/revoke-others"`) {
				t.Errorf("the account page offers to sign out other devices when there are none")
			}
			return formToken(t, page.body, "/logout")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			u := h.addUser("alice", alicePW, false)
			c, other := h.client(), h.client()
			token := c.login("alice", alicePW)
			other.login("alice", alicePW)
			oldCookie := c.cookie(sessionCookie)

			fresh := tc.change(c, token)
			if c.cookie(sessionCookie) == oldCookie {
				t.Fatalf("the caller's session token didn't change")
			}
			if res, _ := other.me(); res.status != http.StatusUnauthorized {
				t.Errorf("another device after the change: status %d, want 401", res.status)
			}
			// A client that missed the new cookie is told why it is out.
			if res, _ := withCookie(h, oldCookie).me(); res.status != http.StatusUnauthorized || !strings.Contains(res.body, "password is changed") {
				t.Errorf("the caller's old token after the change: %d %s, want 401 naming the password change", res.status, res.body)
			}
			if list, err := h.sessions.List(t.Context(), u.ID); err != nil || len(list) != 1 {
				t.Errorf("sessions after the change: %d, %v; want 1", len(list), err)
			}
			if res := c.json(http.MethodPost, "/api/v1/sessions/revoke-others", nil, token); !refusedWith(res, false, errCSRFInvalid) {
				t.Errorf("the old csrf token: %d %s, want 403 %s", res.status, res.body, errCSRFInvalid.code)
			}
			if res := c.json(http.MethodPost, "/api/v1/sessions/revoke-others", nil, fresh); res.status != http.StatusNoContent {
				t.Errorf("the fresh csrf token: status %d, want 204", res.status)
			}
			if res := h.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, ""); res.status != http.StatusForbidden {
				t.Errorf("the old password: status %d, want 403", res.status)
			}
			h.client().login("alice", newPW)
		})
	}
}

// CHG-03: a session issued in the same instant as the change dies too (the
// user's generation is bumped, nothing compares times). Access tokens
// follow the same rule when the token package lands.
func TestCHG03_SessionOfTheSameInstantDies(t *testing.T) {
	h := newHarness(t, harnessOpts{}) // the clock stands still
	h.addUser("alice", alicePW, false)
	c, same := h.client(), h.client()
	token := c.login("alice", alicePW)
	same.login("alice", alicePW)
	if res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, token); res.status != http.StatusOK {
		t.Fatalf("change: status %d %s", res.status, res.body)
	}
	if res, _ := same.me(); res.status != http.StatusUnauthorized {
		t.Fatalf("a session of the same instant: status %d, want 401", res.status)
	}
}

// CHG-04: if the sessions can't be revoked, the password is not changed
// and the change is reported as failed.
func TestCHG04_RevocationFailureLeavesPasswordUnchanged(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.addUser("alice", alicePW, false)
	c := h.client()
	token := c.login("alice", alicePW)
	h.store.revokeUser.Store(true)
	res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, token)
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("change with revocation failing: status %d %s, want 503", res.status, res.body)
	}
	h.store.revokeUser.Store(false)
	if res := h.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: newPW}, ""); res.status != http.StatusForbidden {
		t.Fatalf("the new password works after a failed change: status %d", res.status)
	}
	h.client().login("alice", alicePW)
	list, err := h.sessions.List(t.Context(), u.ID)
	if err != nil || len(list) != 2 { // the caller's and the one just made; not the failed change's
		t.Fatalf("sessions: %d, %v; want 2", len(list), err)
	}
	if res, _ := c.me(); res.status != http.StatusOK {
		t.Fatalf("the caller after a failed change: status %d, want 200", res.status)
	}
}

// A new password that is the current one is refused, by the API and the
// form alike, with password_unchanged; nothing changes, every session
// lives on.
func TestCHG01_SamePasswordIsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	other := h.client()
	other.login("alice", alicePW)
	c := h.client()
	token := c.login("alice", alicePW)
	res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: alicePW}, token)
	if res.status != http.StatusBadRequest {
		t.Fatalf("API change to the same password: %d %s, want 400", res.status, res.body)
	}
	checkErrorShape(t, res, "password_unchanged")
	page := c.do(http.MethodGet, "/account", nil)
	form := c.form("/account/password", url.Values{"csrf_token": {formToken(t, page.body, "/account/password")},
		"current": {alicePW}, "new": {alicePW}, "confirm": {alicePW}})
	if form.status != http.StatusBadRequest || !strings.Contains(form.body, errPasswordUnchanged.message) {
		t.Errorf("form change to the same password: status %d, want 400 saying %q", form.status, errPasswordUnchanged.message)
	}
	for name, cl := range map[string]*client{"the caller": c, "another session": other} {
		if res, _ := cl.me(); res.status != http.StatusOK {
			t.Errorf("%s after the refused changes: status %d, want 200", name, res.status)
		}
	}
}

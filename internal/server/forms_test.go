package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// quoteJSON quotes s as a JSON string, escaping only what JSON requires,
// so that invalid UTF-8 stays as it is typed.
func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzLoginForm: the sign-in form and the JSON API read the same
// credentials the same way (PW-09): whatever the user name and the
// password, the form's status (a redirect for a success) is the API's
// (200), and nothing answers 5xx. Invalid UTF-8 in the password is
// refused as such by both. Each run hashes once per front end, so it is
// slow: the target checks the whole path of a form (pre-session CSRF, body
// cap, form parsing, sign-in) rather than exploring fast.
func FuzzLoginForm(f *testing.F) {
	h := newHarness(f, harnessOpts{free: 1 << 30})
	h.addUser("alice", alicePW, false)
	for _, seed := range [][2]string{
		{"alice", alicePW},
		{"Alice", alicePW},
		{" alice ", alicePW},
		{"alice", alicePW + " "},
		{"alice", "wrong password"},
		{"bob", alicePW},
		{"", ""},
		{"alice", "pw\xff"},
		{"nobody", "pw\xfe"},
		{"al\xffice", alicePW},
		{"alice", strings.Repeat("x", 1025)},
		{"alice\x00", "a&password=b"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, pw string) {
		if len(name)+len(pw) > 4<<10 {
			return // a body past 64 KiB once encoded is refused before either reads it
		}
		c := h.client()
		c.t = t
		page := c.do(http.MethodGet, "/login", nil)
		form := c.form("/login", url.Values{"csrf_token": {formToken(t, page.body, "/login")}, "username": {name}, "password": {pw}})
		api := c.do(http.MethodPost, "/api/v1/login", strings.NewReader(`{"username":`+quoteJSON(name)+`,"password":`+quoteJSON(pw)+`}`),
			"Content-Type", "application/json")
		formStatus := form.status
		if formStatus == http.StatusSeeOther && form.header.Get("Location") == "/account" {
			formStatus = http.StatusOK
		}
		if formStatus != api.status || api.status >= 500 {
			t.Fatalf("sign-in as %q with %q: form %d, API %d %s", name, pw, form.status, api.status, api.body)
		}
		if !utf8.ValidString(pw) && api.status != http.StatusBadRequest {
			t.Fatalf("sign-in as %q with %q (invalid UTF-8): status %d, want 400", name, pw, api.status)
		}
	})
}

// PW-09: invalid UTF-8 is refused the same way by the form and the API, in
// the user name as in the password, and the form says which field it was.
func TestPW09_FormAndAPIRefuseInvalidUTF8(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	for _, tc := range []struct {
		name, user, pw, says string
	}{
		{"password", "alice", "pw\xff", "The password is not valid UTF-8"},
		{"password of nobody", "nobody", "pw\xff", "The password is not valid UTF-8"},
		{"user name", "al\xffice", alicePW, "The user name is not valid UTF-8"},
	} {
		c := h.client()
		page := c.do(http.MethodGet, "/login", nil)
		form := c.form("/login", url.Values{"csrf_token": {formToken(t, page.body, "/login")}, "username": {tc.user}, "password": {tc.pw}})
		api := c.do(http.MethodPost, "/api/v1/login", strings.NewReader(`{"username":`+quoteJSON(tc.user)+`,"password":`+quoteJSON(tc.pw)+`}`),
			"Content-Type", "application/json")
		if form.status != http.StatusBadRequest || !strings.Contains(form.body, tc.says) || api.status != http.StatusBadRequest || api.errorCode(t) != "invalid_utf8" {
			t.Errorf("%s: form %d, API %d %s; want 400 and invalid_utf8 from both, the form saying %q", tc.name, form.status, api.status, api.body, tc.says)
		}
	}
}

package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tetherauth/tether/internal/account"
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

// postJSON posts the members (name, value pairs) as a JSON object quoted
// by quoteJSON, with the CSRF token when not empty.
func (c *client) postJSON(path, token string, members ...string) *response {
	var b strings.Builder
	for i := 0; i+1 < len(members); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteJSON(members[i]) + ":" + quoteJSON(members[i+1]))
	}
	hdr := []string{"Content-Type", "application/json"}
	if token != "" {
		hdr = append(hdr, "X-CSRF-Token", token)
	}
	return c.do(http.MethodPost, path, strings.NewReader("{"+b.String()+"}"), hdr...)
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
		api := c.postJSON("/api/v1/login", "", "username", name, "password", pw)
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
		api := c.postJSON("/api/v1/login", "", "username", tc.user, "password", tc.pw)
		if form.status != http.StatusBadRequest || !strings.Contains(form.body, tc.says) || api.status != http.StatusBadRequest || api.errorCode(t) != "invalid_utf8" {
			t.Errorf("%s: form %d, API %d %s; want 400 and invalid_utf8 from both, the form saying %q", tc.name, form.status, api.status, api.body, tc.says)
		}
	}
}

// FuzzPasswordForm: the password change form and the JSON API read the
// same passwords the same way (PW-09, CHG-01): whatever the current and the
// new password, the form's status (a redirect for a success) is the API's
// (200), and nothing answers 5xx. Each run signs two fresh users in and
// changes their passwords: a few hashes, so it is slow.
func FuzzPasswordForm(f *testing.F) {
	h := newHarness(f, harnessOpts{free: 1 << 30})
	hash, err := h.hasher.Hash(f.Context(), alicePW)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][2]string{
		{alicePW, "a new passphrase"},
		{alicePW, "short"},
		{alicePW, alicePW},
		{"wrong", "a new passphrase"},
		{alicePW, "a new passphrase\xff"},
		{alicePW, "a new pass\xffphrase"},
		{alicePW + "\xff", "a new passphrase"},
		{alicePW, strings.Repeat("x", 1025)},
		{alicePW, "a&new=pass%phrase"},
	} {
		f.Add(seed[0], seed[1])
	}
	users := 0
	f.Fuzz(func(t *testing.T, current, next string) {
		if len(current)+len(next) > 4<<10 {
			return // a body past 64 KiB once encoded is refused before either reads it
		}
		signIn := func() (*client, string) {
			users++
			name := fmt.Sprintf("user%d", users)
			if err := h.accounts.Create(t.Context(), &account.User{Name: name, PasswordHash: hash}); err != nil {
				t.Fatal(err)
			}
			c := h.client()
			c.t = t
			return c, c.login(name, alicePW)
		}
		c, _ := signIn()
		page := c.do(http.MethodGet, "/account", nil)
		form := c.form("/account/password", url.Values{"csrf_token": {formToken(t, page.body, "/account/password")},
			"current": {current}, "new": {next}, "confirm": {next}})
		c, token := signIn()
		api := c.postJSON("/api/v1/password", token, "current", current, "new", next)
		formStatus := form.status
		if formStatus == http.StatusSeeOther && form.header.Get("Location") == "/account?done=password" {
			formStatus = http.StatusOK
		}
		if formStatus != api.status || api.status >= 500 {
			t.Fatalf("change from %q to %q: form %d, API %d %s", current, next, form.status, api.status, api.body)
		}
	})
}

var checkSignInTests = []struct {
	name, pw, code, field string
}{
	{"alice", alicePW, "", ""},
	{" Alice ", "x", "", ""},
	{"", alicePW, "missing_field", "username"},
	{" \t", alicePW, "missing_field", "username"},
	{"alice", "", "missing_field", "password"},
	{"alice smith", alicePW, "invalid_name", "username"},
	{strings.Repeat("a", 65), alicePW, "invalid_name", "username"},
	{"al\xffice", alicePW, "invalid_utf8", "username"},
	{"alice", "pw\xff", "invalid_utf8", "password"},
	{"alice", strings.Repeat("x", 1025), "password_too_long", "password"},
	{"", "", "missing_field", "username"},
}

// checkSignIn refuses what no account could accept, naming the field.
func TestCheckSignIn(t *testing.T) {
	for _, tc := range checkSignInTests {
		err := checkSignIn(tc.name, tc.pw)
		var code, field string
		if p, ok := err.(*problem); ok {
			code, field = p.code, p.field
		} else if err != nil {
			t.Errorf("checkSignIn(%q, %q): %v, not a problem", tc.name, tc.pw, err)
		}
		if code != tc.code || field != tc.field {
			t.Errorf("checkSignIn(%q, %q): code %q field %q, want %q %q", tc.name, tc.pw, code, field, tc.code, tc.field)
		}
	}
}

// FuzzCheckSignIn: checkSignIn lets through exactly the names that are
// names and the passwords the hasher takes, and refuses the rest with a
// 400 that names the field and says why in a sentence.
func FuzzCheckSignIn(f *testing.F) {
	for _, tc := range checkSignInTests {
		f.Add(tc.name, tc.pw)
	}
	f.Fuzz(func(t *testing.T, name, pw string) {
		_, nameErr := account.CanonicalName(name)
		valid := utf8.ValidString(name) && nameErr == nil && pw != "" && len(pw) <= 1024 && utf8.ValidString(pw)
		err := checkSignIn(name, pw)
		if (err == nil) != valid {
			t.Fatalf("checkSignIn(%q, %q) = %v, want an error: %v", name, pw, err, !valid)
		}
		if err == nil {
			return
		}
		p, ok := err.(*problem)
		if !ok || p.status != http.StatusBadRequest || (p.field != "username" && p.field != "password") || !isSentence(p.message) {
			t.Fatalf("checkSignIn(%q, %q) = %#v, want a 400 about a field", name, pw, err)
		}
	})
}

package server

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var deviceNameTests = []struct{ ua, want string }{
	{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36", "Chrome on Linux"},
	{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Headless Chrome on Linux"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", "Edge on Windows"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
	{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
	{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
	{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera on Windows"},
	{"Mozilla/5.0 (X11; Linux x86_64) Something/1.0", "A browser on Linux"},
	{"curl/8.5.0", "curl"},
	{"Go-http-client/1.1", "A Go program"},
	{"python-requests/2.32.3", "A Python program"},
	{"  ", "Unknown device"},
	{"", "Unknown device"},
	{strings.Repeat("x", 100) + "/1", strings.Repeat("x", 40) + "…"},
	{"/1.0", "Unknown device"},
	{"/ curl/8", "Unknown device"},
}

func TestDeviceName(t *testing.T) {
	for _, tc := range deviceNameTests {
		if got := deviceName(tc.ua); got != tc.want {
			t.Errorf("deviceName(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

// FuzzDeviceName: whatever the User-Agent, its name on the account page is
// never empty and at most 41 characters (a product token's 40 and "…").
func FuzzDeviceName(f *testing.F) {
	for _, tc := range deviceNameTests {
		f.Add(tc.ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		if got := deviceName(ua); got == "" || utf8.RuneCountInString(got) > 41 {
			t.Fatalf("deviceName(%q) = %q", ua, got)
		}
	})
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "just now"},
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{5*time.Minute + 30*time.Second, "5 minutes ago"},
		{time.Hour, "1 hour ago"},
		{23 * time.Hour, "23 hours ago"},
		{30 * time.Hour, "yesterday"},
		{3 * 24 * time.Hour, "3 days ago"},
		{45 * 24 * time.Hour, "on 15 Oct 2026"},
	} {
		if got := ago(tc.d, now.Add(-tc.d)); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	v := viewTime(now.Add(-5*time.Minute), now)
	if v.Ago != "5 minutes ago" || v.Exact != "Sun 29 Nov 2026, 11:55:00 UTC" || v.ISO != "2026-11-29T11:55:00Z" {
		t.Errorf("viewTime: got %+v", v)
	}
}

func TestPageMessage(t *testing.T) {
	msg := throttled(0).message
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{0, msg},
		{time.Second, msg + " Try again in a second."},
		{1500 * time.Millisecond, msg + " Try again in 2 seconds."},
		{10 * time.Minute, msg + " Try again in 10 minutes."},
	} {
		if got := pageMessage(throttled(tc.wait)); got != tc.want {
			t.Errorf("pageMessage of a 429 with retry after %v = %q, want %q", tc.wait, got, tc.want)
		}
	}
	if got := pageMessage(errBusy); got != errBusy.message {
		t.Errorf("pageMessage(errBusy) = %q, want its message alone", got)
	}
}

// TestPagesForPasswordManagers: every password field has the autocomplete
// value password managers key on, each new-password field has the rules
// next to it, and nothing blocks pasting (the pages have no script at all).
func TestPagesForPasswordManagers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	login := c.do(http.MethodGet, "/login", nil).body
	c.pageLogin("alice", alicePW)
	account := c.do(http.MethodGet, "/account", nil).body

	input := regexp.MustCompile(`<input [^>]*>`)
	attr := func(tag, name string) string {
		m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return ""
		}
		return m[1]
	}
	want := map[string]string{
		"login username": "username", "login password": "current-password",
		"account username": "username", "account current": "current-password",
		"account new": "new-password", "account confirm": "new-password",
	}
	for pageName, body := range map[string]string{"login": login, "account": account} {
		for _, tag := range input.FindAllString(body, -1) {
			name := attr(tag, "name")
			if name == "csrf_token" {
				continue
			}
			key := pageName + " " + name
			if got := attr(tag, "autocomplete"); got != want[key] {
				t.Errorf("%s: input %s has autocomplete %q, want %q", pageName, name, got, want[key])
			}
			delete(want, key)
			if attr(tag, "autocomplete") == "new-password" && attr(tag, "minlength") != "8" {
				t.Errorf("%s: new-password input %s: minlength %q, want 8", pageName, name, attr(tag, "minlength"))
			}
		}
		for _, bad := range []string{"<script", "onpaste", "oncopy", "autocomplete=\"off\""} {
			if strings.Contains(body, bad) {
				t.Errorf("%s page contains %q", pageName, bad)
			}
		}
	}
	for key := range want {
		t.Errorf("no input for %s", key)
	}
	if !strings.Contains(account, `aria-describedby="password-rules"`) || !strings.Contains(account, "At least 8 characters") {
		t.Errorf("the account page's new-password field has no rules next to it")
	}
}

// inputTag returns the <input> with that id in page, "" if none.
func inputTag(page, id string) string {
	return regexp.MustCompile(`<input id="` + id + `"[^>]*>`).FindString(page)
}

// formError returns the error of page and the part of page before it.
func formError(page string) (msg, before string, ok bool) {
	const open = `<p class="error" role="alert" id="form-error">`
	before, rest, ok := strings.Cut(page, open)
	msg, _, _ = strings.Cut(rest, "</p>")
	return html.UnescapeString(msg), before, ok
}

// The pages put a form's error inside that form, as a sentence; mark the
// field it is about (aria-invalid, described by the error) and focus it,
// and only it; keep the username but never a password.
func TestPagesShowErrorsAtTheirField(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	c := h.client()
	signIn := func(name, pw string) string {
		t.Helper()
		page := c.do(http.MethodGet, "/login", nil)
		return c.form("/login", url.Values{"csrf_token": {formToken(t, page.body, "/login")}, "username": {name}, "password": {pw}}).body
	}
	type want struct {
		form, field, describedBy, also string
	}
	check := func(t *testing.T, page string, w want) {
		t.Helper()
		msg, before, ok := formError(page)
		if !ok {
			t.Fatalf("no error on the page:\n%s", page)
		}
		if !isSentence(msg) {
			t.Errorf("error %q is not a sentence", msg)
		}
		if i := strings.LastIndex(before, "<form "); i < 0 || !strings.Contains(before[i:], `action="`+w.form+`"`) || strings.Contains(before[i:], "</form>") {
			t.Errorf("the error is not inside the form to %s:\n%s", w.form, page)
		}
		tag := inputTag(page, w.field)
		if !strings.Contains(tag, ` aria-invalid="true"`) || !strings.Contains(tag, ` aria-describedby="`+w.describedBy+`"`) || !strings.Contains(tag, " autofocus") {
			t.Errorf("field %s: %s, want aria-invalid, aria-describedby=%q and autofocus", w.field, tag, w.describedBy)
		}
		if n := strings.Count(page, "autofocus"); n != 1 {
			t.Errorf("%d fields have autofocus, want 1", n)
		}
		if n := strings.Count(page, "aria-invalid"); n != 1 {
			t.Errorf("%d fields are marked invalid, want 1", n)
		}
		if w.also != "" && !strings.Contains(page, w.also) {
			t.Errorf("page lacks %q", w.also)
		}
		for _, tag := range regexp.MustCompile(`<input [^>]*type="password"[^>]*>`).FindAllString(page, -1) {
			if strings.Contains(tag, "value=") {
				t.Errorf("a password field is filled in: %s", tag)
			}
		}
	}

	t.Run("sign-in, wrong password", func(t *testing.T) {
		check(t, signIn("Alice", "wrong password"), want{"/login", "password", "form-error", `value="Alice"`})
	})
	t.Run("sign-in, impossible name", func(t *testing.T) {
		check(t, signIn("alice smith", alicePW), want{"/login", "username", "form-error", `value="alice smith"`})
	})

	c.pageLogin("alice", alicePW)
	change := func(current, next, confirm string) string {
		t.Helper()
		page := c.do(http.MethodGet, "/account", nil)
		return c.form("/account/password", url.Values{"csrf_token": {formToken(t, page.body, "/account/password")},
			"current": {current}, "new": {next}, "confirm": {confirm}}).body
	}
	t.Run("change, wrong current password", func(t *testing.T) {
		check(t, change("wrong password", newPW, newPW), want{"/account/password", "current", "form-error", ""})
	})
	t.Run("change, too short", func(t *testing.T) {
		check(t, change(alicePW, "short", "short"), want{"/account/password", "new", "form-error password-rules", "Password is too short: use at least 8 characters."})
	})
	t.Run("change, passwords differ", func(t *testing.T) {
		check(t, change(alicePW, newPW, newPW+"!"), want{"/account/password", "new", "form-error password-rules", errPasswordsDiffer.message})
	})
	t.Run("device already gone", func(t *testing.T) {
		page := c.do(http.MethodGet, "/account", nil)
		res := c.form("/account/sessions/nosuch/revoke", url.Values{"csrf_token": {formToken(t, page.body, "/account/password")}})
		msg, before, ok := formError(res.body)
		if res.status != http.StatusNotFound || !ok || msg != errNoSuchSession.message {
			t.Fatalf("revoking an unknown session: %d, error %q, want 404 %q", res.status, msg, errNoSuchSession.message)
		}
		if !strings.Contains(before, `id="devices-heading"`) || strings.Contains(before, `id="password-heading"`) {
			t.Errorf("the error is not in the devices section:\n%s", res.body)
		}
	})
}

// The pages show no Markdown and tell no end user about the command line;
// the account page shows no "admin" badge, which would mean nothing there.
func TestPagesPlainForPeople(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.client()
	badLink := c.do(http.MethodGet, "/setup?token=wrong", nil).body
	h.addUser("root", alicePW, true)
	signIn := c.do(http.MethodGet, "/login", nil).body
	c.pageLogin("root", alicePW)
	account := c.do(http.MethodGet, "/account", nil).body
	for name, page := range map[string]string{"bad setup link": badLink, "sign-in": signIn, "account": account} {
		if strings.Contains(page, "`") {
			t.Errorf("%s page has a backtick:\n%s", name, page)
		}
	}
	if strings.Contains(signIn, "tether ") {
		t.Errorf("the sign-in page mentions a command:\n%s", signIn)
	}
	if !strings.Contains(badLink, "<code>tether user add NAME --admin</code>") {
		t.Errorf("a bad setup link doesn't say how else to create an admin:\n%s", badLink)
	}
	if strings.Contains(account, `class="badge">admin`) {
		t.Errorf("the account page shows an admin badge")
	}
}

package server

import (
	"net/http"
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

package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tetherauth/tether/store/memory"
)

// browser is a client of the app with a cookie jar, as a browser would be.
type browser struct {
	t   *testing.T
	url string
	c   *http.Client
}

func newBrowser(t *testing.T) *browser {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	h, err := newApp(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h) // the session cookie is Secure (SES-05)
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	return &browser{t: t, url: srv.URL, c: c}
}

var tokenField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// home loads the page and returns its text and the CSRF token of its form.
func (b *browser) home() (string, string) {
	res, err := b.c.Get(b.url + "/")
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := tokenField.FindSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return string(body), string(m[1])
}

// post sends form to path, with extra headers, and returns the status of
// the answer (303: the redirect, not followed).
func (b *browser) post(path string, form url.Values, header ...string) int {
	req, err := http.NewRequest("POST", b.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestSignInAndOut(t *testing.T) {
	b := newBrowser(t)
	page, token := b.home()
	if !strings.Contains(page, `action="/login"`) {
		t.Fatalf("the first page is not the sign-in form:\n%s", page)
	}
	alice := func(pw, token string) url.Values {
		return url.Values{"username": {"alice"}, "password": {pw}, "csrf_token": {token}}
	}
	steps := []struct {
		name   string
		path   string
		form   url.Values
		header []string
		want   int
	}{
		{"sign-in without the form's token (CSRF-05)", "/login", alice("correct horse battery staple", ""), nil, http.StatusForbidden},
		{"sign-in from another site (CSRF-01)", "/login", alice("correct horse battery staple", token), []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"wrong password", "/login", alice("wrong horse battery staple", token), nil, http.StatusUnauthorized},
		{"unknown user", "/login", url.Values{"username": {"bob"}, "password": {"x"}, "csrf_token": {token}}, nil, http.StatusUnauthorized},
		{"right password", "/login", alice("correct horse battery staple", token), nil, http.StatusSeeOther},
	}
	for _, s := range steps {
		if got := b.post(s.path, s.form, s.header...); got != s.want {
			t.Fatalf("%s: got status %d, want %d", s.name, got, s.want)
		}
	}

	page, token = b.home()
	if !strings.Contains(page, "Signed in as user:alice.") {
		t.Fatalf("after signing in, the page says:\n%s", page)
	}
	if got := b.post("/logout", nil); got != http.StatusForbidden {
		t.Fatalf("sign-out without the session's token (CSRF-02): got status %d, want 403", got)
	}
	if got := b.post("/logout", url.Values{"csrf_token": {token}}); got != http.StatusSeeOther {
		t.Fatalf("sign-out: got status %d, want 303", got)
	}
	if page, _ = b.home(); !strings.Contains(page, `action="/login"`) {
		t.Fatalf("after signing out, the page is not the sign-in form:\n%s", page)
	}
}

package session_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tetherauth/tether/session"
)

// notLocal are requests for which Config.InsecureLocalhostHTTP must not
// weaken the cookie: each is what a real deployment may receive, the ones
// through a proxy that rewrites Host to the app's loopback address
// included.
var notLocal = []struct {
	name   string
	change func(r *http.Request)
}{
	{"public host over plain HTTP", func(r *http.Request) { r.Host = "auth.example.com" }},
	{"public host over TLS", func(r *http.Request) { r.Host, r.TLS = "auth.example.com", &tls.ConnectionState{} }},
	{"localhost over TLS", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }},
	{"peer on another machine", func(r *http.Request) { r.RemoteAddr = "192.0.2.7:4000" }},
	{"proxy rewriting Host, X-Forwarded-For", func(r *http.Request) { r.Header.Set("X-Forwarded-For", "192.0.2.7") }},
	{"proxy rewriting Host, X-Forwarded-Proto", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }},
	{"proxy rewriting Host, browser's Origin", func(r *http.Request) { r.Header.Set("Origin", "https://auth.example.com") }},
}

// localRequest is a plain HTTP request from this machine for
// 127.0.0.1:3000, which the development mode may weaken.
func localRequest(change func(r *http.Request)) *http.Request {
	r := httptest.NewRequest("POST", "http://127.0.0.1:3000/login", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	if change != nil {
		change(r)
	}
	return r
}

// SES-05: Config.InsecureLocalhostHTTP drops __Host- and Secure only for
// a plain HTTP request from this machine for a loopback host. For every
// other request, the cookie set, the cookie read and the cookie cleared
// are the __Host- Secure one, as with the mode off, and the mode's misuse
// is logged.
func TestSES05_InsecureLocalhostHTTPNeverWeakensOtherHosts(t *testing.T) {
	var logs bytes.Buffer
	m := newManager(t, newMemory(t), session.Config{
		InsecureLocalhostHTTP: true,
		Logger:                slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	token, s := mustCreate(t, m, "user:alice", session.Meta{})
	for _, tt := range notLocal {
		t.Run(tt.name, func(t *testing.T) {
			r := localRequest(tt.change)
			for _, c := range setAndClear(t, m, r, token, s) {
				if c.Name != "__Host-session" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
					t.Errorf("Set-Cookie %q: want __Host-session, Secure, HttpOnly, Path=/, no Domain", c)
				}
			}
			if got := m.CookieName(r); got != "__Host-session" {
				t.Errorf("CookieName: got %q, want __Host-session", got)
			}
			// A cookie under the development name is no cookie here.
			r.AddCookie(&http.Cookie{Name: "session", Value: token})
			w := httptest.NewRecorder()
			m.Middleware(whoami).ServeHTTP(w, r)
			if w.Body.String() != "anonymous" {
				t.Errorf("a cookie named session was read: got %q, want anonymous", w.Body)
			}
		})
	}
	if !strings.Contains(logs.String(), "not local development") || !strings.Contains(logs.String(), "InsecureLocalhostHTTP") {
		t.Errorf("the mode's misuse was not logged, naming the setting:\n%s", &logs)
	}
	if n := strings.Count(logs.String(), "not local development"); n != 1 {
		t.Errorf("logged %d times, want once a minute:\n%s", n, &logs)
	}

	// With the mode off, a local request gets the secure cookie too.
	off := newManager(t, newMemory(t), session.Config{})
	w := httptest.NewRecorder()
	off.SetCookie(w, localRequest(nil), token, s)
	if c, _ := http.ParseSetCookie(w.Header().Get("Set-Cookie")); c.Name != "__Host-session" || !c.Secure {
		t.Errorf("mode off, local request: Set-Cookie %q, want __Host-session, Secure", w.Header().Get("Set-Cookie"))
	}
}

// strictJar is a cookie jar that, like Safari, keeps no Secure or __Host-
// cookie from a plain http:// page, localhost's included. (Go's cookiejar,
// like Chrome and Firefox, keeps them from localhost.)
type strictJar struct{ http.CookieJar }

func (j strictJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	var kept []*http.Cookie
	for _, c := range cookies {
		if u.Scheme == "https" || !c.Secure && !strings.HasPrefix(c.Name, "__Host-") {
			kept = append(kept, c)
		}
	}
	j.CookieJar.SetCookies(u, kept)
}

// SES-05: the development mode's cookie for a local request keeps every
// attribute but the prefix and Secure, and a browser that keeps no Secure
// cookie over http://localhost (Safari) stays signed in with it, and not
// without it.
func TestSES05_InsecureLocalhostHTTPSignsInOverLocalHTTP(t *testing.T) {
	for _, tt := range []struct {
		name string
		on   bool
	}{{"on", true}, {"off", false}} {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, newMemory(t), session.Config{InsecureLocalhostHTTP: tt.on, SameSite: http.SameSiteStrictMode})
			mux := http.NewServeMux()
			var setCookie string
			mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
				token, s := mustCreate(t, m, "user:alice", session.Meta{})
				m.SetCookie(w, r, token, s)
				setCookie = w.Header().Get("Set-Cookie")
			})
			mux.Handle("GET /me", whoami)
			srv := httptest.NewServer(m.Middleware(mux)) // http://127.0.0.1:PORT
			defer srv.Close()
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Jar: strictJar{jar}}
			if _, err := client.Post(srv.URL+"/login", "", nil); err != nil {
				t.Fatal(err)
			}
			res, err := client.Get(srv.URL + "/me")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()

			c, err := http.ParseSetCookie(setCookie)
			if err != nil {
				t.Fatal(err)
			}
			want, wantName, wantSecure := "anonymous", "__Host-session", true
			if tt.on {
				want, wantName, wantSecure = "user:alice", "session", false
			}
			if c.Name != wantName || c.Secure != wantSecure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("Set-Cookie %q: want %s, Secure %v, HttpOnly, Path=/, no Domain, SameSite=Strict", setCookie, wantName, wantSecure)
			}
			if string(body) != want {
				t.Errorf("GET /me after signing in over http://127.0.0.1: got %q, want %q", body, want)
			}
		})
	}
}

package server

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A request over plain HTTP for a public host name is told so: the
// sign-in page shows a notice pointing to https://, a form's submission
// gets a page saying why instead of "Requests from other sites are
// refused", and the API answers 403 insecure_transport. Requests over
// TLS, for localhost, from a browser on an https:// page, or through a
// trusted proxy that says X-Forwarded-Proto: https are served as before.
func TestPlainHTTPIsDiagnosed(t *testing.T) {
	h := newHarness(t, harnessOpts{plain: true, hosts: []string{"auth.example.com", "localhost"},
		proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}) // the test's own requests
	addr := h.srv.Listener.Addr().String()
	const notice = `This page was loaded over plain HTTP, so your browser will not keep the sign-in cookie: open <a href="https://auth.example.com/login">`
	for _, tt := range []struct {
		name, head string
		status     int
		body       string // a piece of the body; "" for none in particular
		noNotice   bool
	}{
		{"sign-in page", "GET /login HTTP/1.1\r\nHost: auth.example.com:8080", http.StatusOK, notice, false},
		// What a browser sends from http://auth.example.com:8080/login:
		// no Sec-Fetch-Site, and Origin: null under Referrer-Policy:
		// no-referrer. It used to be refused as cross-origin.
		{"sign-in form", "POST /login HTTP/1.1\r\nHost: auth.example.com:8080\r\nOrigin: null\r\nContent-Type: application/x-www-form-urlencoded",
			http.StatusForbidden, notice, false},
		{"API sign-in", "POST /api/v1/login HTTP/1.1\r\nHost: auth.example.com\r\nContent-Type: application/json",
			http.StatusForbidden, `{"error":"insecure_transport","message":"This request came over plain HTTP`, true},
		{"API read", "GET /api/v1/me HTTP/1.1\r\nHost: auth.example.com", http.StatusForbidden, `"error":"insecure_transport"`, true},
		{"trusted proxy's X-Forwarded-Proto: https", "GET /api/v1/me HTTP/1.1\r\nHost: auth.example.com\r\nX-Forwarded-Proto: https",
			http.StatusUnauthorized, `"error":"unauthenticated"`, true},
		{"trusted proxy's X-Forwarded-Proto: http", "GET /api/v1/me HTTP/1.1\r\nHost: auth.example.com\r\nX-Forwarded-Proto: http",
			http.StatusForbidden, `"error":"insecure_transport"`, true},
		{"health check", "GET /healthz HTTP/1.1\r\nHost: auth.example.com", http.StatusOK, "", true},

		{"localhost", "GET /login HTTP/1.1\r\nHost: localhost:8080", http.StatusOK, "", true},
		{"localhost API", "GET /api/v1/me HTTP/1.1\r\nHost: localhost:8080", http.StatusUnauthorized, `"error":"unauthenticated"`, true},
		{"browser on an https page", "POST /login HTTP/1.1\r\nHost: auth.example.com\r\nSec-Fetch-Site: cross-site",
			http.StatusForbidden, "other sites", true},
		{"https Origin", "GET /api/v1/me HTTP/1.1\r\nHost: auth.example.com\r\nOrigin: https://auth.example.com",
			http.StatusUnauthorized, `"error":"unauthenticated"`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := rawRequest(t, addr, tt.head)
			if res.status != tt.status || !strings.Contains(res.body, tt.body) {
				t.Errorf("got %d %q, want %d with %q", res.status, res.body, tt.status, tt.body)
			}
			if tt.noNotice && strings.Contains(res.body, "This page was loaded over plain HTTP") {
				t.Errorf("got the plain-HTTP notice: %q", res.body)
			}
			if strings.Contains(res.body, "other sites") != strings.Contains(tt.body, "other sites") {
				t.Errorf("got %q: a request over plain HTTP diagnosed as cross-origin", res.body)
			}
		})
	}
}

func TestPlainHTTP(t *testing.T) {
	s := &server{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, tt := range []struct {
		name   string
		change func(r *http.Request)
		want   bool
	}{
		{"public host", nil, true},
		{"public host with port", func(r *http.Request) { r.Host = "auth.example.com:8080" }, true},
		{"TLS", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, false},
		{"localhost", func(r *http.Request) { r.Host = "localhost:8080" }, false},
		{"127.0.0.2", func(r *http.Request) { r.Host = "127.0.0.2:8080" }, false},
		{"[::1]", func(r *http.Request) { r.Host = "[::1]:8080" }, false},
		{"a LAN address", func(r *http.Request) { r.Host = "192.168.1.5:8080" }, true},
		{"Sec-Fetch-Site", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-origin") }, false},
		{"https Origin", func(r *http.Request) { r.Header.Set("Origin", "https://auth.example.com") }, false},
		{"http Origin", func(r *http.Request) { r.Header.Set("Origin", "http://auth.example.com") }, true},
		{"null Origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, true},
		{"trusted proxy, https", func(r *http.Request) { trusted(r, "https") }, false},
		{"trusted proxy, HTTPS", func(r *http.Request) { trusted(r, "HTTPS") }, false},
		{"trusted proxy, two proxies", func(r *http.Request) { trusted(r, "https, http") }, false},
		{"trusted proxy, two lines", func(r *http.Request) { trusted(r, "http"); r.Header.Add("X-Forwarded-Proto", " https ") }, false},
		{"trusted proxy, http", func(r *http.Request) { trusted(r, "http") }, true},
		{"trusted proxy, none", func(r *http.Request) { r.RemoteAddr = "10.0.0.2:1234" }, true},
		{"trusted proxy, junk", func(r *http.Request) { trusted(r, "httpsx") }, true},
		{"untrusted peer, https", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, true},
		{"unreadable peer, https", func(r *http.Request) { trusted(r, "https"); r.RemoteAddr = "pipe" }, true},
	} {
		r := httptest.NewRequest("GET", "http://auth.example.com/login", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		if tt.change != nil {
			tt.change(r)
		}
		if got := s.plainHTTP(r); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// trusted makes r come from a trusted proxy (10.0.0.2) with
// X-Forwarded-Proto proto.
func trusted(r *http.Request, proto string) {
	r.RemoteAddr = "10.0.0.2:1234"
	r.Header.Set("X-Forwarded-Proto", proto)
}

// FuzzForwardedHTTPS: whatever X-Forwarded-Proto says, forwardedHTTPS
// never panics, believes only a trusted peer, and only an entry that is
// https.
func FuzzForwardedHTTPS(f *testing.F) {
	for _, s := range []string{"https", "HTTPS", "http", "https, http", " https ", "", ",", "httpsx", "https\x00"} {
		f.Add(s, true)
	}
	f.Add("https", false)
	trustedNet := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, proto string, fromProxy bool) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Forwarded-Proto", proto)
		r.RemoteAddr = "192.0.2.1:1234"
		if fromProxy {
			r.RemoteAddr = "10.0.0.2:1234"
		}
		got := forwardedHTTPS(r, trustedNet)
		if got && (!fromProxy || !strings.Contains(strings.ToLower(proto), "https")) {
			t.Errorf("X-Forwarded-Proto %q from proxy %v: believed https", proto, fromProxy)
		}
	})
}

// Requests over plain HTTP are logged at most once a minute, each line
// counting those it left out.
func TestPlainHTTPLoggedOncePerMinute(t *testing.T) {
	h := newHarness(t, harnessOpts{plain: true, hosts: []string{"auth.example.com"}})
	addr := h.srv.Listener.Addr().String()
	const msg = "a request came over plain HTTP for a host other than localhost: browsers keep no sign-in cookie there; " +
		"serve HTTPS (--tls-cert, --tls-key), or have the TLS proxy in front send X-Forwarded-Proto and name it in --trusted-proxies"
	for range 5 {
		rawRequest(t, addr, "GET /login HTTP/1.1\r\nHost: auth.example.com")
	}
	if got := h.logs.Records(t, msg); len(got) != 1 || got[0]["host"] != "auth.example.com" {
		t.Fatalf("after 5 requests within a minute: log %v, want one line naming the host", got)
	}
	h.clock.Advance(time.Minute)
	rawRequest(t, addr, "GET /api/v1/me HTTP/1.1\r\nHost: auth.example.com")
	got := h.logs.Records(t, msg)
	if len(got) != 2 || got[1]["unlogged_since_last"] != float64(4) {
		t.Fatalf("a minute later: log %v, want a second line counting the 4 left out", got)
	}
}

package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawResponse is what rawRequest read.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// rawRequest sends head (a request line and header lines, without the
// blank line that ends them) as it is to the plain HTTP server at addr, so
// that Go's server parses exactly what a client could send: absolute-form
// targets, a missing or empty Host, HTTP/1.0.
func rawRequest(t *testing.T, addr, head string) rawResponse {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: res.StatusCode, header: res.Header, body: string(b)}
}

// MISC-07: a request for a Host that isn't one of Config.Hosts is answered
// 421, a missing Host too, in plain text or as JSON under /api/, with the
// security headers; /healthz and /readyz answer any Host.
func TestMISC07_ForeignHostRefused(t *testing.T) {
	const (
		ok          = http.StatusOK
		signedOut   = http.StatusUnauthorized
		misdirected = http.StatusMisdirectedRequest
		bad         = http.StatusBadRequest
	)
	for _, group := range []struct {
		name  string
		hosts []string // Config.Hosts
		tests []struct {
			name, head string
			want       int
		}
	}{
		{"default: loopback", nil, []struct {
			name, head string
			want       int
		}{
			{"localhost", "GET /login HTTP/1.1\r\nHost: localhost", ok},
			{"localhost with port", "GET /login HTTP/1.1\r\nHost: localhost:8080", ok},
			{"localhost with empty port", "GET /login HTTP/1.1\r\nHost: localhost:", ok},
			{"upper case", "GET /login HTTP/1.1\r\nHost: LocalHost:8080", ok},
			{"127.0.0.1 with port", "GET /login HTTP/1.1\r\nHost: 127.0.0.1:8080", ok},
			{"IPv6 bracketed with port", "GET /login HTTP/1.1\r\nHost: [::1]:8080", ok},
			{"IPv6 bracketed", "GET /login HTTP/1.1\r\nHost: [::1]", ok},
			{"IPv6 spelt long", "GET /login HTTP/1.1\r\nHost: [0:0::1]:8080", ok},
			{"API, allowed", "GET /api/v1/me HTTP/1.1\r\nHost: localhost:8080", signedOut},

			{"foreign name", "GET /login HTTP/1.1\r\nHost: evil.example", misdirected},
			{"foreign name with port", "GET /login HTTP/1.1\r\nHost: evil.example:8080", misdirected},
			{"API, foreign name", "GET /api/v1/me HTTP/1.1\r\nHost: evil.example:8080", misdirected},
			{"API, unsafe method", "POST /api/v1/login HTTP/1.1\r\nHost: evil.example:8080\r\nContent-Length: 0", misdirected},
			{"loopback IP as a subdomain", "GET /login HTTP/1.1\r\nHost: 127.0.0.1.evil.example", misdirected},
			{"localhost as a subdomain", "GET /login HTTP/1.1\r\nHost: localhost.evil.example:8080", misdirected},
			{"a subdomain of localhost", "GET /login HTTP/1.1\r\nHost: evil.localhost", misdirected},
			{"trailing dot", "GET /login HTTP/1.1\r\nHost: localhost.:8080", misdirected},
			{"another loopback address", "GET /login HTTP/1.1\r\nHost: 127.0.0.2:8080", misdirected},
			{"IPv4-mapped loopback", "GET /login HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:8080", misdirected},
			{"IPv6 unbracketed", "GET /login HTTP/1.1\r\nHost: ::1", misdirected},
			{"port not a number", "GET /login HTTP/1.1\r\nHost: localhost:http", misdirected},
			{"empty Host", "GET /login HTTP/1.1\r\nHost:", misdirected},
			{"no Host, HTTP/1.0", "GET /login HTTP/1.0", misdirected},
			// Go's server refuses an HTTP/1.1 request without Host itself.
			{"no Host, HTTP/1.1", "GET /login HTTP/1.1", bad},

			// Absolute form: the URL's host is the origin the browser had
			// in mind, and the Host header is ignored (RFC 9112, 3.2.2).
			{"absolute form, foreign URL", "GET http://evil.example/login HTTP/1.1\r\nHost: localhost", misdirected},
			{"absolute form, foreign URL with port", "GET http://evil.example:8080/api/v1/me HTTP/1.1\r\nHost: 127.0.0.1:8080", misdirected},
			{"absolute form, good URL", "GET http://localhost:8080/login HTTP/1.1\r\nHost: evil.example", ok},

			{"healthz, foreign name", "GET /healthz HTTP/1.1\r\nHost: evil.example:8080", ok},
			{"readyz, foreign name", "GET /readyz HTTP/1.1\r\nHost: evil.example:8080", ok},
			{"healthz, no Host", "GET /healthz HTTP/1.0", ok},
			{"healthz, absolute form", "GET http://evil.example/healthz HTTP/1.1\r\nHost: evil.example", ok},
			{"not quite healthz", "GET /healthz/ HTTP/1.1\r\nHost: evil.example", misdirected},
		}},
		{"configured", []string{"Auth.Example.com", "192.0.2.7", "2001:db8::1"}, []struct {
			name, head string
			want       int
		}{
			{"name", "GET /login HTTP/1.1\r\nHost: auth.example.com", ok},
			{"name with port", "GET /login HTTP/1.1\r\nHost: auth.example.com:443", ok},
			{"name in upper case", "GET /login HTTP/1.1\r\nHost: AUTH.EXAMPLE.COM:8443", ok},
			{"IPv4", "GET /login HTTP/1.1\r\nHost: 192.0.2.7:8080", ok},
			{"IPv6", "GET /login HTTP/1.1\r\nHost: [2001:db8::1]:8080", ok},

			{"loopback, no longer the default", "GET /login HTTP/1.1\r\nHost: 127.0.0.1:8080", misdirected},
			{"localhost, no longer the default", "GET /login HTTP/1.1\r\nHost: localhost:8080", misdirected},
			{"subdomain", "GET /login HTTP/1.1\r\nHost: x.auth.example.com", misdirected},
			{"parent domain", "GET /login HTTP/1.1\r\nHost: example.com", misdirected},
			{"name with a suffix", "GET /login HTTP/1.1\r\nHost: auth.example.com.evil.example", misdirected},
			{"trailing dot", "GET /login HTTP/1.1\r\nHost: auth.example.com.", misdirected},
			{"foreign name", "GET /login HTTP/1.1\r\nHost: evil.example:8080", misdirected},
			{"absolute form, foreign URL", "GET http://evil.example:8080/login HTTP/1.1\r\nHost: auth.example.com", misdirected},
			{"readyz, by the node's address", "GET /readyz HTTP/1.1\r\nHost: 10.0.0.11:8080", ok},
		}},
	} {
		t.Run(group.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{plain: true, hosts: group.hosts})
			addr := h.srv.Listener.Addr().String()
			for _, tt := range group.tests {
				t.Run(tt.name, func(t *testing.T) {
					res := rawRequest(t, addr, tt.head)
					if res.status != tt.want {
						t.Fatalf("%q: got %d %q, want %d", tt.head, res.status, res.body, tt.want)
					}
					if res.status == misdirected {
						checkMisdirected(t, tt.head, res)
					}
				})
			}
		})
	}
}

// checkMisdirected fails t unless res is a 421 with the security headers,
// in JSON for the API and in plain text otherwise.
func checkMisdirected(t *testing.T, head string, res rawResponse) {
	t.Helper()
	for k, v := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := res.header.Get(k); got != v {
			t.Errorf("%q: %s = %q, want %q", head, k, got, v)
		}
	}
	line, _, _ := strings.Cut(head, "\r\n")
	target, err := url.Parse(strings.Fields(line)[1])
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(target.Path, "/api/") {
		if ct := res.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%q: Content-Type %q, want application/json", head, ct)
		}
		if want := `{"error":"misdirected","message":"` + misdirected + `"}` + "\n"; res.body != want {
			t.Errorf("%q: body %q, want %q", head, res.body, want)
		}
		return
	}
	if ct := res.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("%q: Content-Type %q, want text/plain", head, ct)
	}
	if res.body != misdirected+"\n" {
		t.Errorf("%q: body %q, want %q", head, res.body, misdirected+"\n")
	}
	if res.header.Get("Set-Cookie") != "" {
		t.Errorf("%q: a refused request got a cookie: %q", head, res.header.Get("Set-Cookie"))
	}
}

// MISC-07: a flood of foreign hosts is one log line a second, which counts
// the refusals it didn't log.
func TestMISC07_RefusalsLoggedOncePerSecond(t *testing.T) {
	h := newHarness(t, harnessOpts{plain: true})
	addr := h.srv.Listener.Addr().String()
	const msg = "refused a request for another host (MISC-07)"
	for range 20 {
		rawRequest(t, addr, "GET /login HTTP/1.1\r\nHost: evil.example:8080")
	}
	if got := len(h.logs.Records(t, msg)); got != 1 {
		t.Fatalf("after 20 refusals within a second: %d log lines, want 1", got)
	}
	h.clock.Advance(time.Second)
	rawRequest(t, addr, "GET /api/v1/me HTTP/1.1\r\nHost: rebound.example")
	recs := h.logs.Records(t, msg)
	if len(recs) != 2 {
		t.Fatalf("a second later: %d log lines, want 2", len(recs))
	}
	want := map[string]any{"host": "rebound.example", "path": "/api/v1/me", "ip": "127.0.0.1", "unlogged_since_last": 19.0, "level": "WARN"}
	for k, v := range want {
		if recs[1][k] != v {
			t.Errorf("log line %v: %s = %v, want %v", recs[1], k, recs[1][k], v)
		}
	}
}

// A name matches only ASCII case folding: Unicode folding would let
// "localhoſt" (long s) pass as "localhost". Go's server already refuses
// such a Host, so this is the handler alone.
func TestMISC07_NoUnicodeFolding(t *testing.T) {
	hs, err := newHostSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhoſt", "LOCALHOſT:80", "localhost\x00", "localhost ", " localhost", "localhost:8080:80", "[::1]x", "[::1", "[fe80::1%25lo]:80"} {
		if hs.allows(host) {
			t.Errorf("allows(%q) = true, want false", host)
		}
	}
}

// The entries of Config.Hosts: what CheckHost accepts and refuses.
func TestCheckHost(t *testing.T) {
	for _, tt := range []struct {
		entry string
		want  string // in the error; "" for none
	}{
		{"auth.example.com", ""},
		{"AUTH.example.com", ""},
		{"localhost", ""},
		{"tether_1", ""},
		{"xn--bcher-kva.example", ""},
		{"127.0.0.1", ""},
		{"::1", ""},
		{"[::1]", ""},
		{"2001:db8::1", ""},
		{"::ffff:127.0.0.1", ""},
		{strings.Repeat("a", 63) + ".example", ""},

		{"", "empty"},
		{"auth.example.com:443", "port"},
		{"[::1]:8080", "port"},
		{"127.0.0.1:8080", "port"},
		{"https://auth.example.com", "scheme"},
		{"auth.example.com/login", "scheme or path"},
		{"user@auth.example.com", "scheme or path"},
		{"*.example.com", "wildcard"},
		{"auth.example.com.", "ends in a dot"},
		{".example.com", "empty label"},
		{"a..example.com", "empty label"},
		{"bücher.example", "xn--"},
		{"auth example.com", "' '"},
		{"[::1", "closing ]"},
		{"[127.0.0.1]", "not an IPv6 address"},
		{"1:2:3", "not an IPv6 address"},
		{"fe80::1%eth0", "zone"},
		{"127.1", "ends in a number"},
		{"127.000.0.1", "ends in a number"},
		{"0x7f.1", "ends in a number"},
		{"example.0x1F", "ends in a number"},
		{strings.Repeat("a", 64) + ".example", "63"},
		{strings.Repeat("a.", 127) + "ab", "253"},
	} {
		err := CheckHost(tt.entry)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckHost(%q) = %v, want nil", tt.entry, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckHost(%q) = %v, want an error about %q", tt.entry, err, tt.want)
		}
	}
}

// New refuses bad Hosts, naming every bad entry.
func TestNewRefusesBadHosts(t *testing.T) {
	_, err := New(Config{Hosts: []string{"auth.example.com", "auth.example.com:443", "*.example.com"}})
	if !errors.Is(err, errConfig) {
		t.Fatalf("got %v, want errConfig", err)
	}
	for _, want := range []string{`"auth.example.com:443" has a port`, `"*.example.com" has a wildcard`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q doesn't say %q", err, want)
		}
	}
}

// FuzzHostAllowed: matching a Host never panics, and a Host it allows is
// one of the entries, modulo the case of ASCII letters and the port (and
// for IPv6, the spelling of the address). Every entry is allowed, with
// or without a port.
func FuzzHostAllowed(f *testing.F) {
	for _, seed := range []struct{ entries, host string }{
		{"", "localhost:8080"},
		{"", "[::1]:8080"},
		{"", "127.0.0.1.evil.example"},
		{"", "localhoſt"},
		{"auth.example.com", "AUTH.example.com:443"},
		{"auth.example.com", "auth.example.com."},
		{"auth.example.com,192.0.2.7", "192.0.2.7:80"},
		{"2001:db8::1", "[2001:db8:0::1]:8443"},
		{"[::1]", "[::1"},
		{"::ffff:127.0.0.1", "[::ffff:7f00:1]"},
		{"localhost", "localhost:"},
		{"localhost", ":"},
	} {
		f.Add(seed.entries, seed.host)
	}
	f.Fuzz(func(t *testing.T, entriesText, host string) {
		var entries []string
		for e := range strings.SplitSeq(entriesText, ",") {
			if CheckHost(e) == nil {
				entries = append(entries, e)
			}
		}
		hs, err := newHostSet(entries)
		if err != nil {
			t.Fatalf("newHostSet(%q) = %v after CheckHost accepted each", entries, err)
		}
		if len(entries) == 0 {
			entries = LoopbackHosts()
		}
		if hs.allows(host) && !matchesEntry(host, entries) {
			t.Fatalf("entries %q allow Host %q, which is none of them", entries, host)
		}
		for _, e := range entries {
			form := e
			if strings.Contains(e, ":") && !strings.HasPrefix(e, "[") {
				form = "[" + e + "]"
			}
			for _, h := range []string{form, form + ":8080", strings.ToUpper(form)} {
				if !hs.allows(h) {
					t.Fatalf("entries %q refuse Host %q", entries, h)
				}
			}
		}
	})
}

// matchesEntry is the fuzz target's slow model of hostSet.allows: whether
// host is one of entries with an optional port, ignoring the case of ASCII
// letters, an IPv6 address in brackets and in any spelling.
func matchesEntry(host string, entries []string) bool {
	isPort := func(s string) bool {
		return s == "" || s[0] == ':' && strings.Trim(s[1:], "0123456789") == ""
	}
	for _, e := range entries {
		if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil && a.Is6() {
			i := strings.IndexByte(host, ']')
			if !strings.HasPrefix(host, "[") || i < 0 {
				continue
			}
			if b, err := netip.ParseAddr(host[1:i]); err == nil && b == a && isPort(host[i+1:]) {
				return true
			}
			continue
		}
		if len(host) >= len(e) && strings.EqualFold(host[:len(e)], e) && isPort(host[len(e):]) &&
			!strings.ContainsFunc(host[:len(e)], func(r rune) bool { return r >= 0x80 }) {
			return true
		}
	}
	return false
}

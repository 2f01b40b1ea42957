package localdev_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/localdev"
)

var hostTests = []struct {
	host string
	want bool
}{
	{"localhost", true},
	{"localhost:8080", true},
	{"LocalHost:8080", true},
	{"localhost:", true},
	{"127.0.0.1", true},
	{"127.0.0.1:8080", true},
	{"127.1.2.3:80", true},
	{"[::1]", true},
	{"[::1]:8080", true},
	{"::1", true},
	{"[0:0::1]:8080", true},
	{"", false},
	{"localhost.", false},
	{"localhost.:8080", false},
	{"localhoſt", false},
	{"app.localhost", false},
	{"localhost.example.com", false},
	{"example.com", false},
	{"auth.example.com:443", false},
	{"10.0.0.1:8080", false},
	{"[::ffff:127.0.0.1]:8080", false},
	{"[fe80::1%25lo]:8080", false},
	{"[::2]", false},
	{"0.0.0.0", false},
	{"[::]", false},
	{"127.0.0.1.nip.io", false},
}

func TestHost(t *testing.T) {
	for _, tt := range hostTests {
		if got := localdev.Host(tt.host); got != tt.want {
			t.Errorf("Host(%q): got %v, want %v", tt.host, got, tt.want)
		}
	}
}

// FuzzHost: Host never panics, and accepts only what names the loopback
// interface once its port is taken off.
// Host runs on every request over plain HTTP: for the usual hosts,
// loopback or not, it allocates nothing.
func TestHostAllocatesNothing(t *testing.T) {
	for _, host := range []string{"auth.example.com", "auth.example.com:443", "localhost:8080", "127.0.0.1:8080", "[::1]:8080", "10.0.0.1"} {
		if n := testing.AllocsPerRun(100, func() { localdev.Host(host) }); n != 0 {
			t.Errorf("Host(%q): %v allocations", host, n)
		}
	}
}

func FuzzHost(f *testing.F) {
	for _, tt := range hostTests {
		f.Add(tt.host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !localdev.Host(host) {
			return
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if strings.ToLower(h) == "localhost" {
			return
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.IsLoopback() || a.Is4In6() {
			t.Errorf("Host(%q) is true, but %q is neither localhost nor a loopback address", host, h)
		}
	})
}

// request is a plain HTTP request from this machine for localhost, the
// one Local accepts; change makes it something else.
func request(change func(r *http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://localhost:3000/login", nil)
	r.RemoteAddr = "127.0.0.1:50000"
	if change != nil {
		change(r)
	}
	return r
}

var localTests = []struct {
	name   string
	change func(r *http.Request)
	want   string // "" for local, else a piece of the reason
}{
	{"plain localhost", nil, ""},
	{"127.0.0.1", func(r *http.Request) { r.Host = "127.0.0.1:3000" }, ""},
	{"::1", func(r *http.Request) { r.Host, r.RemoteAddr = "[::1]:3000", "[::1]:50000" }, ""},
	{"same-origin Origin", func(r *http.Request) { r.Header.Set("Origin", "http://localhost:3000") }, ""},
	{"over TLS", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, "TLS"},
	{"public host", func(r *http.Request) { r.Host = "auth.example.com" }, "auth.example.com"},
	{"peer elsewhere", func(r *http.Request) { r.RemoteAddr = "192.0.2.1:50000" }, "192.0.2.1"},
	{"no peer", func(r *http.Request) { r.RemoteAddr = "" }, "not from this machine"},
	{"X-Forwarded-For", func(r *http.Request) { r.Header.Set("X-Forwarded-For", "192.0.2.1") }, "X-Forwarded-For"},
	{"X-Forwarded-Proto", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, "X-Forwarded-Proto"},
	{"X-Forwarded-Host", func(r *http.Request) { r.Header.Set("X-Forwarded-Host", "auth.example.com") }, "X-Forwarded-Host"},
	{"Forwarded", func(r *http.Request) { r.Header.Set("Forwarded", "for=192.0.2.1") }, "Forwarded"},
	{"X-Real-IP", func(r *http.Request) { r.Header.Set("X-Real-IP", "192.0.2.1") }, "X-Real-Ip"},
	{"https Origin", func(r *http.Request) { r.Header.Set("Origin", "https://auth.example.com") }, "Origin"},
	{"https Origin of localhost", func(r *http.Request) { r.Header.Set("Origin", "https://localhost:3000") }, "Origin"},
	{"null Origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, "Origin"},
	{"two Origins", func(r *http.Request) {
		r.Header.Add("Origin", "http://localhost:3000")
		r.Header.Add("Origin", "http://evil.example")
	}, "Origin"},
}

// A request through a reverse proxy that rewrites Host to the app's
// loopback address (nginx's proxy_pass default) is not local, whatever
// else it looks like.
func TestLocal(t *testing.T) {
	for _, tt := range localTests {
		t.Run(tt.name, func(t *testing.T) {
			err := localdev.Local(request(tt.change))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want local", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// FuzzLocal: whatever the Host, peer, Origin and forwarding header, Local
// never panics, and accepts only a loopback Host from a loopback peer.
func FuzzLocal(f *testing.F) {
	f.Add("localhost:3000", "127.0.0.1:5000", "", "")
	f.Add("localhost:3000", "127.0.0.1:5000", "http://localhost:3000", "")
	f.Add("auth.example.com", "127.0.0.1:5000", "https://auth.example.com", "192.0.2.1")
	f.Add("127.0.0.1:8080", "[::1]:5000", "null", "")
	f.Fuzz(func(t *testing.T, host, peer, origin, forwardedFor string) {
		r := request(func(r *http.Request) {
			r.Host, r.RemoteAddr = host, peer
			if origin != "" {
				r.Header.Set("Origin", origin)
			}
			if forwardedFor != "" {
				r.Header.Set("X-Forwarded-For", forwardedFor)
			}
		})
		if localdev.Local(r) != nil {
			return
		}
		if !localdev.Host(host) || forwardedFor != "" {
			t.Errorf("Local accepted Host %q, X-Forwarded-For %q", host, forwardedFor)
		}
		if a, err := netip.ParseAddrPort(peer); err != nil || !a.Addr().Unmap().IsLoopback() {
			t.Errorf("Local accepted peer %q", peer)
		}
	})
}

// Cookie keeps the secure cookie for every request Local refuses, and
// logs the first of them in a minute, with the count of the others.
func TestCookie(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1e9, 0)
	m := localdev.New(slog.New(slog.NewJSONHandler(&logs, nil)), "InsecureLocalhostHTTP", func() time.Time { return now })

	for _, prefixed := range []string{"__Host-session", "__Secure-session"} {
		if name, secure := m.Cookie(request(nil), prefixed); name != "session" || secure {
			t.Errorf("local request, %s: got %q secure=%v, want session, not secure", prefixed, name, secure)
		}
	}
	public := request(func(r *http.Request) { r.Host = "auth.example.com" })
	for range 3 {
		if name, secure := m.Cookie(public, "__Host-session"); name != "__Host-session" || !secure {
			t.Errorf("public host: got %q secure=%v, want __Host-session, secure", name, secure)
		}
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("got %d log lines for 3 public requests in a minute, want 1:\n%s", n, &logs)
	}
	now = now.Add(time.Minute)
	m.Cookie(public, "__Host-session")
	if !strings.Contains(logs.String(), `"unlogged_since_last":2`) {
		t.Errorf("a minute later: want a line counting the 2 left out, got\n%s", &logs)
	}
	if name, secure := m.Cookie(public, "__Secure-session"); name != "__Secure-session" || !secure {
		t.Errorf("public host, __Secure-session: got %q secure=%v, want __Secure-session, secure", name, secure)
	}
	tls := request(func(r *http.Request) { r.TLS = &tls.ConnectionState{} })
	logs.Reset()
	now = now.Add(time.Minute)
	if name, secure := m.Cookie(tls, "__Host-session"); name != "__Host-session" || !secure || logs.Len() != 0 {
		t.Errorf("over TLS: got %q secure=%v and log %q, want __Host-session, secure, nothing logged", name, secure, &logs)
	}

	var off *localdev.Mode
	if name, secure := off.Cookie(request(nil), "__Host-session"); name != "__Host-session" || !secure {
		t.Errorf("mode off, local request: got %q secure=%v, want __Host-session, secure", name, secure)
	}
}

package server

import (
	"net/url"
	"strings"
	"testing"
)

// returnToTests are return addresses and whether each is followed, with
// app.example.com, xn--bcher-kva.example, 192.0.2.7 and [::1] allowed.
var returnToTests = []struct {
	name, raw string
	ok        bool
}{
	{"path", "/account", true},
	{"root", "/", true},
	{"path with query and fragment", "/account?x=1#top", true},
	{"path with percent-encoded slashes", "/%2F%2Fevil.example", true}, // a path on tether, as browsers read it
	{"allowed host", "https://app.example.com/docs?page=2#s", true},
	{"allowed host, http", "http://app.example.com/", true},
	{"allowed host, no path", "https://app.example.com", true},
	{"allowed host in capitals", "HTTPS://APP.Example.COM/", true},
	{"allowed host, any port", "https://app.example.com:8443/x", true},
	{"allowed IDN host in its xn-- form", "https://xn--bcher-kva.example/", true},
	{"allowed IPv4 address", "https://192.0.2.7/", true},
	{"allowed IPv6 address", "https://[::1]:8080/", true},

	{"empty", "", false},
	{"scheme-relative", "//evil.example/", false},
	{"three slashes", "///evil.example/", false},
	{"backslash slash", `\/evil.example`, false},
	{"slash backslash", `/\evil.example`, false},
	{"backslashes", `\\evil.example`, false},
	{"backslash in an allowed URL", `https://app.example.com\@evil.example/`, false},
	{"backslash after the host", `https://evil.example\app.example.com/`, false},
	{"scheme without slashes", "https:evil.example", false},
	{"scheme with one slash", "https:/evil.example", false},
	{"scheme with an empty host", "https:///evil.example", false},
	{"relative path", "evil.example/x", false},
	{"other host", "https://evil.example/", false},
	{"allowed host as a subdomain", "https://app.example.com.evil.example/", false},
	{"subdomain of an allowed host", "https://x.app.example.com/", false},
	{"allowed host with a trailing dot", "https://app.example.com./", false},
	{"userinfo", "https://app.example.com@evil.example/", false},
	{"userinfo of the allowed host", "https://user@app.example.com/", false},
	{"userinfo with a password", "https://app.example.com:443@evil.example/", false},
	{"encoded at", "https://app.example.com%40evil.example/", false},
	{"encoded dot in the host", "https://app%2eexample.com/", false},
	{"encoded slashes", "%2F%2Fevil.example", false},
	{"fragment before the at", "https://evil.example#@app.example.com/", false},
	{"query before the at", "https://evil.example?@app.example.com/", false},
	{"tab", "/\t/evil.example", false},
	{"tab in the scheme", "ht\ttps://app.example.com/", false},
	{"newline", "/\n/evil.example", false},
	{"carriage return", "/\r/evil.example", false},
	{"leading space", " /account", false},
	{"space", "https://app.example.com /", false},
	{"NUL", "/\x00/evil.example", false},
	{"DEL", "/\x7f", false},
	{"javascript", "javascript:alert(1)", false},
	{"javascript with slashes", "javascript://app.example.com/%0aalert(1)", false},
	{"data", "data:text/html,<script>alert(1)</script>", false},
	{"ftp", "ftp://app.example.com/", false},
	{"file", "file:///etc/passwd", false},
	{"IDN in Unicode", "https://bücher.example/", false},
	{"Cyrillic look-alike", "https://аpp.example.com/", false},
	{"fullwidth dot", "https://app．example.com/", false},
	{"port only", "https://:443/", false},
	{"bad port", "https://app.example.com:x/", false},
	{"IPv6 not allowed", "https://[::2]/", false},
	{"IPv4 in another spelling", "https://3221225479/", false},
	{"too long", "/" + strings.Repeat("a", maxReturnTo), false},
}

// returnToServer is a server with returnToTests' allowed hosts.
func returnToServer(t testing.TB) *server {
	t.Helper()
	allowed, err := newHostSet([]string{"app.example.com", "xn--bcher-kva.example", "192.0.2.7", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	return &server{allowed: allowed}
}

// GW-01: a return address is followed only when it is a path on tether
// or an http(s) URL of an allowed host, as a browser parses it.
func TestGW01_ReturnTo(t *testing.T) {
	s := returnToServer(t)
	for _, tt := range returnToTests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.returnTo(tt.raw)
			if ok != tt.ok || (ok && got != tt.raw) || (!ok && got != "") {
				t.Errorf("returnTo(%q) = %q, %v; want %v", tt.raw, got, ok, tt.ok)
			}
		})
	}
}

// GW-01: with no allowed host, only tether's own paths are followed.
func TestGW01_ReturnToNoAllowedHosts(t *testing.T) {
	s := &server{}
	for raw, want := range map[string]bool{"/account": true, "https://localhost/": false, "https://127.0.0.1/": false} {
		if _, ok := s.returnTo(raw); ok != want {
			t.Errorf("returnTo(%q) ok = %v, want %v", raw, ok, want)
		}
	}
}

// FuzzReturnTo holds every address returnTo follows to GW-01 as Go's URL
// parser (which follows the WHATWG's for what returnTo lets through) sees
// it: a path that is not scheme-relative, or an http(s) URL without
// userinfo whose host is allowed.
func FuzzReturnTo(f *testing.F) {
	for _, tt := range returnToTests {
		f.Add(tt.raw)
	}
	s := returnToServer(f)
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := s.returnTo(raw)
		if !ok {
			return
		}
		if got != raw {
			t.Fatalf("returnTo(%q) = %q, want it unchanged", raw, got)
		}
		if strings.ContainsAny(raw, "\\\t\r\n ") {
			t.Fatalf("followed %q, which holds a byte browsers ignore or rewrite", raw)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("followed %q, which doesn't parse: %v", raw, err)
		}
		if strings.HasPrefix(raw, "/") {
			if u.Scheme != "" || u.Host != "" || strings.HasPrefix(raw, "//") {
				t.Fatalf("followed %q as a path, but it names a host %q", raw, u.Host)
			}
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Opaque != "" || !s.allowed.allows(u.Host) {
			t.Fatalf("followed %q: scheme %q, user %v, host %q", raw, u.Scheme, u.User, u.Host)
		}
	})
}

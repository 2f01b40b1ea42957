package session_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tetherauth/tether/session"
)

// cookieDomains are the table of CheckCookieDomain, and the fuzz target's
// seeds: "" for a domain it takes, else a word of the error it gives.
var cookieDomains = []struct {
	domain, wantErr string
}{
	{"example.com", ""},
	{"auth.example.com", ""},
	{"example.co.uk", ""},
	{"tether.test", ""},
	{"xn--bcher-kva.example", ""},
	{"a-b.example.com", ""},
	{"4chan.org", ""},
	{"", "empty"},
	{".example.com", "dot"},
	{"..example.com", "dot"},
	{"com", "public suffix"},
	{"co.uk", "public suffix"},
	{"github.io", "public suffix"}, // the list's private section
	{"localhost", "public suffix"}, // one label: the default rule makes it one
	{"test", "public suffix"},
	{"127.0.0.1", "IP address"},
	{"::1", "IP address"},
	{"[::1]", "IP address"},
	{"2001:db8::1", "IP address"},
	{"example.com.", "host name"},
	{"example..com", "host name"},
	{"Example.com", "host name"},
	{"bücher.example", "host name"},
	{"exa_mple.com", "host name"},
	{"-example.com", "hyphen"},
	{"example-.com", "hyphen"},
	{"example.com:443", "host name"},
	{"https://example.com", "host name"},
	{"example.com/", "host name"},
	{"*.example.com", "host name"},
	{"example com", "host name"},
	{"example.com;secure", "host name"},
	{"1.2.3.4.5", "no letter"},
	{"example.123", "no letter"},
	{"0.0-0", "no letter"}, // found by FuzzCheckCookieDomain: net/http drops a Domain without a letter
	{"example.1-2", "no letter"},
	{strings.Repeat("a", 64) + ".com", "host name"},
	{strings.Repeat("a.", 127) + "com", "253"},
}

func TestCheckCookieDomain(t *testing.T) {
	for _, tt := range cookieDomains {
		t.Run(tt.domain, func(t *testing.T) {
			err := session.CheckCookieDomain(tt.domain)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
			_, err = session.NewManager(newMemory(t), session.Config{CookieDomain: tt.domain})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && tt.domain != "" && err == nil {
				t.Fatalf("NewManager: got %v, want an error: %v", err, tt.wantErr != "")
			}
		})
	}
}

// A domain CheckCookieDomain takes is one that net/http writes into
// Set-Cookie as given (it drops a Domain it finds invalid, silently),
// that covers itself and its subdomains, and that is no IP address and
// no public suffix.
func FuzzCheckCookieDomain(f *testing.F) {
	for _, tt := range cookieDomains {
		f.Add(tt.domain, "app."+tt.domain)
	}
	f.Fuzz(func(t *testing.T, domain, host string) {
		if session.CheckCookieDomain(domain) != nil {
			return
		}
		line := (&http.Cookie{Name: "__Secure-s", Value: "v", Domain: domain, Secure: true}).String()
		if !strings.Contains(line, "; Domain="+domain+";") {
			t.Fatalf("domain %q accepted, but net/http writes %q", domain, line)
		}
		if strings.HasPrefix(domain, ".") || domain != strings.ToLower(domain) {
			t.Fatalf("domain %q accepted: leading dot or upper case", domain)
		}
		if !session.CookieDomainCovers(domain, domain) || !session.CookieDomainCovers(domain, "app."+strings.ToUpper(domain)) {
			t.Fatalf("domain %q does not cover itself or a subdomain", domain)
		}
		if session.CookieDomainCovers(domain, host) && !strings.HasSuffix(strings.ToLower(host), domain) {
			t.Fatalf("domain %q covers %q", domain, host)
		}
	})
}

func TestCookieDomainCovers(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"example.com", true},
		{"auth.example.com", true},
		{"a.b.example.com", true},
		{"Auth.Example.COM", true},
		{"example.org", false},
		{"badexample.com", false},
		{"example.com.evil", false},
		{"example.com.", false},
		{"com", false},
		{"", false},
	} {
		if got := session.CookieDomainCovers("example.com", tt.host); got != tt.want {
			t.Errorf("CookieDomainCovers(example.com, %q): got %v, want %v", tt.host, got, tt.want)
		}
	}
	if session.CookieDomainCovers("3.4", "1.2.3.4") {
		t.Error("a domain covers an IP address")
	}
	if session.CookieDomainCovers("k.example", "\u212a.example") {
		t.Error("k.example covers the Kelvin sign's \u212a.example")
	}
}

// SES-05: with Config.CookieDomain, the cookie name must still carry a
// prefix: __Host- (which becomes __Secure-) or __Secure-.
func TestSES05_CookieDomainNeedsPrefixedName(t *testing.T) {
	for _, name := range []string{"session", "__Secure-", "__Host-", "__Host-a b"} {
		if _, err := session.NewManager(newMemory(t), session.Config{CookieDomain: "example.com", CookieName: name}); err == nil {
			t.Errorf("CookieName %q with CookieDomain: no error", name)
		}
	}
	if _, err := session.NewManager(newMemory(t), session.Config{CookieName: "__Secure-app"}); err == nil {
		t.Error("CookieName __Secure-app without CookieDomain: no error, want __Host- (SES-05)")
	}
}

// SES-05: with Config.CookieDomain the middleware reads the __Secure-
// cookie, from whichever host under the domain the request is for, and
// no longer the __Host- one.
func TestSES05_CookieDomainReadOnEverySubdomain(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{CookieDomain: "example.com"})
	token, _ := mustCreate(t, m, "user:alice", session.Meta{})
	for _, tt := range []struct{ host, cookie, want string }{
		{"auth.example.com", "__Secure-session=" + token, "user:alice"},
		{"app.example.com", "__Secure-session=" + token, "user:alice"},
		{"app.example.com", "__Host-session=" + token, "anonymous"},
	} {
		r := httptest.NewRequest("GET", "https://"+tt.host+"/", nil)
		r.Header.Set("Cookie", tt.cookie)
		w := httptest.NewRecorder()
		m.Middleware(whoami).ServeHTTP(w, r)
		if w.Body.String() != tt.want {
			t.Errorf("%s with %.20s...: got %q, want %q", tt.host, tt.cookie, w.Body, tt.want)
		}
	}
}

// SES-05: Config.InsecureLocalhostHTTP with Config.CookieDomain: a local
// development request gets a host-only cookie without prefix or Secure
// (a loopback host is under no domain); every other request keeps the
// __Secure- cookie with its Domain.
func TestSES05_CookieDomainInsecureLocalhostHTTP(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{CookieDomain: "example.com", InsecureLocalhostHTTP: true})
	token, s := mustCreate(t, m, "user:alice", session.Meta{})
	check := func(name string, r *http.Request, wantName, wantDomain string, wantSecure bool) {
		t.Helper()
		for _, c := range setAndClear(t, m, r, token, s) {
			if c.Name != wantName || c.Domain != wantDomain || c.Secure != wantSecure || !c.HttpOnly || c.Path != "/" {
				t.Errorf("%s: Set-Cookie %q: want %s, Domain %q, Secure %v, HttpOnly, Path=/", name, c, wantName, wantDomain, wantSecure)
			}
		}
		if got := m.CookieName(r); got != wantName {
			t.Errorf("%s: CookieName: got %q, want %q", name, got, wantName)
		}
	}
	check("local", localRequest(nil), "session", "", false)
	for _, tt := range notLocal {
		check(tt.name, localRequest(tt.change), "__Secure-session", "example.com", true)
	}
}

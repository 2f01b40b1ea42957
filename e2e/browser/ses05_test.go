package browser

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const (
	alicePW = "correct horse battery staple"
)

// TestSES05_SessionCookieAttributes: signing in through the real form in
// Chromium leads to the account page, which lists this device; and the
// session cookie the browser keeps, read through the DevTools protocol, is
// __Host-tether: HttpOnly, Secure, SameSite=Lax, host-only, Path=/.
//
// Secure and __Host- cookies work on http://127.0.0.1: Chromium treats
// loopback as potentially trustworthy, so it stores and sends them without
// TLS. If it didn't, the cookie would be missing here.
func TestSES05_SessionCookieAttributes(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	b := newBrowser(t, "alice")
	// The Set-Cookie header as Chromium received it, to see the attributes
	// the cookie store doesn't keep (a Domain attribute on an IP address
	// makes no visible difference there).
	setCookie := make(chan string, 8)
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventResponseReceivedExtraInfo); ok {
			for line := range strings.SplitSeq(header(ev.Headers, "Set-Cookie"), "\n") {
				if strings.HasPrefix(line, sessionCookie+"=") {
					select {
					case setCookie <- line:
					default:
					}
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	b.signIn(srv, "alice", alicePW)

	b.mustContain("Signed-in devices", "Headless Chrome on Linux", "This device", "Active now")
	if !b.has(`.devices li.current`) {
		t.Fatalf("the account page marks no device as this one")
	}

	c := b.cookie(srv, sessionCookie)
	if c == nil {
		t.Fatalf("no %s cookie after sign-in; cookies: %v", sessionCookie, names(b.cookies(srv)))
	}
	t.Logf("%s: domain %q path %q httpOnly %v secure %v sameSite %q session %v sourceScheme %q",
		c.Name, c.Domain, c.Path, c.HTTPOnly, c.Secure, c.SameSite, c.Session, c.SourceScheme)
	select {
	case line := <-setCookie:
		attrs := map[string]bool{}
		for _, a := range strings.Split(line, ";")[1:] {
			name, value, _ := strings.Cut(strings.TrimSpace(a), "=")
			attrs[strings.ToLower(name)+"="+strings.ToLower(value)] = true
			if strings.EqualFold(name, "Domain") {
				t.Errorf("Set-Cookie has a Domain attribute, so the cookie isn't host-only: %s", redact(line))
			}
		}
		for _, want := range []string{"path=/", "secure=", "httponly=", "samesite=lax"} {
			if !attrs[want] {
				t.Errorf("Set-Cookie lacks %s: %s", want, redact(line))
			}
		}
	default:
		t.Errorf("saw no Set-Cookie header for %s at sign-in", sessionCookie)
	}
	// Host-only: a cookie with a Domain attribute has a domain with a
	// leading dot; a host-only one has exactly the host.
	checkSessionCookie(t, c, "127.0.0.1")
}

// checkSessionCookie fails t unless c, a session cookie as the browser
// keeps it, is HttpOnly, Secure, SameSite=Lax, with domain and Path=/.
func checkSessionCookie(t *testing.T, c *network.Cookie, domain string) {
	t.Helper()
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"HttpOnly", c.HTTPOnly, true},
		{"Secure", c.Secure, true},
		{"SameSite", c.SameSite, network.CookieSameSiteLax},
		{"domain", c.Domain, domain},
		{"Path", c.Path, "/"},
	} {
		if check.got != check.want {
			t.Errorf("%s cookie %s: got %v, want %v", c.Name, check.what, check.got, check.want)
		}
	}
}

func names(cs []*network.Cookie) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// redact replaces the value of a Set-Cookie line, so a failure message
// never carries a session token.
func redact(setCookie string) string {
	name, rest, _ := strings.Cut(setCookie, "=")
	_, attrs, _ := strings.Cut(rest, ";")
	return name + "=…;" + attrs
}

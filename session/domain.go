package session

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// The session cookie across subdomains (Config.CookieDomain).
//
// By default the cookie is __Host-: the browser sends it back only to the
// host that set it (SES-05). With Config.CookieDomain "example.com", it is
// __Secure- with Domain=example.com instead, so that a sign-in on
// auth.example.com reaches app.example.com. What that trades: the
// browser sends it to every host under example.com, so whoever controls
// any one of them (a forgotten DNS record taken over, a user-content
// host) reads it and rides the session; and any of them can set a
// __Secure- cookie of that name for the whole domain, which replaces the
// browser's (signing it in as the setter), or one for another path beside
// it (two cookies: refused, SES-06). Prefer one host and paths on it when
// the apps can live there.

// CheckCookieDomain returns what is wrong with domain as
// Config.CookieDomain, or nil. It must be a host name in lower case
// (letters, digits and hyphens in dot-separated labels of 1 to 63
// characters, 253 in all; an internationalized name in its xn-- form),
// without a leading or trailing dot, not an IP address, and not a public
// suffix (com, co.uk, github.io: a cookie for one would reach every site
// under it, and browsers refuse it).
func CheckCookieDomain(domain string) error {
	switch {
	case domain == "":
		return errors.New("session: cookie domain is empty")
	case strings.HasPrefix(domain, "."):
		return fmt.Errorf("session: cookie domain %q starts with a dot: give it without (%s); it covers the subdomains anyway", domain, strings.TrimLeft(domain, "."))
	case isIP(domain):
		return fmt.Errorf("session: cookie domain %q is an IP address: a Domain cookie needs a host name", domain)
	}
	if err := checkHostName(domain); err != nil {
		return fmt.Errorf("session: cookie domain %q %w", domain, err)
	}
	if suffix, _ := publicsuffix.PublicSuffix(domain); suffix == domain {
		return fmt.Errorf("session: cookie domain %q is a public suffix, under which anyone may register a site: give your own domain (example.com) or a subdomain of it", domain)
	}
	return nil
}

// CookieDomainCovers reports whether a cookie for domain (one that
// CheckCookieDomain accepts) reaches host, a host name without a port:
// host is domain or a subdomain of it, in any case of its ASCII letters,
// and no IP address.
func CookieDomainCovers(domain, host string) bool {
	host = strings.Map(func(r rune) rune { // ASCII only: strings.ToLower makes the Kelvin sign a k
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, host)
	return host == domain || strings.HasSuffix(host, "."+domain) && !isIP(host)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return err == nil
}

// checkHostName returns what is wrong with name as a lower-case DNS host
// name (RFC 1123), or nil.
func checkHostName(name string) error {
	if len(name) > 253 {
		return errors.New("is longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return errors.New("is not a host name: each dot-separated label is 1 to 63 characters, with no trailing dot")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("is not a host name: label %q starts or ends with a hyphen", label)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("is not a host name: label %q has a character other than a-z, 0-9 and - (lower case; an internationalized name in its xn-- form)", label)
			}
		}
	}
	if last := name[strings.LastIndexByte(name, '.')+1:]; !strings.ContainsFunc(last, func(r rune) bool { return 'a' <= r && r <= 'z' }) {
		return fmt.Errorf("is not a host name: its last label %q, the top-level domain, has no letter", last)
	}
	return nil
}

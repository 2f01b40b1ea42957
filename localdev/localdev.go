// Package localdev is the development mode of the session and csrf
// cookies: it lets an app served over plain http://localhost keep its
// cookies in browsers and clients that drop a Secure or __Host- cookie
// there (Safari), without weakening the cookies of any real deployment.
//
// The cookies of package session and package csrf are __Host- and
// Secure (SES-05): a browser keeps them only from an https:// page, or
// from http://localhost in some browsers (Chrome, Firefox) and not in
// others (Safari). Over plain HTTP at any other host name, no browser
// keeps them and signing in can't work: serve HTTPS instead.
//
// With the mode on (session.Config.InsecureLocalhostHTTP,
// csrf.WithInsecureLocalhostHTTP), a request that Local accepts gets its
// cookie without the __Host- prefix and without Secure; every other
// request keeps the __Host- Secure cookie, and the first of them in a
// minute is logged as an error, since the mode has no business outside
// development. Local accepts only what a browser sends from the machine
// the app runs on, for a loopback host, straight to the app: a request
// through a reverse proxy (which may rewrite Host to 127.0.0.1) is
// refused by its forwarding headers, its peer or its Origin. So turning
// the mode on in production can't weaken a real user's cookie.
package localdev

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/sometimes"
)

// The cookie name prefixes the mode drops: HostPrefix of a host-only
// cookie, SecurePrefix of one with a Domain (session.Config.CookieDomain).
const (
	HostPrefix   = "__Host-"
	SecurePrefix = "__Secure-"
)

// logInterval is how often Mode logs the requests it keeps secure.
const logInterval = time.Minute

// Host reports whether hostport, a request's Host with or without a port,
// names the loopback interface: localhost (in any case of its ASCII
// letters, without a trailing dot), an IPv4 address in 127.0.0.0/8, or
// [::1]. A browser reaches such a host only on its own machine.
func Host(hostport string) bool {
	// Host runs on every request over plain HTTP, and an error of
	// SplitHostPort or ParseAddr costs an allocation: neither is called
	// where it can only fail.
	host := hostport
	if strings.Contains(hostport, ":") {
		if h, _, err := net.SplitHostPort(hostport); err == nil {
			host = h
		}
	}
	if host == hostport { // no port: perhaps a bracketed IPv6 address
		if inner, ok := strings.CutPrefix(hostport, "["); ok {
			host = strings.TrimSuffix(inner, "]")
		}
	}
	// EqualFold folds Unicode too ("ſ" is "s"), but every letter that
	// folds to an ASCII one is longer than a byte, so the length keeps
	// "localhoſt" out.
	if len(host) == len("localhost") && strings.EqualFold(host, "localhost") {
		return true
	}
	if host == "" || !('0' <= host[0] && host[0] <= '9' || host[0] == ':') {
		return false // a name: every loopback address starts with a digit or ':'
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && !a.Is4In6() && a.IsLoopback()
}

// forwarding are the headers a reverse proxy adds; an app reached straight
// from the browser sees none of them.
var forwarding = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip"}

// Local returns nil if r came over plain HTTP, straight from a browser or
// client on this machine, for a loopback host; else why not. It asks all
// of:
//
//   - no TLS (over HTTPS the __Host- Secure cookie works);
//   - Host is a loopback host (see Host);
//   - the peer is a loopback address;
//   - no Forwarded, X-Forwarded-* or X-Real-IP header (a proxy's);
//   - no Origin, or an http:// Origin of a loopback host ("null", which a
//     page sends under Referrer-Policy: no-referrer, names no host and is
//     refused).
func Local(r *http.Request) error {
	if r.TLS != nil {
		return errors.New("it came over TLS")
	}
	if !Host(r.Host) {
		return fmt.Errorf("its Host %q is not localhost, 127.0.0.1 or [::1]", truncate(r.Host))
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !peer.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("it came from %q, not from this machine", truncate(r.RemoteAddr))
	}
	for _, h := range forwarding {
		if _, ok := r.Header[h]; ok {
			return fmt.Errorf("it came through a proxy (%s)", h)
		}
	}
	if o, ok := r.Header["Origin"]; ok {
		scheme, host, _ := strings.Cut(strings.Join(o, ","), "://")
		if scheme != "http" || !Host(host) {
			return fmt.Errorf("its Origin %q is not an http:// page on a loopback host", truncate(strings.Join(o, ",")))
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// Mode is the development mode of one component's cookies. A nil *Mode is
// the mode turned off: Cookie always returns the secure cookie. It is safe
// for concurrent use.
type Mode struct {
	log    *slog.Logger
	logged *sometimes.Gate // when a request kept secure may be logged
}

// New returns the mode turned on, logging to log (slog.Default() if nil)
// under the name of setting, the option that turned it on.
func New(log *slog.Logger, setting string, now func() time.Time) *Mode {
	if log == nil {
		log = slog.Default()
	}
	return &Mode{log: log.With("setting", setting), logged: sometimes.New(logInterval, now)}
}

// Cookie returns the name and Secure attribute of the cookie name (which
// starts with HostPrefix or SecurePrefix) for r: name and true, unless the
// mode is on and Local accepts r: then name without its prefix, and false
// (the caller then drops any Domain too: a loopback host is under none).
// A request the mode keeps secure, other than one over TLS, is logged as
// an error at most once a minute, with how many were not.
func (m *Mode) Cookie(r *http.Request, name string) (string, bool) {
	if m == nil || r.TLS != nil {
		return name, true
	}
	err := Local(r)
	if err == nil {
		if rest, ok := strings.CutPrefix(name, SecurePrefix); ok {
			return rest, false
		}
		return strings.TrimPrefix(name, HostPrefix), false
	}
	if held, ok := m.logged.Let(); ok {
		m.log.ErrorContext(r.Context(), "a development mode is on, but this request is not local development: "+
			"its cookie keeps its prefix and Secure; turn the mode off outside development",
			"cookie", name, "reason", err.Error(), "unlogged_since_last", held)
	}
	return name, true
}

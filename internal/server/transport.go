package server

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/tetherauth/tether/localdev"
)

// Plain HTTP. tether's cookies are __Host- and Secure (SES-05), which a
// browser keeps only from an https:// page or from localhost: reached over
// plain HTTP at any other name, signing in can't work, and the password
// travels in the clear. Without a word about it, the browser just drops
// the cookie and the user lands back on the form; worse, a browser sends
// no Sec-Fetch-Site over plain HTTP, and under tether's Referrer-Policy
// (no-referrer) its forms send Origin: null, so the cross-origin check
// (CSRF-01) refused the sign-in as "from other sites". checkTransport
// says what is wrong instead, before any of that runs.

// errInsecureTransport answers an API request that came over plain HTTP
// for a host other than localhost. 403: the request is understood and
// refused for a security reason, like the cross-origin refusals; not 400,
// nothing in it is malformed; not 421, which answers a foreign Host
// (MISC-07) and which clients may retry on another connection.
var errInsecureTransport = &problem{status: http.StatusForbidden, code: "insecure_transport",
	message: "This request came over plain HTTP, where the sign-in cookie (Secure) is not kept and passwords travel in the clear: use the server's https:// address."}

// plainHTTP reports whether r reached tether over plain HTTP for a host
// whose cookies a browser keeps only over HTTPS. It is not when any of
// these holds:
//
//   - r came over TLS;
//   - its Host is localhost, 127.0.0.0/8 or [::1] (localdev.Host), where
//     browsers keep Secure cookies over plain HTTP;
//   - a trusted proxy (Config.TrustedProxies) says the client reached it
//     over HTTPS: X-Forwarded-Proto has an entry "https";
//   - the browser shows it is on an https:// page: it sent Sec-Fetch-Site,
//     which browsers send only to https:// (and localhost) pages, or an
//     https:// Origin; so a TLS proxy that doesn't say
//     X-Forwarded-Proto still serves browsers.
//
// This is a diagnosis, not a defence: the cookies' Secure attribute is
// what keeps them off plain HTTP. So it errs towards letting a request
// through.
func (s *server) plainHTTP(r *http.Request) bool {
	if r.TLS != nil || localdev.Host(r.Host) || r.Header.Get("Sec-Fetch-Site") != "" ||
		strings.HasPrefix(r.Header.Get("Origin"), "https://") {
		return false
	}
	return !forwardedHTTPS(r, s.proxies)
}

// forwardedHTTPS reports whether r comes from a trusted proxy that says
// its client reached it over HTTPS: an entry of X-Forwarded-Proto is
// "https" (in any case). Any entry will do: with several proxies in a
// row, the client's is the first, but a proxy that appends may follow it
// with its own "http".
func forwardedHTTPS(r *http.Request, trusted []netip.Prefix) bool {
	if !fromTrustedProxy(r, trusted) {
		return false
	}
	for _, v := range r.Header.Values("X-Forwarded-Proto") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "https") {
				return true
			}
		}
	}
	return false
}

// checkTransport lets a request that plainHTTP clears through. Otherwise
// it logs that requests come over plain HTTP (at most once a minute,
// counting those it left out), and
//
//   - answers the API with insecure_transport, and the OAuth endpoints
//     with invalid_request (the .well-known documents are public: GET);
//   - answers an unsafe request to the pages with a page that says why
//     (the forms can't work);
//   - lets GET and HEAD of the pages through: they show the notice (see
//     newPage);
//   - lets /healthz and /readyz through, which probes ask by address,
//     and /auth/verify, whose answer doesn't depend on the transport
//     (forwardauth.go).
func (s *server) checkTransport(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.plainHTTP(r) || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == verifyPath {
			next.ServeHTTP(w, r)
			return
		}
		if held, ok := s.plainLog.Let(); ok {
			s.log.WarnContext(r.Context(), "a request came over plain HTTP for a host other than localhost: browsers keep no sign-in cookie there; "+
				"serve HTTPS (--tls-cert, --tls-key), or have the TLS proxy in front send X-Forwarded-Proto and name it in --trusted-proxies",
				"host", truncate(r.Host, 100), "path", truncate(r.URL.Path, 100),
				"ip", clientIP(r, s.proxies), "unlogged_since_last", held)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/"):
			s.failJSON(w, r, errInsecureTransport)
		case strings.HasPrefix(r.URL.Path, "/oauth2/"): // a client secret or a token in the clear
			s.failOAuth(w, r, errInsecureTransport)
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			next.ServeHTTP(w, r)
		default:
			s.render(w, r, errInsecureTransport.status, "error", s.newPage(r, "Signing in needs HTTPS"))
		}
	})
}

// httpsURL is where the notice of a page sent over plain HTTP points: the
// same page at https:// on the same host name, without the port (which
// serves plain HTTP); the sign-in page for a form's submission.
func httpsURL(r *http.Request) string {
	host, _ := splitHost(r.Host)
	path := "/login"
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		path = r.URL.RequestURI()
	}
	return "https://" + host + path
}

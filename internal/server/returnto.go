package server

import (
	"net/url"
	"strings"
)

// Return addresses (GW-01): where a person goes after signing in, when
// the sign-in page was reached with ?return= (from a forward-auth 401, or
// a link).
//
// A return address is followed only when it is one of:
//
//   - a path on tether itself: it starts with one "/", not "//" (which a
//     browser reads as another host);
//   - an http or https URL, "scheme://host[:port]/...", whose host is on
//     Config.AllowedHosts, matched as Config.Hosts are (hosts.go): exactly,
//     but for the case of ASCII letters and whatever the port. A port
//     names another service of the same host, which is as trusted as the
//     host.
//
// Anything else is dropped for the default page (the account page). The
// check is strict rather than clever: it refuses every byte a browser
// treats specially or ignores, so that what it checks is what the browser
// will parse. So a return address may hold only printable ASCII, without
// spaces and without backslashes (which browsers read as "/" in http(s)
// URLs: "/\evil" goes to evil); its host may hold no "%" (browsers
// percent-decode hosts), no "@" (userinfo: "https://app@evil/" goes to
// evil) and no non-ASCII (an internationalized name must be listed, and
// sent, in its xn-- form, as browsers send it); and it is at most
// maxReturnTo bytes. Go's URL parser must also accept it, and find the
// same host.

// maxReturnTo bounds a return address.
const maxReturnTo = 2048

// returnTo returns raw when it is a return address to follow (see above).
func (s *server) returnTo(raw string) (string, bool) {
	if raw == "" || len(raw) > maxReturnTo {
		return "", false
	}
	for i := range len(raw) {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(raw) // a second opinion, as Go parses it: it must agree
	if err != nil {
		return "", false
	}
	if raw[0] == '/' {
		if len(raw) > 1 && raw[1] == '/' {
			return "", false
		}
		return raw, true
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !(strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http")) {
		return "", false
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if strings.ContainsAny(authority, "@%") || !s.allowed.allows(authority) ||
		u.User != nil || u.Opaque != "" || !s.allowed.allows(u.Host) {
		return "", false
	}
	return raw, true
}

package server

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP finds the address of the client: the peer, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is walked from the right,
// past every trusted proxy, to the first address that isn't one (PW-06).
// Entries left of that are whatever the client chose to send and are never
// believed. An entry is an address with or without a port (see parseHop);
// one that doesn't parse stops the walk at the last good hop. The zero Addr
// means the peer address itself was unreadable.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap().WithZone("")
	if !isTrusted(addr, trusted) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && isTrusted(addr, trusted); i-- {
		hop, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		addr = hop.Unmap().WithZone("")
	}
	return addr
}

// parseHop parses one X-Forwarded-For entry: an address, as 1.2.3.4 or
// ::1, or an address and port, as 1.2.3.4:5678 or [::1]:5678, as some
// proxies write them; or an IPv6 address in brackets, [::1]. The port is
// dropped. Anything else (an IPv4 address in brackets, an IPv6 address and
// port without them, an empty port, the quoted forms of the Forwarded
// header) is not an entry.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil && a.Is6() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ipThrottleKey is the sign-in throttle key of a client address: the
// address for IPv4, its /64 for IPv6, since one client commonly holds a
// whole /64.
func ipThrottleKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64) // cannot fail for a valid IPv6 address
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

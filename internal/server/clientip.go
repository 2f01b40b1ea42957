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
// believed. An entry that doesn't parse stops the walk at the last good hop.
// The zero Addr means the peer address itself was unreadable.
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
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = hop.Unmap().WithZone("")
	}
	return addr
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

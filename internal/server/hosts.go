package server

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The hosts the server answers for (MISC-07).
//
// DNS rebinding: a page on evil.example has its name rebound to 127.0.0.1
// (or to an internal address), and the browser, which still sees the origin
// http://evil.example:8080, sends tether's answers to the page as
// same-origin. The browser names that origin in Host, and an attacker can't
// make it one of tether's own names, so the server answers only requests
// whose Host is one of Config.Hosts.
//
// Matching ignores the port (the attacker's name differs whatever the
// port) and the case of names (DNS names are case-insensitive; only ASCII
// letters fold, so "localhoſt" is not "localhost"). Otherwise it is exact:
//
//   - no wildcards or subdomains: "auth.example.com" doesn't allow
//     "x.auth.example.com", so nobody who can name a subdomain can rebind;
//   - a trailing dot is refused: "auth.example.com." is another origin to a
//     browser, with cookies of its own, and no link of tether's leads there
//     (an entry can't have one either);
//   - an IP literal matches the same address: "[::1]" and "[0::1]" are one
//     address (browsers send the short form), "127.0.0.1" is not
//     "[::ffff:127.0.0.1]".
//
// The Host checked is Request.Host: for an absolute-form request
// ("GET http://evil.example/ HTTP/1.1", which a browser sends to a proxy)
// that is the URL's host, the origin the browser had in mind, and Go's
// server ignores the Host header then, as RFC 9112 says it must.

// LoopbackHosts returns Config.Hosts' default: the names of the loopback
// interface, which only a process on the same machine reaches.
func LoopbackHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// CheckHost returns what is wrong with entry as one of Config.Hosts, or nil.
// An entry is a host name (ASCII letters, digits, '-' and '_', in labels
// joined by dots; an internationalized name in its xn-- form), an IPv4
// address in dotted decimal, or an IPv6 address with or without brackets.
// It has no scheme, port, path, wildcard or trailing dot.
func CheckHost(entry string) error {
	_, _, err := parseHostEntry(entry)
	return err
}

// hostSet is the hosts a server answers for.
type hostSet struct {
	names []string     // in lower case
	addrs []netip.Addr // IPv4, or IPv6 without a zone
}

// newHostSet returns the set of entries (LoopbackHosts if there are none),
// or an error naming every entry that CheckHost refuses.
func newHostSet(entries []string) (hostSet, error) {
	if len(entries) == 0 {
		entries = LoopbackHosts()
	}
	var hs hostSet
	var errs []error
	for _, e := range entries {
		name, addr, err := parseHostEntry(e)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%q %w", e, err))
		case addr.IsValid():
			hs.addrs = append(hs.addrs, addr)
		default:
			hs.names = append(hs.names, name)
		}
	}
	return hs, errors.Join(errs...)
}

// parseHostEntry parses an entry of Config.Hosts: a host name, returned in
// lower case, or an IP address.
func parseHostEntry(e string) (name string, addr netip.Addr, err error) {
	if e == "" {
		return "", addr, errors.New("is empty")
	}
	if strings.Contains(e, "://") || strings.ContainsAny(e, "/?#@") {
		return "", addr, errors.New("is not a host name: give just the name, such as auth.example.com, without scheme or path")
	}
	if inner, ok := strings.CutPrefix(e, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			if strings.Contains(inner, "]:") {
				return "", addr, errors.New("has a port: leave it out, a Host matches whatever its port")
			}
			return "", addr, errors.New("lacks the closing ] of an IPv6 address")
		}
		if addr, err = netip.ParseAddr(inner); err != nil || !addr.Is6() {
			return "", netip.Addr{}, errors.New("is not an IPv6 address")
		}
		return checkAddr(addr)
	}
	if addr, err = netip.ParseAddr(e); err == nil {
		return checkAddr(addr)
	}
	addr = netip.Addr{}
	switch colons := strings.Count(e, ":"); {
	case colons > 1:
		return "", addr, errors.New("is not an IPv6 address")
	case colons == 1:
		return "", addr, errors.New("has a port: leave it out, a Host matches whatever its port")
	case strings.Contains(e, "*"):
		return "", addr, errors.New("has a wildcard: list each name instead (a wildcard would let whoever names a subdomain rebind it)")
	case strings.HasSuffix(e, "."):
		return "", addr, errors.New("ends in a dot: leave it out (a Host with a trailing dot is another origin to browsers, and is refused)")
	}
	if err := checkName(e); err != nil {
		return "", addr, err
	}
	return lowerASCII(e), addr, nil
}

func checkAddr(a netip.Addr) (string, netip.Addr, error) {
	if a.Zone() != "" {
		return "", netip.Addr{}, errors.New("has a zone, which a Host never carries: leave out the %zone")
	}
	return "", a, nil
}

// checkName returns what is wrong with a host name, or nil.
func checkName(n string) error {
	if len(n) > 253 {
		return errors.New("is longer than a DNS name's 253 characters")
	}
	labels := strings.Split(n, ".")
	for _, l := range labels {
		if l == "" {
			return errors.New("has an empty label (two dots in a row, or a leading dot)")
		}
		if len(l) > 63 {
			return errors.New("has a label longer than a DNS label's 63 characters")
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			case r >= 0x80:
				return errors.New("is not ASCII: give an internationalized name in its xn-- form, as browsers send it")
			default:
				return fmt.Errorf("has %q, which no host name has", r)
			}
		}
	}
	if endsInNumber(labels[len(labels)-1]) {
		return errors.New("ends in a number, as only an IPv4 address does: give an address in dotted decimal, such as 192.0.2.1")
	}
	return nil
}

// endsInNumber reports whether a host name's last label is a number,
// which makes browsers parse the whole name as an IPv4 address ("127.1",
// "0x7f.1"): such a name never reaches a server as it was written.
func endsInNumber(label string) bool {
	digits := "0123456789"
	if hex, ok := strings.CutPrefix(lowerASCII(label), "0x"); ok {
		label, digits = hex, "0123456789abcdef"
	}
	return strings.Trim(label, digits) == ""
}

// allows reports whether hostport, a request's Host, names one of the
// set's hosts, whatever its port and the case of its letters.
func (hs hostSet) allows(hostport string) bool {
	host, ok := splitHost(hostport)
	if !ok {
		return false
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		a, err := netip.ParseAddr(strings.TrimSuffix(inner, "]"))
		return err == nil && a.Is6() && a.Zone() == "" && slices.Contains(hs.addrs, a)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Is4() && slices.Contains(hs.addrs, a)
	}
	for _, n := range hs.names {
		if equalFoldASCII(host, n) {
			return true
		}
	}
	return false
}

// splitHost returns the host of a Host value, without its port (which may
// be empty, "localhost:", as URLs allow), and whether the value is well
// formed. An IPv6 address comes in brackets, which it keeps.
func splitHost(hostport string) (string, bool) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		i := strings.IndexByte(hostport, ']')
		if i < 0 {
			return "", false
		}
		host, port = hostport[:i+1], hostport[i+1:]
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i:]
	}
	if port != "" && (port[0] != ':' || strings.Trim(port[1:], "0123456789") != "") {
		return "", false
	}
	return host, host != ""
}

// equalFoldASCII reports whether s equals lower, which is in lower case,
// when ASCII letters of s are folded to lower case (and nothing else is).
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

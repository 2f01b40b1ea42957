package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// mode is how the Redis named by a URL is deployed.
type mode uint8

const (
	standalone mode = iota + 1
	sentinel
	cluster
)

// Default ports: Redis's and Sentinel's.
const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
)

// target is a parsed Redis URL.
type target struct {
	mode     mode
	tls      bool
	addrs    []string // host:port, as net.JoinHostPort writes them; one for standalone
	username string   // ACL user; "" for the default user
	password string   // "" for none
	db       int      // logical database; always 0 in cluster mode
	master   string   // the Sentinel master set name
}

// schemes maps every accepted URL scheme to its mode and whether it uses
// TLS.
var schemes = map[string]struct {
	mode mode
	tls  bool
}{
	"redis":           {standalone, false},
	"rediss":          {standalone, true},
	"redis-sentinel":  {sentinel, false},
	"rediss-sentinel": {sentinel, true},
	"redis-cluster":   {cluster, false},
	"rediss-cluster":  {cluster, true},
}

// parseURL parses a Redis URL (see New for the forms). It is given
// configuration, which can be wrong in any way: its errors say what is
// wrong, and never repeat the password.
func parseURL(raw string) (target, error) {
	var t target
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return t, errors.New(`no scheme: want redis://, rediss://, redis-sentinel:// or redis-cluster://`)
	}
	s, ok := schemes[strings.ToLower(scheme)]
	if !ok && strings.ContainsAny(scheme, ":@") {
		// "user:password@host://...": not a scheme, and not to be quoted.
		return t, errors.New(`no scheme before "://": want redis://, rediss://, redis-sentinel:// or redis-cluster://`)
	}
	if !ok {
		return t, fmt.Errorf("unknown scheme %q: want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster", scheme)
	}
	t.mode, t.tls = s.mode, s.tls
	if strings.ContainsAny(rest, "?#") {
		return t, errors.New("query parameters and fragments are not supported: put everything in the path (see the store/redis documentation)")
	}

	// The authority ends at the first slash; the password may contain one
	// only percent-encoded, as in any URL.
	authority, path, _ := strings.Cut(rest, "/")
	if strings.Contains(path, "@") {
		// "redis://u:pa/ss@host": the authority ends in the password, and
		// the host error would quote the part before the slash.
		return t, errors.New("an @ after the first /: percent-encode a / in the password as %2F")
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if err := t.parseUserinfo(authority[:i]); err != nil {
			return t, err
		}
		authority = authority[i+1:]
	}
	if err := t.parseHosts(authority); err != nil {
		return t, err
	}
	if err := t.parsePath(path); err != nil {
		return t, err
	}
	return t, nil
}

// parseUserinfo parses "user:password", ":password" or "user", each part
// percent-encoded.
func (t *target) parseUserinfo(info string) error {
	user, pass, hasPass := strings.Cut(info, ":")
	var err error
	if t.username, err = url.PathUnescape(user); err != nil {
		return errors.New("the user name has a bad percent-encoding")
	}
	if t.password, err = url.PathUnescape(pass); err != nil {
		// Never quote the password, not even its bad encoding.
		return errors.New("the password has a bad percent-encoding")
	}
	if hasPass && t.password == "" {
		return errors.New("empty password after the colon: leave out the colon for no password")
	}
	if !hasPass && t.username == "" {
		return errors.New("empty user name before the @")
	}
	return nil
}

// parseHosts parses the comma-separated host[:port] list.
func (t *target) parseHosts(list string) error {
	if list == "" {
		return errors.New("no host: want host:port after the scheme")
	}
	port := defaultPort
	if t.mode == sentinel {
		port = defaultSentinelPort
	}
	hosts := strings.Split(list, ",")
	if t.mode == standalone && len(hosts) > 1 {
		return fmt.Errorf("%d hosts in a standalone URL: list several only with redis-sentinel:// or redis-cluster://", len(hosts))
	}
	for i, h := range hosts {
		addr, err := parseHost(h, port)
		if err != nil {
			if len(hosts) > 1 {
				return fmt.Errorf("host %d of %d: %w", i+1, len(hosts), err)
			}
			return err
		}
		if slices.Contains(t.addrs, addr) {
			return fmt.Errorf("host %s listed twice", addr)
		}
		t.addrs = append(t.addrs, addr)
	}
	return nil
}

// parseHost parses host, host:port, [v6] or [v6]:port, and returns it as
// net.JoinHostPort writes it.
func parseHost(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty host (two commas in a row, or a comma at an end?)")
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("host %q: no closing ] after an IPv6 address", h)
		}
		host = h[1:end]
		switch after := h[end+1:]; {
		case after == "":
		case after[0] == ':':
			port = after[1:]
		default:
			return "", fmt.Errorf("host %q: want :port after the ]", h)
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", fmt.Errorf("host %q: %q in brackets is not an IPv6 address", h, host)
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", fmt.Errorf("host %q: put an IPv6 address in brackets, as [::1]:6379", h)
		}
	}
	if host == "" {
		return "", fmt.Errorf("host %q: empty host name", h)
	}
	for _, c := range []byte(host) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return "", fmt.Errorf("host %q: character %q is not allowed in a host name", h, c)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
		return "", fmt.Errorf("host %q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

// parsePath parses what follows the hosts: "/db" for standalone,
// "/master[/db]" for Sentinel, nothing for cluster.
func (t *target) parsePath(path string) error {
	var db string
	switch t.mode {
	case standalone:
		db = path
	case sentinel:
		var err error
		master, rest, _ := strings.Cut(path, "/")
		if t.master, err = url.PathUnescape(master); err != nil || t.master == "" {
			return errors.New("no master name: want redis-sentinel://host:port,.../mastername")
		}
		db = rest
	case cluster:
		if path != "" {
			return fmt.Errorf("path /%s in a cluster URL: Redis Cluster has no databases but 0, and no other path is meaningful", path)
		}
	}
	if db == "" {
		return nil
	}
	n, err := strconv.Atoi(db)
	if err != nil || n < 0 || n > 1<<20 || (len(db) > 1 && db[0] == '0') || db[0] == '+' {
		return fmt.Errorf("database %q: want a database number, as /0", db)
	}
	t.db = n
	return nil
}

// String returns the URL of t with the password left out, for messages.
func (t target) String() string {
	scheme := ""
	for name, s := range schemes {
		if s.mode == t.mode && s.tls == t.tls {
			scheme = name
		}
	}
	var b strings.Builder
	b.WriteString(scheme + "://")
	if t.username != "" || t.password != "" {
		b.WriteString(escape(t.username))
		if t.password != "" {
			b.WriteString(":xxxxx")
		}
		b.WriteByte('@')
	}
	b.WriteString(strings.Join(t.addrs, ","))
	if t.mode == sentinel {
		b.WriteString("/" + escape(t.master))
	}
	if t.db != 0 {
		b.WriteString("/" + strconv.Itoa(t.db))
	}
	return b.String()
}

// escape percent-encodes every byte of s but the unreserved ones of RFC
// 3986, so that parseURL reads s back whatever it holds.
func escape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

package redis

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

var urlTests = []struct {
	name, url string
	want      target
}{
	{"host and port", "redis://127.0.0.1:6379", target{mode: standalone, addrs: []string{"127.0.0.1:6379"}}},
	{"default port", "redis://redis.internal", target{mode: standalone, addrs: []string{"redis.internal:6379"}}},
	{"database", "redis://localhost:6380/2", target{mode: standalone, addrs: []string{"localhost:6380"}, db: 2}},
	{"database 0", "redis://localhost/0", target{mode: standalone, addrs: []string{"localhost:6379"}}},
	{"trailing slash", "redis://localhost/", target{mode: standalone, addrs: []string{"localhost:6379"}}},
	{"password only", "redis://:s3cret@localhost", target{mode: standalone, addrs: []string{"localhost:6379"}, password: "s3cret"}},
	{"ACL user", "redis://tether:s3cret@localhost", target{mode: standalone, addrs: []string{"localhost:6379"}, username: "tether", password: "s3cret"}},
	{"user without password", "redis://tether@localhost", target{mode: standalone, addrs: []string{"localhost:6379"}, username: "tether"}},
	{"encoded password", "redis://u:p%40ss%3Aw%2Frd@localhost/1", target{mode: standalone, addrs: []string{"localhost:6379"}, username: "u", password: "p@ss:w/rd", db: 1}},
	{"raw @ in password", "redis://u:p@ss@localhost", target{mode: standalone, addrs: []string{"localhost:6379"}, username: "u", password: "p@ss"}},
	{"IPv6", "redis://[::1]:7000", target{mode: standalone, addrs: []string{"[::1]:7000"}}},
	{"IPv6 default port", "redis://[2001:db8::1]", target{mode: standalone, addrs: []string{"[2001:db8::1]:6379"}}},
	{"TLS", "rediss://cache.example.com:6380", target{mode: standalone, tls: true, addrs: []string{"cache.example.com:6380"}}},
	{"scheme in capitals", "REDIS://localhost", target{mode: standalone, addrs: []string{"localhost:6379"}}},
	{"sentinel", "redis-sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster", target{mode: sentinel, addrs: []string{"10.0.0.1:26379", "10.0.0.2:26380"}, master: "mymaster"}},
	{"sentinel default port", "redis-sentinel://s1,s2,s3/tether", target{mode: sentinel, addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, master: "tether"}},
	{"sentinel with database", "redis-sentinel://:pw@s1/tether/3", target{mode: sentinel, addrs: []string{"s1:26379"}, master: "tether", password: "pw", db: 3}},
	{"sentinel over TLS", "rediss-sentinel://s1/m", target{mode: sentinel, tls: true, addrs: []string{"s1:26379"}, master: "m"}},
	{"cluster", "redis-cluster://u:pw@n1:7000,n2:7001,[::1]:7002", target{mode: cluster, addrs: []string{"n1:7000", "n2:7001", "[::1]:7002"}, username: "u", password: "pw"}},
	{"cluster of one seed", "redis-cluster://n1", target{mode: cluster, addrs: []string{"n1:6379"}}},
	{"cluster over TLS", "rediss-cluster://n1:7000", target{mode: cluster, tls: true, addrs: []string{"n1:7000"}}},
}

func TestParseURL(t *testing.T) {
	for _, tc := range urlTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseURL(tc.url)
			if err != nil {
				t.Fatalf("parseURL(%q): %v", tc.url, err)
			}
			if !equalTarget(got, tc.want) {
				t.Errorf("parseURL(%q): got %+v, want %+v", tc.url, got, tc.want)
			}
		})
	}
}

func equalTarget(a, b target) bool {
	return a.mode == b.mode && a.tls == b.tls && slices.Equal(a.addrs, b.addrs) && a.username == b.username &&
		a.password == b.password && a.db == b.db && a.master == b.master
}

var badURLTests = []struct {
	name, url string
	want      string // in the error
}{
	{"empty", "", "no scheme"},
	{"no scheme", "localhost:6379", "no scheme"},
	{"unknown scheme", "http://localhost", `unknown scheme "http"`},
	{"unix socket", "unix:///run/redis.sock", `unknown scheme "unix"`},
	{"no host", "redis://", "no host"},
	{"no host after credentials", "redis://:pw@/0", "no host"},
	{"query", "redis://localhost?db=1", "query parameters"},
	{"fragment", "redis://localhost#x", "fragments"},
	{"port not a number", "redis://localhost:http", `port "http"`},
	{"port zero", "redis://localhost:0", `port "0"`},
	{"port too large", "redis://localhost:65536", `port "65536"`},
	{"port with a sign", "redis://localhost:+80", `port "+80"`},
	{"empty port", "redis://localhost:", `port ""`},
	{"bare IPv6", "redis://::1:6379", "brackets"},
	{"unclosed bracket", "redis://[::1:6379", "no closing ]"},
	{"junk after bracket", "redis://[::1]x", "want :port"},
	{"IPv4 in brackets", "redis://[127.0.0.1]:6379", "not an IPv6 address"},
	{"space in host", "redis://local host", "not allowed"},
	{"two standalone hosts", "redis://a,b", "2 hosts in a standalone URL"},
	{"empty host in list", "redis-cluster://a,,b", "host 2 of 3: empty host"},
	{"host twice", "redis-cluster://a:1,a:1", "listed twice"},
	{"database not a number", "redis://localhost/cache", `database "cache"`},
	{"negative database", "redis://localhost/-1", `database "-1"`},
	{"database with leading zero", "redis://localhost/01", `database "01"`},
	{"database and more path", "redis://localhost/1/2", `database "1/2"`},
	{"sentinel without master", "redis-sentinel://s1", "no master name"},
	{"sentinel with empty master", "redis-sentinel://s1/", "no master name"},
	{"sentinel bad database", "redis-sentinel://s1/m/x", `database "x"`},
	{"cluster with database", "redis-cluster://n1/0", "Redis Cluster has no databases"},
	{"empty password", "redis://u:@localhost", "empty password"},
	{"empty user", "redis://@localhost", "empty user name"},
	{"bad user encoding", "redis://%zz:pw@localhost", "user name has a bad percent-encoding"},
	{"bad password encoding", "redis://u:%zzsecret@localhost", "password has a bad percent-encoding"},
	{"credentials before the scheme", "u:secret@localhost://x", `no scheme before "://"`},
	{"slash in the password", "redis://u:sec/ret@localhost", "percent-encode a / in the password"},
	{"slash in the password, sentinel", "redis-sentinel://:se/cret@s1/m", "percent-encode a / in the password"},
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range badURLTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseURL(tc.url)
			if err == nil {
				t.Fatalf("parseURL(%q): got %+v, want an error", tc.url, got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseURL(%q): got error %q, want it to say %q", tc.url, err, tc.want)
			}
			if leaksPassword(tc.url, err.Error()) {
				t.Errorf("parseURL(%q): error %q repeats the password", tc.url, err)
			}
		})
	}
}

// New says the URL is bad, and never repeats the password (it might be
// logged).
func TestNewBadURL(t *testing.T) {
	const url = "redis://admin:hunter2hunter2@localhost:99999"
	_, err := New(t.Context(), url, Options{})
	if !errors.Is(err, ErrBadURL) {
		t.Fatalf("New(%q): got error %v, want %v", url, err, ErrBadURL)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New(%q): got error %q, which repeats the password", url, err)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range urlTests {
		if err := CheckURL(tc.url); err != nil {
			t.Errorf("CheckURL(%q): %v", tc.url, err)
		}
	}
	for _, tc := range badURLTests {
		if err := CheckURL(tc.url); !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckURL(%q): got error %v, want %v saying %q", tc.url, err, ErrBadURL, tc.want)
		}
	}
}

func TestTargetString(t *testing.T) {
	tests := []struct{ url, want string }{
		{"redis://:s3cret@localhost/2", "redis://:xxxxx@localhost:6379/2"},
		{"rediss://u:pw@h:1", "rediss://u:xxxxx@h:1"},
		{"redis-sentinel://u@s1,s2:1/m/1", "redis-sentinel://u@s1:26379,s2:1/m/1"},
		{"redis-cluster://[::1]:7000,n:7001", "redis-cluster://[::1]:7000,n:7001"},
	}
	for _, tc := range tests {
		tg, err := parseURL(tc.url)
		if err != nil {
			t.Fatalf("parseURL(%q): %v", tc.url, err)
		}
		if got := tg.String(); got != tc.want {
			t.Errorf("String of %q: got %q, want %q", tc.url, got, tc.want)
		}
	}
}

// A URL is configuration, typed by hand: whatever it is, parseURL answers
// a target that says the same again, or an error that doesn't repeat the
// password.
func FuzzParseURL(f *testing.F) {
	for _, tc := range urlTests {
		f.Add(tc.url)
	}
	for _, tc := range badURLTests {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, url string) {
		tg, err := parseURL(url)
		if err != nil {
			if leaksPassword(url, err.Error()) {
				t.Errorf("parseURL(%q): error %q repeats the password", url, err)
			}
			return
		}
		if len(tg.addrs) == 0 || (tg.mode == standalone && len(tg.addrs) != 1) || (tg.mode == cluster && tg.db != 0) ||
			(tg.mode == sentinel) != (tg.master != "") || tg.db < 0 {
			t.Fatalf("parseURL(%q): got %+v", url, tg)
		}
		// The redacted form parses to the same, but for the password.
		again, err := parseURL(tg.String())
		if err != nil {
			t.Fatalf("parseURL(%q) of parseURL(%q): %v", tg.String(), url, err)
		}
		if tg.password != "" {
			again.password = tg.password
		}
		if !equalTarget(again, tg) {
			t.Errorf("parseURL(%q): got %+v; its String %q parses to %+v", url, tg, tg.String(), again)
		}
	})
}

// leaksPassword reports whether msg repeats the password of url, or a part
// of it between slashes of 4 bytes or more: what a person meant as the
// password is everything between the first colon after the scheme and the
// last @, unencoded slashes included.
func leaksPassword(url, msg string) bool {
	_, rest, _ := strings.Cut(url, "://")
	i := strings.LastIndexByte(rest, '@')
	if i < 0 {
		return false
	}
	_, pw, _ := strings.Cut(rest[:i], ":")
	for part := range strings.SplitSeq(pw, "/") {
		if len(part) >= 4 && strings.Contains(msg, part) {
			return true
		}
	}
	return false
}

package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/server"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/redis"
)

var defaultConfig = config{
	Addr:            "127.0.0.1:8080",
	Data:            "./tether.db",
	IdleTimeout:     30 * time.Minute,
	AbsoluteTimeout: 12 * time.Hour,
	MinPassword:     8,
	MaxSessions:     100,
	MaxStaleness:    time.Second,
	LogLevel:        slog.LevelInfo,
	LogFormat:       "text",
	StoreTimeout:    time.Second,
	TokenMaxTTL:     time.Hour,
	KeyRotation:     720 * time.Hour,
	KeyAlg:          "EdDSA",
	PATMaxTTL:       8760 * time.Hour,
}

// with returns the default config changed by f.
func with(f func(c *config)) config {
	c := defaultConfig
	f(&c)
	return c
}

// getenvFrom returns a getenv over env.
func getenvFrom(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// parseServe parses args and env as tether serve does.
func parseServe(args []string, env map[string]string) (config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, rest, err := parseConfig(fs, args, getenvFrom(env), allSettings...)
	if err == nil && len(rest) > 0 {
		err = errors.New("arguments left: " + strings.Join(rest, " "))
	}
	return c, err
}

var parseTests = []struct {
	name string
	args []string
	env  map[string]string
	want config
	// wantErr lists the settings the error must name, one a line, in this
	// order; nil means no error.
	wantErr []string
}{
	{name: "defaults", want: defaultConfig},
	{
		name: "flags",
		args: []string{"--addr", "127.0.0.1:0", "--hosts", "localhost, [::1]", "--data=/tmp/x.db", "--idle-timeout", "5m", "--absolute-timeout", "1h",
			"--min-password", "15", "--max-sessions", "5", "--trusted-proxies", "10.0.0.0/8, 192.0.2.1,2001:db8::/32", "--log-level", "debug", "--log-format", "json", "--max-staleness", "2s", "--store-timeout", "2s"},
		want: config{
			Addr: "127.0.0.1:0", Hosts: []string{"localhost", "[::1]"}, Data: "/tmp/x.db", IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour, MinPassword: 15, MaxSessions: 5, MaxStaleness: 2 * time.Second,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")},
			LogLevel:       slog.LevelDebug, LogFormat: "json", StoreTimeout: 2 * time.Second,
			TokenMaxTTL: time.Hour, KeyRotation: 720 * time.Hour, KeyAlg: "EdDSA", PATMaxTTL: 8760 * time.Hour,
		},
	},
	{
		name: "environment",
		env: map[string]string{"TETHER_ADDR": ":9000", "TETHER_HOSTS": "auth.example.com,192.0.2.7", "TETHER_DATA": "env.db", "TETHER_IDLE_TIMEOUT": "10m",
			"TETHER_ABSOLUTE_TIMEOUT": "2h", "TETHER_MIN_PASSWORD": "12", "TETHER_TRUSTED_PROXIES": "::1",
			"TETHER_LOG_LEVEL": "warn", "TETHER_LOG_FORMAT": "json", "TETHER_MAX_SESSIONS": "10000", "TETHER_STORE_TIMEOUT": "300ms"},
		want: config{
			Addr: ":9000", Hosts: []string{"auth.example.com", "192.0.2.7"}, Data: "env.db", IdleTimeout: 10 * time.Minute, AbsoluteTimeout: 2 * time.Hour, MinPassword: 12, MaxSessions: 10000, MaxStaleness: time.Second,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::1/128")}, LogLevel: slog.LevelWarn, LogFormat: "json",
			StoreTimeout: 300 * time.Millisecond,
			TokenMaxTTL:  time.Hour, KeyRotation: 720 * time.Hour, KeyAlg: "EdDSA", PATMaxTTL: 8760 * time.Hour,
		},
	},
	{
		name: "flags win over the environment",
		args: []string{"--data", "flag.db", "--trusted-proxies="},
		env:  map[string]string{"TETHER_DATA": "env.db", "TETHER_TRUSTED_PROXIES": "10.0.0.0/8", "TETHER_MIN_PASSWORD": "20"},
		want: with(func(c *config) { c.Data, c.MinPassword = "flag.db", 20 }),
	},
	{
		name: "allowed hosts from the flag",
		args: []string{"--allowed-hosts", "app.example.com, [::1]"},
		want: with(func(c *config) { c.AllowedHosts = []string{"app.example.com", "[::1]"} }),
	},
	{
		name: "allowed hosts from the environment",
		env:  map[string]string{"TETHER_ALLOWED_HOSTS": "app.example.com,docs.example.com"},
		want: with(func(c *config) { c.AllowedHosts = []string{"app.example.com", "docs.example.com"} }),
	},
	{
		name: "assertion audiences",
		env:  map[string]string{"TETHER_ASSERTION_AUDIENCES": "https://app.example.com, wiki"},
		want: with(func(c *config) { c.Assertions = []string{"https://app.example.com", "wiki"} }),
	},
	{
		name:    "an allowed host is a host, not a URL",
		args:    []string{"--allowed-hosts", "https://app.example.com/"},
		wantErr: []string{"--allowed-hosts"},
	},
	{
		name: "an empty variable is unset",
		env:  map[string]string{"TETHER_DATA": ""},
		want: defaultConfig,
	},
	{
		name: "every problem at once",
		args: []string{"--addr", "localhost", "--hosts", "auth.example.com:443", "--data", "", "--idle-timeout", "soon", "--absolute-timeout", "-1h",
			"--min-password", "7", "--max-sessions", "10001", "--trusted-proxies", "10.0.0.1/8", "--log-format", "xml"},
		env: map[string]string{"TETHER_LOG_LEVEL": "loud"},
		wantErr: []string{"--addr", "--hosts", "--data", "--idle-timeout", "--absolute-timeout", "--max-sessions", "--min-password",
			"--trusted-proxies", "--log-level", "--log-format"},
	},
	{
		name:    "absolute timeout shorter than idle",
		env:     map[string]string{"TETHER_IDLE_TIMEOUT": "2h", "TETHER_ABSOLUTE_TIMEOUT": "1h"},
		wantErr: []string{"--absolute-timeout"},
	},
	{
		name:    "zero timeouts",
		args:    []string{"--idle-timeout", "0s", "--absolute-timeout=0"},
		wantErr: []string{"--idle-timeout", "--absolute-timeout"},
	},
	{
		name:    "one problem per setting",
		args:    []string{"--min-password", "eight", "--absolute-timeout", "1m"},
		wantErr: []string{"--absolute-timeout", "--min-password"},
	},
	{name: "min password too long", args: []string{"--min-password", "65"}, wantErr: []string{"--min-password"}},
	{name: "min password 64", args: []string{"--min-password", "64"}, want: with(func(c *config) { c.MinPassword = 64 })},
	{name: "port out of range", args: []string{"--addr", "127.0.0.1:65536"}, wantErr: []string{"--addr"}},
	{name: "named port", args: []string{"--addr", "127.0.0.1:http"}, wantErr: []string{"--addr"}},
	{name: "bad proxy", args: []string{"--trusted-proxies", "10.0.0.0/8,proxy.internal"}, wantErr: []string{"--trusted-proxies"}},
	{
		name: "proxies: every bad entry at once",
		args: []string{"--trusted-proxies", "1.2.3,foo,10.0.0.0/8"},
		wantErr: []string{`--trusted-proxies (TETHER_TRUSTED_PROXIES) "1.2.3,foo,10.0.0.0/8": "1.2.3" is neither an IP address nor a CIDR prefix such as 10.0.0.0/8; ` +
			`"foo" is neither an IP address nor a CIDR prefix such as 10.0.0.0/8`},
	},
	{
		name: "stores elsewhere",
		args: []string{"--sessions", "redis-sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/main", "--redis-min-replicas", "1",
			"--accounts", "postgres://tether@127.0.0.1/tether", "--node-name", "node-a", "--redis-prefix", "staging:"},
		want: with(func(c *config) {
			c.Sessions, c.MinReplicas = "redis-sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/main", 1
			c.Accounts, c.NodeName, c.RedisPrefix = "postgres://tether@127.0.0.1/tether", "node-a", "staging:"
		}),
	},
	{
		name:    "stores: every problem at once",
		args:    []string{"--sessions", "memcached://127.0.0.1", "--accounts", "mysql://u:secret@db/x", "--redis-min-replicas", "-1", "--node-name", "a\nb"},
		wantErr: []string{"--sessions", "--accounts", "--redis-min-replicas", "--node-name"},
	},
	{
		name: "sessions and accounts in postgres",
		args: []string{"--sessions", "postgres://tether@127.0.0.1/tether", "--accounts", "postgres://tether@127.0.0.1/tether"},
		want: with(func(c *config) {
			c.Sessions, c.Accounts = "postgres://tether@127.0.0.1/tether", "postgres://tether@127.0.0.1/tether"
		}),
	},
	{
		name:    "postgres URLs checked before connecting",
		args:    []string{"--sessions", "postgres://u:hunter2@db:99999/x", "--accounts", "postgresql://db/x?sslmode=bogus"},
		wantErr: []string{`--sessions (TETHER_SESSIONS) cannot parse ` + "`postgres://u:xxxxx@db:99999/x`: invalid port", "--accounts (TETHER_ACCOUNTS) cannot parse"},
	},
	{
		name:    "redis settings with sessions in postgres",
		args:    []string{"--sessions", "postgresql://db/tether", "--redis-min-replicas", "1", "--redis-prefix", "x:"},
		wantErr: []string{"--redis-min-replicas", "--redis-prefix"},
	},
	{name: "SES14 max staleness", args: []string{"--max-staleness", "400ms"}, want: with(func(c *config) { c.MaxStaleness = 400 * time.Millisecond })},
	{name: "SES14 max staleness from the environment", env: map[string]string{"TETHER_MAX_STALENESS": "10s"}, want: with(func(c *config) { c.MaxStaleness = 10 * time.Second })},
	{name: "SES14 max staleness too short", args: []string{"--max-staleness", "399ms"}, wantErr: []string{"--max-staleness (TETHER_MAX_STALENESS) 399ms: must be from 400ms to 10s"}},
	{name: "SES14 max staleness too long", args: []string{"--max-staleness", "1m"}, wantErr: []string{"--max-staleness"}},
	{name: "SES14 max staleness not a duration", args: []string{"--max-staleness", "1"}, wantErr: []string{"--max-staleness"}},
	{name: "token settings", args: []string{"--issuer", "https://auth.example.com/", "--token-max-ttl", "10m", "--key-rotation", "0", "--key-alg", "ES256"},
		want: with(func(c *config) {
			c.Issuer, c.TokenMaxTTL, c.KeyRotation, c.KeyAlg = "https://auth.example.com/", 10*time.Minute, 0, "ES256"
		})},
	{name: "pat max ttl", args: []string{"--pat-max-ttl", "720h"}, want: with(func(c *config) { c.PATMaxTTL = 720 * time.Hour })},
	{name: "pat max ttl too short", args: []string{"--pat-max-ttl", "23h"}, wantErr: []string{"--pat-max-ttl (TETHER_PAT_MAX_TTL) 23h0m0s: must be at least 24h"}},
	{name: "issuer over http on loopback", env: map[string]string{"TETHER_ISSUER": "http://127.0.0.1:8080"}, want: with(func(c *config) { c.Issuer = "http://127.0.0.1:8080" })},
	{name: "token settings: every problem at once",
		args:    []string{"--issuer", "http://auth.example.com", "--token-max-ttl", "25h", "--key-rotation", "30m", "--key-alg", "RS256"},
		wantErr: []string{"--issuer (TETHER_ISSUER) \"http://auth.example.com\": must be https (http only on a loopback host)", "--token-max-ttl (TETHER_TOKEN_MAX_TTL) 25h0m0s: must be from 1m0s to 24h0m0s", "--key-rotation", "--key-alg (TETHER_KEY_ALG) \"RS256\": want EdDSA or ES256"}},
	{name: "issuer with a query", args: []string{"--issuer", "https://auth.example.com/?x=1"}, wantErr: []string{"--issuer (TETHER_ISSUER) \"https://auth.example.com/?x=1\": must be an https URL with a host and no user, query or fragment"}},
	{name: "issuer not a URL", args: []string{"--issuer", "auth.example.com"}, wantErr: []string{"--issuer (TETHER_ISSUER) \"auth.example.com\": must be an https URL"}},
	{name: "min replicas without redis", args: []string{"--redis-min-replicas", "2"}, wantErr: []string{"--redis-min-replicas"}},
	{name: "redis prefix without redis", args: []string{"--redis-prefix", "x:"}, wantErr: []string{"--redis-prefix"}},
	{
		name:    "redis prefix with a hash tag",
		args:    []string{"--sessions", "redis://127.0.0.1:6379/0", "--redis-prefix", "{x}:"},
		wantErr: []string{"--redis-prefix"},
	},
	{
		name:    "hosts: every bad entry at once",
		args:    []string{"--hosts", "good.example, auth.example.com:443,*.example.com , https://auth.example.com,auth.example.com.,127.1,::1"},
		wantErr: []string{`--hosts (TETHER_HOSTS) "good.example, auth.example.com:443,*.example.com , https://auth.example.com,auth.example.com.,127.1,::1": "auth.example.com:443" has a port: leave it out, a Host matches whatever its port; "*.example.com" has a wildcard`},
	},
	{
		name: "hosts: spaces and empty entries",
		args: []string{"--hosts", " auth.example.com ,, 192.0.2.7,"},
		want: with(func(c *config) { c.Hosts = []string{"auth.example.com", "192.0.2.7"} }),
	},
	{name: "hosts: only commas is none", args: []string{"--hosts", " , "}, want: defaultConfig},
	{name: "beyond loopback: all IPv4 interfaces", args: []string{"--addr", "0.0.0.0:8080"}, wantErr: []string{"--hosts (TETHER_HOSTS) empty, and --addr 0.0.0.0:8080 listens beyond loopback"}},
	{name: "beyond loopback: every interface", env: map[string]string{"TETHER_ADDR": ":8080"}, wantErr: []string{"--hosts"}},
	{name: "beyond loopback: all IPv6 interfaces", args: []string{"--addr", "[::]:8080"}, wantErr: []string{"--hosts"}},
	{name: "beyond loopback: one address", args: []string{"--addr", "10.0.0.11:8080"}, wantErr: []string{"--hosts"}},
	{name: "beyond loopback: a name", args: []string{"--addr", "tether.internal:8080"}, wantErr: []string{"--hosts"}},
	{name: "beyond loopback: only commas", args: []string{"--addr", "0.0.0.0:8080", "--hosts", ","}, wantErr: []string{"--hosts"}},
	{
		name: "beyond loopback with hosts",
		args: []string{"--addr", "0.0.0.0:8080", "--hosts", "auth.example.com"},
		want: with(func(c *config) { c.Addr, c.Hosts = "0.0.0.0:8080", []string{"auth.example.com"} }),
	},
	{name: "loopback: localhost", args: []string{"--addr", "LocalHost:8080"}, want: with(func(c *config) { c.Addr = "LocalHost:8080" })},
	{name: "loopback: another address", args: []string{"--addr", "127.0.0.2:8080"}, want: with(func(c *config) { c.Addr = "127.0.0.2:8080" })},
	{name: "loopback: IPv6", args: []string{"--addr", "[::1]:0"}, want: with(func(c *config) { c.Addr = "[::1]:0" })},
	{name: "store timeout", args: []string{"--store-timeout", "250ms"}, want: with(func(c *config) { c.StoreTimeout = 250 * time.Millisecond })},
	{name: "store timeout: lowest", env: map[string]string{"TETHER_STORE_TIMEOUT": "10ms"}, want: with(func(c *config) { c.StoreTimeout = 10 * time.Millisecond })},
	{name: "store timeout: highest", args: []string{"--store-timeout=5s"}, want: with(func(c *config) { c.StoreTimeout = 5 * time.Second })},
	{name: "store timeout: too short", args: []string{"--store-timeout", "9ms"}, wantErr: []string{"--store-timeout (TETHER_STORE_TIMEOUT) 9ms: must be from 10ms to 5s"}},
	{name: "store timeout: too long", args: []string{"--store-timeout", "5001ms"}, wantErr: []string{"--store-timeout"}},
	{name: "store timeout: zero", args: []string{"--store-timeout", "0"}, wantErr: []string{"--store-timeout"}},
	{name: "store timeout: no unit", args: []string{"--store-timeout", "1"}, wantErr: []string{"--store-timeout"}},
	{
		name: "redis accept risk",
		args: []string{"--sessions", "redis://127.0.0.1:6379/0", "--redis-accept-risk", " eviction,,replicas ,persistence"},
		want: with(func(c *config) {
			c.Sessions, c.AcceptRisks = "redis://127.0.0.1:6379/0", []string{riskEviction, riskReplicas, riskPersistence}
		}),
	},
	{
		name: "redis accept risk from the environment",
		env:  map[string]string{"TETHER_SESSIONS": "redis://127.0.0.1:6379/0", "TETHER_REDIS_ACCEPT_RISK": "persistence"},
		want: with(func(c *config) { c.Sessions, c.AcceptRisks = "redis://127.0.0.1:6379/0", []string{riskPersistence} }),
	},
	{name: "redis accept risk: only commas is none", args: []string{"--redis-accept-risk", ","}, want: defaultConfig},
	{
		name: "redis accept risk: every bad entry at once",
		args: []string{"--sessions", "redis://127.0.0.1:6379/0", "--redis-accept-risk", "eviction,all,Eviction,eviction"},
		wantErr: []string{`--redis-accept-risk (TETHER_REDIS_ACCEPT_RISK) "eviction,all,Eviction,eviction": "all" is not a risk; "Eviction" is not a risk; ` +
			`"eviction" is named twice: want some of persistence, eviction, replicas`},
	},
	{name: "redis accept risk without redis", args: []string{"--redis-accept-risk", "eviction"}, wantErr: []string{"--redis-accept-risk"}},
	{
		name: "cookie domain",
		args: []string{"--hosts", "auth.example.com,App.Example.com", "--cookie-domain", "example.com"},
		want: with(func(c *config) {
			c.Hosts, c.CookieDomain = []string{"auth.example.com", "App.Example.com"}, "example.com"
		}),
	},
	{
		name: "cookie domain from the environment",
		env:  map[string]string{"TETHER_HOSTS": "example.com", "TETHER_COOKIE_DOMAIN": "example.com"},
		want: with(func(c *config) { c.Hosts, c.CookieDomain = []string{"example.com"}, "example.com" }),
	},
	{name: "cookie domain: public suffix", args: []string{"--hosts", "auth.example.co.uk", "--cookie-domain", "co.uk"},
		wantErr: []string{`--cookie-domain (TETHER_COOKIE_DOMAIN) "co.uk" is a public suffix`}},
	{name: "cookie domain: leading dot", args: []string{"--hosts", "auth.example.com", "--cookie-domain", ".example.com"},
		wantErr: []string{`--cookie-domain (TETHER_COOKIE_DOMAIN) ".example.com" starts with a dot`}},
	{name: "cookie domain: IP address", args: []string{"--hosts", "192.0.2.7", "--cookie-domain", "192.0.2.7"},
		wantErr: []string{`--cookie-domain (TETHER_COOKIE_DOMAIN) "192.0.2.7" is an IP address`}},
	{name: "cookie domain: not a host name", args: []string{"--hosts", "auth.example.com", "--cookie-domain", "example.com:443"},
		wantErr: []string{`--cookie-domain (TETHER_COOKIE_DOMAIN) "example.com:443" is not a host name`}},
	{name: "cookie domain: no hosts", env: map[string]string{"TETHER_COOKIE_DOMAIN": "example.com"},
		wantErr: []string{`--cookie-domain (TETHER_COOKIE_DOMAIN) "example.com": needs --hosts`}},
	{name: "cookie domain: hosts outside it", args: []string{"--hosts", "auth.example.com,auth.example.org,badexample.com,::1", "--cookie-domain", "example.com"},
		wantErr: []string{`--cookie-domain (TETHER_COOKIE_DOMAIN) "example.com" does not cover --hosts auth.example.org, badexample.com, ::1`}},
	{name: "unknown flag", args: []string{"--nope"}, wantErr: []string{"flag provided but not defined"}},
	{name: "argument", args: []string{"extra"}, wantErr: []string{"arguments left"}},
	{name: "tls", args: []string{"--tls-cert", "cert.pem", "--tls-key", "key.pem"}, want: with(func(c *config) { c.TLSCert, c.TLSKey = "cert.pem", "key.pem" })},
	{name: "tls from env", env: map[string]string{"TETHER_TLS_CERT": "/etc/c.pem", "TETHER_TLS_KEY": "/etc/k.pem"}, want: with(func(c *config) { c.TLSCert, c.TLSKey = "/etc/c.pem", "/etc/k.pem" })},
	{name: "tls: cert without key", args: []string{"--tls-cert", "cert.pem"}, wantErr: []string{"--tls-key (TETHER_TLS_KEY) empty, but --tls-cert is set: give both, or neither"}},
	{name: "tls: key without cert", env: map[string]string{"TETHER_TLS_KEY": "key.pem"}, wantErr: []string{"--tls-cert (TETHER_TLS_CERT) empty, but --tls-key is set"}},
}

// Every bad entry of --hosts is named, with what is wrong with it.
func TestParseConfigNamesEveryBadHost(t *testing.T) {
	_, err := parseServe(nil, map[string]string{"TETHER_HOSTS": "a:1, ok.example,b/c,d..e,\"f\",bücher.example"})
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{`"a:1" has a port`, `"b/c" is not a host name`, `"d..e" has an empty label`, `"\"f\"" has '"'`, `"bücher.example" is not ASCII`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %s", err, want)
		}
	}
	if _, after, _ := strings.Cut(err.Error(), ": "); strings.Contains(after, `"ok.example"`) {
		t.Errorf("got %q, which names the good entry ok.example as bad", err)
	}
}

// Every bad entry of a list is named, with what is wrong with it; good
// entries are kept in order, white space and empty entries ignored.
func TestParseLists(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // the entries parsed, as strings
		wantErr  string
	}{
		{"proxies", " 10.0.0.0/8 ,, 192.0.2.7,2001:db8::/32,", []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}, ""},
		{"proxies", "", nil, ""},
		{"proxies", "1.2.3,foo,10.0.0.0/8", nil, `"1.2.3" is neither an IP address nor a CIDR prefix such as 10.0.0.0/8; "foo" is neither`},
		{"proxies", "10.0.0.1/8, 10.1.0.0/8", nil, `"10.0.0.1/8" has bits set past /8: did you mean 10.0.0.0/8?; "10.1.0.0/8" has bits set past /8: did you mean 10.0.0.0/8?`},
		{"hosts", "auth.example.com, 192.0.2.7", []string{"auth.example.com", "192.0.2.7"}, ""},
		{"hosts", "a:1,ok.example,*.x", nil, `"a:1" has a port: leave it out, a Host matches whatever its port; "*.x" has a wildcard`},
	}
	for _, tt := range tests {
		var got []string
		var err error
		if tt.name == "proxies" {
			var prefixes []netip.Prefix
			prefixes, err = parsePrefixes(tt.in)
			for _, p := range prefixes {
				got = append(got, p.String())
			}
		} else {
			got, err = parseHosts(tt.in)
		}
		if tt.wantErr == "" && (err != nil || !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("%s %q: got %q, %v; want %q, nil", tt.name, tt.in, got, err, tt.want)
		}
		if tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)) {
			t.Errorf("%s %q: got %q, %v; want an error starting %s", tt.name, tt.in, got, err, tt.wantErr)
		}
	}
}

// FuzzParseLists: whatever the list, parsePrefixes and parseHosts accept it
// exactly when they accept each of its entries alone, then return one
// item per entry; else the error quotes every entry refused alone.
func FuzzParseLists(f *testing.F) {
	for _, seed := range []string{"", " 10.0.0.0/8 ,, 192.0.2.7", "1.2.3,foo,10.0.0.0/8", "a:1,ok.example,*.x", `"q",::1`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, parse := range []func(string) (int, error){
			func(v string) (int, error) { l, err := parsePrefixes(v); return len(l), err },
			func(v string) (int, error) { l, err := parseHosts(v); return len(l), err },
		} {
			n, err := parse(v)
			entries, bad := 0, 0
			for f := range strings.SplitSeq(v, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				entries++
				if _, alone := parse(f); alone != nil {
					bad++
					if err == nil || !strings.Contains(err.Error(), strconv.Quote(f)+" ") {
						t.Fatalf("list %q: got %v, want an error naming %q", v, err, f)
					}
				}
			}
			if (bad > 0) != (err != nil) || err == nil && n != entries {
				t.Fatalf("list %q: got %d items, %v; want %d items or an error for %d bad entries", v, n, err, entries, bad)
			}
		}
	})
}

func TestParseConfigRedactsPasswords(t *testing.T) {
	for _, tt := range redactTests {
		_, err := parseServe([]string{"--accounts", tt.url}, nil)
		if (err == nil) != isPostgresURL(tt.url) || err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--accounts %q: got %v, want an error without the password (none for postgres://)", tt.url, err)
		}
	}
}

var redactTests = []struct{ url, want string }{
	{"mysql://u:hunter2@db/x", "mysql://u:xxxxx@db/x"},
	{"mysql://u@db/x", "mysql://u@db/x"},
	{"mysql://db/x?password=hunter2&sslmode=require", "mysql://db/x?password=xxxxx&sslmode=require"},
	{"mysql://db/x?sslPassword=hunter2", "mysql://db/x?sslPassword=xxxxx"},
	{"mysql://db/x#hunter2", "mysql://db/x"},
	{"postgres:///x?host=/run/pg&password=hunter2", "postgres:///x?host=%2Frun%2Fpg&password=xxxxx"},
	// Not plainly URLs: the password could be anywhere.
	{"mysql://u:hunter2@db:port/x", "mysql://(unreadable)"},
	{"mysql://u:hun%zzter2@db/x", "mysql://(unreadable)"},
	{"mysql://u:hun/hunter2@db/x", "mysql://(unreadable)"},
	{"mysql://u:1234?hunter2@db/x", "mysql://(unreadable)"},
	{"host=db password=hunter2", "(not a URL)"},
	{"u:hunter2@db", "(not a URL)"},
	{"u:hunter2@db://x", "(not a URL)"},
	{"mysql:/password=hunter2", "(not a URL)"},
	{"mysql://db/x;password=hunter2", "mysql://(unreadable)"},
	{"mysql://password=hunter2/x", "mysql://(unreadable)"},
	{"mysql://password=hunter2@db/x", "mysql://(unreadable)"},
	{"mysql://db/x?opts=password=hunter2", "mysql://db/x?opts=xxxxx"},
}

func TestRedactURL(t *testing.T) {
	for _, tt := range redactTests {
		if got := redactURL(tt.url); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServe(tt.args, tt.env)
			if tt.wantErr == nil {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, %v; want %+v, nil", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, nil; want an error naming %q", got, tt.wantErr)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) > 1 {
				lines = lines[1:] // after "invalid configuration:"
			}
			if len(lines) != len(tt.wantErr) {
				t.Fatalf("got error %q; want %d problems, about %q", err, len(tt.wantErr), tt.wantErr)
			}
			for i, want := range tt.wantErr {
				if !strings.Contains(lines[i], want) {
					t.Errorf("got problem %q, want one about %s", lines[i], want)
				}
			}
		})
	}
}

// A command reads only the settings it takes; the others keep their
// defaults whatever the environment says.
func TestParseConfigIgnoresOtherSettings(t *testing.T) {
	fs := flag.NewFlagSet("user list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := map[string]string{"TETHER_DATA": "env.db", "TETHER_LOG_LEVEL": "loud", "TETHER_ADDR": "nope"}
	c, _, err := parseConfig(fs, nil, getenvFrom(env), dataSetting)
	if want := with(func(c *config) { c.Data = "env.db" }); err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v, %v; want %+v, nil", c, err, want)
	}
	if fs.Lookup("addr") != nil {
		t.Errorf("got an --addr flag on a command that doesn't take it")
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args      []string
		wantRest  []string
		wantAdmin bool
	}{
		{[]string{"alice"}, []string{"alice"}, false},
		{[]string{"alice", "--admin"}, []string{"alice"}, true},
		{[]string{"--admin", "alice", "bob"}, []string{"alice", "bob"}, true},
		{[]string{"--", "-alice", "--admin"}, []string{"-alice", "--admin"}, false},
		{[]string{"alice", "--", "--admin"}, []string{"alice", "--admin"}, false},
		{nil, nil, false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		admin := fs.Bool("admin", false, "")
		rest, err := parseInterspersed(fs, tt.args)
		if err != nil || !reflect.DeepEqual(rest, tt.wantRest) || *admin != tt.wantAdmin {
			t.Errorf("parseInterspersed(%q) = %q, %v, admin %v; want %q, nil, admin %v",
				tt.args, rest, err, *admin, tt.wantRest, tt.wantAdmin)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := defaultConfig.Validate(); err != nil {
		t.Fatalf("default config: got %v, want nil", err)
	}
	bad := with(func(c *config) { c.Addr, c.LogFormat = "", "yaml" })
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "--addr") || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("got %v, want an error naming --addr and --log-format", err)
	}
}

// FuzzParseConfig: whatever the arguments (joined by NULs; "" for none)
// and the environment (lines of KEY=value), a config parseServe accepts is
// one the server can run with.
func FuzzParseConfig(f *testing.F) {
	for _, tt := range parseTests {
		var env []string
		for k, v := range tt.env {
			env = append(env, k+"="+v)
		}
		f.Add(strings.Join(tt.args, "\x00"), strings.Join(env, "\n"))
	}
	f.Fuzz(func(t *testing.T, args, envText string) {
		env := map[string]string{}
		for line := range strings.SplitSeq(envText, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		var argv []string // strings.Split would make "" one empty argument
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		c, err := parseServe(argv, env)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config %+v fails Validate: %v", c, err)
		}
		if c.MaxStaleness < session.MinMaxStaleness || c.MaxStaleness > session.MaxMaxStaleness {
			t.Fatalf("parsed config has max staleness %v, out of the range SES-14 allows", c.MaxStaleness)
		}
		if _, _, err := net.SplitHostPort(c.Addr); err != nil || c.Data == "" || c.IdleTimeout <= 0 || c.AbsoluteTimeout < c.IdleTimeout ||
			c.StoreTimeout < minStoreTimeout || c.StoreTimeout > maxStoreTimeout {
			t.Fatalf("parsed config %+v is unusable", c)
		}
		for _, h := range c.Hosts {
			if err := server.CheckHost(h); err != nil {
				t.Fatalf("parsed config has host %q: %v", h, err)
			}
			if c.CookieDomain != "" && !session.CookieDomainCovers(c.CookieDomain, h) {
				t.Fatalf("parsed config's cookie domain %q does not cover host %q", c.CookieDomain, h)
			}
		}
		if c.CookieDomain != "" && (len(c.Hosts) == 0 || session.CheckCookieDomain(c.CookieDomain) != nil) {
			t.Fatalf("parsed config has cookie domain %q, hosts %q", c.CookieDomain, c.Hosts)
		}
		if host, _, _ := net.SplitHostPort(c.Addr); len(c.Hosts) == 0 && !isLoopback(host) {
			t.Fatalf("parsed config %+v listens beyond loopback with no hosts", c)
		}
		for _, p := range c.TrustedProxies {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("parsed config has trusted proxy %v, want a valid masked prefix", p)
			}
		}
		for i, r := range c.AcceptRisks {
			if !slices.Contains(riskNames, r) || slices.Contains(c.AcceptRisks[:i], r) {
				t.Fatalf("parsed config accepts risks %q, want each of %q at most once", c.AcceptRisks, riskNames)
			}
		}
	})
}

// MISC-07: the hosts the server answers for, by default the loopback ones
// and --addr's loopback address.
func TestPublicHosts(t *testing.T) {
	loopback := []string{"localhost", "127.0.0.1", "::1"}
	tests := []struct {
		name string
		c    config
		want []string
	}{
		{"default", defaultConfig, loopback},
		{"another loopback address", with(func(c *config) { c.Addr = "127.0.0.2:8080" }), append(loopback, "127.0.0.2")},
		{"IPv6 loopback", with(func(c *config) { c.Addr = "[::1]:8080" }), loopback},
		{"IPv6 loopback with a zone", with(func(c *config) { c.Addr = "[::1%lo]:8080" }), loopback},
		{"localhost", with(func(c *config) { c.Addr = "localhost:8080" }), loopback},
		{"hosts given", with(func(c *config) { c.Addr, c.Hosts = "0.0.0.0:8080", []string{"auth.example.com"} }), []string{"auth.example.com"}},
		{"hosts given, loopback", with(func(c *config) { c.Hosts = []string{"auth.example.com"} }), []string{"auth.example.com"}},
	}
	for _, tt := range tests {
		if got := tt.c.publicHosts(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: publicHosts() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSetupLink(t *testing.T) {
	tests := []struct {
		url   string
		hosts []string
		want  string
	}{
		{"http://127.0.0.1:8080", []string{"localhost", "127.0.0.1", "::1"}, "http://127.0.0.1:8080/setup?token=T"},
		{"http://[::1]:8080", []string{"localhost", "127.0.0.1", "[::1]"}, "http://[::1]:8080/setup?token=T"},
		{"http://127.0.0.1:8080", []string{"auth.example.com", "auth2.example.com"}, "/setup?token=T on auth.example.com"},
		{"https://127.0.0.1:8443", []string{"localhost", "127.0.0.1", "::1"}, "https://127.0.0.1:8443/setup?token=T"},
	}
	for _, tt := range tests {
		if got := setupLink(tt.url, tt.hosts, "T"); got != tt.want {
			t.Errorf("setupLink(%q, %q) = %q, want %q", tt.url, tt.hosts, got, tt.want)
		}
	}
}

func TestListenURL(t *testing.T) {
	tests := []struct {
		addr net.Addr
		tls  bool
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, false, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 80}, false, "http://127.0.0.1:80"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, false, "http://[::1]:8080"},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}, false, "http://192.0.2.7:443"},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}, true, "https://192.0.2.7:443"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8443}, true, "https://127.0.0.1:8443"},
		{&net.UnixAddr{Name: "/run/tether.sock", Net: "unix"}, false, "http:///run/tether.sock"},
	}
	for _, tt := range tests {
		if got := listenURL(tt.addr, tt.tls); got != tt.want {
			t.Errorf("listenURL(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// FuzzStoreURLs: whatever --sessions or --accounts holds, an error about
// it never repeats a password in it, nor does redactURL; a value accepted
// is one the store's own parser accepts. The value is before+pw+after; pw
// counts as a password where a person would put one (between ":" and "@",
// or after "password="), when it looks like one (8 bytes or more, letters
// and digits) and appears neither in before and after nor in the error for
// the value without it.
func FuzzStoreURLs(f *testing.F) {
	for _, tt := range redactTests {
		if before, after, ok := strings.Cut(tt.url, "hunter2"); ok {
			f.Add(before, "hunter2hunter2", after) // "hunter2" is only part of the password
		}
	}
	for _, u := range []string{"redis://u:@h:6379/0", "rediss-sentinel://:@s1,s2/m/1", "redis-cluster://u:@a:1,b:2",
		"postgres://u:@db:5432/x?sslmode=disable", "postgresql://u:@db/x", "postgres://db/x?password=&connect_timeout=5"} {
		before, after, _ := strings.Cut(u, "@")
		after = "@" + after
		if strings.HasSuffix(u, "password=&connect_timeout=5") {
			before, after, _ = strings.Cut(u, "password=")
			before += "password="
		}
		f.Add(before, "s3cretPassw0rd", after)
	}
	f.Fuzz(func(t *testing.T, before, pw, after string) {
		value := before + pw + after
		secret := (strings.HasSuffix(before, ":") && strings.HasPrefix(after, "@") ||
			strings.HasSuffix(strings.ToLower(before), "password=")) && len(pw) >= 8 && strings.ContainsAny(pw, "0123456789") &&
			strings.ContainsFunc(pw, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) &&
			!strings.Contains(before+after, pw)
		if secret && strings.Contains(redactURL(value), pw) {
			t.Fatalf("redactURL(%q) = %q, which repeats %q", value, redactURL(value), pw)
		}
		for _, flag := range []string{"--sessions", "--accounts"} {
			c, err := parseServe([]string{flag, value}, nil)
			if err != nil {
				if secret && strings.Contains(err.Error(), pw) {
					if _, without := parseServe([]string{flag, before + after}, nil); without == nil || !strings.Contains(without.Error(), pw) {
						t.Fatalf("%s %q: error %q repeats %q", flag, value, err, pw)
					}
				}
				continue
			}
			for _, v := range []string{c.Sessions, c.Accounts} {
				if isPostgresURL(v) {
					if _, err := pgxpool.ParseConfig(v); err != nil {
						t.Fatalf("%s %q accepted, but pgx says %v", flag, value, err)
					}
				} else if v != "" {
					if err := redis.CheckURL(v); err != nil || flag == "--accounts" {
						t.Fatalf("%s %q accepted as %q, %v", flag, value, v, err)
					}
				}
			}
		}
	})
}

// The --sessions help and the error for a scheme tether doesn't take list
// every scheme it does take, each of which parses.
func TestSessionsSchemesListed(t *testing.T) {
	for _, bad := range []string{"mysql://db/x", "localhost:6379", "u:hunter2@db://x", "redis+tls://db"} {
		_, err := parseServe([]string{"--sessions", bad}, nil)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--sessions %q: got %v, want an error without the password", bad, err)
			continue
		}
		for _, s := range sessionSchemes {
			if !strings.Contains(err.Error(), " "+s+"://") {
				t.Errorf("--sessions %q: got %q, want it to list %s://", bad, err, s)
			}
		}
	}
	for _, s := range sessionSchemes {
		if !strings.Contains(sessionsSetting.usage, s+"://") {
			t.Errorf("the --sessions help doesn't name %s://: %q", s, sessionsSetting.usage)
		}
		if _, err := parseServe([]string{"--sessions", s + "://127.0.0.1:6379,127.0.0.1:6380/db0"}, nil); err != nil && strings.Contains(err.Error(), "scheme") {
			t.Errorf("--sessions %s://...: got %v, want the scheme taken", s, err)
		}
	}
}

func TestIssuer(t *testing.T) {
	tests := []struct {
		c      config
		listen string
		want   string
	}{
		{with(func(c *config) {}), "http://127.0.0.1:41234", "http://127.0.0.1:41234"},
		{with(func(c *config) { c.Hosts = []string{"auth.example.com", "10.0.0.1"} }), "http://10.0.0.1:8080", "https://auth.example.com"},
		{with(func(c *config) { c.Hosts = []string{"2001:db8::1"} }), "http://[::]:8080", "https://[2001:db8::1]"},
		{with(func(c *config) { c.Hosts, c.Issuer = []string{"a.example"}, "https://auth.example.com/tether/" }), "", "https://auth.example.com/tether"},
	}
	for _, tt := range tests {
		if got := tt.c.issuer(tt.listen); got != tt.want {
			t.Errorf("issuer(%+v, %q) = %q, want %q", tt.c.Hosts, tt.listen, got, tt.want)
		}
	}
}

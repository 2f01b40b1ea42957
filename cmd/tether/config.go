package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/server"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/redis"
)

// config is every setting of every command. A command reads the settings it
// takes from flags and the environment; the others keep their defaults.
type config struct {
	Addr            string
	Hosts           []string // as given; none: see publicHosts
	AllowedHosts    []string // where a return address may lead (GW-01)
	Assertions      []string // the audiences forward-auth signs assertions for
	Data            string
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	MinPassword     int
	MaxSessions     int
	MaxStaleness    time.Duration
	TrustedProxies  []netip.Prefix
	LogLevel        slog.Level
	LogFormat       string
	Sessions        string // "" for the Data file, else a Redis or PostgreSQL URL
	Accounts        string // "" for the Data file, else a PostgreSQL URL
	MinReplicas     int
	RedisPrefix     string   // "" for store/redis's default
	AcceptRisks     []string // of riskNames: Redis settings serve only warns about
	NodeName        string
	StoreTimeout    time.Duration
	TLSCert         string // "" for plain HTTP; else with TLSKey
	TLSKey          string
	Issuer          string        // "" for defaultIssuer's
	TokenMaxTTL     time.Duration // the longest access token lifetime
	KeyRotation     time.Duration // how long a signing key signs; 0: only on tether keys rotate
	KeyAlg          string        // the algorithm of the keys the ring makes
	KeepTokens      bool          // a password change leaves the user's tokens alive
	PATMaxTTL       time.Duration // the longest personal access token lifetime
	CookieDomain    string        // "" for a host-only __Host- session cookie
}

// A setting is one option: a flag, the environment variable used when the
// flag is not given, the default used when neither is, and how to store the
// value in a config. A setting whose default is "false" is a switch:
// --flag alone sets it, --flag=false clears it.
type setting struct {
	flag, env, def, usage string
	set                   func(c *config, v string) error
}

var (
	addrSetting = &setting{"addr", "TETHER_ADDR", "127.0.0.1:8080",
		"address to listen on, host:port (port 0 picks a free one)",
		func(c *config, v string) error { c.Addr = v; return nil }}
	hostsSetting = &setting{"hosts", "TETHER_HOSTS", "",
		"comma-separated host names and IP addresses clients reach tether by, such as auth.example.com; a request for any other Host gets 421 (MISC-07). Empty: localhost, 127.0.0.1, ::1 and the --addr address, allowed only when --addr is a loopback address",
		func(c *config, v string) (err error) { c.Hosts, err = parseHosts(v); return err }}
	allowedHostsSetting = &setting{"allowed-hosts", "TETHER_ALLOWED_HOSTS", "",
		"comma-separated host names and IP addresses of the apps behind forward-auth (/auth/verify), such as app.example.com: after signing in, a person is sent back to a return address only on one of these (any port) or on tether itself (GW-01). Empty: only tether's own pages",
		func(c *config, v string) (err error) { c.AllowedHosts, err = parseHosts(v); return err }}
	assertionsSetting = &setting{"assertion-audiences", "TETHER_ASSERTION_AUDIENCES", "",
		"comma-separated audiences (the upstreams' identifiers, such as https://app.example.com) that /auth/verify?assertion=AUDIENCE signs a 60 s X-Tether-Assertion for, an access token the upstream can verify offline; empty: none",
		func(c *config, v string) (err error) {
			c.Assertions, err = parseList(v, func(f string) (string, error) { return f, nil })
			return err
		}}
	dataSetting = &setting{"data", "TETHER_DATA", "./tether.db",
		"the SQLite database file; only serve, init and user add --create create it when missing",
		func(c *config, v string) error { c.Data = v; return nil }}
	idleSetting = &setting{"idle-timeout", "TETHER_IDLE_TIMEOUT", "30m",
		"a session unused this long ends (SES-07)",
		func(c *config, v string) (err error) { c.IdleTimeout, err = parseDuration(v); return err }}
	absoluteSetting = &setting{"absolute-timeout", "TETHER_ABSOLUTE_TIMEOUT", "12h",
		"a session ends this long after sign-in, however busy (SES-07)",
		func(c *config, v string) (err error) { c.AbsoluteTimeout, err = parseDuration(v); return err }}
	minPasswordSetting = &setting{"min-password", "TETHER_MIN_PASSWORD", "8",
		"fewest characters of a new password, 8 to 64; 15 recommended (PW-01)",
		func(c *config, v string) (err error) { c.MinPassword, err = parseInt(v); return err }}
	proxiesSetting = &setting{"trusted-proxies", "TETHER_TRUSTED_PROXIES", "",
		"comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For is believed (PW-06)",
		func(c *config, v string) (err error) { c.TrustedProxies, err = parsePrefixes(v); return err }}
	logLevelSetting = &setting{"log-level", "TETHER_LOG_LEVEL", "info",
		"debug, info, warn or error",
		func(c *config, v string) (err error) { c.LogLevel, err = parseLevel(v); return err }}
	logFormatSetting = &setting{"log-format", "TETHER_LOG_FORMAT", "text",
		"text or json",
		func(c *config, v string) error { c.LogFormat = v; return nil }}

	sessionsSetting = &setting{"sessions", "TETHER_SESSIONS", "",
		"where sessions live: empty for the --data file, or redis://[user:pass@]host:port/db, redis-sentinel://h1:p1,h2:p2/master, redis-cluster://h1:p1,h2:p2 (rediss://, rediss-sentinel://, rediss-cluster:// with TLS), or postgres://user@host:port/db (or postgresql://)",
		func(c *config, v string) error { c.Sessions = v; return nil }}
	accountsSetting = &setting{"accounts", "TETHER_ACCOUNTS", "",
		"where users and sign-in throttles live: empty for the --data file, or postgres://user@host:port/db",
		func(c *config, v string) error { c.Accounts = v; return nil }}
	minReplicasSetting = &setting{"redis-min-replicas", "TETHER_REDIS_MIN_REPLICAS", "0",
		"session creations and revocations are acknowledged only once this many Redis replicas have them",
		func(c *config, v string) (err error) { c.MinReplicas, err = parseInt(v); return err }}
	redisPrefixSetting = &setting{"redis-prefix", "TETHER_REDIS_PREFIX", "",
		"start of every Redis key and channel, so that deployments can share a Redis; empty for \"tether:\"",
		func(c *config, v string) error { c.RedisPrefix = v; return nil }}
	acceptRiskSetting = &setting{"redis-accept-risk", "TETHER_REDIS_ACCEPT_RISK", "",
		"comma-separated Redis settings serve warns about instead of refusing to start: persistence (snapshots without appendonly yes: a restart brings signed-out sessions back), eviction (a maxmemory-policy other than noeviction), replicas (fewer online than --redis-min-replicas: sign-ins fail)",
		func(c *config, v string) (err error) { c.AcceptRisks, err = parseRisks(v); return err }}
	maxSessionsSetting = &setting{"max-sessions", "TETHER_MAX_SESSIONS", strconv.Itoa(session.DefaultMaxPerUser),
		fmt.Sprintf("most live sessions per user, 1 to %d; a new one past it signs out the one closest to its end (SES-13)", session.MaxPerUserLimit),
		func(c *config, v string) (err error) { c.MaxSessions, err = parseInt(v); return err }}
	maxStalenessSetting = &setting{"max-staleness", "TETHER_MAX_STALENESS", session.DefaultMaxStaleness.String(),
		fmt.Sprintf("a node that has not heard from its session store's invalidation feed for this long stops answering from its near-cache, %v to %v: the longest a session revoked on another node is still accepted here (SES-14)", session.MinMaxStaleness, session.MaxMaxStaleness),
		func(c *config, v string) (err error) { c.MaxStaleness, err = parseDuration(v); return err }}
	storeTimeoutSetting = &setting{"store-timeout", "TETHER_STORE_TIMEOUT", "1s",
		"every call to a store (sessions, users, throttles) gets at most this long before the request is answered 503 with Retry-After, 10ms to 5s (MISC-05)",
		func(c *config, v string) (err error) { c.StoreTimeout, err = parseDuration(v); return err }}
	tlsCertSetting = &setting{"tls-cert", "TETHER_TLS_CERT", "",
		"PEM file of the TLS certificate chain, leaf first: serve HTTPS (with --tls-key); a renewed file is loaded without a restart",
		func(c *config, v string) error { c.TLSCert = v; return nil }}
	tlsKeySetting = &setting{"tls-key", "TETHER_TLS_KEY", "",
		"PEM file of the TLS certificate's private key (with --tls-cert)",
		func(c *config, v string) error { c.TLSKey = v; return nil }}
	issuerSetting = &setting{"issuer", "TETHER_ISSUER", "",
		"the URL access tokens name as their issuer (iss) and the OAuth metadata serves, https:// (http:// only for a loopback host); empty: https:// and the first of --hosts, or http:// and --addr without --hosts",
		func(c *config, v string) error { c.Issuer = v; return nil }}
	tokenMaxTTLSetting = &setting{"token-max-ttl", "TETHER_TOKEN_MAX_TTL", "1h",
		fmt.Sprintf("longest lifetime of an access token, %v to %v: a client asking for more gets this; a retired signing key stays published this long (JWT-04, KEY-02)", minTokenTTL, maxTokenTTL),
		func(c *config, v string) (err error) { c.TokenMaxTTL, err = parseDuration(v); return err }}
	keyRotationSetting = &setting{"key-rotation", "TETHER_KEY_ROTATION", "720h",
		"how long a signing key signs before the server replaces it, at least 1h; 0: only on tether keys rotate (KEY-02)",
		func(c *config, v string) (err error) { c.KeyRotation, err = parseDuration(v); return err }}
	keyAlgSetting = &setting{"key-alg", "TETHER_KEY_ALG", keys.EdDSA,
		"algorithm of the signing keys the server makes: EdDSA (Ed25519) or ES256 (P-256)",
		func(c *config, v string) error { c.KeyAlg = v; return nil }}
	patMaxTTLSetting = &setting{"pat-max-ttl", "TETHER_PAT_MAX_TTL", "8760h",
		"longest lifetime of a personal access token, at least 24h; a person may ask for less (default 30 days), never more",
		func(c *config, v string) (err error) { c.PATMaxTTL, err = parseDuration(v); return err }}
	keepTokensSetting = &setting{"keep-tokens-on-password-change", "TETHER_KEEP_TOKENS_ON_PASSWORD_CHANGE", "false",
		"true: a password change leaves the user's personal access tokens alive; by default they end with the sessions, since whoever knew the old password may have made one (CHG-03)",
		func(c *config, v string) (err error) { c.KeepTokens, err = strconv.ParseBool(v); return err }}
	cookieDomainSetting = &setting{"cookie-domain", "TETHER_COOKIE_DOMAIN", "",
		"share the session with every host under this domain, such as example.com for auth.example.com and app.example.com: the cookie becomes __Secure-tether with Domain= instead of __Host-tether, and every host under it receives it (see Sessions across subdomains in the README); it must cover every --hosts name. Empty: host-only (SES-05)",
		func(c *config, v string) error { c.CookieDomain = v; return nil }}
	nodeNameSetting = &setting{"node-name", "TETHER_NODE_NAME", "",
		"if set, every response carries X-Tether-Node with this name (to see a load balancer at work)",
		func(c *config, v string) error { c.NodeName = v; return nil }}

	// tokenSettings shape the access tokens and their keys: serve and the
	// keys commands take them.
	tokenSettings = []*setting{issuerSetting, tokenMaxTTLSetting, keyRotationSetting, keyAlgSetting}

	// storeSettings say where the data is: every command takes them.
	storeSettings = []*setting{dataSetting, sessionsSetting, accountsSetting, minReplicasSetting, redisPrefixSetting}

	allSettings = []*setting{addrSetting, hostsSetting, allowedHostsSetting, assertionsSetting, dataSetting, sessionsSetting, accountsSetting, minReplicasSetting,
		redisPrefixSetting, acceptRiskSetting, idleSetting, absoluteSetting, maxSessionsSetting, minPasswordSetting, proxiesSetting, logLevelSetting,
		logFormatSetting, nodeNameSetting, maxStalenessSetting, storeTimeoutSetting, tlsCertSetting, tlsKeySetting,
		issuerSetting, tokenMaxTTLSetting, keyRotationSetting, keyAlgSetting, keepTokensSetting, patMaxTTLSetting, cookieDomainSetting}
)

// value returns the setting's flag if args gave it, else its environment
// variable if that is not empty, else its default.
func (s *setting) value(fs *flag.FlagSet, getenv func(string) string) string {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == s.flag })
	if given {
		return fs.Lookup(s.flag).Value.String()
	}
	if v := getenv(s.env); v != "" {
		return v
	}
	return s.def
}

// parseConfig adds a flag for each of use to fs, parses args with it (flags
// may come after the positional arguments, which it returns), and returns
// the configuration: the settings in use from their flags, else the
// environment, else their defaults; the others from their defaults. The
// error lists every problem at once, one per setting.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string, use ...*setting) (config, []string, error) {
	for _, s := range use {
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		if s.def == "false" { // a switch: --flag alone means true
			fs.Bool(s.flag, false, usage)
		} else {
			fs.String(s.flag, s.def, usage)
		}
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return config{}, nil, usageError{err: err, shown: true}
	}
	var c config
	p := problems{}
	for _, s := range allSettings {
		v := s.def
		if slices.Contains(use, s) {
			v = s.value(fs, getenv)
		}
		if err := s.set(&c, v); err != nil {
			p.add(s, "%q: %v", v, err)
		}
	}
	c.check(p)
	return c, rest, p.err()
}

// parseName parses the command line of a command that takes one user name,
// and returns that name in canonical form.
func (e *env) parseName(fs *flag.FlagSet, args []string, use ...*setting) (config, string, error) {
	c, names, err := e.parseNames(fs, args, []string{"NAME"}, use...)
	if err != nil {
		return c, "", err
	}
	return c, names[0], nil
}

// parseNames parses the command line of a command that takes the user
// names called names ("OLD", "NEW"), and returns them in canonical form.
func (e *env) parseNames(fs *flag.FlagSet, args, names []string, use ...*setting) (config, []string, error) {
	c, rest, err := parseConfig(fs, args, e.getenv, use...)
	if err != nil {
		return c, nil, err
	}
	canonical, err := userNames(fs, rest, names...)
	return c, canonical, err
}

// userNames returns args, the arguments left once fs parsed its flags, in
// canonical form: one user name for each of names (canonicalArgs).
func userNames(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	return canonicalArgs(fs, args, account.CanonicalName, names...)
}

// canonicalArgs returns args, the arguments left once fs parsed its
// flags, in the canonical form canon gives: one for each of names. A
// missing argument is reported as required by its name, an extra one as
// too many.
func canonicalArgs(fs *flag.FlagSet, args []string, canon func(string) (string, error), names ...string) ([]string, error) {
	cmd := commandName(fs)
	if missing := names[min(len(args), len(names)):]; len(missing) > 0 {
		fs.Usage()
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return nil, usageError{err: fmt.Errorf("%s: %s %s required", cmd, strings.Join(missing, " and "), verb)}
	}
	if extra := args[len(names):]; len(extra) > 0 {
		fs.Usage()
		return nil, usageError{err: fmt.Errorf("%s: too many arguments: %q; it takes %s", cmd, extra, strings.Join(names, " "))}
	}
	canonical := make([]string, len(args))
	for i, a := range args {
		var err error
		if canonical[i], err = canon(a); err != nil {
			return nil, usageError{err: fmt.Errorf("%s: %s %q: %w", cmd, names[i], a, err)}
		}
	}
	return canonical, nil
}

// parseNoArgs parses the command line of a command that takes no arguments
// besides flags.
func (e *env) parseNoArgs(fs *flag.FlagSet, args []string, use ...*setting) (config, error) {
	c, rest, err := parseConfig(fs, args, e.getenv, use...)
	if err == nil && len(rest) > 0 {
		fs.Usage()
		err = usageError{err: fmt.Errorf("%s: takes no arguments, got %q", commandName(fs), rest)}
	}
	return c, err
}

// commandName returns the name of the command whose flags fs parses, as
// messages say it: "user add".
func commandName(fs *flag.FlagSet) string { return strings.TrimPrefix(fs.Name(), "tether ") }

// parseInterspersed parses args with fs, allowing flags after positional
// arguments ("user add alice --admin"), and returns the positional ones.
// Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if consumed := len(args) - len(left); consumed > 0 && args[consumed-1] == "--" {
			return append(rest, left...), nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// Validate returns an error listing every problem of c, or nil.
func (c *config) Validate() error {
	p := problems{}
	c.check(p)
	return p.err()
}

// check adds to p what is wrong with c's values.
func (c *config) check(p problems) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		p.add(addrSetting, "%q: want host:port with a port from 0 to 65535, such as 127.0.0.1:8080", c.Addr)
	} else if len(c.Hosts) == 0 && !isLoopback(host) {
		p.add(hostsSetting, "empty, and --addr %s listens beyond loopback: name the hosts clients reach tether by, "+
			"such as --hosts auth.example.com (a request for any other Host gets 421, MISC-07)", c.Addr)
	}
	if c.Data == "" {
		p.add(dataSetting, "empty: name the database file")
	}
	if c.IdleTimeout <= 0 {
		p.add(idleSetting, "%v: must be positive", c.IdleTimeout)
	}
	if c.AbsoluteTimeout <= 0 {
		p.add(absoluteSetting, "%v: must be positive", c.AbsoluteTimeout)
	}
	if c.AbsoluteTimeout < c.IdleTimeout {
		p.add(absoluteSetting, "%v: must be at least the idle timeout, %v", c.AbsoluteTimeout, c.IdleTimeout)
	}
	if c.MaxSessions < 1 || c.MaxSessions > session.MaxPerUserLimit {
		p.add(maxSessionsSetting, "%d: must be from 1 to %d", c.MaxSessions, session.MaxPerUserLimit)
	}
	if c.MaxStaleness < session.MinMaxStaleness || c.MaxStaleness > session.MaxMaxStaleness {
		p.add(maxStalenessSetting, "%v: must be from %v to %v", c.MaxStaleness, session.MinMaxStaleness, session.MaxMaxStaleness)
	}
	if c.MinPassword < 8 || c.MinPassword > 64 {
		p.add(minPasswordSetting, "%d: must be from 8 to 64 (PW-01: 64 characters are always allowed)", c.MinPassword)
	}
	if scheme, _, ok := strings.Cut(c.Sessions, "://"); c.Sessions != "" && (!ok || !slices.Contains(sessionSchemes, strings.ToLower(scheme))) {
		// Not quoted: without a scheme, the value may be all password.
		p.add(sessionsSetting, "%s: want empty (the --data file) or a URL starting %s://", unknownScheme(scheme, ok), strings.Join(sessionSchemes, "://, "))
	} else if c.Sessions != "" && !isPostgresURL(c.Sessions) {
		if err := redis.CheckURL(c.Sessions); err != nil {
			p.add(sessionsSetting, "%v", err)
		}
	}
	if scheme, _, ok := strings.Cut(c.Accounts, "://"); c.Accounts != "" && !isPostgresURL(c.Accounts) {
		p.add(accountsSetting, "%s: want empty (the --data file) or a URL starting postgres:// or postgresql://", unknownScheme(scheme, ok))
	}
	// A PostgreSQL URL is checked now, not first when serve connects.
	if err := checkPostgresURL(c.Sessions); err != nil {
		p.add(sessionsSetting, "%v", err)
	}
	if err := checkPostgresURL(c.Accounts); err != nil {
		p.add(accountsSetting, "%v", err)
	}
	inRedis := c.Sessions != "" && !isPostgresURL(c.Sessions)
	if c.MinReplicas < 0 {
		p.add(minReplicasSetting, "%d: must be 0 or more", c.MinReplicas)
	} else if c.MinReplicas > 0 && !inRedis {
		p.add(minReplicasSetting, "%d: only applies to sessions in Redis (--sessions redis://...)", c.MinReplicas)
	}
	if c.RedisPrefix != "" && !inRedis {
		p.add(redisPrefixSetting, "%q: only applies to sessions in Redis (--sessions redis://...)", c.RedisPrefix)
	} else if strings.ContainsAny(c.RedisPrefix, "{}") {
		p.add(redisPrefixSetting, "%q: must not contain { or } (they decide which keys share a cluster slot)", c.RedisPrefix)
	}
	if len(c.AcceptRisks) > 0 && !inRedis {
		p.add(acceptRiskSetting, "%q: only applies to sessions in Redis (--sessions redis://...)", strings.Join(c.AcceptRisks, ","))
	}
	if strings.ContainsFunc(c.NodeName, func(r rune) bool { return r < ' ' || r > '~' }) {
		p.add(nodeNameSetting, "%q: printable ASCII only (it goes in a header)", c.NodeName)
	}
	c.checkTokens(p)
	if c.PATMaxTTL < 24*time.Hour {
		p.add(patMaxTTLSetting, "%v: must be at least 24h", c.PATMaxTTL)
	}
	if c.StoreTimeout < minStoreTimeout || c.StoreTimeout > maxStoreTimeout {
		p.add(storeTimeoutSetting, "%v: must be from %v to %v", c.StoreTimeout, minStoreTimeout, maxStoreTimeout)
	}
	if c.TLSCert == "" && c.TLSKey != "" {
		p.add(tlsCertSetting, "empty, but --tls-key is set: give both, or neither for plain HTTP")
	} else if c.TLSKey == "" && c.TLSCert != "" {
		p.add(tlsKeySetting, "empty, but --tls-cert is set: give both, or neither for plain HTTP")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		p.add(logFormatSetting, "%q: must be text or json", c.LogFormat)
	}
	c.checkCookieDomain(p)
}

// checkCookieDomain adds to p what is wrong with --cookie-domain: a
// domain session.CheckCookieDomain refuses, or one that does not cover a
// host of --hosts, for which browsers would drop the cookie and signing
// in would fail without a word.
func (c *config) checkCookieDomain(p problems) {
	if c.CookieDomain == "" {
		return
	}
	if err := session.CheckCookieDomain(c.CookieDomain); err != nil {
		p.add(cookieDomainSetting, "%v", strings.TrimPrefix(err.Error(), "session: cookie domain "))
		return
	}
	if len(c.Hosts) == 0 {
		p.add(cookieDomainSetting, "%q: needs --hosts, the names under it that tether is reached by, such as auth.%s", c.CookieDomain, c.CookieDomain)
		return
	}
	var outside []string
	for _, h := range c.Hosts {
		if !session.CookieDomainCovers(c.CookieDomain, strings.Trim(h, "[]")) {
			outside = append(outside, h)
		}
	}
	if len(outside) > 0 {
		p.add(cookieDomainSetting, "%q does not cover --hosts %s: browsers drop a cookie for another domain, so signing in there would fail; list only hosts under it",
			c.CookieDomain, strings.Join(outside, ", "))
	}
}

// The range of --store-timeout: below 10 ms a busy but healthy store
// would fail requests; past 5 s people give up before the 503 comes.
const (
	minStoreTimeout = 10 * time.Millisecond
	maxStoreTimeout = 5 * time.Second
)

// problems collects what is wrong with a configuration: at most one problem
// per setting, the first found.
type problems map[*setting]string

func (p problems) add(s *setting, format string, args ...any) {
	if _, ok := p[s]; !ok {
		p[s] = fmt.Sprintf(format, args...)
	}
}

// err returns nil if there are no problems, else an error listing them one
// a line, in the order of allSettings.
func (p problems) err() error {
	var lines []string
	for _, s := range allSettings {
		if msg, ok := p[s]; ok {
			lines = append(lines, fmt.Sprintf("\n\t--%s (%s) %s", s.flag, s.env, msg))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return usageError{err: errors.New("invalid configuration:" + strings.Join(lines, ""))}
}

func parseLevel(v string) (slog.Level, error) {
	var l slog.Level
	if l.UnmarshalText([]byte(v)) != nil {
		return 0, errors.New("not a level such as debug, info, warn or error")
	}
	return l, nil
}

func parseInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("not a whole number")
	}
	return n, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration such as 90s, 30m or 12h")
	}
	return d, nil
}

// parsePrefixes parses a comma-separated list of IP addresses and CIDR
// prefixes, an address being the prefix of just itself, and names every
// bad one.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	return parseList(v, func(f string) (netip.Prefix, error) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return p, errors.New("is neither an IP address nor a CIDR prefix such as 10.0.0.0/8")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p != p.Masked() {
			return p, fmt.Errorf("has bits set past /%d: did you mean %v?", p.Bits(), p.Masked())
		}
		return p, nil
	})
}

// parseHosts parses a comma-separated list of host names and IP addresses,
// each as server.CheckHost wants it, and names every bad one.
func parseHosts(v string) ([]string, error) {
	return parseList(v, func(f string) (string, error) { return f, server.CheckHost(f) })
}

// parseList parses v, a comma-separated list, with parse, one entry at a
// time (white space around an entry and empty entries ignored). The error
// names every entry that parse refused, with what is wrong with it, one
// after the other: "1.2.3" is ...; "foo" is ....
func parseList[T any](v string, parse func(entry string) (T, error)) ([]T, error) {
	var list []T
	var bad []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		x, err := parse(f)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q %v", f, err))
			continue
		}
		list = append(list, x)
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return list, nil
}

// isLoopback reports whether host, the host of a listen address, is on the
// loopback interface only: "localhost" or a loopback IP. An empty host, like
// 0.0.0.0 and ::, is every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// publicHosts returns the hosts the server answers for (MISC-07): --hosts,
// or by default the loopback names and --addr's address when it is an IP
// address of its own (127.0.0.2, say). Listening beyond loopback, check
// insists on --hosts: with the loopback default, a node behind a load
// balancer would pass its health checks (which answer any Host) and then
// refuse every request for its public name.
func (c *config) publicHosts() []string {
	if len(c.Hosts) > 0 {
		return c.Hosts
	}
	hosts := server.LoopbackHosts()
	host, _, _ := net.SplitHostPort(c.Addr)
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		if ip := a.WithZone("").String(); !slices.Contains(hosts, ip) {
			hosts = append(hosts, ip)
		}
	}
	return hosts
}

// sessionSchemes are the URL schemes --sessions takes: store/redis's and
// PostgreSQL's.
var sessionSchemes = []string{"redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster", "postgres", "postgresql"}

// unknownScheme says what is wrong with a store URL whose scheme, if it has
// one (hasScheme), tether doesn't take, quoting it only when it is plainly
// a scheme.
func unknownScheme(scheme string, hasScheme bool) string {
	if hasScheme && validScheme(scheme) {
		return fmt.Sprintf("unknown scheme %q", scheme)
	}
	return "no scheme"
}

func isPostgresURL(v string) bool {
	return strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://")
}

// checkPostgresURL returns what is wrong with v if it is a PostgreSQL URL
// that pgxpool would refuse, without connecting; nil for anything else.
// pgx's message quotes the URL with its password masked, which it does
// right only for a URL that net/url reads: for any other, the message is
// ours, quoting no more than redactURL does (FuzzStoreURLs).
func checkPostgresURL(v string) error {
	if !isPostgresURL(v) {
		return nil
	}
	_, err := pgxpool.ParseConfig(v)
	if err != nil && strings.Contains(redactURL(v), "(unreadable)") {
		return fmt.Errorf("cannot parse %s: %v", redactURL(v), errPoolURL)
	}
	return err
}

// redactURL returns v for an error message or a log line, with whatever may
// be a password masked: a URL's userinfo password and the values of query
// parameters whose names or values hold "pass". A value that is not
// plainly a URL (a key=value connection string, a key=value outside the
// query, an @ past the host, an unparsable one) may
// hold a password anywhere: only its scheme is kept, if it has one.
func redactURL(v string) string {
	u, err := url.Parse(v)
	beforeQuery, _, _ := strings.Cut(v, "?")
	if err != nil || u.Scheme == "" || u.Opaque != "" || strings.Contains(u.Path+u.RawQuery+u.Fragment, "@") ||
		strings.Contains(beforeQuery, "=") { // a key=value outside the query: a password could be one
		if scheme, _, ok := strings.Cut(v, "://"); ok && validScheme(scheme) {
			return scheme + "://(unreadable)"
		}
		return "(not a URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i, v := range vs {
				if strings.Contains(strings.ToLower(k+v), "pass") {
					vs[i] = "xxxxx"
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, +, - and . (RFC 3986).
func validScheme(s string) bool {
	for i, c := range []byte(s) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

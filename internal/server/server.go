// Package server is tether's HTTP server: the pages people sign in with, the
// JSON API behind them, health and readiness, and, when Config.Tokens is
// set, the OAuth 2.0 endpoints machines get tokens from (oauth2.go). It
// wires the library packages (session, csrf, password, token, keys) to the
// account store and the sign-in throttle; cmd/tether builds a Config and
// serves what New returns:
//
//	h, err := server.New(server.Config{
//		Logger:   logger,
//		Sessions: sessions, // *session.Manager
//		Accounts: accounts, // account.Store
//		Throttle: throttle, // *throttle.SQLite
//		Hasher:   hasher,
//		CSRF:     protector,
//		DeviceSecret: deviceKey, // 32+ random bytes, the same on every node
//		Ready:    db.PingContext,
//		Hosts:    []string{"auth.example.com"}, // MISC-07; default: loopback
//		Tokens: &server.Tokens{ // optional: the OAuth 2.0 endpoints
//			Issuer: "https://auth.example.com", Keys: ring, // *keys.Ring
//			Clients: accounts, Revocations: sessions,
//		},
//	})
//	if err != nil {
//		return err
//	}
//	srv := &http.Server{Addr: addr, Handler: h}
//
// The first admin is created through a link of NewSetup's, which every
// server on the same account store opens (PW-08).
//
// Every route and every CSRF exemption is in routes.go. Each action (sign in,
// sign out, end a session, change the password, set up the first admin) is
// one function in actions.go; the JSON API (api.go) and the pages
// (pages.go) are thin front ends over them.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/internal/credential"
	"github.com/tetherauth/tether/internal/metrics"
	"github.com/tetherauth/tether/internal/revocation"
	"github.com/tetherauth/tether/internal/sometimes"
	"github.com/tetherauth/tether/internal/throttle"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
)

// Throttle slows down password guessing with growing delays per key (PW-06).
// The server counts sign-ins under a key per client address and one per
// account (or one per device that signed in before), password changes
// under a key per session, and OAuth client authentications under a key
// per client address and one per client id. throttle.SQLite and
// throttle.Postgres implement it, shared by every process and node on the
// same database.
type Throttle interface {
	// Attempt counts one attempt under every key, atomically, unless one of
	// them must still wait: then it counts nothing and returns the wait.
	Attempt(ctx context.Context, keys ...throttle.Key) (time.Duration, error)
	// Wait returns the wait Attempt would return now, counting nothing:
	// client authentication checks with it first and counts failures
	// only, since a client secret is too long to guess.
	Wait(ctx context.Context, keys ...throttle.Key) (time.Duration, error)
	// Refund takes one counted attempt back from each of keys: the attempt
	// was right, or its password was never checked.
	Refund(ctx context.Context, keys ...string) error
	// Reset forgets keys. Resetting an unknown key is not an error.
	Reset(ctx context.Context, keys ...string) error
}

// Config holds the server's dependencies. Fields without a default are
// required.
type Config struct {
	// Logger receives operational logs and the audit events of sign-ins
	// and account changes (PW-07). Default: discard.
	Logger *slog.Logger
	// Audit, if set, receives the audit events instead of Logger (the
	// --audit-log file). A record it fails to write is logged to Logger.
	Audit *audit.Logger
	// Sessions issues, loads and revokes sessions; its LoadRequest checks
	// every route.
	Sessions *session.Manager
	// Accounts holds the users.
	Accounts account.Store
	// Throttle delays repeated sign-in and password-change failures.
	Throttle Throttle
	// Hasher hashes and verifies passwords.
	Hasher *password.Hasher
	// Policy decides which new passwords are acceptable. Zero value: the
	// password package's defaults.
	Policy password.Policy
	// KeepTokensOnPasswordChange leaves a person's tokens (personal
	// access tokens) alive when their password changes; by default they
	// end with the sessions (CHG-03, see credential.Config).
	KeepTokensOnPasswordChange bool
	// CSRF checks the origin of unsafe requests and their session-bound
	// tokens.
	CSRF *csrf.Protector
	// DeviceSecret keys the device cookies (PW-06): at least 32 random
	// bytes, the same on every node.
	DeviceSecret []byte
	// AddressFree is how many sign-in attempts one client address gets
	// before delays begin, and AddressLeak how fast that count drains
	// (PW-06): everyone behind one NAT shares an address, so it allows
	// more than an account and forgives at a steady rate. Defaults:
	// DefaultAddressFree and DefaultAddressLeak.
	AddressFree int
	AddressLeak time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For header is
	// believed when finding the client IP (PW-06). Default: none, so the
	// peer address is the client.
	TrustedProxies []netip.Prefix
	// AllowedHosts are the hosts, besides tether's own paths, that a
	// person may be sent back to after signing in (?return=, GW-01; see
	// returnto.go): the apps behind forward-auth, such as
	// "app.example.com". Entries are written as Hosts' are. Default: none.
	AllowedHosts []string
	// Assertions are the audiences (upstreams) forward-auth may sign an
	// identity assertion for (/auth/verify?assertion=AUDIENCE: the
	// X-Tether-Assertion header, forwardauth.go); it needs Tokens, whose
	// keys sign them. Default: none.
	Assertions []string
	// Ready reports whether the server can serve (its stores answer);
	// GET /readyz calls it, with a context bounded by ReadyTimeout.
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds GET /readyz: a store that doesn't answer within
	// it makes the node not ready (503 with Retry-After), instead of
	// holding the probe (MISC-05). Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StoreTimeout bounds every call to Accounts and Throttle (MISC-05): a
	// store that stops answering fails the request with 503 and
	// Retry-After once it has passed. (Sessions has its own,
	// session.Config.StoreTimeout.) Default DefaultStoreTimeout.
	StoreTimeout time.Duration
	// Hosts are the host names and IP addresses clients reach the server
	// by, such as "auth.example.com". A request whose Host is anything
	// else, or missing, is answered 421 Misdirected Request (MISC-07: DNS
	// rebinding), except GET /healthz and /readyz. A Host matches whatever
	// its port, and a name whatever the case of its letters; otherwise
	// exactly (see hosts.go). CheckHost says which entries are valid.
	// Default: LoopbackHosts.
	Hosts []string
	// UserCacheTTL is how long a node may answer signed-in requests with
	// a user it read from Accounts, rather than read it again (see
	// userCache), and forward-auth checks of access tokens with their
	// client read from Tokens.Clients. Default: DefaultUserCacheTTL;
	// negative: no caching.
	UserCacheTTL time.Duration
	// Now is the server's clock: the user cache's, the tokens', and the
	// one that keeps the log lines of refused hosts a second apart.
	// Default: time.Now.
	Now func() time.Time
	// Pause is how a throttled sign-in waits out the time a checked one
	// takes lately, so that neither its answer nor its timing tells it
	// from a wrong password (PW-05; see pace.go). Default: a timer that
	// ends with the request. Tests pass one that records, not waits.
	Pause func(ctx context.Context, d time.Duration)
	// PATs keeps personal access tokens (the account store): with it, a
	// person makes, lists and revokes theirs on the account page and at
	// /api/v1/tokens (pats.go). Default nil: neither is served. Checking
	// them is Tokens.PATs' (a *PATCheck over the same store).
	PATs account.PATs
	// PATMaxTTL caps a personal access token's lifetime (--pat-max-ttl);
	// at least a day. Default DefaultPATMaxTTL.
	PATMaxTTL time.Duration
	// Tokens configures the OAuth 2.0 endpoints for machines (oauth2.go):
	// the token endpoint, revocation, introspection, the JWKS and the
	// metadata. Default nil: they are not served (404).
	Tokens *Tokens
	// Metrics, if set, counts and times every request, and counts
	// sign-ins, throttles, CSRF refusals and tokens issued, verified and
	// revoked (internal/metrics; serve it on a listener of its own).
	// Default nil: none.
	Metrics *metrics.Metrics
}

// The names of the server's cookies, which cmd/tether gives the session
// Manager (session.Config.CookieName) and the csrf Protector
// (csrf.WithPreSessionCookie): names of tether's own, not the library's
// defaults, so that an app built on the library can run on the same host
// name as tether (cookies are not kept apart by port) without either
// signing the other out. The device cookie (device.go) is the server's
// alone.
const (
	SessionCookie    = "__Host-tether"
	PreSessionCookie = "__Host-tether-pre"
)

// DefaultUserCacheTTL is Config.UserCacheTTL's default: a signed-in
// request's account read is at most this old. What takes a user's access
// away (disabling, a password change) revokes their sessions too, which
// every node sees within milliseconds.
const DefaultUserCacheTTL = time.Second

// The address allowance's defaults (see Config.AddressFree): a steady
// one failure every two minutes from one address never meets a delay.
const (
	DefaultAddressFree = 20
	DefaultAddressLeak = 2 * time.Minute
)

// field is a required field of a config: its name, and whether it is
// unset.
type field struct {
	name  string
	unset bool
}

// unsetFields returns the names of the fields that are unset.
func unsetFields(fields ...field) []string {
	var names []string
	for _, f := range fields {
		if f.unset {
			names = append(names, f.name)
		}
	}
	return names
}

// server holds what the handlers need; New builds it from Config.
type server struct {
	log      *slog.Logger
	auditLog *audit.Logger // Config.Audit, or one over log
	sessions *session.Manager
	accounts account.Store
	users    *userCache                // whoami's reads of accounts
	clients  *ttlCache[account.Client] // forward-auth's reads of tokens' clients (clientLiveCached); nil without Tokens
	creds    *credential.Service
	devices  *devices
	throttle Throttle
	hasher   *password.Hasher
	queue    *priorities // the hashing priority of sign-ins and password changes
	checks   *checkTimes // how long checked sign-in failures take (pace.go)
	pause    func(ctx context.Context, d time.Duration)
	policy   password.Policy
	csrf     *csrf.Protector
	now      func() time.Time
	proxies  []netip.Prefix
	address  throttle.Key    // the allowance of a client address's key; Name set per request
	hosts    hostSet         // the hosts it answers for
	allowed  hostSet         // the hosts a return address may name (GW-01)
	asserted []string        // the audiences forward-auth signs assertions for
	refusals *sometimes.Gate // when a refused host may be logged
	plainLog *sometimes.Gate // when a request over plain HTTP may be logged (transport.go)
	failures *sometimes.Gate // when a failed request (a store's error) may be logged
	unready  *sometimes.Gate // when a failed readiness check may be logged
	ready    func(ctx context.Context) error
	readyFor time.Duration // ready's deadline
	pages    map[string]*template.Template
	// storeTimeout bounds each call to a store (MISC-05).
	storeTimeout time.Duration
	oauth        *oauth // nil: no OAuth endpoints
	// pats keeps personal access tokens, whose lifetime is at most
	// patMaxTTL; nil: none are served.
	pats      account.PATs
	patMaxTTL time.Duration
	metrics   *metrics.Metrics // nil: none
}

// New returns the server's handler: every route of routes.go behind the
// security headers (MISC-01), panic recovery (MISC-02), the check of the
// Host (MISC-07), the check for plain HTTP (transport.go), the body cap and the session check (loadSession), which
// reads the session cookie once per request.
func New(cfg Config) (http.Handler, error) {
	var problems []error
	for _, name := range unsetFields(
		field{"Sessions", cfg.Sessions == nil},
		field{"Accounts", cfg.Accounts == nil},
		field{"Throttle", cfg.Throttle == nil},
		field{"Hasher", cfg.Hasher == nil},
		field{"CSRF", cfg.CSRF == nil},
		field{"Ready", cfg.Ready == nil},
	) {
		problems = append(problems, fmt.Errorf("%w: %s is required", errConfig, name))
	}
	if cfg.PATMaxTTL != 0 && cfg.PATMaxTTL < 24*time.Hour {
		problems = append(problems, fmt.Errorf("%w: PATMaxTTL %v: must be at least a day, or 0 for its default", errConfig, cfg.PATMaxTTL))
	}
	if cfg.StoreTimeout < 0 || cfg.ReadyTimeout < 0 {
		problems = append(problems, fmt.Errorf("%w: StoreTimeout and ReadyTimeout must be positive, or 0 for their defaults", errConfig))
	}
	if err := cfg.Policy.Validate(); err != nil {
		problems = append(problems, fmt.Errorf("%w: %w", errConfig, err))
	}
	devices, err := newDevices(cfg.DeviceSecret)
	if err != nil {
		problems = append(problems, fmt.Errorf("%w: %w", errConfig, err))
	}
	hosts, err := newHostSet(cfg.Hosts)
	if err != nil {
		problems = append(problems, fmt.Errorf("%w: Hosts: %w", errConfig, err))
	}
	var allowed hostSet // none unless listed, unlike Hosts
	if len(cfg.AllowedHosts) > 0 {
		if allowed, err = newHostSet(cfg.AllowedHosts); err != nil {
			problems = append(problems, fmt.Errorf("%w: AllowedHosts: %w", errConfig, err))
		}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	pause := cfg.Pause
	if pause == nil {
		pause = waitOut
	}
	oauth, err := newOAuth(cfg.Tokens, now)
	if err != nil {
		problems = append(problems, fmt.Errorf("%w: %w", errConfig, err))
	}
	if len(cfg.Assertions) > 0 && cfg.Tokens == nil {
		problems = append(problems, fmt.Errorf("%w: Assertions needs Tokens, whose keys sign the assertions", errConfig))
	}
	if slices.Contains(cfg.Assertions, "") {
		problems = append(problems, fmt.Errorf("%w: Assertions: an audience is empty", errConfig))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	storeTimeout := cmp.Or(cfg.StoreTimeout, DefaultStoreTimeout)
	s := &server{
		log:      log.With("component", "server"),
		auditLog: cfg.Audit,
		sessions: cfg.Sessions,
		accounts: BoundedAccounts(cfg.Accounts, storeTimeout),
		throttle: deadlineThrottle{t: cfg.Throttle, d: storeTimeout},
		hasher:   cfg.Hasher,
		queue:    newPriorities(),
		checks:   newCheckTimes(),
		policy:   cfg.Policy,
		csrf:     cfg.CSRF,
		devices:  devices,
		now:      now,
		pause:    pause,
		proxies:  cfg.TrustedProxies,
		address:  throttle.Key{Free: cmp.Or(cfg.AddressFree, DefaultAddressFree), Leak: cmp.Or(cfg.AddressLeak, DefaultAddressLeak)},
		hosts:    hosts,
		allowed:  allowed,
		asserted: slices.Clone(cfg.Assertions),
		refusals: sometimes.New(time.Second, now),
		plainLog: sometimes.New(time.Minute, now),
		failures: sometimes.New(time.Second, now),
		unready:  sometimes.New(time.Second, now),
		ready:    cfg.Ready,
		readyFor: cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout),
		pages:    pages,

		storeTimeout: storeTimeout,
		oauth:        oauth,
		pats:         cfg.PATs,
		patMaxTTL:    cmp.Or(cfg.PATMaxTTL, DefaultPATMaxTTL),
		metrics:      cfg.Metrics,
	}
	if s.auditLog == nil {
		s.auditLog = audit.New(s.log.Handler())
	}
	if oauth != nil && oauth.feed != nil {
		if oauth.stream, err = revocation.NewStream(oauth.feed, revocation.StreamConfig{Authorize: s.authorizeFollower, Logger: log}); err != nil {
			return nil, fmt.Errorf("%w: %w", errConfig, err)
		}
	}
	s.users = newUserCache(cfg.UserCacheTTL, cfg.Now, s.accounts.ByID)
	if oauth != nil {
		s.clients = newTTLCache(cfg.UserCacheTTL, cfg.Now, oauth.clients.Client, func(c *account.Client) {
			c.SecretHash = account.SecretHash{} // never checked against a cached client
		})
	}
	s.creds, err = credential.New(credential.Config{
		Accounts: s.accounts,
		Sessions: s.sessions,
		Hasher:   s.hasher,
		Policy:   s.policy,
		Changed:  s.users.forget,
		PATs:     cfg.PATs,

		KeepTokensOnPasswordChange: cfg.KeepTokensOnPasswordChange,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	mux := http.NewServeMux()
	addRoutes(mux, s)
	h := cfg.Metrics.Routes(mux)
	h = s.loadSession(h)
	h = capBody(h)
	h = s.checkTransport(h)
	h = s.checkHost(h)
	h = recoverPanic(s.log, h)
	h = secureHeaders(h)
	// The mux's pattern names a request's route (Routes); a request
	// refused before it reached the mux is named by a lookup.
	h = cfg.Metrics.Instrument(h, func(r *http.Request) string { _, pattern := mux.Handler(r); return pattern })
	return h, nil
}

package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/internal/sometimes"
	"github.com/tetherauth/tether/localdev"
)

// Errors of the Manager.
var (
	// ErrNoSession: the token is malformed, unknown, expired or revoked. The
	// middleware treats all of these exactly like a missing cookie (SES-04).
	ErrNoSession = errors.New("session: no valid session")
	// ErrTooLarge: a Put would make the session's data larger than
	// Config.MaxDataSize.
	ErrTooLarge = errors.New("session: data too large")
	// ErrDuplicateCookie: the request carries the session cookie twice
	// (SES-06).
	ErrDuplicateCookie = errors.New("session: duplicate session cookie")
	// ErrPending: RevokeLater could not reach the store; Run ends the
	// session once it can.
	ErrPending = errors.New("session: revocation pending until the store answers")
)

// Config configures a Manager. The zero value of every field means its
// documented default.
type Config struct {
	// IdleTimeout ends a session that is not used for this long (SES-07).
	// Default 30 minutes.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in, however busy
	// (SES-07). Default 12 hours.
	AbsoluteTimeout time.Duration
	// TouchInterval: the idle deadline is written back to the store at most
	// this often per session, not on every request. Default 1 minute; it is
	// capped at IdleTimeout/2 so that a busy session never idles out.
	TouchInterval time.Duration
	// SweepInterval: how often Run asks the store to forget expired sessions,
	// when the store can (see Sweeper). Default 5 minutes.
	SweepInterval time.Duration
	// CookieName must start with "__Host-" (SES-05). Default
	// DefaultCookieName. Name it after your app: cookies are not kept
	// apart by port, so two apps on one host name with the same cookie
	// name sign each other out. With CookieDomain, the name follows:
	// "__Host-app" is sent as "__Secure-app" (which may be given too).
	CookieName string
	// CookieDomain, if set, shares the session with every host under it:
	// the cookie is sent with Domain=CookieDomain and the "__Secure-"
	// prefix instead of "__Host-" (still Secure, HttpOnly, SameSite,
	// Path=/), so that a sign-in on auth.example.com reaches
	// app.example.com. Every host under it then receives the cookie:
	// one taken over reads it and rides the session (see the README's
	// "Sessions across subdomains"). It must pass CheckCookieDomain, and
	// cover the hosts the app is served on (CookieDomainCovers), or
	// browsers drop the cookie. Default "": host-only (SES-05).
	CookieDomain string
	// InsecureLocalhostHTTP is a development mode, for an app served over
	// plain http://localhost to a browser or client that keeps no Secure
	// cookie there (Safari). When set, a request that comes over plain
	// HTTP, straight from this machine, for localhost, 127.0.0.1 or [::1]
	// (localdev.Local) gets its session cookie named CookieName without
	// "__Host-", and without Secure. Every other request keeps the
	// __Host- Secure cookie, and the first of them in a minute is logged
	// as an error: set it only in development. Off by default.
	InsecureLocalhostHTTP bool
	// SameSite is Lax by default; Strict is allowed; None is refused.
	SameSite http.SameSite
	// MaxDataSize caps a session's data (keys and values, in bytes). Default
	// 4096.
	MaxDataSize int
	// CacheSize is about how many sessions the near-cache holds. Default
	// 65536; a negative value disables it.
	CacheSize int
	// MaxPerUser caps each user's live sessions (SES-13): when a new
	// session would pass it, the user's session closest to its end (the
	// least recently used) is signed out to make room. It bounds what
	// listing or revoking a user's sessions costs the store. Default
	// DefaultMaxPerUser; at most 10000.
	MaxPerUser int
	// MaxStaleness bounds how long after a revocation on another node this
	// node may still accept the revoked session from its near-cache
	// (SES-14): the cache serves only while the store's feed was vouched
	// current (a heartbeat, see Store.Watch) within it; past it, every
	// load goes to the store, which answers or fails (503), never a stale
	// session. Default DefaultMaxStaleness; from MinMaxStaleness to
	// MaxMaxStaleness. A healthy feed keeps the real delay far below it.
	MaxStaleness time.Duration
	// StoreTimeout bounds every call to the store but Watch (MISC-05): a
	// store that stops answering fails the call, and so the request, with
	// an error wrapping context.DeadlineExceeded once it has passed. A
	// context with a sooner deadline keeps it. Default
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// TokenMaxLifetime is the longest an access token tether issues may
	// live: RevokeSubject keeps a subject's entry on the denylist this
	// long, past the end of every token it concerns. Default
	// DefaultTokenMaxLifetime.
	TokenMaxLifetime time.Duration
	// OnEvent, if set, gets every event of the store's feed (Store.Watch)
	// once the near-cache has handled it, in Run: so that another view
	// of the store (the server's view of the token denylist, say) follows
	// the Manager's one feed instead of a Watch of its own. It is called
	// from the store's writers and from the feed's goroutine, concurrently:
	// it must be quick and safe for concurrent use, and must not call the
	// store (nor the Manager's methods that do). Between a FeedDown and the
	// next FeedUp, events may have been missed; Current tells when the feed
	// can be trusted.
	OnEvent func(Event)
	// OnLoad, if set, is told the outcome of every Load (and so of every
	// session check of the middleware and LoadRequest): for metrics. It
	// is called on the request's goroutine, concurrently: it must be
	// quick, safe for concurrent use, and must not call the Manager.
	// Setting it also makes the Manager remember the last few thousand
	// sessions its feed reported ended, to tell LoadRevoked from
	// LoadUnknown. Nil costs nothing.
	OnLoad func(LoadResult)
	// Now is the clock. Default time.Now. The Manager never lets it go
	// back: a wall clock stepped back (an NTP step, a VM restored from a
	// snapshot) stands still until it catches up, so no idle or absolute
	// deadline this process has passed comes back to life.
	Now func() time.Time
	// Logger gets the manager's few messages (feed lost and recovered,
	// sweeps). Default slog.Default().
	Logger *slog.Logger
	// ErrorHandler answers a request the middleware can't serve: err is
	// ErrDuplicateCookie (default answer 400) or a store error (default
	// 503 with Retry-After: 1, SES-11, MISC-05). It must not serve the
	// request as signed in.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// DefaultCookieName is Config.CookieName's default. (tether's own server
// names its cookie __Host-tether.)
const DefaultCookieName = "__Host-session"

// DefaultMaxPerUser is Config.MaxPerUser's default: more devices than a
// person signs in from, few enough that listing them is cheap.
const DefaultMaxPerUser = 100

// MaxPerUserLimit bounds Config.MaxPerUser, so that no setting makes a
// per-user operation unbounded.
const MaxPerUserLimit = 10000

// Config.MaxStaleness: its default and its range. The lower end leaves
// room for a few missed heartbeats (HeartbeatInterval) before a healthy
// but busy feed turns the cache off; the upper one keeps the bound a
// bound.
const (
	DefaultMaxStaleness = time.Second
	MinMaxStaleness     = 400 * time.Millisecond
	MaxMaxStaleness     = 10 * time.Second
)

// Sweeper is implemented by stores that can forget expired records
// themselves; Run calls it every Config.SweepInterval. Stores with native
// expiry (Redis TTLs) need not implement it.
type Sweeper interface {
	// DeleteExpired removes the records whose Expiry is at or before now and
	// returns how many it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// Manager creates, loads and revokes sessions in a Store, and keeps a
// near-cache of validated sessions that the store's invalidation feed keeps
// coherent (the cache is used only while Run is running and the feed is
// healthy, and was vouched current within Config.MaxStaleness). It is safe
// for concurrent use.
type Manager struct {
	store   Store          // the caller's, every call bounded by StoreTimeout
	dev     *localdev.Mode // Config.InsecureLocalhostHTTP; nil when off
	sweeper Sweeper        // the caller's store if it is one, else nil
	cfg     Config
	cache   *cache
	log     *slog.Logger
	// exactClock: Config.Now was given (a test clock, say), so cached
	// sessions are checked against it rather than the coarse clock.
	exactClock bool

	storeLog *sometimes.Gate // when the middleware may log a store error: once a second

	pendingMu sync.Mutex        // guards pending
	pending   map[Hash]struct{} // revocations RevokeLater could not make yet
}

// NewManager returns a Manager over store. Call Run to use the near-cache.
func NewManager(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("session: nil store")
	}
	exact := cfg.Now != nil
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sweeper, _ := store.(Sweeper)
	cache := newCache(cfg.CacheSize, cfg.MaxStaleness)
	if cfg.OnLoad != nil {
		cache.ended = newEnded(cfg.Now)
	}
	var dev *localdev.Mode
	if cfg.InsecureLocalhostHTTP {
		dev = localdev.New(cfg.Logger.With("component", "session"), "session.Config.InsecureLocalhostHTTP", cfg.Now)
	}
	return &Manager{
		storeLog:   sometimes.New(time.Second, cfg.Now),
		dev:        dev,
		store:      deadlineStore{Store: store, d: cfg.StoreTimeout},
		sweeper:    sweeper,
		cfg:        cfg,
		cache:      cache,
		log:        cfg.Logger.With("component", "session"),
		exactClock: exact,
		pending:    make(map[Hash]struct{}),
	}, nil
}

func (c *Config) setDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.IdleTimeout, 30*time.Minute)
	def(&c.AbsoluteTimeout, 12*time.Hour)
	def(&c.TouchInterval, time.Minute)
	def(&c.SweepInterval, 5*time.Minute)
	def(&c.MaxStaleness, DefaultMaxStaleness)
	def(&c.StoreTimeout, DefaultStoreTimeout)
	def(&c.TokenMaxLifetime, DefaultTokenMaxLifetime)
	c.TouchInterval = min(c.TouchInterval, c.IdleTimeout/2)
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	if c.MaxDataSize == 0 {
		c.MaxDataSize = 4096
	}
	if c.CacheSize == 0 {
		c.CacheSize = 65536
	}
	if c.MaxPerUser == 0 {
		c.MaxPerUser = DefaultMaxPerUser
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Now = neverBack(c.Now)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = defaultErrorHandler
	}
	var errs []error
	if c.IdleTimeout < 0 || c.AbsoluteTimeout < 0 || c.TouchInterval < 0 || c.SweepInterval < 0 || c.StoreTimeout < 0 || c.TokenMaxLifetime < 0 {
		errs = append(errs, errors.New("session: timeouts and intervals must be positive"))
	}
	if c.IdleTimeout > c.AbsoluteTimeout {
		errs = append(errs, fmt.Errorf("session: idle timeout %v is longer than absolute timeout %v", c.IdleTimeout, c.AbsoluteTimeout))
	}
	if err := c.setCookieName(); err != nil {
		errs = append(errs, err)
	}
	if c.SameSite != http.SameSiteLaxMode && c.SameSite != http.SameSiteStrictMode {
		errs = append(errs, errors.New("session: SameSite must be Lax or Strict (SES-05)"))
	}
	if c.MaxDataSize < 0 {
		errs = append(errs, errors.New("session: MaxDataSize must be positive"))
	}
	if c.MaxStaleness < MinMaxStaleness || c.MaxStaleness > MaxMaxStaleness {
		errs = append(errs, fmt.Errorf("session: MaxStaleness %v: want %v to %v (SES-14)", c.MaxStaleness, MinMaxStaleness, MaxMaxStaleness))
	}
	if c.MaxPerUser < 0 || c.MaxPerUser > MaxPerUserLimit {
		errs = append(errs, fmt.Errorf("session: MaxPerUser %d: want 1 to %d (SES-13)", c.MaxPerUser, MaxPerUserLimit))
	}
	return errors.Join(errs...)
}

// setCookieName checks CookieName and CookieDomain, and gives CookieName
// the prefix that goes with CookieDomain.
func (c *Config) setCookieName() error {
	rest, ok := strings.CutPrefix(c.CookieName, localdev.HostPrefix)
	if c.CookieDomain == "" {
		if !ok || rest == "" || !validCookieName(c.CookieName) {
			return fmt.Errorf("session: cookie name %q must be a valid name: __Host- and more (SES-05)", c.CookieName)
		}
		return nil
	}
	if !ok {
		rest, ok = strings.CutPrefix(c.CookieName, localdev.SecurePrefix)
	}
	if !ok || rest == "" || !validCookieName(c.CookieName) {
		return fmt.Errorf("session: cookie name %q must be a valid name: __Host- or __Secure- and more", c.CookieName)
	}
	c.CookieName = localdev.SecurePrefix + rest
	return CheckCookieDomain(c.CookieDomain)
}

func validCookieName(name string) bool {
	return (&http.Cookie{Name: name, Value: "x"}).Valid() == nil
}

func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrDuplicateCookie) {
		http.Error(w, "duplicate session cookie", http.StatusBadRequest)
		return
	}
	w.Header().Set("Retry-After", "1") // MISC-05: a store that fails is usually back soon
	http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
}

// Meta describes the device a session is created for, shown when the user
// lists their sessions (SES-10).
type Meta struct {
	UserAgent string // truncated to 256 bytes
	IP        string
}

// A Ticket is what Begin read of a user before their credential was
// checked. Create makes a session from it only while it is still current.
// The zero Ticket creates nothing.
type Ticket struct {
	userID string
	gen    uint64
}

// Begin starts a sign-in of userID: call it before reading the credential
// you will check (the password hash, the disabled flag), then Create with
// the Ticket once the check has passed. If the user's sessions are revoked
// in between (a password change, a disabled account, "sign out
// everywhere", on any node) Create fails with ErrRevoked, so a sign-in that
// checked a credential that is no longer current never leaves a live
// session behind (SES-12).
//
// Why the order matters: whoever changes a credential stores the new one
// first and then revokes (RevokeUser). A sign-in that read the old
// credential read it before that store, so Begin's read came before the
// revocation as well, and either Create sees the revocation or the session
// it makes is killed by it.
func (m *Manager) Begin(ctx context.Context, userID string) (Ticket, error) {
	if userID == "" {
		return Ticket{}, errors.New("session: begin: empty user id")
	}
	gen, err := m.store.Generation(ctx, userID)
	if err != nil {
		return Ticket{}, fmt.Errorf("session: begin: %w", err)
	}
	return Ticket{userID: userID, gen: gen}, nil
}

// Create starts a session for the user of t and returns its token, to be
// sent to the client with SetCookie and never stored or logged (SES-02).
// Every call makes a fresh token: sign in with Create, never by promoting
// an earlier session (SES-03). It returns an error wrapping ErrRevoked if
// the user's sessions were revoked since Begin (SES-12). If the user
// already has Config.MaxPerUser sessions, the one closest to its end is
// signed out (SES-13).
func (m *Manager) Create(ctx context.Context, t Ticket, meta Meta) (string, *Session, error) {
	if t.userID == "" {
		return "", nil, errors.New("session: create: no ticket: call Begin before checking the credential")
	}
	now := m.cfg.Now()
	abs := now.Add(m.cfg.AbsoluteTimeout)
	token, h := newToken()
	r := &Record{
		Hash:         h,
		ID:           newID(),
		UserID:       t.userID,
		Gen:          t.gen,
		Created:      now,
		LastSeen:     now,
		IdleDeadline: earlier(now.Add(m.cfg.IdleTimeout), abs),
		AbsDeadline:  abs,
		UserAgent:    truncate(meta.UserAgent, 256),
		IP:           meta.IP,
	}
	if err := m.store.Create(ctx, r, CreateOptions{MaxPerUser: m.cfg.MaxPerUser}); err != nil {
		return "", nil, fmt.Errorf("session: create: %w", err)
	}
	return token, newSession(r), nil
}

// Load returns the live session for token. It returns ErrNoSession for a
// malformed token (without asking the store), an unknown one, an expired or
// a revoked one, and a wrapped store error when the store fails.
func (m *Manager) Load(ctx context.Context, token string) (*Session, error) {
	s, res, err := m.load(ctx, token)
	m.loaded(res)
	return s, err
}

// load is Load, and what to tell Config.OnLoad of it.
func (m *Manager) load(ctx context.Context, token string) (*Session, LoadResult, error) {
	h, ok := parseToken(token)
	if !ok {
		return nil, LoadResult{Outcome: LoadMalformed}, ErrNoSession
	}
	if s := m.cache.get(h); s != nil && (!m.exactClock || s.live(m.cfg.Now())) {
		return s, LoadResult{Outcome: LoadOK, Cached: true}, nil
	}
	epoch := m.cache.snapshot()
	r, err := m.store.Get(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, LoadResult{Outcome: m.cache.ended.outcome(h)}, ErrNoSession
	}
	if err != nil {
		return nil, LoadResult{Outcome: LoadStoreError}, m.storeErr("load", err)
	}
	s := newSession(r)
	if !s.live(m.cfg.Now()) {
		return nil, LoadResult{Outcome: LoadExpired}, ErrNoSession
	}
	m.cache.put(s, epoch)
	return s, LoadResult{Outcome: LoadOK}, nil
}

// storeErr maps a store's ErrNotFound to ErrNoSession and wraps the rest.
func (m *Manager) storeErr(op string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrNoSession
	}
	return fmt.Errorf("session: %s: %w", op, err)
}

// Touch writes back a later idle deadline for s if TouchInterval has passed
// since it was last written, and returns the session as it now is.
//
// Parallel requests of one session race to write it back; losing that race
// is not an error. A loser that finds the deadline written back by another
// request stops there, and a touch beaten by other writes of the session
// (Put) until its tries run out returns s: the next request tries again.
func (m *Manager) Touch(ctx context.Context, s *Session) (*Session, error) {
	now := m.cfg.Now()
	if now.Sub(s.lastSeen) < m.cfg.TouchInterval {
		return s, nil
	}
	t, err := m.update(ctx, s, func(r *Record) error {
		if now.Sub(r.LastSeen) < m.cfg.TouchInterval {
			return errUnchanged
		}
		r.LastSeen = now
		r.IdleDeadline = earlier(now.Add(m.cfg.IdleTimeout), r.AbsDeadline)
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return s, nil
	}
	return t, err
}

// Rotate replaces s with a session under a new token and public id, with
// the same user, data and absolute deadline, and kills s in the same atomic
// change. Use it on re-authentication and privilege change (SES-03). It
// returns ErrNoSession, and makes nothing, if s is no longer live: expired,
// signed out, or revoked with its user's other sessions, on any node.
func (m *Manager) Rotate(ctx context.Context, s *Session) (string, *Session, error) {
	now := m.cfg.Now()
	if !s.live(now) {
		return "", nil, ErrNoSession
	}
	token, h := newToken()
	r := s.record()
	r.Hash, r.ID, r.Version = h, newID(), 0
	r.LastSeen = now
	r.IdleDeadline = earlier(now.Add(m.cfg.IdleTimeout), r.AbsDeadline)
	err := m.store.Create(ctx, r, CreateOptions{Replace: &s.hash, MaxPerUser: m.cfg.MaxPerUser})
	if errors.Is(err, ErrRevoked) {
		err = ErrNotFound
	}
	if err != nil {
		return "", nil, m.storeErr("rotate", err)
	}
	return token, newSession(r), nil
}

// Revoke ends s.
func (m *Manager) Revoke(ctx context.Context, s *Session) error {
	if err := m.store.Delete(ctx, s.hash); err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	m.cache.ended.add(s.hash, s.expiry())
	return nil
}

// RevokeLater ends the session named by token, as sign-out does, even
// while the store can't be reached: when it fails, the token's hash is
// kept in memory and Run deletes it once the store answers again, and
// RevokeLater returns an error wrapping ErrPending. At most maxPending
// hashes wait; past that, and for a malformed token, it returns the
// error itself. The node that keeps a hash is the only one that knows of
// it: a restart loses it (the session then ends at its own deadline).
func (m *Manager) RevokeLater(ctx context.Context, token string) error {
	h, ok := parseToken(token)
	if !ok {
		return ErrNoSession
	}
	err := m.store.Delete(ctx, h)
	if err == nil {
		return nil
	}
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	if len(m.pending) >= maxPending {
		return fmt.Errorf("session: revoke: %w (and %d revocations already wait)", err, len(m.pending))
	}
	m.pending[h] = struct{}{}
	return fmt.Errorf("session: revoke: %w: %w", ErrPending, err)
}

// maxPending bounds the revocations RevokeLater keeps for Run.
const maxPending = 10000

// retryPending deletes the hashes RevokeLater kept, each within
// pendingTimeout, and forgets those the store deleted.
func (m *Manager) retryPending(ctx context.Context) {
	m.pendingMu.Lock()
	hashes := slices.Collect(maps.Keys(m.pending))
	m.pendingMu.Unlock()
	for _, h := range hashes {
		dctx, cancel := context.WithTimeout(ctx, pendingTimeout)
		err := m.store.Delete(dctx, h)
		cancel()
		if err != nil {
			m.log.Warn("ending signed-out sessions the store could not end yet", "pending", len(hashes), "err", err)
			return
		}
		m.pendingMu.Lock()
		delete(m.pending, h)
		m.pendingMu.Unlock()
	}
	if len(hashes) > 0 {
		m.log.Info("ended the signed-out sessions the store could not end before", "count", len(hashes))
	}
}

// pendingTimeout bounds each retry of a pending revocation.
const pendingTimeout = 2 * time.Second

// RevokeID ends the session of userID with public id id, as when a user
// signs out a device from their list. It returns ErrNoSession if userID has
// no live session with that id.
func (m *Manager) RevokeID(ctx context.Context, userID, id string) error {
	list, err := m.store.List(ctx, userID)
	if err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	for _, r := range list {
		if r.ID == id {
			if err := m.store.Delete(ctx, r.Hash); err != nil {
				return fmt.Errorf("session: revoke: %w", err)
			}
			return nil
		}
	}
	return ErrNoSession
}

// RevokeUser ends every session of userID at once, on every node, in one
// write however many there are (the user's generation is bumped). If keep is
// one of the user's sessions, it survives: the fresh session of a user who
// just changed their password, say (CHG-02).
func (m *Manager) RevokeUser(ctx context.Context, userID string, keep *Session) error {
	var kh *Hash
	if keep != nil && keep.userID == userID {
		kh = &keep.hash
	}
	if err := m.store.RevokeUser(ctx, userID, kh); err != nil {
		return fmt.Errorf("session: revoke user: %w", err)
	}
	return nil
}

// List returns the live sessions of userID, oldest first (SES-10).
func (m *Manager) List(ctx context.Context, userID string) ([]*Session, error) {
	list, err := m.store.List(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	now := m.cfg.Now()
	out := make([]*Session, 0, len(list))
	for _, r := range list {
		if s := newSession(r); s.live(now) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Put stores value under key in s and returns the session as it now is.
// Concurrent changes of other keys of the same session, through any node,
// are kept: the write is a compare-and-swap on the record's version,
// retried on a conflict. It returns ErrTooLarge if the data would exceed
// Config.MaxDataSize, ErrNoSession if s has ended.
func (m *Manager) Put(ctx context.Context, s *Session, key string, value []byte) (*Session, error) {
	value = append([]byte(nil), value...)
	return m.update(ctx, s, func(r *Record) error {
		if r.Data == nil {
			r.Data = make(map[string][]byte, 1)
		}
		r.Data[key] = value
		if dataSize(r.Data) > m.cfg.MaxDataSize {
			return ErrTooLarge
		}
		return nil
	})
}

// PutString is Put for a string.
func (m *Manager) PutString(ctx context.Context, s *Session, key, value string) (*Session, error) {
	return m.Put(ctx, s, key, []byte(value))
}

// PutInt is Put for an integer, read back with Session.Int.
func (m *Manager) PutInt(ctx context.Context, s *Session, key string, value int64) (*Session, error) {
	return m.Put(ctx, s, key, strconv.AppendInt(nil, value, 10))
}

// DeleteKey removes key from s, keeping concurrent changes as Put does.
func (m *Manager) DeleteKey(ctx context.Context, s *Session, key string) (*Session, error) {
	return m.update(ctx, s, func(r *Record) error {
		delete(r.Data, key)
		return nil
	})
}

func dataSize(d map[string][]byte) int {
	n := 0
	for k, v := range d {
		n += len(k) + len(v)
	}
	return n
}

// maxUpdateTries bounds the compare-and-swap loop of update; it only runs
// out under a storm of writes to one session.
const maxUpdateTries = 8

// errUnchanged, from update's change, means the record needs no write.
var errUnchanged = errors.New("session: unchanged")

// update applies change to the freshest record of s and saves it with a
// version check, starting over from a fresh read on a conflict. When tries
// run out, the error wraps ErrConflict.
func (m *Manager) update(ctx context.Context, s *Session, change func(*Record) error) (*Session, error) {
	r := s.record()
	for try := 1; ; try++ {
		if err := change(r); errors.Is(err, errUnchanged) {
			return newSession(r), nil
		} else if err != nil {
			return nil, err
		}
		err := m.store.Save(ctx, r)
		if err == nil {
			return newSession(r), nil
		}
		if !errors.Is(err, ErrConflict) || try == maxUpdateTries {
			return nil, m.storeErr("update", err)
		}
		if r, err = m.store.Get(ctx, s.hash); err != nil {
			return nil, m.storeErr("update", err)
		}
	}
}

// Run follows the store's invalidation feed, so that the near-cache may
// serve sessions, asks a store that is a Sweeper to forget expired
// sessions every SweepInterval, and retries the revocations RevokeLater
// kept every second. It blocks until ctx is done and then
// returns nil. While the feed is down, the cache is empty and bypassed; a
// feed that stops is resubscribed with a growing delay (at most 5 s). A
// feed whose last heartbeat is older than MaxStaleness leaves the cache
// bypassed, not emptied: its invalidations arrive in order before the next
// heartbeat, or it is lost.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	m.cache.tick(m.cfg.Now())
	if m.sweeper != nil {
		wg.Go(func() { m.sweep(ctx, m.sweeper) })
	}
	wg.Go(func() { m.tickClock(ctx) })
	wg.Go(func() { every(ctx, time.Second, func() { m.retryPending(ctx) }) })
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		var wasUp atomic.Bool
		err := m.store.Watch(ctx, func(e Event) {
			if e.Kind == FeedUp {
				wasUp.Store(true)
			}
			m.cache.handle(e)
			if m.cfg.OnEvent != nil {
				m.cfg.OnEvent(e)
			}
		})
		m.cache.setUp(false)
		if ctx.Err() != nil {
			return nil
		}
		if wasUp.Load() {
			backoff = minBackoff
		}
		m.log.Warn("invalidation feed lost; near-cache off until it is back", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// tickClock keeps the near-cache's coarse clock within clockTick of
// Config.Now. The cache only serves while Run runs, so the clock is fresh
// whenever it is read. It also logs when a feed that is up goes silent
// past MaxStaleness, and when it is heard again.
func (m *Manager) tickClock(ctx context.Context) {
	silent := false
	every(ctx, clockTick, func() {
		m.cache.tick(m.cfg.Now())
		if !m.cache.up.Load() { // Run logs a lost feed
			return
		}
		if s := m.cache.stale(); s != silent {
			silent = s
			if s {
				m.log.Warn("invalidation feed silent for longer than max staleness; near-cache bypassed until it is heard", "max_staleness", m.cfg.MaxStaleness)
			} else {
				m.log.Info("invalidation feed heard again; near-cache on")
			}
		}
	})
}

func (m *Manager) sweep(ctx context.Context, sw Sweeper) {
	every(ctx, m.cfg.SweepInterval, func() {
		ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
		defer cancel()
		n, err := sw.DeleteExpired(ctx, m.cfg.Now())
		if err != nil {
			m.log.Warn("sweeping expired sessions", "err", err)
		} else if n > 0 {
			m.log.Debug("swept expired sessions", "count", n)
		}
	})
}

// neverBack returns a clock that reads now but never returns a time before
// one it has returned: a clock that goes back stands still instead.
func neverBack(now func() time.Time) func() time.Time {
	var latest atomic.Int64 // Unix nanoseconds of the latest time returned
	return func() time.Time {
		t := now()
		for {
			seen := latest.Load()
			if t.UnixNano() <= seen {
				return time.Unix(0, seen).In(t.Location())
			}
			if latest.CompareAndSwap(seen, t.UnixNano()) {
				return t
			}
		}
	}
}

// sweepTimeout bounds one sweep (MISC-05): it may delete many records, so
// it gets longer than a request's store call, but a store that stopped
// answering doesn't hold it for good; the next sweep tries again.
const sweepTimeout = 30 * time.Second

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

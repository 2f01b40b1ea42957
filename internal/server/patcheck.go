package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/sometimes"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// The check of personal access tokens (issue 11): PATCheck, the server's
// PATChecker, for introspection and for any endpoint that takes a
// personal access token as a bearer token.
//
// Decisions:
//
//   - A malformed token (account.ParsePAT: prefix, length, characters,
//     checksum) is refused without a store call.
//   - A token is live while it is in the store, not expired, its id (its
//     jti, JWT-09) is not on the denylist, and the generation it was made
//     with is at least its user's token subject's (CHG-03). A store that
//     can't answer fails the check closed: never "live".
//   - A near-cache keeps what the store said of a live token, by the
//     token's hash (SES-02: never the token), and serves it only while the
//     session Manager's feed is current (SES-14: Current), as the session
//     near-cache does. Every invalidation the feed brings that may concern
//     a cached token drops it: TokenRevoked by its id or its user's
//     subject, UserRevoked of its subject; FeedDown and FeedUp drop them
//     all. A token read from the store is cached only if no invalidation
//     came while it was read (the epoch, as in package session). So a
//     revocation anywhere reaches this node's cache within the feed's
//     staleness bound.
//   - A cache hit costs no allocation and about what a session's cached
//     load does (BenchmarkPATCheck beside session's
//     BenchmarkManagerLoadCached, one run on 2 shared cores: 372 ns ±38%
//     and 449 ns ±34%): most of it is ParsePAT's checksum and SHA-256.
//   - A token's last use is written at most once a minute per token, off
//     the request path: a bounded queue that Run drains; when it is full,
//     the use goes unrecorded (it is a hint for the person, not a
//     security record).

// PATTouchInterval is how often, at most, a personal access token's last
// use is written to the store.
const PATTouchInterval = time.Minute

// DefaultPATCacheSize is PATCheckConfig.CacheSize's default.
const DefaultPATCacheSize = 4096

// patTouchQueue is how many last uses wait to be written, at most.
const patTouchQueue = 256

// patWrittenMax is how many tokens' last writes Run remembers before it
// forgets those older than PATTouchInterval.
const patWrittenMax = 4096

// patClockTick is how often Run sets the check's coarse clock. A cached
// token is treated as expired two ticks early.
const patClockTick = 10 * time.Millisecond

// PATRevocations is the revocation state a PATCheck reads: Check asks
// the store (the denylist and the generation: StoreRevocations), and
// Current tells whether the feed that invalidates the cache is current
// (session.Manager.Current).
type PATRevocations interface {
	token.Revocations
	Current() bool
}

// PATCheckConfig configures NewPATCheck. Fields without a default are
// required.
type PATCheckConfig struct {
	// PATs is the store of personal access tokens.
	PATs account.PATs
	// Revocations is read on every cache miss and says when the cache
	// may serve: StoreRevocations{manager}.
	Revocations PATRevocations
	// CacheSize is about how many live tokens the near-cache holds.
	// Default DefaultPATCacheSize; negative: no cache.
	CacheSize int
	// StoreTimeout bounds each call to the stores (MISC-05). Default
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets the failures to record a last use. Default: discard.
	Logger *slog.Logger
}

// PATCheck checks personal access tokens: it implements PATChecker. Feed
// it every event of the session Manager's feed (Handle, from
// session.Config.OnEvent) and run Run; until Run has set its clock, and
// whenever the feed is not current, every check asks the store. It is
// safe for concurrent use.
type PATCheck struct {
	pats    account.PATs
	revs    PATRevocations
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	failed  *sometimes.Gate      // when a failed write of a last use may be logged
	clock   atomic.Int64         // the coarse clock, Unix ns, set by Run; 0 before
	touches chan patTouch        // last uses for Run to write
	written map[string]time.Time // Run's: when each token's last use was last written

	mu      sync.RWMutex // guards the fields below, and epoch's increments
	epoch   atomic.Uint64
	entries map[account.SecretHash]*patEntry
	ids     map[string]account.SecretHash // the hash of each cached token, by its id
	size    int                           // the most entries; 0: no cache
}

var _ PATChecker = (*PATCheck)(nil)

// patEntry is a live token as the cache keeps it: never changed once
// cached, but for touched.
type patEntry struct {
	claims  token.Claims
	expires int64        // claims.Expiry in Unix ns
	touched atomic.Int64 // when its last use was last queued, Unix ns
}

// patTouch is a last use for Run to write.
type patTouch struct {
	id string
	at time.Time
}

// NewPATCheck returns a check of personal access tokens.
func NewPATCheck(cfg PATCheckConfig) (*PATCheck, error) {
	if names := unsetFields(field{"PATs", cfg.PATs == nil}, field{"Revocations", cfg.Revocations == nil}); names != nil {
		return nil, fmt.Errorf("%w: PATCheckConfig needs %s", errConfig, strings.Join(names, " and "))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &PATCheck{
		pats:    cfg.PATs,
		revs:    cfg.Revocations,
		timeout: cmp.Or(cfg.StoreTimeout, DefaultStoreTimeout),
		now:     now,
		log:     log.With("component", "pats"),
		failed:  sometimes.New(time.Minute, now),
		touches: make(chan patTouch, patTouchQueue),
		written: map[string]time.Time{},
		entries: map[account.SecretHash]*patEntry{},
		ids:     map[string]account.SecretHash{},
		size:    max(0, cmp.Or(cfg.CacheSize, DefaultPATCacheSize)),
	}
	return c, nil
}

// CheckPAT implements PATChecker: the claims of tok when it is live
// (Subject token.UserSubject(owner), Scope, IssuedAt its creation,
// Expiry, ID its public id, Generation), which the caller must not
// change; a refusal wraps token.ErrInvalid (and token.ErrExpired or
// token.ErrRevoked); any other error means the store could not tell.
func (c *PATCheck) CheckPAT(ctx context.Context, tok string) (*token.Claims, error) {
	// The cache holds only tokens that passed ParsePAT: a hit needs no
	// checksum (account.PATHash); a miss checks it before the store.
	h, err := account.PATHash(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", token.ErrInvalid, err)
	}
	if e := c.cached(h); e != nil {
		c.touch(e, c.clock.Load())
		return &e.claims, nil
	}
	if _, err := account.ParsePAT(tok); err != nil {
		return nil, fmt.Errorf("%w: %w", token.ErrInvalid, err)
	}
	return c.load(ctx, h)
}

// cached returns the entry of h when the cache may serve it: the feed is
// current, Run keeps the clock, and the entry is two ticks from its
// expiry.
func (c *PATCheck) cached(h account.SecretHash) *patEntry {
	now := c.clock.Load()
	if now == 0 || !c.revs.Current() {
		return nil
	}
	c.mu.RLock()
	e := c.entries[h]
	c.mu.RUnlock()
	if e == nil || now+int64(2*patClockTick) >= e.expires {
		return nil
	}
	return e
}

// load reads the token of hash h from the store and caches it when it is
// live and nothing was invalidated meanwhile.
func (c *PATCheck) load(ctx context.Context, h account.SecretHash) (*token.Claims, error) {
	epoch := c.epoch.Load()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	p, err := c.pats.PATByHash(ctx, h)
	switch {
	case errors.Is(err, account.ErrPATNotFound):
		return nil, fmt.Errorf("%w: unknown personal access token", token.ErrInvalid)
	case err != nil:
		return nil, fmt.Errorf("check personal access token: %w", err)
	}
	now := c.now()
	if !now.Before(p.Expires) {
		return nil, fmt.Errorf("%w: %w: personal access token %s", token.ErrInvalid, token.ErrExpired, p.ID)
	}
	subject := token.UserSubject(p.UserID)
	switch err := c.revs.Check(ctx, subject, p.Gen, p.ID); {
	case errors.Is(err, token.ErrRevoked):
		return nil, fmt.Errorf("%w: %w: personal access token %s", token.ErrInvalid, token.ErrRevoked, p.ID)
	case err != nil:
		return nil, fmt.Errorf("check personal access token %s: %w", p.ID, err)
	}
	e := &patEntry{
		claims: token.Claims{
			Subject:    subject,
			Scope:      strings.Join(p.Scopes, " "),
			IssuedAt:   p.Created,
			Expiry:     p.Expires,
			ID:         p.ID,
			Generation: p.Gen,
		},
		expires: p.Expires.UnixNano(),
	}
	c.put(h, e, epoch)
	c.touch(e, now.UnixNano())
	return &e.claims, nil
}

// put caches e under h unless an invalidation came since epoch was
// read. A full cache drops an arbitrary entry.
func (c *PATCheck) put(h account.SecretHash, e *patEntry, epoch uint64) {
	if c.size == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	if len(c.entries) >= c.size {
		for old, o := range c.entries {
			delete(c.entries, old)
			delete(c.ids, o.claims.ID)
			break
		}
	}
	c.entries[h] = e
	c.ids[e.claims.ID] = h
}

// touch queues e's use at now (Unix ns) unless one was queued within
// PATTouchInterval, or the queue is full.
func (c *PATCheck) touch(e *patEntry, now int64) {
	last := e.touched.Load()
	if now-last < int64(PATTouchInterval) || !e.touched.CompareAndSwap(last, now) {
		return
	}
	select {
	case c.touches <- patTouch{id: e.claims.ID, at: time.Unix(0, now)}:
	default: // full: this use goes unrecorded
	}
}

// Handle applies one event of the session Manager's feed to the cache
// (session.Config.OnEvent). It is quick and calls no store.
func (c *PATCheck) Handle(e session.Event) {
	switch e.Kind {
	case session.FeedUp, session.FeedDown:
		c.drop(func(*patEntry) bool { return true })
	case session.UserRevoked:
		c.drop(func(p *patEntry) bool { return p.claims.Subject == e.UserID })
	case session.TokenRevoked:
		if r := e.Revocation; r.Subject != "" {
			c.drop(func(p *patEntry) bool { return p.claims.Subject == r.Subject && p.claims.Generation < r.Gen })
		} else {
			c.dropID(r.JTI)
		}
	}
}

// drop removes the entries for which gone is true. It walks the cache:
// revoking a user is rare.
func (c *PATCheck) drop(gone func(*patEntry) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch.Add(1)
	for h, e := range c.entries {
		if gone(e) {
			delete(c.entries, h)
			delete(c.ids, e.claims.ID)
		}
	}
}

// dropID removes the entry of the token with that id.
func (c *PATCheck) dropID(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch.Add(1)
	if h, ok := c.ids[id]; ok {
		delete(c.entries, h)
		delete(c.ids, id)
	}
}

// Run keeps the check's coarse clock and writes the queued last uses,
// each within the store timeout, until ctx ends.
func (c *PATCheck) Run(ctx context.Context) error {
	c.tick()
	t := time.NewTicker(patClockTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.tick()
		case u := <-c.touches:
			c.write(ctx, u)
		}
	}
}

// tick sets the coarse clock.
func (c *PATCheck) tick() { c.clock.Store(c.now().UnixNano()) }

// write records one last use, unless the token's was written within
// PATTouchInterval (a token checked while the cache doesn't serve is
// queued on every check); a failure is logged, at most once a minute.
func (c *PATCheck) write(ctx context.Context, u patTouch) {
	if last, ok := c.written[u.id]; ok && u.at.Sub(last) < PATTouchInterval {
		return
	}
	if len(c.written) >= patWrittenMax {
		for id, last := range c.written {
			if u.at.Sub(last) >= PATTouchInterval {
				delete(c.written, id)
			}
		}
	}
	c.written[u.id] = u.at
	err := boundedErr(ctx, c.timeout, func(ctx context.Context) error { return c.pats.TouchPAT(ctx, u.id, u.at) })
	if err == nil {
		return
	}
	if held, ok := c.failed.Let(); ok {
		c.log.WarnContext(ctx, "recording a personal access token's last use", "err", err, "unlogged_since_last", held)
	}
}

// StoreRevocations is token.Revocations read from the session store on
// every check, through the Manager: the denylist (by jti, JWT-09) and the
// subject's generation (CHG-03). A store error is an error, never
// "live". With the Manager's own RevokeToken and SubjectGeneration, it is
// a TokenRevocations; with its Current, a PATRevocations.
type StoreRevocations struct{ *session.Manager }

var (
	_ TokenRevocations = StoreRevocations{}
	_ PATRevocations   = StoreRevocations{}
)

// Check implements token.Revocations.
func (s StoreRevocations) Check(ctx context.Context, subject string, gen uint64, jti string) error {
	revoked, err := s.TokenRevoked(ctx, jti)
	if err != nil {
		return err
	}
	current, err := s.SubjectGeneration(ctx, subject)
	if err != nil {
		return err
	}
	if revoked || gen < current {
		return token.ErrRevoked
	}
	return nil
}

package server

import (
	"context"
	"sync"
	"time"

	"github.com/tetherauth/tether/internal/account"
)

// userCache keeps the users that signed-in requests read (whoami), each for
// a short time, so that a node serving a signed-in user's requests doesn't
// read the account store on every one of them.
//
// Why a stale entry is safe: every change that takes access away (a user
// disabled, a password changed) also revokes the user's sessions, and a
// revocation reaches every node through the session store's feed within
// milliseconds; the session check refuses the request before whoami reads
// the user. The account read is a second check, and the cache bounds its
// staleness by ttl (DefaultUserCacheTTL). Writes through this server drop
// the entry at once; sign-in and password checks never use the cache, and
// a cached copy has no password hash, so one that did would fail closed.
//
// The same cache, with the same ttl, keeps the clients whose access
// tokens forward-auth checks (clientLiveCached): disabling or deleting a
// client revokes its tokens too, and the cached copy is the second check,
// for a session store that lost that revocation.
type userCache = ttlCache[account.User]

// ttlCache keeps what load returned for each id for ttl.
type ttlCache[V any] struct {
	ttl   time.Duration // <= 0: no caching
	now   func() time.Time
	load  func(ctx context.Context, id string) (*V, error)
	scrub func(*V) // clears what a cached copy must not keep; nil: nothing

	mu      sync.RWMutex // guards entries
	entries map[string]cached[V]
}

type cached[V any] struct {
	value V
	until time.Time
}

// newUserCache returns the cache in front of load: ttl 0 means
// DefaultUserCacheTTL, a negative one no caching; now nil means time.Now.
func newUserCache(ttl time.Duration, now func() time.Time, load func(ctx context.Context, id string) (*account.User, error)) *userCache {
	return newTTLCache(ttl, now, load, func(u *account.User) {
		u.PasswordHash = "" // never checked against a cached user: see whoami
	})
}

// newTTLCache returns a cache in front of load, as newUserCache does,
// whose entries scrub clears first.
func newTTLCache[V any](ttl time.Duration, now func() time.Time, load func(ctx context.Context, id string) (*V, error), scrub func(*V)) *ttlCache[V] {
	if ttl == 0 {
		ttl = DefaultUserCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &ttlCache[V]{ttl: ttl, now: now, load: load, scrub: scrub, entries: map[string]cached[V]{}}
}

// maxCachedUsers bounds the cache: when a new entry finds it full, the
// expired entries go, and everything if none has expired.
const maxCachedUsers = 10_000

// get returns the value with that id, from the cache while its entry is
// fresh. The value is the caller's to keep (a shallow copy: its slices
// are shared, and not to be changed).
func (c *ttlCache[V]) get(ctx context.Context, id string) (*V, error) {
	if c.ttl <= 0 {
		return c.load(ctx, id)
	}
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		v := e.value
		return &v, nil
	}
	v, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.scrub != nil {
		c.scrub(v)
	}
	c.mu.Lock()
	if len(c.entries) >= maxCachedUsers {
		c.pruneLocked(now)
	}
	c.entries[id] = cached[V]{value: *v, until: now.Add(c.ttl)}
	c.mu.Unlock()
	return v, nil
}

func (c *ttlCache[V]) pruneLocked(now time.Time) {
	for id, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, id)
		}
	}
	if len(c.entries) >= maxCachedUsers {
		clear(c.entries)
	}
}

// forget drops the entry with that id; the next get reads the store.
func (c *ttlCache[V]) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

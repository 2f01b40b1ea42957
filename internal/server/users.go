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
type userCache struct {
	ttl  time.Duration // <= 0: no caching
	now  func() time.Time
	load func(ctx context.Context, id string) (*account.User, error)

	mu    sync.RWMutex // guards users
	users map[string]cachedUser
}

type cachedUser struct {
	user  account.User
	until time.Time
}

// newUserCache returns the cache in front of load: ttl 0 means
// DefaultUserCacheTTL, a negative one no caching; now nil means time.Now.
func newUserCache(ttl time.Duration, now func() time.Time, load func(ctx context.Context, id string) (*account.User, error)) *userCache {
	if ttl == 0 {
		ttl = DefaultUserCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &userCache{ttl: ttl, now: now, load: load, users: map[string]cachedUser{}}
}

// maxCachedUsers bounds the cache: when a new entry finds it full, the
// expired entries go, and everything if none has expired.
const maxCachedUsers = 10_000

// get returns the user with that id, from the cache while its entry is
// fresh. The user is the caller's to keep.
func (c *userCache) get(ctx context.Context, id string) (*account.User, error) {
	if c.ttl <= 0 {
		return c.load(ctx, id)
	}
	now := c.now()
	c.mu.RLock()
	e, ok := c.users[id]
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		u := e.user
		return &u, nil
	}
	u, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	u.PasswordHash = "" // never checked against a cached user: see whoami
	c.mu.Lock()
	if len(c.users) >= maxCachedUsers {
		c.pruneLocked(now)
	}
	c.users[id] = cachedUser{user: *u, until: now.Add(c.ttl)}
	c.mu.Unlock()
	return u, nil
}

func (c *userCache) pruneLocked(now time.Time) {
	for id, e := range c.users {
		if !now.Before(e.until) {
			delete(c.users, id)
		}
	}
	if len(c.users) >= maxCachedUsers {
		clear(c.users)
	}
}

// forget drops the entry of the user with that id; the next get reads the
// store.
func (c *userCache) forget(id string) {
	c.mu.Lock()
	delete(c.users, id)
	c.mu.Unlock()
}

package session

import (
	"sync"
	"sync/atomic"
	"time"
)

// cache is the near-cache: validated sessions by token hash, served from
// memory while the store's invalidation feed is healthy.
//
// Correctness rests on two rules. First, entries are served only while the
// feed is up (DESIGN.md: a revoked session is never served from a stale
// cache); going down empties the cache. Second, a session read from the
// store is only put in if no invalidation arrived since the read began: put
// takes the epoch read before the store was asked, and every invalidation
// bumps the epoch before it removes entries, under the same shard lock.
type cache struct {
	up       atomic.Bool   // the feed is healthy: entries may be served
	epoch    atomic.Uint64 // bumped by every invalidation
	now      atomic.Int64  // the coarse clock, Unix ns; see tick
	perShard int
	shards   [cacheShards]cacheShard
}

const cacheShards = 64

type cacheShard struct {
	mu sync.RWMutex // guards m
	m  map[Hash]*Session
	_  [32]byte // pad to 64 bytes: shards on separate cache lines
}

// newCache returns a cache for about size sessions, or nil when size < 0
// (no caching). A nil *cache is valid and caches nothing.
func newCache(size int) *cache {
	if size < 0 {
		return nil
	}
	c := &cache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[Hash]*Session)
	}
	return c
}

func (c *cache) shard(h Hash) *cacheShard { return &c.shards[h[0]%cacheShards] }

// get returns the cached session for h, or nil. A session that the coarse
// clock, plus its worst lag, says may have expired is not returned: the
// caller goes to the store and checks with the precise clock.
func (c *cache) get(h Hash) *Session {
	if c == nil || !c.up.Load() {
		return nil
	}
	sh := c.shard(h)
	sh.mu.RLock()
	s := sh.m[h]
	sh.mu.RUnlock()
	if s == nil || c.now.Load()+int64(2*clockTick) >= s.expires {
		return nil
	}
	return s
}

// clockTick is how often Run updates the cache's coarse clock. Reading
// the clock costs up to a third of a cached load on some virtual machines;
// reading an atomic costs nothing. A cached session is treated as expired
// two ticks early.
const clockTick = 10 * time.Millisecond

// tick sets the coarse clock.
func (c *cache) tick(now time.Time) {
	if c != nil {
		c.now.Store(now.UnixNano())
	}
}

// snapshot returns the epoch to pass to put for a read that starts now.
func (c *cache) snapshot() uint64 {
	if c == nil {
		return 0
	}
	return c.epoch.Load()
}

// put caches s unless the feed is down or an invalidation arrived since
// epoch was taken. A full shard drops an arbitrary entry.
func (c *cache) put(s *Session, epoch uint64) {
	if c == nil || !c.up.Load() {
		return
	}
	sh := c.shard(s.hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	if len(sh.m) >= c.perShard {
		for h := range sh.m {
			delete(sh.m, h)
			break
		}
	}
	sh.m[s.hash] = s
}

// remove drops h.
func (c *cache) remove(h Hash) {
	if c == nil {
		return
	}
	c.epoch.Add(1)
	sh := c.shard(h)
	sh.mu.Lock()
	delete(sh.m, h)
	sh.mu.Unlock()
}

// removeUser drops every session of userID. It walks the whole cache:
// revoking a user is rare, and a walk of even 64k entries is well under a
// millisecond, cheaper than keeping a per-user index on every put.
func (c *cache) removeUser(userID string) {
	if c == nil {
		return
	}
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for h, s := range sh.m {
			if s.userID == userID {
				delete(sh.m, h)
			}
		}
		sh.mu.Unlock()
	}
}

// setUp marks the feed healthy or not. Either way the cache starts empty:
// events may have been missed while it was down.
func (c *cache) setUp(up bool) {
	if c == nil {
		return
	}
	if !up {
		c.up.Store(false)
	}
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
	if up {
		c.up.Store(true)
	}
}

// handle applies one event of the store's feed.
func (c *cache) handle(e Event) {
	switch e.Kind {
	case FeedUp:
		c.setUp(true)
	case FeedDown:
		c.setUp(false)
	case Changed:
		c.remove(e.Hash)
	case UserRevoked:
		c.removeUser(e.UserID)
	}
}

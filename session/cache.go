package session

import (
	"cmp"
	"sync"
	"sync/atomic"
	"time"
)

// cache is the near-cache: validated sessions by token hash, served from
// memory while the store's invalidation feed is healthy.
//
// Correctness rests on two rules. First, entries are served only while the
// feed is up (DESIGN.md: a revoked session is never served from a stale
// cache) and was vouched current by a heartbeat within maxStale (SES-14: a
// feed cut off without noticing, its packets dropped, stops serving within
// that bound); going down empties the cache. Second, a session read from the
// store is only put in if no invalidation arrived since the read began: put
// takes the epoch read before the store was asked, and every invalidation
// bumps the epoch before it removes entries, under the same shard lock.
type cache struct {
	up      atomic.Bool   // the feed is healthy: entries may be served
	epoch   atomic.Uint64 // bumped by every invalidation
	now     atomic.Int64  // the coarse clock, Unix ns; see tick
	elapsed atomic.Int64  // the coarse monotonic clock: ns since start; see tick
	current atomic.Int64  // when the feed was last vouched current: ns since start
	// start is the origin of the monotonic clock; maxStale, how old
	// current may be for entries to be served, in ns, less the coarse
	// clock's worst lag.
	start    time.Time
	maxStale int64
	perShard int
	shards   [cacheShards]cacheShard
	// ended remembers the cached sessions invalidations ended, for
	// Config.OnLoad; nil when it is not set.
	ended *ended
}

const cacheShards = 64

type cacheShard struct {
	mu sync.RWMutex // guards m
	m  map[Hash]*Session
	_  [32]byte // pad to 64 bytes: shards on separate cache lines
}

// newCache returns a cache for about size sessions. With size < 0 it
// caches nothing, but still follows the feed's health (Manager.Current).
func newCache(size int, maxStale time.Duration) *cache {
	c := &cache{start: time.Now(), maxStale: int64(maxStale - 2*clockTick)}
	if size < 0 {
		return c // no shard has a map: nothing is put, nothing found
	}
	c.perShard = max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[Hash]*Session)
	}
	return c
}

func (c *cache) shard(h Hash) *cacheShard { return &c.shards[h[0]%cacheShards] }

// get returns the cached session for h, or nil. A session that the coarse
// clock, plus its worst lag, says may have expired is not returned: the
// caller goes to the store and checks with the precise clock. Nor is any
// session while the feed's last heartbeat is, by the coarse monotonic
// clock plus its worst lag, older than maxStale (SES-14).
func (c *cache) get(h Hash) *Session {
	if !c.serving() {
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

// tick sets the coarse clocks: now from the Manager's clock, the
// monotonic one from the machine's (staleness is about the network, not
// about a test's clock).
func (c *cache) tick(now time.Time) {
	c.now.Store(now.UnixNano())
	c.elapsed.Store(int64(time.Since(c.start)))
}

// stale reports whether the feed's last heartbeat is, by the coarse
// monotonic clock plus its worst lag, older than maxStale.
func (c *cache) stale() bool { return c.elapsed.Load()-c.current.Load() > c.maxStale }

// serving reports whether entries may be served: the feed is up and not
// stale.
func (c *cache) serving() bool { return c.up.Load() && !c.stale() }

// vouch records that the feed was current at at (a heartbeat, or FeedUp),
// unless a later time was vouched for already.
func (c *cache) vouch(at time.Time) {
	t := int64(at.Sub(c.start))
	for {
		old := c.current.Load()
		if t <= old || c.current.CompareAndSwap(old, t) {
			return
		}
	}
}

// snapshot returns the epoch to pass to put for a read that starts now.
func (c *cache) snapshot() uint64 { return c.epoch.Load() }

// put caches s unless the feed is down or an invalidation arrived since
// epoch was taken. A full shard drops an arbitrary entry.
func (c *cache) put(s *Session, epoch uint64) {
	if c.perShard == 0 || !c.up.Load() {
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

// remove drops h, and remembers it ended if it was cached.
func (c *cache) remove(h Hash) {
	c.epoch.Add(1)
	sh := c.shard(h)
	sh.mu.Lock()
	s := sh.m[h]
	delete(sh.m, h)
	sh.mu.Unlock()
	if s != nil {
		c.ended.add(h, s.expiry())
	}
}

// removeUser drops every session of userID. It walks the whole cache:
// revoking a user is rare, and a walk of even 64k entries is well under a
// millisecond, cheaper than keeping a per-user index on every put.
func (c *cache) removeUser(userID string) {
	c.epoch.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for h, s := range sh.m {
			if s.userID == userID {
				delete(sh.m, h)
				c.ended.add(h, s.expiry())
			}
		}
		sh.mu.Unlock()
	}
}

// setUp marks the feed healthy or not. Either way the cache starts empty:
// events may have been missed while it was down. Coming up vouches for
// now: nothing cached before is left, and what is cached after is read
// after the feed was sure to hear every change.
func (c *cache) setUp(up bool) {
	if !up {
		c.up.Store(false)
	} else {
		c.vouch(time.Now())
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
	case FeedCurrent:
		c.vouch(cmp.Or(e.At, time.Now()))
	}
}

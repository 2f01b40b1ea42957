package redis

import (
	"sync"

	"github.com/tetherauth/tether/session"
)

// maxOwners bounds a Store's owners: some 80 bytes an entry, a few MiB.
const maxOwners = 50_000

// owners remembers whose session each token hash is, as Get learns it
// from the pointers in Redis. A hash's owner never changes (a hash is one
// session's for good, and 256 random bits don't come twice), so an entry
// needs no invalidation: if it leads to no record, the session is gone.
// Only found owners are kept: a hash Redis knows nothing of is asked again
// next time, so random tokens can't fill the memory. When full, it starts
// over.
type owners struct {
	mu sync.RWMutex // guards m
	m  map[session.Hash]string
}

// get returns the owner of h, or "" if it isn't known here.
func (o *owners) get(h session.Hash) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.m[h]
}

// put remembers that h is user's.
func (o *owners) put(h session.Hash, user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= maxOwners {
		o.m = make(map[session.Hash]string)
	}
	o.m[h] = user
}

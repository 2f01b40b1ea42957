package redis

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tetherauth/tether/session"
)

// hubs holds a hub for the Redis data (URL and key prefix) that Stores of
// this process use. It is the package's one variable, and has to be: a
// write through one Store must reach the watchers of every other Store on
// the same data in this process before it returns (session.Store.Watch),
// and those Stores may have been made by unrelated code, so only something
// that spans the process knows them all. Everything else belongs to a
// Store.
var hubs = registry{m: make(map[hubKey]*hub)}

// registry maps Redis data to its hub.
type registry struct {
	mu sync.Mutex // guards m and every hub's refs
	m  map[hubKey]*hub
}

// hubKey names the data of a hub.
type hubKey struct {
	data   string // the servers and database (target.dataKey)
	prefix string // Options.KeyPrefix
	node   string // set only by tests, to run several nodes in one process
}

// hub joins the Stores of this process that share data.
type hub struct {
	key  hubKey
	refs int // Stores using the hub; guarded by registry.mu

	// origin tags the hub's messages on the feed: its watchers were
	// handed them already and skip them when they come back.
	origin uint64

	mu       sync.Mutex                 // serialises changes to watchers
	watchers atomic.Pointer[[]*watcher] // replaced, never changed in place
}

// acquire returns the hub of key, creating it if needed.
func (r *registry) acquire(key hubKey) *hub {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.m[key]
	if h == nil {
		h = &hub{key: key, origin: rand.Uint64()}
		h.watchers.Store(new([]*watcher))
		r.m[key] = h
	}
	h.refs++
	return h
}

// release gives back a hub acquire returned, forgetting it with its last
// Store.
func (r *registry) release(h *hub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.refs--; h.refs == 0 {
		delete(r.m, h.key)
	}
}

func (h *hub) add(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := append(slices.Clone(*h.watchers.Load()), w)
	h.watchers.Store(&ws)
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := slices.DeleteFunc(slices.Clone(*h.watchers.Load()), func(x *watcher) bool { return x == w })
	h.watchers.Store(&ws)
}

// publish hands ev to every watcher of the hub, in the caller's goroutine.
func (h *hub) publish(ev session.Event) {
	for _, w := range *h.watchers.Load() {
		w.deliver(ev)
	}
}

// Feed messages are a kind, the writing hub's origin (8 bytes, big
// endian) and what changed: a token hash (32 bytes) or a user id.
const (
	changedMsg = 'c'
	revokedMsg = 'u'
	msgHeader  = 1 + 8
)

// message returns the feed message of kind about what.
func (s *Store) message(kind byte, what []byte) string {
	b := make([]byte, 0, msgHeader+len(what))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, s.hub.origin)
	return string(append(b, what...))
}

// parseMessage decodes a feed message. Anyone who can publish on the
// channel can send anything: it returns an error wrapping errCorrupt for
// what no Store sends.
func parseMessage(m string) (origin uint64, ev session.Event, err error) {
	if len(m) < msgHeader {
		return 0, ev, fmt.Errorf("%w: feed message of %d bytes", errCorrupt, len(m))
	}
	origin = binary.BigEndian.Uint64([]byte(m[1:msgHeader]))
	what := m[msgHeader:]
	switch m[0] {
	case changedMsg:
		if len(what) != len(session.Hash{}) {
			return 0, ev, fmt.Errorf("%w: feed message: hash of %d bytes", errCorrupt, len(what))
		}
		ev = session.Event{Kind: session.Changed, Hash: session.Hash([]byte(what))}
	case revokedMsg:
		ev = session.Event{Kind: session.UserRevoked, UserID: what}
	default:
		return 0, ev, fmt.Errorf("%w: feed message of kind %q", errCorrupt, m[0])
	}
	return origin, ev, nil
}

// watcher is one running Watch: its fn, called by writers of this process
// and by the Watch's subscriptions.
type watcher struct {
	fn func(session.Event)

	mu   sync.Mutex
	idle *sync.Cond // signalled when busy drops to 0; uses mu
	live bool       // FeedUp delivered, and no FeedDown since; guarded by mu
	busy int        // deliveries in progress; guarded by mu
}

func newWatcher(fn func(session.Event)) *watcher {
	w := &watcher{fn: fn}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// deliver calls fn with ev if the watcher is live. Deliveries may run
// concurrently (fn must allow it); none holds a lock while calling fn.
func (w *watcher) deliver(ev session.Event) {
	w.mu.Lock()
	if !w.live {
		w.mu.Unlock()
		return
	}
	w.busy++
	w.mu.Unlock()

	w.fn(ev)

	w.mu.Lock()
	if w.busy--; w.busy == 0 {
		w.idle.Broadcast()
	}
	w.mu.Unlock()
}

// up delivers FeedUp and then lets deliveries through: no invalidation
// comes before it, and none is lost after it. FeedUp is delivered with
// w.mu held, so a write published meanwhile waits for it instead of being
// dropped (session.Store.Watch: fn must not call the store while it
// handles FeedUp). Only the watch's own goroutine calls up and down.
func (w *watcher) up() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fn(session.Event{Kind: session.FeedUp})
	w.live = true
}

// down stops deliveries, waits for those in progress and delivers FeedDown:
// nothing comes after it until the next up.
func (w *watcher) down() {
	w.mu.Lock()
	w.live = false
	for w.busy > 0 {
		w.idle.Wait()
	}
	w.mu.Unlock()
	w.fn(session.Event{Kind: session.FeedDown})
}

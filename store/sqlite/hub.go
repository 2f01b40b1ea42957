package sqlite

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tetherauth/tether/session"
)

// hubs holds a hub for every database file that Stores of this process
// have open. It is the package's one variable, and has to be: a write
// through one Store must reach the watchers of every other Store on the
// same file in this process before it returns (session.Store.Watch), and
// those Stores may have been made by unrelated code from different *sql.DB
// (the server's and an admin command's, say), so only something that spans
// the process knows them all. Everything else belongs to a Store.
var hubs = registry{m: make(map[hubKey]*hub)}

// registry maps database files to their hubs.
type registry struct {
	mu sync.Mutex // guards m and every hub's refs
	m  map[hubKey]*hub
}

// hubKey names a database file.
type hubKey struct {
	path string  // the file's cleaned absolute path
	db   *sql.DB // set only for a database without a file
}

// hub joins the Stores of this process that share a database file.
type hub struct {
	key  hubKey
	refs int // Stores using the hub; guarded by registry.mu

	// origin tags the hub's entries in the change log: its watchers were
	// handed those already and skip them when they poll.
	origin int64
	// writing holds a token while a Store of the hub writes. SQLite has one
	// writer at a time; queueing here hands the lock over at once, where
	// SQLite's busy handler would sleep and retry.
	writing chan struct{}

	mu       sync.Mutex                 // serialises changes to watchers
	watchers atomic.Pointer[[]*watcher] // replaced, never changed in place
}

// acquire returns the hub of key, creating it if needed.
func (r *registry) acquire(key hubKey) *hub {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.m[key]
	if h == nil {
		h = &hub{key: key, origin: rand.Int64(), writing: make(chan struct{}, 1)}
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

// lock waits for the hub's write token, or for ctx to be done.
func (h *hub) lock(ctx context.Context) error {
	select {
	case h.writing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hub) unlock() { <-h.writing }

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

// publish hands evs to every watcher of the hub, in the caller's goroutine.
func (h *hub) publish(evs []session.Event) {
	for _, w := range *h.watchers.Load() {
		w.deliver(evs)
	}
}

// watcher is one running Watch: its fn, called by writers of this process
// and by the Watch's own poll loop.
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

// deliver calls fn with evs if the watcher is live. Deliveries may run
// concurrently (fn must allow it); none holds a lock while calling fn, so
// fn may itself write to the store.
func (w *watcher) deliver(evs []session.Event) {
	if len(evs) == 0 {
		return
	}
	w.mu.Lock()
	if !w.live {
		w.mu.Unlock()
		return
	}
	w.busy++
	w.mu.Unlock()

	for _, ev := range evs {
		w.fn(ev)
	}

	w.mu.Lock()
	if w.busy--; w.busy == 0 {
		w.idle.Broadcast()
	}
	w.mu.Unlock()
}

// up delivers FeedUp and then lets deliveries through: no invalidation
// comes before it, and none is lost after it. FeedUp is delivered with w.mu
// held, so a write published meanwhile waits for it instead of being
// dropped (a dropped one could leave a stale entry in a cache that FeedUp
// has just declared fresh). Only the watch's own goroutine calls up and
// down.
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

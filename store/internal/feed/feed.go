// Package feed is the in-process half of the invalidation feed
// (session.Store.Watch) of the backends under store/. A backend brings
// what is its own: where it hears of other processes' writes (a change log
// to poll, a channel to subscribe to), how it tells its own writes from
// theirs, and the key that names its data. The package does the rest:
//
//   - a Watcher is one running Watch. It passes nothing on before FeedUp,
//     loses nothing handed to it once FeedUp was delivered, and passes
//     nothing on after FeedDown;
//   - a Hub is the watchers of one store's data in this process: a write
//     publishes to it before it returns;
//   - a Registry shares one hub among the Stores of this process on the
//     same data;
//   - Watches runs a store's Watch calls, following its Source and trying
//     again when the source fails, and ends them when the store closes.
//
// A backend's store, in outline:
//
//	var hubs = feed.Registry[hubKey, *hub]{New: newHub} // a hub embeds a feed.Hub
//
//	type Store struct {
//		hub     *hub         // hubs.Acquire(key) in New, hubs.Release(key) in Close
//		watches feed.Watches // watches.Closed() in every method, watches.Close() in Close
//	}
//
//	func (s *Store) Delete(ctx context.Context, h session.Hash) error {
//		// ... the write; then, before returning:
//		s.hub.Publish(session.Event{Kind: session.Changed, Hash: h})
//		return nil
//	}
//
//	func (s *Store) Watch(ctx context.Context, fn func(session.Event)) error {
//		src := feed.Source{Follow: s.follow, MinWait: 50 * time.Millisecond, MaxWait: 5 * time.Second}
//		return s.watches.Run(ctx, &s.hub.Hub, fn, src) // wrapping session.ErrClosed as the backend does
//	}
//
//	// follow calls w.Up once it is sure to hear other processes' writes,
//	// then w.Deliver with what they write, until ctx is done or it fails.
//	func (s *Store) follow(ctx context.Context, w *feed.Watcher) (wentUp bool, err error)
package feed

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/session"
)

// Watcher is one running Watch: it hands its fn what writers of this
// process publish and what the Watch's Source hears, while the feed is up.
// Watches.Run makes it and gives it to Source.Follow.
type Watcher struct {
	fn func(session.Event)

	mu   sync.Mutex // guards the fields below
	idle *sync.Cond // signalled when busy drops to 0; uses mu
	live bool       // FeedUp delivered, and no FeedDown since
	busy int        // deliveries in progress
}

func newWatcher(fn func(session.Event)) *Watcher {
	w := &Watcher{fn: fn}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Deliver calls fn with each of evs, in order, if the watcher is live:
// after Up, before Down. What it is handed at other times is dropped (the
// Watch's caller takes those times as "anything may have changed").
// Deliveries may run concurrently (fn must allow it); none holds a lock
// while calling fn, so fn may itself write to the store.
func (w *Watcher) Deliver(evs ...session.Event) {
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

// Current delivers a heartbeat, FeedCurrent at at, if the watcher is live:
// the Source calls it once it knows that every invalidation committed
// before at was handed to the watcher (session.Store.Watch), about every
// session.HeartbeatInterval.
func (w *Watcher) Current(at time.Time) {
	w.Deliver(session.Event{Kind: session.FeedCurrent, At: at})
}

// Up delivers FeedUp and then lets deliveries through: no invalidation
// comes before it, and none is lost after it. FeedUp is delivered with the
// watcher's lock held, so a write published meanwhile waits for it instead
// of being dropped (a dropped one could leave a stale entry in a cache that
// FeedUp has just declared fresh); that is why fn must not call the store
// while it handles FeedUp (session.Store.Watch). Only the Watch's own
// goroutine (Source.Follow, Watches.Run) calls Up and Down.
func (w *Watcher) Up() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fn(session.Event{Kind: session.FeedUp})
	w.live = true
}

// Down stops deliveries, waits for those in progress and delivers
// FeedDown: nothing comes after it until the next Up.
func (w *Watcher) Down() {
	w.mu.Lock()
	w.live = false
	for w.busy > 0 {
		w.idle.Wait()
	}
	w.mu.Unlock()
	w.fn(session.Event{Kind: session.FeedDown})
}

// Hub is the watchers of one store's data in this process: a write through
// any Store on the data publishes to it, and so reaches every Watch of the
// process on that data, before the write returns. Its list of watchers is
// replaced, never changed in place, so that Publish takes no lock. The
// zero value has no watchers.
type Hub struct {
	mu       sync.Mutex                 // serialises changes to watchers
	watchers atomic.Pointer[[]*Watcher] // nil until the first add
}

// Publish hands evs to every watcher of the hub, in the caller's goroutine.
func (h *Hub) Publish(evs ...session.Event) {
	for _, w := range h.list() {
		w.Deliver(evs...)
	}
}

func (h *Hub) list() []*Watcher {
	if ws := h.watchers.Load(); ws != nil {
		return *ws
	}
	return nil
}

func (h *Hub) add(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := append(slices.Clone(h.list()), w)
	h.watchers.Store(&ws)
}

func (h *Hub) remove(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := slices.DeleteFunc(slices.Clone(h.list()), func(x *Watcher) bool { return x == w })
	h.watchers.Store(&ws)
}

// Registry shares a value, a backend's hub, among the Stores of this
// process that use the same data. A backend keeps one in a package
// variable: a write through one Store must reach the watchers of every
// other Store on the same data in this process, and those Stores may have
// been made by unrelated code, so only something that spans the process
// knows them all. Its methods are safe for concurrent use.
type Registry[K comparable, V any] struct {
	// New makes the value of a key that no Store holds.
	New func(K) V

	mu sync.Mutex // guards m
	m  map[K]*held[V]
}

// held is a value of a Registry and the count of its holders.
type held[V any] struct {
	v    V
	refs int
}

// Acquire returns the value of key, made by New if no Store holds it.
// Each Acquire is matched by one Release.
func (r *Registry[K, V]) Acquire(key K) V {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[key]
	if e == nil {
		if r.m == nil {
			r.m = make(map[K]*held[V])
		}
		e = &held[V]{v: r.New(key)}
		r.m[key] = e
	}
	e.refs++
	return e.v
}

// Release gives back the value of key that Acquire returned, forgetting it
// with its last holder: the next Acquire of key makes a new one.
func (r *Registry[K, V]) Release(key K) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.m[key]; e != nil {
		if e.refs--; e.refs == 0 {
			delete(r.m, key)
		}
	}
}

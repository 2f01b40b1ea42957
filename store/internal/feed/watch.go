package feed

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/session"
)

// Source is where a store's Watch hears of the writes of other processes:
// what a backend brings to Watches.Run.
type Source struct {
	// Follow starts following the source. Once it is sure to hear every
	// write from then on, it calls w.Up; then it hands w what it hears
	// (w.Deliver) until ctx is done or the source fails, and returns why it
	// stopped and whether it called w.Up. To start over without returning
	// (it can't tell what it missed), it calls w.Down, then w.Up.
	Follow func(ctx context.Context, w *Watcher) (wentUp bool, err error)
	// MinWait and MaxWait bound the delay before Follow is called again
	// after it returned: MinWait after its first failure and after it had
	// gone up, doubling while it keeps failing, up to MaxWait. MinWait must
	// be positive.
	MinWait, MaxWait time.Duration
	// Lost, if not nil, is told why Follow returned (unless ctx was done)
	// and the delay before the next try: for the log.
	Lost func(ctx context.Context, err error, retryIn time.Duration)
}

// follow calls Follow until ctx is done. When Follow returns having gone
// up, it delivers FeedDown; then it waits before the next try.
func (src *Source) follow(ctx context.Context, w *Watcher) {
	wait := src.MinWait
	for {
		wentUp, err := src.Follow(ctx, w)
		if ctx.Err() != nil {
			return
		}
		if wentUp {
			w.Down()
			wait = src.MinWait
		}
		if src.Lost != nil {
			src.Lost(ctx, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, src.MaxWait)
	}
}

// Watches is a store's running Watch calls, and whether the store is
// closed: Close ends the calls and waits for them, and none starts after.
// The zero value is an open store without watches.
type Watches struct {
	mu     sync.Mutex     // held to close and to start a watch, so that Close can wait for the watches
	closed atomic.Bool    // set under mu, read without it
	done   chan struct{}  // closed by Close; made under mu when first needed
	wg     sync.WaitGroup // the running Run calls
}

// Closed reports whether Close was called.
func (ws *Watches) Closed() bool { return ws.closed.Load() }

// Close marks the store closed, ends the running Run calls and waits for
// them to return. Only its first call does that, and reports true.
func (ws *Watches) Close() bool {
	ws.mu.Lock()
	if ws.closed.Load() {
		ws.mu.Unlock()
		return false
	}
	ws.closed.Store(true)
	close(ws.doneLocked())
	ws.mu.Unlock()

	ws.wg.Wait()
	return true
}

// doneLocked returns the channel Close closes. ws.mu held.
func (ws *Watches) doneLocked() chan struct{} {
	if ws.done == nil {
		ws.done = make(chan struct{})
	}
	return ws.done
}

// start counts a new Run in and returns the channel Close closes, unless
// the store is closed.
func (ws *Watches) start() (done <-chan struct{}, ok bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed.Load() {
		return nil, false
	}
	ws.wg.Add(1)
	return ws.doneLocked(), true
}

// Run is the body of a store's Watch (session.Store.Watch). It adds a
// watcher of fn to hub and follows src until ctx is done or Close is
// called: each time src.Follow returns having gone up, it delivers
// FeedDown, and it calls Follow again after a delay (see Source). Then it
// removes the watcher, delivers FeedDown and returns ctx.Err() if ctx ended
// it, session.ErrClosed (for the backend to wrap) if Close did. If the
// store is closed already, it delivers FeedDown and returns
// session.ErrClosed at once.
func (ws *Watches) Run(ctx context.Context, hub *Hub, fn func(session.Event), src Source) error {
	done, ok := ws.start()
	if !ok {
		fn(session.Event{Kind: session.FeedDown})
		return session.ErrClosed
	}
	defer ws.wg.Done()

	feedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // Close ends the watch
		select {
		case <-done:
			cancel()
		case <-feedCtx.Done():
		}
	}()

	w := newWatcher(fn)
	hub.add(w)
	src.follow(feedCtx, w)
	hub.remove(w)
	w.Down()
	if err := ctx.Err(); err != nil {
		return err
	}
	return session.ErrClosed
}

package feed

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// upUntilDone is a Follow that goes up at once, says so on up, and follows
// until ctx is done.
func upUntilDone(up chan<- struct{}) func(ctx context.Context, w *Watcher) (bool, error) {
	return func(ctx context.Context, w *Watcher) (bool, error) {
		w.Up()
		up <- struct{}{}
		<-ctx.Done()
		return true, ctx.Err()
	}
}

// run starts ws.Run in a new goroutine; what it returns comes on the
// channel.
func run(ctx context.Context, ws *Watches, h *Hub, fn func(session.Event), src Source) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- ws.Run(ctx, h, fn, src) }()
	return errc
}

// receive returns what ch sends, failing the test if it sends nothing
// within hangGuard.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("still waiting after %v for %s", hangGuard, what)
		panic("unreachable")
	}
}

// A running watch gets what is published to its hub; once its ctx is done
// it leaves the hub, delivers FeedDown and returns ctx.Err().
func TestRunUntilCancel(t *testing.T) {
	var (
		ws Watches
		h  Hub
		r  recorder
	)
	up := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	errc := run(ctx, &ws, &h, r.fn, Source{Follow: upUntilDone(up), MinWait: time.Hour, MaxWait: time.Hour})
	receive(t, up, "FeedUp")
	h.Publish(changed(1))
	cancel()
	if err := receive(t, errc, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: got error %v, want %v", err, context.Canceled)
	}
	h.Publish(changed(2))
	r.check(t, feedUp, changed(1), feedDown)
	if n := len(h.list()); n != 0 {
		t.Errorf("watchers of the hub after Run returned: got %d, want 0", n)
	}
	if ws.Closed() {
		t.Errorf("Closed after a watch ended: got true, want false")
	}
}

// Close ends every running watch and returns once they have returned:
// each delivered FeedDown and returns session.ErrClosed.
func TestCloseEndsRun(t *testing.T) {
	var (
		ws Watches
		h  Hub
	)
	up := make(chan struct{}, 2)
	recs := make([]recorder, 2)
	errs := make([]<-chan error, len(recs))
	for i := range recs {
		errs[i] = run(t.Context(), &ws, &h, recs[i].fn, Source{Follow: upUntilDone(up), MinWait: time.Hour, MaxWait: time.Hour})
		receive(t, up, "FeedUp")
	}
	if !ws.Close() {
		t.Fatal("Close: got false, want true (the first Close)")
	}
	for i := range recs {
		recs[i].check(t, feedUp, feedDown) // before Run's error is read: Close waited
		if err := receive(t, errs[i], "Run to return"); err != session.ErrClosed {
			t.Errorf("Run: got error %v, want %v", err, session.ErrClosed)
		}
	}
	if !ws.Closed() {
		t.Errorf("Closed: got false, want true")
	}
	if ws.Close() {
		t.Errorf("a second Close: got true, want false")
	}
}

// Run on a closed store delivers FeedDown and returns session.ErrClosed at
// once, without following.
func TestRunClosed(t *testing.T) {
	var (
		ws Watches
		h  Hub
		r  recorder
	)
	ws.Close()
	follow := func(context.Context, *Watcher) (bool, error) {
		t.Error("Follow called for a closed store")
		return false, nil
	}
	if err := ws.Run(t.Context(), &h, r.fn, Source{Follow: follow, MinWait: time.Hour, MaxWait: time.Hour}); err != session.ErrClosed {
		t.Errorf("Run: got error %v, want %v", err, session.ErrClosed)
	}
	r.check(t, feedDown)
}

// loss is what Source.Lost was told once.
type loss struct {
	err  error
	wait time.Duration
}

// When Follow returns, Run delivers FeedDown if it had gone up, and calls
// it again after a delay that starts at MinWait, doubles while Follow
// fails, stops at MaxWait, and starts over once Follow went up.
func TestRunRetries(t *testing.T) {
	const minWait, maxWait = time.Millisecond, 4 * time.Millisecond
	fail := errors.New("no source")
	lostUp := errors.New("lost after going up")
	var (
		ws     Watches
		h      Hub
		r      recorder
		losses []loss // Lost runs in Run's goroutine
	)
	up := make(chan struct{}, 1)
	tries := 0
	follow := func(ctx context.Context, w *Watcher) (bool, error) {
		switch tries++; tries {
		case 1, 2, 3, 4:
			return false, fail
		case 5:
			w.Up()
			return true, lostUp
		}
		return upUntilDone(up)(ctx, w)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := run(ctx, &ws, &h, r.fn, Source{
		Follow:  follow,
		MinWait: minWait,
		MaxWait: maxWait,
		Lost:    func(_ context.Context, err error, wait time.Duration) { losses = append(losses, loss{err, wait}) },
	})
	receive(t, up, "FeedUp of the sixth try")
	cancel()
	if err := receive(t, errc, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: got error %v, want %v", err, context.Canceled)
	}

	r.check(t, feedUp, feedDown, feedUp, feedDown)
	want := []loss{{fail, minWait}, {fail, 2 * minWait}, {fail, maxWait}, {fail, maxWait}, {lostUp, minWait}}
	if !slices.Equal(losses, want) {
		t.Errorf("losses: got %v, want %v", losses, want)
	}
}

// The wait between two tries ends with the watch: by its ctx or by Close.
func TestRunStopsWhileWaiting(t *testing.T) {
	tests := []struct {
		name    string
		stop    func(cancel context.CancelFunc, ws *Watches)
		wantErr error
	}{
		{"cancel", func(cancel context.CancelFunc, _ *Watches) { cancel() }, context.Canceled},
		{"Close", func(_ context.CancelFunc, ws *Watches) { ws.Close() }, session.ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				ws Watches
				h  Hub
				r  recorder
			)
			lost := make(chan struct{}, 1)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			errc := run(ctx, &ws, &h, r.fn, Source{
				Follow:  func(context.Context, *Watcher) (bool, error) { return false, errors.New("no source") },
				MinWait: time.Hour,
				MaxWait: time.Hour,
				Lost:    func(context.Context, error, time.Duration) { lost <- struct{}{} },
			})
			receive(t, lost, "the first loss")
			tc.stop(cancel, &ws)
			if err := receive(t, errc, "Run to return"); !errors.Is(err, tc.wantErr) {
				t.Errorf("Run: got error %v, want %v", err, tc.wantErr)
			}
			r.check(t, feedDown)
		})
	}
}

package revocation

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// quiet is the tests' logger.
var quiet = slog.New(slog.DiscardHandler)

var errOutage = errors.New("test: the store is unreachable")

// source stands in for session.Manager, which implements Source, over a
// real store/memory Store: subjects' generations and the feed (FeedUp,
// UserRevoked, FeedDown) are the store's. The denylist is kept here,
// because store/memory's RevokeToken is still a placeholder answering
// ErrUnsupported on this branch; once the backends keep it, RevokeToken,
// TokenRevoked and Revocations go to the store and deny goes.
type source struct {
	store *memory.Store
	clk   *testkit.Clock

	up      atomic.Bool // between FeedUp and FeedDown, as the Manager tracks it
	stale   atomic.Bool // the feed is up but not heard within the bound
	failing atomic.Bool // every call fails, as with a store that is unreachable
	// afterGen, when set, runs when SubjectGeneration has read the store
	// and before it answers: a test's hook to interleave events there.
	afterGen atomic.Pointer[func()]

	mu      sync.Mutex // guards the fields below
	deny    map[string]session.Revocation
	deliver func(session.Event) // the feed's callback while Watch runs
	stop    func()              // ends the Watch that runs
}

var _ Source = (*source)(nil)

func newSource(t testing.TB) *source {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	return &source{store: st, clk: testkit.NewClock(t0), deny: map[string]session.Revocation{}}
}

func (s *source) Current() bool { return s.up.Load() && !s.stale.Load() }

func (s *source) TokenRevoked(_ context.Context, jti string) (bool, error) {
	if s.failing.Load() {
		return false, errOutage
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.deny["jti:"+jti]
	return ok, nil
}

func (s *source) SubjectGeneration(ctx context.Context, subject string) (uint64, error) {
	if s.failing.Load() {
		return 0, errOutage
	}
	g, err := s.store.Generation(ctx, subject)
	if f := s.afterGen.Load(); f != nil {
		(*f)()
	}
	return g, err
}

func (s *source) Revocations(context.Context) ([]session.Revocation, error) {
	if s.failing.Load() {
		return nil, errOutage
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []session.Revocation
	for _, r := range s.deny {
		list = append(list, r)
	}
	return list, nil
}

// revoke puts r on the denylist; with announce, its event goes out on the
// feed (if it is up), else it is lost the way a dropped message is.
func (s *source) revoke(r session.Revocation, announce bool) {
	key := "jti:" + r.JTI
	if r.JTI == "" {
		key = "sub:" + r.Subject
	}
	s.mu.Lock()
	s.deny[key] = r
	deliver := s.deliver
	s.mu.Unlock()
	if announce && deliver != nil {
		deliver(session.Event{Kind: session.TokenRevoked, Revocation: r})
	}
}

// jti is the denylist entry of jti, a token expiring an hour from the
// source's clock.
func (s *source) jti(jti string) session.Revocation {
	return session.Revocation{JTI: jti, Exp: s.clk.Now().Add(time.Hour)}
}

// revokeJTI revokes jti, its event on the feed.
func (s *source) revokeJTI(jti string) { s.revoke(s.jti(jti), true) }

// revokeSubject bumps subject's generation in the store and puts the
// subject's entry on the denylist, as Manager.RevokeSubject does; it
// returns the new generation.
func (s *source) revokeSubject(t *testing.T, subject string) uint64 {
	t.Helper()
	ctx := context.Background()
	if err := s.store.RevokeUser(ctx, subject, nil); err != nil {
		t.Fatal(err)
	}
	g, err := s.store.Generation(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	s.revoke(session.Revocation{Subject: subject, Gen: g, Exp: s.clk.Now().Add(time.Hour)}, true)
	return g
}

// follow runs the store's Watch into v, as a Manager with OnEvent:
// v.Handle does, until unfollow is called (or the test ends), and returns
// once the feed is up.
func (s *source) follow(t testing.TB, v *View) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	fn := func(e session.Event) {
		switch e.Kind {
		case session.FeedUp:
			s.up.Store(true)
		case session.FeedDown:
			s.up.Store(false)
		}
		v.Handle(e)
	}
	go func() {
		defer close(done)
		s.store.Watch(ctx, fn)
	}()
	testkit.WaitFor(t, "the feed to be up", s.up.Load)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	s.mu.Lock()
	s.deliver, s.stop = fn, stop
	s.mu.Unlock()
}

// unfollow ends the Watch that follow started: the View gets FeedDown.
func (s *source) unfollow() {
	s.mu.Lock()
	stop := s.stop
	s.deliver, s.stop = nil, nil
	s.mu.Unlock()
	stop()
}

// newView returns a View over s, following its feed, with Run running
// and the snapshot loaded.
func newView(t testing.TB, s *source, cfg ViewConfig) *View {
	t.Helper()
	v := newIdleView(t, s, cfg)
	s.follow(t, v)
	testkit.WaitFor(t, "the snapshot to be loaded", v.loaded.Load)
	return v
}

// newIdleView returns a View over s with Run running, not following the
// feed yet.
func newIdleView(t testing.TB, s *source, cfg ViewConfig) *View {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = s.clk.Now
	}
	cfg.Logger = quiet
	v, err := NewView(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, v.Run)
	return v
}

// run runs fn until the test ends.
func run(t testing.TB, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

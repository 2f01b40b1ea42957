package revocation

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
	"github.com/tetherauth/tether/store/postgres"
	"github.com/tetherauth/tether/store/sqlite"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// quiet is the tests' logger.
var quiet = slog.New(slog.DiscardHandler)

var errOutage = errors.New("test: the store is unreachable")

// source is the View's Source in the tests: a real session.Manager over
// a real store/memory Store, whose feed reaches the View through
// Config.OnEvent, as in the server; around it, the faults a test injects:
// a feed not heard within its bound (stale), a store that can't be
// reached (failing), and a hook in SubjectGeneration.
type source struct {
	*session.Manager
	store closer
	clk   *testkit.Clock

	stale   atomic.Bool // the feed is up but not heard within the bound
	failing atomic.Bool // every call fails, as with a store that is unreachable
	// afterGen, when set, runs when SubjectGeneration has read the store
	// and before it answers: a test's hook to interleave events there.
	afterGen atomic.Pointer[func()]

	view atomic.Pointer[View] // where OnEvent sends the feed's events

	mu   sync.Mutex // guards stop
	stop func()     // ends the Manager's Run, when it runs
}

var _ Source = (*source)(nil)

// closer is a store the tests can close.
type closer interface {
	session.Store
	Close() error
}

// backends are the stores the tests across the pieces run on: each
// returns a new, empty one, closed when the test ends.
var backends = []struct {
	name string
	open func(t testing.TB) closer
}{
	{"memory", func(testing.TB) closer { return memory.New() }},
	{"sqlite", func(t testing.TB) closer {
		st, err := sqlite.New(context.Background(), sqlitetest.Open(t, filepath.Join(t.TempDir(), "tether.db")), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"postgres", func(t testing.TB) closer {
		pool, err := pgtest.Schema(t)()
		if err != nil {
			t.Fatal(err)
		}
		st, err := postgres.New(t.Context(), pool, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// newSource returns a source over a store/memory Store.
func newSource(t testing.TB) *source { return newSourceOn(t, backends[0].open(t)) }

// newSourceOn returns a source over st.
func newSourceOn(t testing.TB, st closer) *source {
	t.Cleanup(func() { st.Close() })
	s := &source{store: st, clk: testkit.NewClock(t0)}
	m, err := session.NewManager(st, session.Config{Now: s.clk.Now, Logger: quiet, OnEvent: func(e session.Event) {
		if v := s.view.Load(); v != nil {
			v.Handle(e)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Manager = m
	return s
}

func (s *source) Current() bool { return s.Manager.Current() && !s.stale.Load() }

func (s *source) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if s.failing.Load() {
		return false, errOutage
	}
	return s.Manager.TokenRevoked(ctx, jti)
}

func (s *source) SubjectGeneration(ctx context.Context, subject string) (uint64, error) {
	if s.failing.Load() {
		return 0, errOutage
	}
	g, err := s.Manager.SubjectGeneration(ctx, subject)
	if f := s.afterGen.Load(); f != nil {
		(*f)()
	}
	return g, err
}

func (s *source) Revocations(ctx context.Context) ([]session.Revocation, error) {
	if s.failing.Load() {
		return nil, errOutage
	}
	return s.Manager.Revocations(ctx)
}

// jti is the denylist entry of jti, a token expiring an hour from the
// source's clock.
func (s *source) jti(jti string) session.Revocation {
	return session.Revocation{JTI: jti, Exp: s.clk.Now().Add(time.Hour)}
}

// revokeJTI puts jti on the denylist.
func (s *source) revokeJTI(t testing.TB, jti string) {
	t.Helper()
	if err := s.RevokeToken(context.Background(), s.jti(jti)); err != nil {
		t.Fatal(err)
	}
}

// revokeSubject revokes every token of subject so far and returns its new
// generation.
func (s *source) revokeSubject(t testing.TB, subject string) uint64 {
	t.Helper()
	g, err := s.RevokeSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// follow runs the Manager, its feed going to v, until unfollow is called
// (or the test ends), and returns once the feed is current.
func (s *source) follow(t testing.TB, v *View) {
	s.view.Store(v)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	testkit.WaitFor(t, "the feed to be current", s.Manager.Current)
}

// unfollow stops the Manager's Run: the View gets FeedDown.
func (s *source) unfollow() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
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

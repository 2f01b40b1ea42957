package revocation

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// checkIs asserts that v.Check's answer is want (nil, token.ErrRevoked or
// another error).
func checkIs(t *testing.T, v *View, subject string, gen uint64, jti string, want error) {
	t.Helper()
	if err := v.Check(context.Background(), subject, gen, jti); !errors.Is(err, want) {
		t.Fatalf("Check(%q, %d, %q) = %v, want %v", subject, gen, jti, err, want)
	}
}

func TestJWT09_ViewRevokesByJTI(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	checkIs(t, v, "client:a", 0, "j1", nil)
	s.revokeJTI(t, "j1")
	checkIs(t, v, "client:a", 0, "j1", token.ErrRevoked)
	checkIs(t, v, "client:a", 0, "j2", nil)
	// From memory: with the store unreachable, the revoked jti is still
	// refused.
	s.failing.Store(true)
	checkIs(t, v, "client:a", 0, "j1", token.ErrRevoked)
}

func TestCHG03_ViewRevokesSubject(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	checkIs(t, v, "user:u_1", 0, "j1", nil) // caches generation 0
	g := s.revokeSubject(t, "user:u_1")
	checkIs(t, v, "user:u_1", g-1, "j2", token.ErrRevoked)
	checkIs(t, v, "user:u_1", g, "j3", nil)
	checkIs(t, v, "user:u_2", 0, "j4", nil)

	// A bump of the generation alone (no denylist entry) reaches the View
	// through its UserRevoked event: the cached generation is dropped.
	if err := s.store.RevokeUser(context.Background(), "user:u_1", nil); err != nil {
		t.Fatal(err)
	}
	checkIs(t, v, "user:u_1", g, "j5", token.ErrRevoked)
	checkIs(t, v, "user:u_1", g+1, "j6", nil)
}

// A generation read from the store before the subject was revoked, whose
// UserRevoked event arrives before the read answers, is not cached.
func TestCHG03_GenerationReadRacingRevocation(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	read, release := make(chan struct{}), make(chan struct{})
	hook := func() {
		read <- struct{}{}
		<-release
	}
	s.afterGen.Store(&hook)
	done := make(chan error)
	go func() { done <- v.Check(context.Background(), "client:c", 0, "j1") }()
	<-read // the cache missed, and the store answered generation 0...
	s.afterGen.Store(nil)
	// ...when the subject is revoked (a bump alone, no denylist entry),
	// its event arriving before the answer.
	if err := s.store.RevokeUser(context.Background(), "client:c", nil); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the check that read generation 0 got %v, want nil", err)
	}
	checkIs(t, v, "client:c", 0, "j2", token.ErrRevoked)
}

func TestSES14_ViewAsksStoreWhenFeedNotCurrent(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	checkIs(t, v, "client:a", 0, "j1", nil) // caches the subject's generation
	s.revokeJTI(t, "j0")
	s.failing.Store(true)
	// While the feed is current, the View answers from memory...
	checkIs(t, v, "client:a", 0, "j1", nil)
	checkIs(t, v, "client:a", 0, "j0", token.ErrRevoked)
	// ...and once it is not heard within its bound, from the store only.
	s.stale.Store(true)
	checkIs(t, v, "client:a", 0, "j1", errOutage)
	checkIs(t, v, "client:a", 0, "j0", errOutage)
	s.failing.Store(false)
	checkIs(t, v, "client:a", 0, "j0", token.ErrRevoked)
	checkIs(t, v, "client:a", 0, "j1", nil)
}

// Revocations made while the feed was down are in the snapshot the View
// loads when it comes back, and the View answers from memory again.
func TestSES14_ViewLoadsSnapshotOnFeedUp(t *testing.T) {
	s := newSource(t)
	v := newIdleView(t, s, ViewConfig{})
	s.revokeJTI(t, "before")
	s.follow(t, v)
	testkit.WaitFor(t, "the snapshot to be loaded", v.loaded.Load)
	s.unfollow()
	if v.loaded.Load() {
		t.Fatal("memory still trusted after FeedDown")
	}
	s.revokeJTI(t, "while down")
	checkIs(t, v, "client:a", 0, "while down", token.ErrRevoked) // from the store
	s.follow(t, v)
	testkit.WaitFor(t, "the snapshot to be loaded again", v.loaded.Load)
	s.failing.Store(true) // from memory now
	checkIs(t, v, "client:a", 0, "before", token.ErrRevoked)
	checkIs(t, v, "client:a", 0, "while down", token.ErrRevoked)
}

// A snapshot that can't be read is retried until it is.
func TestSES14_ViewRetriesSnapshot(t *testing.T) {
	s := newSource(t)
	v := newIdleView(t, s, ViewConfig{})
	s.failing.Store(true)
	s.follow(t, v)
	if v.loaded.Load() {
		t.Fatal("loaded from a failing store")
	}
	s.failing.Store(false)
	testkit.WaitFor(t, "the snapshot to be loaded after the store came back", v.loaded.Load)
}

// A store error fails closed: the verifier's request is answered 503,
// never let through.
func TestSES11_ViewStoreErrorFailsClosed(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	s.failing.Store(true)
	// Not current: both reads fail.
	s.stale.Store(true)
	if err := v.Check(context.Background(), "client:a", 0, "j1"); err == nil || errors.Is(err, token.ErrRevoked) {
		t.Fatalf("got %v, want the store's error", err)
	}
	// Current, but the subject's generation is not cached yet.
	s.stale.Store(false)
	err := v.Check(context.Background(), "client:a", 0, "j1")
	if !errors.Is(err, errOutage) {
		t.Fatalf("got %v, want the store's error", err)
	}
	w := httptest.NewRecorder()
	token.WriteError(w, err)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", w.Code)
	}

	// The store itself failing: closed, it ends the feed, and answers
	// every call with ErrClosed.
	s.failing.Store(false)
	s.stale.Store(false)
	s.store.Close()
	testkit.WaitFor(t, "the feed to be lost", func() bool { return !v.ready() })
	checkIs(t, v, "client:a", 0, "j1", session.ErrClosed)
}

// The cached path allocates nothing (BenchmarkRevocationCheck measures it).
func TestViewCheckCachedAllocs(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	ctx := context.Background()
	checkIs(t, v, "user:u_1", 0, "j1", nil)
	if n := testing.AllocsPerRun(100, func() { v.Check(ctx, "user:u_1", 0, "j1") }); n != 0 {
		t.Fatalf("got %v allocations, want 0", n)
	}
}

func TestNewViewConfig(t *testing.T) {
	if _, err := NewView(nil, ViewConfig{}); err == nil {
		t.Fatal("no Source: got no error")
	}
	if _, err := NewView(newSource(t), ViewConfig{History: -1}); err == nil {
		t.Fatal("negative History: got no error")
	}
}

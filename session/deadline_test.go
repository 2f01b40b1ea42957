package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// stuckStore is a store that stops answering, as a frozen Redis or a
// partitioned PostgreSQL does: every call but Watch waits until its context
// ends. It reports the deadline each call got.
type stuckStore struct {
	session.Store
	deadlines chan time.Time // the deadline of each call; zero: none
}

func newStuckStore(t *testing.T) *stuckStore {
	return &stuckStore{Store: newMemory(t), deadlines: make(chan time.Time, 16)}
}

func (s *stuckStore) hang(ctx context.Context) error {
	d, _ := ctx.Deadline()
	s.deadlines <- d
	<-ctx.Done()
	return ctx.Err()
}

func (s *stuckStore) Get(ctx context.Context, _ session.Hash) (*session.Record, error) {
	return nil, s.hang(ctx)
}
func (s *stuckStore) Generation(ctx context.Context, _ string) (uint64, error) {
	return 0, s.hang(ctx)
}
func (s *stuckStore) Create(ctx context.Context, _ *session.Record, _ session.CreateOptions) error {
	return s.hang(ctx)
}
func (s *stuckStore) Save(ctx context.Context, _ *session.Record) error { return s.hang(ctx) }
func (s *stuckStore) Delete(ctx context.Context, _ session.Hash) error  { return s.hang(ctx) }
func (s *stuckStore) List(ctx context.Context, _ string) ([]*session.Record, error) {
	return nil, s.hang(ctx)
}
func (s *stuckStore) RevokeUser(ctx context.Context, _ string, _ *session.Hash) error {
	return s.hang(ctx)
}
func (s *stuckStore) RevokeToken(ctx context.Context, _ session.Revocation) error {
	return s.hang(ctx)
}
func (s *stuckStore) TokenRevoked(ctx context.Context, _ string) (bool, error) {
	return false, s.hang(ctx)
}
func (s *stuckStore) Revocations(ctx context.Context, _ time.Time) ([]session.Revocation, error) {
	return nil, s.hang(ctx)
}

// TestMISC05_EveryStoreCallHasADeadline: with a store that never answers,
// every Manager operation gets a context bounded by StoreTimeout, and fails
// with an error wrapping context.DeadlineExceeded rather than hanging. A
// caller's sooner deadline is kept.
func TestMISC05_EveryStoreCallHasADeadline(t *testing.T) {
	const timeout = 20 * time.Millisecond
	store := newStuckStore(t)
	m, err := session.NewManager(store, session.Config{StoreTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	token := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // well formed, so Load asks the store
	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, err := m.Load(ctx, token); return err }},
		{"Begin", func(ctx context.Context) error { _, err := m.Begin(ctx, "u1"); return err }},
		{"RevokeID", func(ctx context.Context) error { return m.RevokeID(ctx, "u1", "id") }},
		{"RevokeUser", func(ctx context.Context) error { return m.RevokeUser(ctx, "u1", nil) }},
		{"List", func(ctx context.Context) error { _, err := m.List(ctx, "u1"); return err }},
		{"RevokeLater", func(ctx context.Context) error { return m.RevokeLater(ctx, token) }},
		{"RevokeToken", func(ctx context.Context) error {
			return m.RevokeToken(ctx, session.Revocation{JTI: "j", Exp: time.Now().Add(time.Minute)})
		}},
		{"TokenRevoked", func(ctx context.Context) error { _, err := m.TokenRevoked(ctx, "j"); return err }},
		{"Revocations", func(ctx context.Context) error { _, err := m.Revocations(ctx); return err }},
		{"SubjectGeneration", func(ctx context.Context) error { _, err := m.SubjectGeneration(ctx, "client:c"); return err }},
		{"RevokeSubject", func(ctx context.Context) error { _, err := m.RevokeSubject(ctx, "client:c"); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			before := time.Now()
			err := op.call(context.Background())
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want an error wrapping context.DeadlineExceeded", err)
			}
			d := <-store.deadlines
			if d.IsZero() || d.Before(before) || d.After(before.Add(timeout+time.Second/10)) {
				t.Errorf("store call's deadline %v after the call began, want at most %v", d.Sub(before), timeout)
			}
		})
	}
	t.Run("sooner caller deadline kept", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		want, _ := ctx.Deadline()
		if _, err := m.Load(ctx, token); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		if got := <-store.deadlines; !got.Equal(want) {
			t.Errorf("store saw deadline %v, want the caller's %v", got, want)
		}
	})
}

// TestMISC05_StuckStoreAnswers503: the middleware answers a request whose
// session can't be checked with 503 and Retry-After (SES-11) once
// StoreTimeout has passed.
func TestMISC05_StuckStoreAnswers503(t *testing.T) {
	store := newStuckStore(t)
	m, err := session.NewManager(store, session.Config{StoreTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the request was served although its session could not be checked")
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: m.CookieName(r), Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("got %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	<-store.deadlines
}

func TestStoreTimeoutValidated(t *testing.T) {
	if _, err := session.NewManager(newMemory(t), session.Config{StoreTimeout: -time.Second}); err == nil {
		t.Error("a negative StoreTimeout was accepted")
	}
}

// stuckSweeper is a stuckStore whose sweeps never end either.
type stuckSweeper struct{ *stuckStore }

func (s stuckSweeper) DeleteExpired(ctx context.Context, _ time.Time) (int, error) {
	return 0, s.hang(ctx)
}

// TestMISC05_SweepHasADeadline: Run's sweep of expired sessions is bounded
// too, so a store that stops answering doesn't hold it for good.
func TestMISC05_SweepHasADeadline(t *testing.T) {
	store := stuckSweeper{newStuckStore(t)}
	newManager(t, store, session.Config{SweepInterval: 10 * time.Millisecond, CacheSize: -1}) // runs until the test ends
	if d := <-store.deadlines; d.IsZero() || time.Until(d) > time.Minute {
		t.Errorf("the sweep's deadline is %v away, want one of at most a minute", time.Until(d))
	}
}

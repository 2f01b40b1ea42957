package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
)

// newClock returns a test clock standing at the session tests' start.
func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// newManager returns a Manager over store with cfg, its Run loop running
// until the test ends, and waits until its near-cache serves.
func newManager(t testing.TB, store session.Store, cfg session.Config) *session.Manager {
	t.Helper()
	m, err := session.NewManager(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if cfg.CacheSize >= 0 {
		testkit.WaitFor(t, "near-cache to come up", m.CacheUp)
	}
	return m
}

// newMemory returns a memory store closed when the test ends.
func newMemory(t testing.TB) *memory.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}

// recordingStore wraps a Store and remembers every record created or
// saved, and can be told to fail (Create, Save, Get, Delete).
type recordingStore struct {
	session.Store
	mu    sync.Mutex
	saved []session.Record
	gets  int
	fail  error
}

// note records a write of r (nil: a read) and returns the failure set,
// if any.
func (s *recordingStore) note(r *session.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r != nil {
		s.saved = append(s.saved, *r)
	} else {
		s.gets++
	}
	return s.fail
}

func (s *recordingStore) Save(ctx context.Context, r *session.Record) error {
	if err := s.note(r); err != nil {
		return err
	}
	return s.Store.Save(ctx, r)
}

func (s *recordingStore) Create(ctx context.Context, r *session.Record, opts session.CreateOptions) error {
	if err := s.note(r); err != nil {
		return err
	}
	return s.Store.Create(ctx, r, opts)
}

func (s *recordingStore) Delete(ctx context.Context, h session.Hash) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	return s.Store.Delete(ctx, h)
}

func (s *recordingStore) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	if err := s.note(nil); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, h)
}

func (s *recordingStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *recordingStore) counts() (saves, gets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.saved), s.gets
}

// ticket begins a sign-in of user through m, failing the test if it can't.
func ticket(t testing.TB, m *session.Manager, user string) session.Ticket {
	t.Helper()
	tk, err := m.Begin(ctx, user)
	if err != nil {
		t.Fatalf("Begin(%q): %v", user, err)
	}
	return tk
}

// mustCreate creates a session of user through m, failing the test if it
// can't.
func mustCreate(t testing.TB, m *session.Manager, user string, meta session.Meta) (string, *session.Session) {
	t.Helper()
	token, s, err := m.Create(ctx, ticket(t, m, user), meta)
	if err != nil {
		t.Fatalf("Create(%q): %v", user, err)
	}
	return token, s
}

// setAndClear returns the session cookies of m's responses to r: the one
// SetCookie sends with token for s, then the one ClearCookie sends.
func setAndClear(t testing.TB, m *session.Manager, r *http.Request, token string, s *session.Session) []*http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	m.SetCookie(w, r, token, s)
	m.ClearCookie(w, r)
	var cookies []*http.Cookie
	for _, line := range w.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, c)
	}
	if len(cookies) != 2 {
		t.Fatalf("Set-Cookie %q: want one set and one cleared", w.Header().Values("Set-Cookie"))
	}
	return cookies
}

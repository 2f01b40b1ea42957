package session_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// loads records what Config.OnLoad is told.
type loads struct {
	mu   sync.Mutex
	seen []session.LoadResult
}

func (l *loads) add(r session.LoadResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, r)
}

// forget forgets what OnLoad was told so far.
func (l *loads) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = nil
}

// only returns the one result OnLoad was told since forget.
func (l *loads) only(t *testing.T) session.LoadResult {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) != 1 {
		t.Fatalf("OnLoad was told %v, want one result", l.seen)
	}
	return l.seen[0]
}

// Config.OnLoad is told what each Load found, revoked apart from unknown,
// and whether the near-cache answered.
func TestOnLoad(t *testing.T) {
	clock := newClock()
	store := &recordingStore{Store: newMemory(t)}
	var seen loads
	m := newManager(t, store, session.Config{Now: clock.Now, OnLoad: seen.add})
	never := strings.Repeat("A", 43) // well formed, never issued

	tests := []struct {
		name  string
		token func(t *testing.T) string // makes the token to load, warming the cache or not
		want  session.LoadResult
	}{
		{"malformed", func(*testing.T) string { return "not a token" }, session.LoadResult{Outcome: session.LoadMalformed}},
		{"never issued", func(*testing.T) string { return never }, session.LoadResult{Outcome: session.LoadUnknown}},
		{"first load asks the store", func(t *testing.T) string {
			tok, _ := mustCreate(t, m, "user:first", session.Meta{})
			return tok
		}, session.LoadResult{Outcome: session.LoadOK}},
		{"second load is cached", func(t *testing.T) string {
			tok, _ := mustCreate(t, m, "user:second", session.Meta{})
			mustLoad(t, m, tok)
			return tok
		}, session.LoadResult{Outcome: session.LoadOK, Cached: true}},
		{"signed out", func(t *testing.T) string {
			tok, s := mustCreate(t, m, "user:out", session.Meta{})
			if err := m.Revoke(ctx, s); err != nil {
				t.Fatal(err)
			}
			return tok
		}, session.LoadResult{Outcome: session.LoadRevoked}},
		{"user revoked while cached", func(t *testing.T) string {
			tok, _ := mustCreate(t, m, "user:all", session.Meta{})
			mustLoad(t, m, tok)
			if err := m.RevokeUser(ctx, "user:all", nil); err != nil {
				t.Fatal(err)
			}
			return tok
		}, session.LoadResult{Outcome: session.LoadRevoked}},
		// The documented limit: the node never held it, so it can't tell.
		{"user revoked, never cached here", func(t *testing.T) string {
			tok, _ := mustCreate(t, m, "user:cold", session.Meta{})
			if err := m.RevokeUser(ctx, "user:cold", nil); err != nil {
				t.Fatal(err)
			}
			return tok
		}, session.LoadResult{Outcome: session.LoadUnknown}},
		{"expired", func(t *testing.T) string {
			tok, _ := mustCreate(t, m, "user:idle", session.Meta{})
			clock.Advance(31 * time.Minute)
			return tok
		}, session.LoadResult{Outcome: session.LoadExpired}},
		{"store error", func(t *testing.T) string {
			tok, _ := mustCreate(t, m, "user:down", session.Meta{})
			store.setFail(errors.New("down"))
			t.Cleanup(func() { store.setFail(nil) })
			return tok
		}, session.LoadResult{Outcome: session.LoadStoreError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			seen.forget() // what the set-up loaded
			m.Load(ctx, tok)
			if got := seen.only(t); got != tt.want {
				t.Errorf("got %+v (%v), want %+v (%v)", got, got.Outcome, tt.want, tt.want.Outcome)
			}
		})
	}
}

// mustLoad loads tok, which must be live.
func mustLoad(t *testing.T, m *session.Manager, tok string) {
	t.Helper()
	if _, err := m.Load(ctx, tok); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOutcomeString(t *testing.T) {
	want := map[session.LoadOutcome]string{
		session.LoadOK: "ok", session.LoadMalformed: "malformed", session.LoadUnknown: "unknown",
		session.LoadExpired: "expired", session.LoadRevoked: "revoked", session.LoadStoreError: "store_error", 0: "invalid",
	}
	for o, w := range want {
		if got := o.String(); got != w {
			t.Errorf("%d: got %q, want %q", o, got, w)
		}
	}
}

// The feed reports every write of a session, a touch as much as a
// revocation: a session touched while cached here, which then expired
// and was swept from the store, is unknown, not revoked.
func TestOnLoadTouchedThenExpiredIsUnknown(t *testing.T) {
	clock := newClock()
	store := newMemory(t)
	var seen loads
	m := newManager(t, store, session.Config{Now: clock.Now, OnLoad: seen.add})
	tok, _ := mustCreate(t, m, "user:touched", session.Meta{})
	s, err := m.Load(ctx, tok) // cached from now on
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute) // past TouchInterval: the touch writes
	if _, err := m.Touch(ctx, s); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the feed to report the touch", func() bool {
		seen.forget()
		mustLoad(t, m, tok)
		return !seen.only(t).Cached
	})
	clock.Advance(time.Hour) // past the idle deadline
	if _, err := store.DeleteExpired(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	seen.forget()
	m.Load(ctx, tok)
	if got := seen.only(t); got.Outcome != session.LoadUnknown {
		t.Errorf("a touched session, expired and swept: got %v, want unknown", got.Outcome)
	}
}

// What LoadRequest tells Config.OnLoad is what the request gets: a
// session loaded from the near-cache whose touch the store fails is a
// store error (the request fails, SES-11), not ok.
func TestOnLoadAfterTouch(t *testing.T) {
	clock := newClock()
	store := &recordingStore{Store: newMemory(t)}
	var seen loads
	m := newManager(t, store, session.Config{Now: clock.Now, OnLoad: seen.add})
	request := func(tok string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
		r.AddCookie(&http.Cookie{Name: m.CookieName(r), Value: tok})
		return r
	}

	tok, _ := mustCreate(t, m, "user:touch-fails", session.Meta{})
	mustLoad(t, m, tok)
	clock.Advance(2 * time.Minute) // past TouchInterval: the next request writes
	store.setFail(errors.New("down"))
	seen.forget()
	if _, err := m.LoadRequest(request(tok)); err == nil {
		t.Fatal("LoadRequest with the store failing the touch: no error")
	}
	store.setFail(nil)
	if got, want := seen.only(t), (session.LoadResult{Outcome: session.LoadStoreError, Cached: true}); got != want {
		t.Errorf("touch failed: got %+v, want %+v", got, want)
	}
}

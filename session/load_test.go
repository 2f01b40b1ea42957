package session_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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

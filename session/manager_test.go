package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

var ctx = context.Background()

func TestSES01_TokenIs256RandomBits(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	seen := map[string]bool{}
	for range 100 {
		token, s, err := m.Create(ctx, ticket(t, m, "user:alice"), session.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
		if err != nil {
			t.Fatalf("token %q is not unpadded base64url: %v", token, err)
		}
		if got, want := len(raw), 32; got != want {
			t.Fatalf("token carries %d bytes, want %d", got, want)
		}
		if strings.Contains(token, "alice") || strings.Contains(token, s.ID()) {
			t.Fatalf("token %q carries user data or the public id", token)
		}
		if seen[token] {
			t.Fatalf("token %q issued twice", token)
		}
		seen[token] = true
	}
}

func TestSES02_StoreSeesOnlyTheHash(t *testing.T) {
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{})
	token, s, err := m.Create(ctx, ticket(t, m, "user:alice"), session.Meta{UserAgent: "ua", IP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.PutString(ctx, s, "k", "v"); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	want := session.Hash(sha256.Sum256(raw))
	for _, r := range store.saved {
		if r.Hash != want {
			t.Errorf("store keyed by %x, want SHA-256 of the token %x", r.Hash, want)
		}
		if dump := fmt.Sprintf("%+v", r); strings.Contains(dump, token) {
			t.Errorf("the store saw the raw token: %s", dump)
		}
		if r.ID == token {
			t.Error("public id is the token")
		}
	}
}

func TestSES03_CreateAndRotateIssueFreshTokens(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	t1, s1, err := m.Create(ctx, ticket(t, m, "user:alice"), session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	s1, err = m.PutString(ctx, s1, "cart", "3 apples")
	if err != nil {
		t.Fatal(err)
	}
	t2, s2, err := m.Rotate(ctx, s1)
	if err != nil {
		t.Fatal(err)
	}
	if t2 == t1 || s2.ID() == s1.ID() {
		t.Fatal("Rotate kept the token or the id")
	}
	if _, err := m.Load(ctx, t1); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("old token after rotate: got %v, want ErrNoSession", err)
	}
	got, err := m.Load(ctx, t2)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID() != "user:alice" || got.String("cart") != "3 apples" || !got.AbsDeadline().Equal(s1.AbsDeadline()) {
		t.Errorf("rotated session lost its user, data or absolute deadline: %+v", got)
	}
}

func TestSES04_LoadRejectsWithoutAsking(t *testing.T) {
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{})
	valid, _, err := m.Create(ctx, ticket(t, m, "user:alice"), session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		token     string
		storeHits int
	}{
		{"empty", "", 0},
		{"short", valid[:42], 0},
		{"long", valid + "A", 0},
		{"padding", valid[:42] + "=", 0},
		{"std alphabet", strings.Repeat("+", 43), 0},
		{"non-canonical last char", valid[:42] + "B", 0},
		{"unknown", strings.Repeat("A", 43), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := store.counts()
			if _, err := m.Load(ctx, tt.token); !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("got %v, want ErrNoSession", err)
			}
			if _, after := store.counts(); after-before != tt.storeHits {
				t.Errorf("store asked %d times, want %d", after-before, tt.storeHits)
			}
		})
	}
}

func TestSES07_IdleAndAbsoluteTimeouts(t *testing.T) {
	clk := newClock()
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, TouchInterval: time.Minute, Now: clk.Now,
	})

	t.Run("idle", func(t *testing.T) {
		token, _ := mustCreate(t, m, "user:idle", session.Meta{})
		clk.Advance(10 * time.Minute)
		if _, err := m.Load(ctx, token); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("after the idle timeout: got %v, want ErrNoSession", err)
		}
	})
	t.Run("busy until absolute", func(t *testing.T) {
		token, s := mustCreate(t, m, "user:busy", session.Meta{})
		saves, _ := store.counts()
		for elapsed := time.Duration(0); elapsed < time.Hour-5*time.Minute; elapsed += 5 * time.Minute {
			clk.Advance(5 * time.Minute)
			var err error
			if s, err = m.Load(ctx, token); err != nil {
				t.Fatalf("busy session dead after %v: %v", elapsed, err)
			}
			if s, err = m.Touch(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if after, _ := store.counts(); after == saves {
			t.Fatal("Touch never wrote the idle deadline back")
		}
		clk.Advance(5 * time.Minute)
		if _, err := m.Load(ctx, token); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("after the absolute timeout: got %v, want ErrNoSession", err)
		}
	})
	t.Run("touch at most once per interval", func(t *testing.T) {
		_, s := mustCreate(t, m, "user:touch", session.Meta{})
		saves, _ := store.counts()
		for range 10 {
			clk.Advance(5 * time.Second)
			var err error
			if s, err = m.Touch(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if after, _ := store.counts(); after-saves != 0 {
			t.Fatalf("%d writes within one interval, want 0", after-saves)
		}
		clk.Advance(15 * time.Second) // now 65 s since the last write
		if _, err := m.Touch(ctx, s); err != nil {
			t.Fatal(err)
		}
		if after, _ := store.counts(); after-saves != 1 {
			t.Fatalf("%d writes after the interval, want 1", after-saves)
		}
	})
}

// SES-07: a wall clock that jumps back (an NTP step, a VM restored from a
// snapshot) revives nothing. A session refused as expired stays refused
// after the clock goes back an hour, on this node; sessions live before the
// jump stay live, and new ones still start.
func TestSES07_ClockJumpBackRevivesNothing(t *testing.T) {
	clk := newClock()
	m := newManager(t, newMemory(t), session.Config{
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: clk.Now,
	})
	idle, _ := mustCreate(t, m, "user:idle", session.Meta{})
	clk.Advance(9 * time.Minute)
	live, _ := mustCreate(t, m, "user:live", session.Meta{})
	clk.Advance(time.Minute)
	if _, err := m.Load(ctx, idle); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("after the idle timeout: got %v, want ErrNoSession", err)
	}
	clk.Advance(-time.Hour)
	if _, err := m.Load(ctx, idle); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("idle-expired session after the clock went back an hour: got %v, want ErrNoSession", err)
	}
	if _, err := m.Load(ctx, live); err != nil {
		t.Fatalf("session live before the jump: %v", err)
	}
	fresh, _ := mustCreate(t, m, "user:fresh", session.Meta{})
	if _, err := m.Load(ctx, fresh); err != nil {
		t.Fatalf("session created after the jump: %v", err)
	}
	clk.Advance(time.Hour + 9*time.Minute) // the wall clock is back where it was, and then some
	if _, err := m.Load(ctx, live); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the session live before the jump, past its idle deadline: got %v, want ErrNoSession", err)
	}
}

func TestSES10_ListAndRevoke(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	var tokens []string
	var sessions []*session.Session
	for i := range 3 {
		tok, s, err := m.Create(ctx, ticket(t, m, "user:alice"), session.Meta{UserAgent: fmt.Sprint("device ", i), IP: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		tokens, sessions = append(tokens, tok), append(sessions, s)
	}
	other, _ := mustCreate(t, m, "user:bob", session.Meta{})

	list, err := m.List(ctx, "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].UserAgent() != "device 0" || list[2].IP() != "127.0.0.1" {
		t.Fatalf("List: got %+v, want alice's 3 sessions oldest first", list)
	}
	if err := m.RevokeID(ctx, "user:bob", sessions[1].ID()); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("bob revoking alice's session: got %v, want ErrNoSession", err)
	}
	if err := m.RevokeID(ctx, "user:alice", sessions[1].ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(ctx, tokens[1]); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("revoked device: got %v, want ErrNoSession", err)
	}
	if err := m.RevokeUser(ctx, "user:alice", sessions[2]); err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{session.ErrNoSession, session.ErrNoSession, nil} {
		if _, err := m.Load(ctx, tokens[i]); !errors.Is(err, want) {
			t.Errorf("session %d after revoke-all keeping 2: got %v, want %v", i, err, want)
		}
	}
	if _, err := m.Load(ctx, other); err != nil {
		t.Errorf("bob's session after alice's revoke-all: %v", err)
	}
}

func TestSES11_StoreErrorIsNotANoSession(t *testing.T) {
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{CacheSize: -1})
	token, _, err := m.Create(ctx, ticket(t, m, "user:alice"), session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection refused")
	store.setFail(boom)
	_, err = m.Load(ctx, token)
	if !errors.Is(err, boom) || errors.Is(err, session.ErrNoSession) {
		t.Fatalf("got %v, want the store's error", err)
	}
}

func TestDataConcurrentWritesKeepEachOther(t *testing.T) {
	store := newMemory(t)
	m1 := newManager(t, store, session.Config{})
	m2 := newManager(t, store, session.Config{}) // a second node
	token, _, err := m1.Create(ctx, ticket(t, m1, "user:alice"), session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	const perWriter = 20
	var wg sync.WaitGroup
	for w, m := range []*session.Manager{m1, m2, m1, m2} {
		wg.Go(func() {
			for i := range perWriter {
				s, err := m.Load(ctx, token) // each request loads its own snapshot
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := m.PutInt(ctx, s, fmt.Sprintf("w%d-%d", w, i), int64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s, err := m2.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	for w := range 4 {
		for i := range perWriter {
			if n, ok := s.Int(fmt.Sprintf("w%d-%d", w, i)); !ok || n != int64(i) {
				t.Fatalf("write w%d-%d lost: got %d, %v", w, i, n, ok)
			}
		}
	}
}

func TestDataSizeCap(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{MaxDataSize: 100})
	_, s := mustCreate(t, m, "user:alice", session.Meta{})
	s, err := m.Put(ctx, s, "a", make([]byte, 90))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(ctx, s, "b", make([]byte, 10)); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	s, err = m.DeleteKey(ctx, s, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("a"); ok {
		t.Fatal("DeleteKey kept the key")
	}
	if _, err := m.Put(ctx, s, "b", make([]byte, 10)); err != nil {
		t.Fatalf("after delete: %v", err)
	}
}

func TestDataTypedHelpers(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	_, s := mustCreate(t, m, "user:alice", session.Meta{})
	s, _ = m.PutString(ctx, s, "name", "Alice")
	s, _ = m.PutInt(ctx, s, "n", -42)
	if got := s.String("name"); got != "Alice" {
		t.Errorf("String: got %q, want Alice", got)
	}
	if got, ok := s.Int("n"); !ok || got != -42 {
		t.Errorf("Int: got %d, %v, want -42, true", got, ok)
	}
	if _, ok := s.Int("name"); ok {
		t.Error("Int of a string: ok")
	}
	if _, ok := s.Int("missing"); ok {
		t.Error("Int of a missing key: ok")
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  session.Config
		ok   bool
	}{
		{"defaults", session.Config{}, true},
		{"strict", session.Config{SameSite: http.SameSiteStrictMode}, true},
		{"cookie without __Host-", session.Config{CookieName: "sid"}, false},
		{"invalid cookie name", session.Config{CookieName: "__Host-a b"}, false},
		{"SameSite None", session.Config{SameSite: http.SameSiteNoneMode}, false},
		{"idle longer than absolute", session.Config{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: time.Hour}, false},
		{"negative", session.Config{IdleTimeout: -time.Minute}, false},
		{"SES14 staleness at the minimum", session.Config{MaxStaleness: session.MinMaxStaleness}, true},
		{"SES14 staleness at the maximum", session.Config{MaxStaleness: session.MaxMaxStaleness}, true},
		{"SES14 staleness below the minimum", session.Config{MaxStaleness: session.MinMaxStaleness - 1}, false},
		{"SES14 staleness above the maximum", session.Config{MaxStaleness: session.MaxMaxStaleness + 1}, false},
		{"SES14 negative staleness", session.Config{MaxStaleness: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := session.NewManager(newMemory(t), tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// SES-03: Rotate refuses a session that is no longer live, wherever it
// ended, and makes nothing; a store error makes nothing either.
func TestSES03_RotateRefusesDeadSessions(t *testing.T) {
	clk := newClock()
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{Now: clk.Now})
	other := newManager(t, store, session.Config{Now: clk.Now}) // another node
	for _, tc := range []struct {
		name string
		end  func(s *session.Session)
	}{
		{"signed out on another node", func(s *session.Session) {
			if err := other.Revoke(ctx, s); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoked with the user's other sessions", func(s *session.Session) {
			if err := other.RevokeUser(ctx, s.UserID(), nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"expired", func(*session.Session) { clk.Advance(31 * time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s := mustCreate(t, m, "user:"+tc.name, session.Meta{})
			tc.end(s)
			token, got, err := m.Rotate(ctx, s)
			if !errors.Is(err, session.ErrNoSession) || token != "" || got != nil {
				t.Fatalf("Rotate of a dead session: got %q, %v, %v; want ErrNoSession and nothing", token, got, err)
			}
			if list, _ := m.List(ctx, s.UserID()); len(list) != 0 {
				t.Errorf("sessions after a refused rotation: got %d, want none", len(list))
			}
		})
	}
	t.Run("store error", func(t *testing.T) {
		old, s := mustCreate(t, m, "user:store", session.Meta{})
		store.setFail(errors.New("store down"))
		token, _, err := m.Rotate(ctx, s)
		store.setFail(nil)
		if err == nil || errors.Is(err, session.ErrNoSession) || token != "" {
			t.Fatalf("Rotate with the store failing: got %q, %v; want the store's error and no token", token, err)
		}
		if list, _ := m.List(ctx, "user:store"); len(list) != 1 || list[0].ID() != s.ID() {
			t.Errorf("sessions after a failed rotation: got %d, want the old one only", len(list))
		}
		if _, err := m.Load(ctx, old); err != nil {
			t.Errorf("the old session after a failed rotation: %v", err)
		}
	})
}

// SES-12: a Ticket taken before a revocation creates nothing after it,
// whichever manager revoked.
func TestSES12_CreateAfterRevocationRefused(t *testing.T) {
	store := newMemory(t)
	a := newManager(t, store, session.Config{})
	b := newManager(t, store, session.Config{})
	tk := ticket(t, a, "user:alice") // before the credential is read
	if err := b.RevokeUser(ctx, "user:alice", nil); err != nil {
		t.Fatal(err)
	}
	token, s, err := a.Create(ctx, tk, session.Meta{})
	if !errors.Is(err, session.ErrRevoked) || token != "" || s != nil {
		t.Fatalf("Create with a ticket from before a revocation: got %q, %v, %v; want ErrRevoked", token, s, err)
	}
	if _, _, err := a.Create(ctx, session.Ticket{}, session.Meta{}); err == nil {
		t.Error("Create without a ticket: got no error")
	}
	mustCreate(t, a, "user:alice", session.Meta{}) // a fresh ticket works
}

// SES-13: a user has at most MaxPerUser sessions; a new one signs out the
// one closest to its end.
func TestSES13_SessionsPerUserCapped(t *testing.T) {
	clk := newClock()
	m := newManager(t, newMemory(t), session.Config{Now: clk.Now, MaxPerUser: 3})
	var tokens []string
	for range 4 {
		tok, _ := mustCreate(t, m, "user:alice", session.Meta{})
		tokens = append(tokens, tok)
		clk.Advance(time.Second)
	}
	if _, err := m.Load(ctx, tokens[0]); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("the oldest session past the cap: got %v, want ErrNoSession", err)
	}
	for _, tok := range tokens[1:] {
		if _, err := m.Load(ctx, tok); err != nil {
			t.Errorf("a session within the cap: %v", err)
		}
	}
	if list, _ := m.List(ctx, "user:alice"); len(list) != 3 {
		t.Errorf("sessions: got %d, want 3", len(list))
	}
	if _, err := session.NewManager(newMemory(t), session.Config{MaxPerUser: 100_000}); err == nil {
		t.Error("NewManager with MaxPerUser 100000: got no error")
	}
}

// A handler can't change the snapshot the near-cache shares with later
// requests: its fields are methods, and Get copies.
func TestSessionSnapshotCannotBeChanged(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	token, s := mustCreate(t, m, "user:alice", session.Meta{})
	s, err := m.PutString(ctx, s, "role", "reader")
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := first.Get("role")
	copy(v, "writer")
	again, err := m.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.String("role"); got != "reader" {
		t.Errorf("a write to what Get returned reached the next request: got %q, want %q", got, "reader")
	}
	if again.UserID() != "user:alice" {
		t.Errorf("UserID: got %q", again.UserID())
	}
}

// SES-08: sign-out during a store outage is not lost: RevokeLater keeps
// the revocation and Run makes it once the store answers.
func TestSES08_RevokeLaterSurvivesAnOutage(t *testing.T) {
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{})
	token, _ := mustCreate(t, m, "user:alice", session.Meta{})
	store.setFail(errors.New("store down"))
	if err := m.RevokeLater(ctx, token); !errors.Is(err, session.ErrPending) {
		t.Fatalf("RevokeLater with the store down: got %v, want ErrPending", err)
	}
	if err := m.RevokeLater(ctx, "not a token"); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("RevokeLater of a malformed token: got %v, want ErrNoSession", err)
	}
	store.setFail(nil)
	testkit.WaitFor(t, "the pending revocation", func() bool {
		_, err := m.Load(ctx, token)
		return errors.Is(err, session.ErrNoSession)
	})
	other, _ := mustCreate(t, m, "user:bob", session.Meta{})
	if err := m.RevokeLater(ctx, other); err != nil {
		t.Errorf("RevokeLater with the store up: %v", err)
	}
	if _, err := m.Load(ctx, other); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("session after RevokeLater with the store up: got %v, want ErrNoSession", err)
	}
}

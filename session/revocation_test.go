package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// JWT-09: a token is revoked by its jti; Revocations leaves out what has
// expired by the Manager's clock.
func TestJWT09_ManagerRevokeToken(t *testing.T) {
	clk := newClock()
	m := newManager(t, newMemory(t), session.Config{Now: clk.Now, CacheSize: -1})
	live := session.Revocation{JTI: "jti-live", Exp: clk.Now().Add(time.Minute)}
	expired := session.Revocation{JTI: "jti-expired", Exp: clk.Now().Add(-time.Second)}
	for _, r := range []session.Revocation{live, expired} {
		if err := m.RevokeToken(ctx, r); err != nil {
			t.Fatalf("RevokeToken(%+v): %v", r, err)
		}
	}
	for jti, want := range map[string]bool{"jti-live": true, "jti-expired": true, "jti-unknown": false} {
		if got, err := m.TokenRevoked(ctx, jti); err != nil || got != want {
			t.Errorf("TokenRevoked(%q): got %v, %v; want %v, nil", jti, got, err, want)
		}
	}
	list, err := m.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0] != live {
		t.Errorf("Revocations: got %+v, want only %+v", list, live)
	}
	if err := m.RevokeToken(ctx, session.Revocation{JTI: "no-exp"}); err == nil {
		t.Error("RevokeToken of an entry without Exp: got nil, want an error")
	}
}

// CHG-03: RevokeSubject moves the subject's generation and puts the new
// one on the denylist for TokenMaxLifetime, so that a token carrying the
// old generation, even one issued in the same second, is dead for local
// and remote verifiers alike.
func TestCHG03_RevokeSubject(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration
	}{
		{"default lifetime", 0, session.DefaultTokenMaxLifetime},
		{"configured lifetime", 10 * time.Minute, 10 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, newMemory(t), session.Config{Now: clk.Now, TokenMaxLifetime: tc.lifetime, CacheSize: -1})
			const sub = "client:billing"
			if gen, err := m.SubjectGeneration(ctx, sub); err != nil || gen != 0 {
				t.Fatalf("SubjectGeneration before: got %d, %v; want 0, nil", gen, err)
			}
			for want := uint64(1); want <= 2; want++ {
				gen, err := m.RevokeSubject(ctx, sub)
				if err != nil || gen != want {
					t.Fatalf("RevokeSubject: got %d, %v; want %d, nil", gen, err, want)
				}
				if got, err := m.SubjectGeneration(ctx, sub); err != nil || got != want {
					t.Errorf("SubjectGeneration after: got %d, %v; want %d, nil", got, err, want)
				}
			}
			list, err := m.Revocations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := session.Revocation{Subject: sub, Gen: 2, Exp: clk.Now().Add(tc.want)}
			if len(list) != 1 || list[0] != want {
				t.Errorf("Revocations: got %+v, want only %+v", list, want)
			}
			// Another subject, a user's spelled in its namespace, is untouched.
			if gen, err := m.SubjectGeneration(ctx, "user:billing"); err != nil || gen != 0 {
				t.Errorf("SubjectGeneration of another subject: got %d, %v; want 0, nil", gen, err)
			}
		})
	}
	m := newManager(t, newMemory(t), session.Config{CacheSize: -1})
	if _, err := m.RevokeSubject(ctx, ""); err == nil {
		t.Error("RevokeSubject of an empty subject: got nil, want an error")
	}
	if _, err := m.SubjectGeneration(ctx, ""); err == nil {
		t.Error("SubjectGeneration of an empty subject: got nil, want an error")
	}
	if _, err := session.NewManager(newMemory(t), session.Config{TokenMaxLifetime: -time.Second}); err == nil {
		t.Error("a negative TokenMaxLifetime was accepted")
	}
}

// failingDenylist is a store whose denylist calls fail.
type failingDenylist struct {
	session.Store
	err error
}

func (s failingDenylist) RevokeToken(context.Context, session.Revocation) error { return s.err }
func (s failingDenylist) TokenRevoked(context.Context, string) (bool, error) {
	return true, s.err // a store that fails says nothing, whatever it returns
}
func (s failingDenylist) Revocations(context.Context, time.Time) ([]session.Revocation, error) {
	return nil, s.err
}

// SES-11: a denylist the store can't read or write is an error wrapping
// the store's, never "not revoked".
func TestSES11_DenylistStoreErrorsFailClosed(t *testing.T) {
	down := errors.New("store down")
	mem := newMemory(t)
	m := newManager(t, failingDenylist{Store: mem, err: down}, session.Config{CacheSize: -1})
	if err := m.RevokeToken(ctx, session.Revocation{JTI: "j", Exp: time.Now().Add(time.Minute)}); !errors.Is(err, down) {
		t.Errorf("RevokeToken: got %v, want an error wrapping %v", err, down)
	}
	if revoked, err := m.TokenRevoked(ctx, "j"); !errors.Is(err, down) || revoked {
		t.Errorf("TokenRevoked: got %v, %v; want false and an error wrapping %v", revoked, err, down)
	}
	if list, err := m.Revocations(ctx); !errors.Is(err, down) || list != nil {
		t.Errorf("Revocations: got %v, %v; want nil and an error wrapping %v", list, err, down)
	}
	gen, err := m.RevokeSubject(ctx, "client:billing")
	if !errors.Is(err, down) || gen != 0 {
		t.Errorf("RevokeSubject: got %d, %v; want 0 and an error wrapping %v", gen, err, down)
	}
	// The generation moved all the same: tokens checked locally are dead.
	if gen, err := mem.Generation(ctx, "client:billing"); err != nil || gen != 1 {
		t.Errorf("generation after the failed RevokeSubject: got %d, %v; want 1, nil", gen, err)
	}
}

// eventLog is a Config.OnEvent that records events, with what
// Manager.Current answered when each arrived.
type eventLog struct {
	m       *session.Manager
	mu      sync.Mutex
	events  []session.Event
	current []bool
}

func (l *eventLog) on(e session.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Kind == session.FeedCurrent {
		return
	}
	l.events = append(l.events, e)
	l.current = append(l.current, l.m != nil && l.m.Current())
}

func (l *eventLog) last() (session.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == 0 {
		return session.Event{}, false
	}
	return l.events[len(l.events)-1], l.current[len(l.current)-1]
}

// OnEvent gets every event of the Manager's one feed, after the near-cache
// handled it (Current already says FeedUp or FeedDown), and a revocation
// of this process before the write returns.
func TestOnEventFollowsTheFeed(t *testing.T) {
	for _, size := range []int{0, -1} { // with and without a near-cache
		log := &eventLog{}
		store := &feedStore{recordingStore: &recordingStore{Store: newMemory(t)}}
		m, err := session.NewManager(store, session.Config{OnEvent: log.on, CacheSize: size})
		if err != nil {
			t.Fatal(err)
		}
		log.mu.Lock()
		log.m = m
		log.mu.Unlock()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Run(runCtx)
		}()
		testkit.WaitFor(t, "FeedUp to reach OnEvent", func() bool {
			ev, current := log.last()
			return ev.Kind == session.FeedUp && current
		})

		r := session.Revocation{JTI: "jti-1", Exp: time.Now().Add(time.Minute)}
		if err := m.RevokeToken(ctx, r); err != nil {
			t.Fatal(err)
		}
		if ev, _ := log.last(); ev != (session.Event{Kind: session.TokenRevoked, Revocation: r}) {
			t.Errorf("CacheSize %d: last event when RevokeToken returned: got %+v, want TokenRevoked of %+v", size, ev, r)
		}
		if err := m.RevokeUser(ctx, "u1", nil); err != nil {
			t.Fatal(err)
		}
		if ev, _ := log.last(); ev != (session.Event{Kind: session.UserRevoked, UserID: "u1"}) {
			t.Errorf("CacheSize %d: last event when RevokeUser returned: got %+v, want UserRevoked(u1)", size, ev)
		}

		store.cut()
		if ev, current := log.last(); ev.Kind != session.FeedDown || current {
			t.Errorf("CacheSize %d: after the cut: got %+v with Current %v, want FeedDown with Current false", size, ev, current)
		}
		cancel()
		<-done
	}
}

// SES-14: Current is true only while the feed is up and was vouched
// current within MaxStaleness, with or without a near-cache.
func TestSES14_Current(t *testing.T) {
	for _, size := range []int{0, -1} {
		store := &feedStore{recordingStore: &recordingStore{Store: newMemory(t)}}
		m, err := session.NewManager(store, session.Config{MaxStaleness: session.MinMaxStaleness, CacheSize: size})
		if err != nil {
			t.Fatal(err)
		}
		if m.Current() {
			t.Errorf("CacheSize %d: Current before Run: got true, want false", size)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Run(runCtx)
		}()
		testkit.WaitFor(t, "the feed to be current", m.Current)
		store.cut()
		if m.Current() {
			t.Errorf("CacheSize %d: Current after FeedDown: got true, want false", size)
		}
		store.restore()
		testkit.WaitFor(t, "the feed to be current again", m.Current)
		store.muted.Store(true) // silent: no FeedDown, no heartbeat
		silent := time.Now()
		testkit.WaitFor(t, "a silent feed to stop being current", func() bool { return !m.Current() })
		if d := time.Since(silent); d < session.MinMaxStaleness-2*session.HeartbeatInterval {
			t.Errorf("CacheSize %d: Current turned false %v after the feed went silent, before MaxStaleness %v", size, d, session.MinMaxStaleness)
		}
		store.muted.Store(false)
		testkit.WaitFor(t, "heartbeats to make the feed current again", m.Current)
		cancel()
		<-done
		if m.Current() {
			t.Errorf("CacheSize %d: Current after Run returned: got true, want false", size)
		}
	}
}

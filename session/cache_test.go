package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// feedStore wraps a Store so a test can cut its invalidation feed: while
// muted, events are dropped, as a lost connection would drop them.
type feedStore struct {
	*recordingStore
	muted atomic.Bool
	mu    sync.Mutex
	fn    func(session.Event)
}

func (s *feedStore) Watch(ctx context.Context, fn func(session.Event)) error {
	s.mu.Lock()
	s.fn = fn
	s.mu.Unlock()
	return s.recordingStore.Watch(ctx, func(e session.Event) {
		if !s.muted.Load() {
			fn(e)
		}
	})
}

// cut mutes the feed and tells the watcher, as a store that noticed the loss
// would; restore unmutes it and says FeedUp.
func (s *feedStore) cut() {
	s.muted.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(session.Event{Kind: session.FeedDown})
}

func (s *feedStore) restore() {
	s.muted.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(session.Event{Kind: session.FeedUp})
}

func TestCacheServesFromMemory(t *testing.T) {
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{})
	token, _ := mustCreate(t, m, "user:alice", session.Meta{})
	for range 10 {
		if _, err := m.Load(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	if _, gets := store.counts(); gets != 1 {
		t.Fatalf("store asked %d times for 10 loads, want 1", gets)
	}
}

func TestCacheRevocationReachesOtherManagerAtOnce(t *testing.T) {
	store := newMemory(t)
	a := newManager(t, store, session.Config{})
	b := newManager(t, store, session.Config{})
	tokens := map[string]string{}
	sessions := map[string]*session.Session{}
	for _, name := range []string{"one", "all1", "all2"} {
		user := "user:" + name[:3]
		tok, s := mustCreate(t, a, user, session.Meta{})
		if _, err := b.Load(ctx, tok); err != nil { // now in b's cache
			t.Fatal(err)
		}
		tokens[name], sessions[name] = tok, s
	}
	if err := a.Revoke(ctx, sessions["one"]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx, tokens["one"]); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("revoked session on the other manager: got %v, want ErrNoSession", err)
	}
	if err := a.RevokeUser(ctx, "user:all", nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"all1", "all2"} {
		if _, err := b.Load(ctx, tokens[name]); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("user-revoked session %s on the other manager: got %v, want ErrNoSession", name, err)
		}
	}
}

func TestCacheBypassedWhileFeedIsDown(t *testing.T) {
	inner := newMemory(t)
	store := &feedStore{recordingStore: &recordingStore{Store: inner}}
	m := newManager(t, store, session.Config{})
	token, s := mustCreate(t, m, "user:alice", session.Meta{})
	if _, err := m.Load(ctx, token); err != nil {
		t.Fatal(err)
	}

	store.cut()
	if m.CacheUp() {
		t.Fatal("cache still serving after FeedDown")
	}
	// A revocation the feed never delivers.
	if err := inner.Delete(ctx, sessionHash(t, inner, s)); err != nil {
		t.Fatal(err)
	}
	_, before := store.counts()
	if _, err := m.Load(ctx, token); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("revoked session served while the feed was down: got %v", err)
	}
	if _, after := store.counts(); after != before+1 {
		t.Fatalf("load while the feed was down did not ask the store")
	}

	store.restore()
	tok2, _ := mustCreate(t, m, "user:alice", session.Meta{})
	m.Load(ctx, tok2)
	_, before = store.counts()
	m.Load(ctx, tok2)
	if _, after := store.counts(); after != before {
		t.Fatal("cache not serving after FeedUp")
	}
}

// sessionHash finds the store key of s through the store's listing.
func sessionHash(t *testing.T, store session.Store, s *session.Session) session.Hash {
	t.Helper()
	list, err := store.List(ctx, s.UserID())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.ID == s.ID() {
			return r.Hash
		}
	}
	t.Fatalf("session %s not in the store", s.ID())
	return session.Hash{}
}

// hookedGetStore runs a hook, once, between reading a record and handing
// it to the Manager: the moment a revocation can overtake a load.
type hookedGetStore struct {
	session.Store
	hook atomic.Pointer[func()]
}

func (s *hookedGetStore) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	r, err := s.Store.Get(ctx, h)
	if f := s.hook.Swap(nil); f != nil {
		(*f)()
	}
	return r, err
}

// A load that read the store before a revocation and returns after it
// must not put the revoked session into the near-cache: the next load
// would be served the revoked session from memory. The revocation is
// forced into exactly that window, for both kinds of invalidation.
func TestCacheNoStaleEntryAfterRevocationRace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(other *session.Manager, s *session.Session) error
	}{
		{"Revoke", func(o *session.Manager, s *session.Session) error { return o.Revoke(ctx, s) }},
		{"RevokeUser", func(o *session.Manager, s *session.Session) error { return o.RevokeUser(ctx, s.UserID(), nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := newMemory(t)
			store := &hookedGetStore{Store: inner}
			m := newManager(t, store, session.Config{})
			other := newManager(t, inner, session.Config{})
			token, s := mustCreate(t, other, "user:alice", session.Meta{})
			revoke := func() {
				if err := tc.revoke(other, s); err != nil {
					t.Fatal(err)
				}
			}
			store.hook.Store(&revoke)
			if _, err := m.Load(ctx, token); err != nil { // read before, returned after the revocation
				t.Fatalf("the load overtaken by the revocation: %v", err)
			}
			if store.hook.Load() != nil {
				t.Fatal("the load never asked the store: the hook did not run")
			}
			if _, err := m.Load(ctx, token); !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("load after the revocation: got %v, want ErrNoSession (served from a stale cache entry)", err)
			}
		})
	}
}

// SES-14: a feed cut off without anyone noticing (its packets dropped, no
// FeedDown) sends no more heartbeats; the near-cache then stops serving
// within Config.MaxStaleness, and the session revoked meanwhile, whose
// invalidation was lost, is refused by the store. While the store fails
// too, loads fail (SES-11), never serve the cached session; when
// heartbeats come back, the cache serves again.
func TestSES14_SilentFeedStopsCacheWithinBound(t *testing.T) {
	mem := newMemory(t)
	store := &feedStore{recordingStore: &recordingStore{Store: mem}}
	const bound = session.MinMaxStaleness
	var logged testkit.Buffer
	m := newManager(t, store, session.Config{MaxStaleness: bound, Logger: logged.Logger()})
	token, _ := mustCreate(t, m, "user:alice", session.Meta{})
	other, _ := mustCreate(t, m, "user:bob", session.Meta{})
	for _, tok := range []string{token, other} {
		if _, err := m.Load(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	_, gets := store.counts()
	if _, err := m.Load(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, now := store.counts(); now != gets {
		t.Fatalf("a load with the feed current asked the store (%d gets, want %d)", now, gets)
	}

	store.muted.Store(true) // silent: no FeedDown, nothing more arrives
	h, _ := session.ParseToken(token)
	if err := mem.Delete(ctx, h); err != nil { // another node's revocation: its invalidation is lost
		t.Fatal(err)
	}
	revoked := time.Now()
	var served time.Duration
	for {
		_, err := m.Load(ctx, token)
		if errors.Is(err, session.ErrNoSession) {
			break
		}
		if err != nil {
			t.Fatalf("Load while stale: %v", err)
		}
		served = time.Since(revoked)
		if served > 5*time.Second {
			t.Fatalf("the revoked session is still served %v after the feed went silent", served)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("revoked session served from the silent cache for %v (bound %v)", served, bound)
	testkit.WaitFor(t, "the silence to be logged", func() bool { return logged.Contains("feed silent") })
	if served > bound+session.HeartbeatInterval {
		t.Errorf("revoked session served %v after the revocation, want at most %v + one heartbeat", served, bound)
	}

	store.setFail(errors.New("store down"))
	if _, err := m.Load(ctx, other); err == nil || errors.Is(err, session.ErrNoSession) {
		t.Errorf("Load from a stale cache with the store down: got %v, want the store's error", err)
	}
	store.setFail(nil)

	store.muted.Store(false) // heartbeats again
	testkit.WaitFor(t, "the cache to serve again", func() bool {
		_, before := store.counts()
		if _, err := m.Load(ctx, other); err != nil {
			t.Fatal(err)
		}
		_, after := store.counts()
		return after == before
	})
	testkit.WaitFor(t, "the recovery to be logged", func() bool { return logged.Contains("feed heard again") })
}

// heartbeatOnce is a store whose feed comes up, sends one heartbeat, says
// so on sent and then stays quiet.
type heartbeatOnce struct {
	session.Store
	sent chan struct{}
}

func (s heartbeatOnce) Watch(ctx context.Context, fn func(session.Event)) error {
	fn(session.Event{Kind: session.FeedUp})
	fn(session.Event{Kind: session.FeedCurrent, At: time.Now()})
	close(s.sent)
	<-ctx.Done()
	return ctx.Err()
}

// A Manager without a near-cache (CacheSize < 0) follows a feed with
// heartbeats like any other: it once crashed on the first one.
func TestNoCacheTakesHeartbeats(t *testing.T) {
	store := heartbeatOnce{Store: newMemory(t), sent: make(chan struct{})}
	m := newManager(t, store, session.Config{CacheSize: -1})
	<-store.sent
	token, _ := mustCreate(t, m, "user:nocache", session.Meta{})
	if _, err := m.Load(ctx, token); err != nil {
		t.Fatal(err)
	}
}

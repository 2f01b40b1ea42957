// Package memory is a session.Store that keeps everything in the process's
// memory: for tests, and for a single process that can lose its sessions on
// restart. Its invalidation feed sees only its own writes, which are all
// there are.
//
//	store := memory.New()
//	defer store.Close()
//	m, err := session.NewManager(store, session.Config{})
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherauth/tether/session"
)

var (
	_ session.Store   = (*Store)(nil)
	_ session.Sweeper = (*Store)(nil)
)

// Store is an in-memory session.Store. The zero value is not usable; call
// New.
type Store struct {
	mu       sync.Mutex // guards the fields below
	closed   bool
	done     chan struct{} // closed by Close
	records  map[session.Hash]*session.Record
	ids      map[string]session.Hash
	byUser   map[string]map[session.Hash]*session.Record // the records of each user: per-user operations never walk the others
	gens     map[string]uint64
	denied   map[string]session.Revocation // the token denylist, by denylist.Key
	watchers map[*func(session.Event)]struct{}
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		done:     make(chan struct{}),
		records:  make(map[session.Hash]*session.Record),
		ids:      make(map[string]session.Hash),
		byUser:   make(map[string]map[session.Hash]*session.Record),
		gens:     make(map[string]uint64),
		denied:   make(map[string]session.Revocation),
		watchers: make(map[*func(session.Event)]struct{}),
	}
}

// Close ends every Watch; every method returns session.ErrClosed from then
// on.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	return nil
}

func copyRecord(r *session.Record) *session.Record {
	c := *r
	if r.Data != nil {
		c.Data = make(map[string][]byte, len(r.Data))
		for k, v := range r.Data {
			c.Data[k] = slices.Clone(v)
		}
	}
	return &c
}

// live returns the record under h if its generation is current. s.mu held.
func (s *Store) live(h session.Hash) *session.Record {
	r := s.records[h]
	if r == nil || r.Gen < s.gens[r.UserID] {
		return nil
	}
	return r
}

// Get implements session.Store.
func (s *Store) Get(_ context.Context, h session.Hash) (*session.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, session.ErrClosed
	}
	r := s.live(h)
	if r == nil {
		return nil, session.ErrNotFound
	}
	return copyRecord(r), nil
}

// Generation implements session.Store.
func (s *Store) Generation(_ context.Context, userID string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, session.ErrClosed
	}
	return s.gens[userID], nil
}

// Create implements session.Store.
func (s *Store) Create(_ context.Context, r *session.Record, opts session.CreateOptions) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.ErrClosed
	}
	var gone []session.Hash
	if opts.Replace != nil {
		old := s.live(*opts.Replace)
		if old == nil || old.UserID != r.UserID {
			s.mu.Unlock()
			return fmt.Errorf("create: replaced record: %w", session.ErrNotFound)
		}
		r.Gen = old.Gen
	} else if r.Gen != s.gens[r.UserID] {
		s.mu.Unlock()
		return fmt.Errorf("create: %w", session.ErrRevoked)
	}
	if _, taken := s.ids[r.ID]; taken || s.records[r.Hash] != nil {
		s.mu.Unlock()
		return fmt.Errorf("create: %w", session.ErrConflict)
	}
	if opts.Replace != nil {
		s.remove(*opts.Replace)
		gone = append(gone, *opts.Replace)
	}
	if opts.MaxPerUser > 0 {
		gone = append(gone, s.evict(r.UserID, opts.MaxPerUser-1)...)
	}
	r.Version = 1
	s.put(copyRecord(r))
	s.mu.Unlock()
	for _, h := range gone {
		s.publish(session.Event{Kind: session.Changed, Hash: h})
	}
	return nil
}

// evict deletes the live records of userID that expire first until at most
// keep are left, and returns their hashes. s.mu held.
func (s *Store) evict(userID string, keep int) []session.Hash {
	var mine []*session.Record
	for h, r := range s.byUser[userID] {
		if s.live(h) != nil {
			mine = append(mine, r)
		}
	}
	if len(mine) <= keep {
		return nil
	}
	slices.SortFunc(mine, func(a, b *session.Record) int { return a.Expiry().Compare(b.Expiry()) })
	var gone []session.Hash
	for _, r := range mine[:len(mine)-keep] {
		s.remove(r.Hash)
		gone = append(gone, r.Hash)
	}
	return gone
}

// Save implements session.Store.
func (s *Store) Save(_ context.Context, r *session.Record) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.ErrClosed
	}
	old := s.live(r.Hash)
	switch {
	case old == nil:
		s.mu.Unlock()
		return session.ErrNotFound
	case old.Version != r.Version || old.ID != r.ID || old.UserID != r.UserID:
		s.mu.Unlock()
		return session.ErrConflict
	}
	r.Gen = old.Gen
	r.Version++
	s.put(copyRecord(r))
	s.mu.Unlock()
	s.publish(session.Event{Kind: session.Changed, Hash: r.Hash})
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(_ context.Context, h session.Hash) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.ErrClosed
	}
	s.remove(h)
	s.mu.Unlock()
	s.publish(session.Event{Kind: session.Changed, Hash: h})
	return nil
}

// put stores r, which the store owns from now on. s.mu held.
func (s *Store) put(r *session.Record) {
	s.records[r.Hash] = r
	s.ids[r.ID] = r.Hash
	mine := s.byUser[r.UserID]
	if mine == nil {
		mine = make(map[session.Hash]*session.Record)
		s.byUser[r.UserID] = mine
	}
	mine[r.Hash] = r
}

// remove deletes the record under h. s.mu held.
func (s *Store) remove(h session.Hash) {
	r := s.records[h]
	if r == nil {
		return
	}
	delete(s.ids, r.ID)
	delete(s.records, h)
	if mine := s.byUser[r.UserID]; len(mine) > 1 {
		delete(mine, h)
	} else {
		delete(s.byUser, r.UserID)
	}
}

// List implements session.Store.
func (s *Store) List(_ context.Context, userID string) ([]*session.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, session.ErrClosed
	}
	out := []*session.Record{}
	for h, r := range s.byUser[userID] {
		if s.live(h) != nil {
			out = append(out, copyRecord(r))
		}
	}
	slices.SortFunc(out, func(a, b *session.Record) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeUser implements session.Store.
func (s *Store) RevokeUser(_ context.Context, userID string, keep *session.Hash) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.ErrClosed
	}
	var kept *session.Record
	if keep != nil {
		if r := s.live(*keep); r != nil && r.UserID == userID {
			kept = r
		}
	}
	s.gens[userID]++
	for h, r := range s.byUser[userID] {
		if r != kept {
			s.remove(h)
		}
	}
	if kept != nil {
		kept.Gen = s.gens[userID]
		kept.Version++
	}
	s.mu.Unlock()
	s.publish(session.Event{Kind: session.UserRevoked, UserID: userID})
	return nil
}

// DeleteExpired implements session.Sweeper. It also forgets records
// revoked by their user's generation, and the denylist's entries whose Exp
// is at or before now (not counted).
func (s *Store) DeleteExpired(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, session.ErrClosed
	}
	n := 0
	for h, r := range s.records {
		if !r.Expiry().After(now) || s.live(h) == nil {
			s.remove(h)
			n++
		}
	}
	maps.DeleteFunc(s.denied, func(_ string, r session.Revocation) bool { return !r.Exp.After(now) })
	return n, nil
}

// Watch implements session.Store. Every write of this store reaches fn
// before the write returns. fn must not call the store when it gets FeedUp.
func (s *Store) Watch(ctx context.Context, fn func(session.Event)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.ErrClosed
	}
	// FeedUp is delivered under s.mu, in the same step as the watcher is
	// added: every publish that includes the watcher comes after it, and
	// none that comes after it leaves the watcher out.
	key := &fn
	s.watchers[key] = struct{}{}
	fn(session.Event{Kind: session.FeedUp})
	s.mu.Unlock()

	// Every write reaches fn before it returns: the feed is always current,
	// and the heartbeats say so (session.Store.Watch).
	beat := time.NewTicker(session.HeartbeatInterval)
	defer beat.Stop()
	var err error
	for err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-s.done:
			err = session.ErrClosed
		case at := <-beat.C:
			fn(session.Event{Kind: session.FeedCurrent, At: at})
		}
	}
	s.mu.Lock()
	delete(s.watchers, key)
	s.mu.Unlock()
	fn(session.Event{Kind: session.FeedDown})
	return err
}

// publish sends e to every watcher. It is called without s.mu held, so a
// watcher may call the store.
func (s *Store) publish(e session.Event) {
	s.mu.Lock()
	fns := make([]func(session.Event), 0, len(s.watchers))
	for f := range s.watchers {
		fns = append(fns, *f)
	}
	s.mu.Unlock()
	for _, f := range fns {
		f(e)
	}
}

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
	gens     map[string]uint64
	watchers map[*func(session.Event)]struct{}
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		done:     make(chan struct{}),
		records:  make(map[session.Hash]*session.Record),
		ids:      make(map[string]session.Hash),
		gens:     make(map[string]uint64),
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

// Save implements session.Store.
func (s *Store) Save(_ context.Context, r *session.Record) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return session.ErrClosed
	}
	old := s.records[r.Hash]
	if r.Version == 0 {
		if _, taken := s.ids[r.ID]; taken || old != nil {
			s.mu.Unlock()
			return fmt.Errorf("create: %w", session.ErrConflict)
		}
		r.Gen = s.gens[r.UserID]
	} else {
		switch {
		case old == nil:
			s.mu.Unlock()
			return session.ErrNotFound
		case old.Version != r.Version || s.live(r.Hash) == nil:
			s.mu.Unlock()
			return session.ErrConflict
		}
		r.Gen = old.Gen
	}
	r.Version++
	s.records[r.Hash] = copyRecord(r)
	s.ids[r.ID] = r.Hash
	s.mu.Unlock()
	if old != nil {
		s.publish(session.Event{Kind: session.Changed, Hash: r.Hash})
	}
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

// remove deletes the record under h. s.mu held.
func (s *Store) remove(h session.Hash) {
	if r := s.records[h]; r != nil {
		delete(s.ids, r.ID)
		delete(s.records, h)
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
	for h, r := range s.records {
		if r.UserID == userID && s.live(h) != nil {
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
	if kept != nil {
		kept.Gen = s.gens[userID]
		kept.Version++
	}
	s.mu.Unlock()
	s.publish(session.Event{Kind: session.UserRevoked, UserID: userID})
	return nil
}

// DeleteExpired implements session.Sweeper. It also forgets records
// revoked by their user's generation.
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

	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.done:
		err = session.ErrClosed
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

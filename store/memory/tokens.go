package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/denylist"
)

// RevokeToken implements session.Store: r goes on the denylist, merged
// with the entry of the same jti or subject, and reaches every watcher
// before RevokeToken returns.
func (s *Store) RevokeToken(ctx context.Context, r session.Revocation) error {
	if err := denylist.Check(r); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	s.mu.Lock()
	if err := s.usable(ctx); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("revoke token: %w", err)
	}
	key := denylist.Key(r)
	if old, ok := s.denied[key]; ok {
		s.denied[key] = denylist.Merge(old, r)
	} else {
		s.denied[key] = r
	}
	s.mu.Unlock()
	s.publish(session.Event{Kind: session.TokenRevoked, Revocation: r})
	return nil
}

// TokenRevoked implements session.Store.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return false, fmt.Errorf("token revoked: %w", err)
	}
	_, ok := s.denied[denylist.Key(session.Revocation{JTI: jti})]
	return ok, nil
}

// Revocations implements session.Store. It leaves out the entries whose
// Exp is not after now.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]session.Revocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	out := slices.Collect(maps.Values(s.denied))
	return slices.DeleteFunc(out, func(r session.Revocation) bool { return !r.Exp.After(now) }), nil
}

// usable returns session.ErrClosed if the store is closed, else ctx's
// error, if any: the denylist's calls honour a deadline that has passed,
// as a store on the network would. s.mu held.
func (s *Store) usable(ctx context.Context) error {
	if s.closed {
		return session.ErrClosed
	}
	return ctx.Err()
}

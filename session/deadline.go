package session

import (
	"context"
	"time"
)

// DefaultStoreTimeout is Config.StoreTimeout's default: far above a
// healthy store's round trip (well under a millisecond on a local
// network), far below what a person waits before giving up.
const DefaultStoreTimeout = time.Second

// deadlineStore is the Store a Manager calls: every call but Watch (which
// runs as long as the feed does) gets at most d, so that a store that
// stops answering (a frozen Redis, a partitioned PostgreSQL) fails the
// call within d instead of holding the request until the network gives up
// (MISC-05). The caller's own deadline still applies when it is sooner.
type deadlineStore struct {
	Store
	d time.Duration
}

func (s deadlineStore) Get(ctx context.Context, h Hash) (*Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Get(ctx, h)
}

func (s deadlineStore) Generation(ctx context.Context, userID string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Generation(ctx, userID)
}

func (s deadlineStore) Create(ctx context.Context, r *Record, opts CreateOptions) error {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Create(ctx, r, opts)
}

func (s deadlineStore) Save(ctx context.Context, r *Record) error {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Save(ctx, r)
}

func (s deadlineStore) Delete(ctx context.Context, h Hash) error {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Delete(ctx, h)
}

func (s deadlineStore) List(ctx context.Context, userID string) ([]*Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.List(ctx, userID)
}

func (s deadlineStore) RevokeUser(ctx context.Context, userID string, keep *Hash) error {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.RevokeUser(ctx, userID, keep)
}

func (s deadlineStore) RevokeToken(ctx context.Context, r Revocation) error {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.RevokeToken(ctx, r)
}

func (s deadlineStore) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.TokenRevoked(ctx, jti)
}

func (s deadlineStore) Revocations(ctx context.Context, now time.Time) ([]Revocation, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Revocations(ctx, now)
}

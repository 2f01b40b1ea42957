package session

import (
	"context"
	"testing"
)

// foundStore answers every Get at once, so that a benchmark measures what
// is around the call.
type foundStore struct{ Store }

func (foundStore) Get(context.Context, Hash) (*Record, error) { return nil, ErrNotFound }

// BenchmarkStoreTimeout: what the deadline around each store call
// (StoreTimeout) costs a Get, against the same call without it.
func BenchmarkStoreTimeout(b *testing.B) {
	for _, bc := range []struct {
		name  string
		store Store
	}{
		{"bare", foundStore{}},
		{"deadline", deadlineStore{Store: foundStore{}, d: DefaultStoreTimeout}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				bc.store.Get(ctx, Hash{})
			}
		})
	}
}

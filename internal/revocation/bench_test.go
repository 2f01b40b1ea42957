package revocation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// BenchmarkRevocationCheck is the server's check of a token on the cached
// path (denylist and generation lookups in memory), beside the token
// package's one of MemoryRevocations: a thousand revoked jtis and cached
// subjects, so that the lookups are not in empty maps.
func BenchmarkRevocationCheck(b *testing.B) {
	ctx := context.Background()
	s := newSource(b)
	v, err := NewView(s, ViewConfig{})
	if err != nil {
		b.Fatal(err)
	}
	v.Handle(session.Event{Kind: session.FeedUp})
	s.up.Store(true)
	v.load(ctx)
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		v.Handle(session.Event{Kind: session.TokenRevoked, Revocation: session.Revocation{JTI: fmt.Sprint("jti-", i), Exp: exp}})
		if err := v.Check(ctx, fmt.Sprint("user:", i), 0, "x"); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := v.Check(ctx, "user:500", 0, "9f1c2b7e-4d3a-4e8b-9c61-0a5f7d2e3b14"); err != nil {
			b.Fatal(err)
		}
	}
}

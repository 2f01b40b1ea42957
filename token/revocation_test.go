package token

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

func TestMemoryRevocations(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	m := NewMemoryRevocations(clk.Now)
	check := func(sub string, gen uint64, jti string, want error) {
		t.Helper()
		if err := m.Check(ctx, sub, gen, jti); !errors.Is(err, want) {
			t.Fatalf("Check(%q, %d, %q) = %v, want %v", sub, gen, jti, err, want)
		}
	}
	check("user:a", 0, "j1", nil)
	m.RevokeID("j1", t0.Add(time.Minute))
	check("user:a", 0, "j1", ErrRevoked)
	if g := m.RevokeSubject("user:a"); g != 1 {
		t.Fatalf("got generation %d, want 1", g)
	}
	check("user:a", 0, "j2", ErrRevoked)
	check("user:a", 1, "j2", nil)
	check("user:b", 0, "j2", nil)
	m.SetGeneration("user:a", 5)
	m.SetGeneration("user:a", 3) // stale: ignored
	if g := m.Generation("user:a"); g != 5 {
		t.Fatalf("got generation %d, want 5", g)
	}
	// Expired entries go as the list grows; live ones stay.
	clk.Advance(2 * time.Minute)
	for i := range 2000 {
		m.RevokeID(fmt.Sprint("x", i), clk.Now().Add(time.Minute))
	}
	check("user:c", 0, "j1", nil)
	check("user:c", 0, "x1999", ErrRevoked)
}

package sometimes

import (
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

func TestGate(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1000, 0))
	g := New(time.Second, clock.Now)
	steps := []struct {
		advance  time.Duration
		wantOK   bool
		wantHeld int64
	}{
		{0, true, 0},
		{0, false, 0},
		{999 * time.Millisecond, false, 0},
		{time.Millisecond, true, 2},
		{time.Hour, true, 0},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if held, ok := g.Let(); ok != s.wantOK || held != s.wantHeld {
			t.Errorf("step %d: Let() = %d, %v; want %d, %v", i, held, ok, s.wantHeld, s.wantOK)
		}
	}
}

// Many events at once in one interval: exactly one goes through, and the
// next one through counts all the others.
func TestGateConcurrent(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1000, 0))
	g := New(time.Second, clock.Now)
	const n = 64
	var mu sync.Mutex
	let := 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, ok := g.Let(); ok {
				mu.Lock()
				let++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	clock.Advance(time.Second)
	if held, ok := g.Let(); let != 1 || !ok || held != n-1 {
		t.Errorf("%d of %d let through, then Let() = %d, %v; want 1, then %d, true", let, n, held, ok, n-1)
	}
}

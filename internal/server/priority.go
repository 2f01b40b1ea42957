package server

import (
	"context"
	"sync"

	"github.com/tetherauth/tether/password"
)

// Sign-in floods (PW-04, PW-06). Every checked password takes one of the
// hasher's few argon2 slots, so a flood of wrong guesses from many
// addresses, which no per-account or per-address throttle stops, would
// make everyone queue behind it. So the queue goes by priority
// (password.WithPriority):
//
//   - High: a sign-in with a valid device cookie of the account (the
//     browser signed in to it before, see device.go), and a password
//     change, whose caller is signed in. One at a time per account: a
//     second one while the first runs is Low, so a stolen device cookie or
//     session can't flood at High.
//   - Low: every other sign-in, whether or not the account exists, so that
//     neither the priority nor the time it takes tells anyone which
//     accounts exist (PW-05).
//
// The hasher keeps at most MaxWaiting callers waiting and a High one
// pushes a Low one out, so a High attempt waits only for the hashes
// already running. An attempt whose priority the hasher would refuse at
// once is answered 503 before its throttle is even counted.
type priorities struct {
	mu   sync.Mutex          // guards high
	high map[string]struct{} // accounts with a High attempt in flight
}

func newPriorities() *priorities {
	return &priorities{high: map[string]struct{}{}}
}

// raise returns ctx at High priority for an attempt on the account canon
// when trusted and no other High attempt on canon is in flight, and the
// function that ends the attempt; otherwise ctx at Low. The map holds one
// entry per High attempt in flight: its size is bounded by the requests
// being served.
func (p *priorities) raise(ctx context.Context, canon string, trusted bool) (context.Context, func()) {
	if trusted && canon != "" {
		p.mu.Lock()
		_, busy := p.high[canon]
		if !busy {
			p.high[canon] = struct{}{}
		}
		p.mu.Unlock()
		if !busy {
			return password.WithPriority(ctx, password.High), func() {
				p.mu.Lock()
				delete(p.high, canon)
				p.mu.Unlock()
			}
		}
	}
	return password.WithPriority(ctx, password.Low), func() {}
}

// prioritize is raise, and password.ErrBusy when the hasher would refuse
// the attempt's priority at once: then answer 503 without counting the
// attempt or reading the account. Call end in any case.
func (s *server) prioritize(ctx context.Context, canon string, trusted bool) (_ context.Context, end func(), err error) {
	ctx, end = s.queue.raise(ctx, canon, trusted)
	if s.hasher.Saturated(password.PriorityOf(ctx)) {
		err = password.ErrBusy
	}
	return ctx, end, err
}

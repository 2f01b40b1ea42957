package password

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Priority orders the callers waiting for a hashing slot: a freed slot goes
// to the longest-waiting caller of the highest priority. Set it on a
// context with WithPriority; a context without one is Normal.
//
// Priorities keep sign-in floods from starving real users: a server gives
// Low to sign-ins it knows nothing about (however many addresses they come
// from) and High to those it has a reason to trust, such as a browser that
// signed in to the account before, so that the trusted ones never queue
// behind the flood.
type Priority int8

// The priorities, lowest first.
const (
	Low Priority = iota - 1
	Normal
	High
)

// priorities is how many Priority values there are.
const priorities = int(High-Low) + 1

// String returns "low", "normal" or "high".
func (p Priority) String() string {
	switch p {
	case Low:
		return "low"
	case Normal:
		return "normal"
	case High:
		return "high"
	}
	return fmt.Sprintf("Priority(%d)", int8(p))
}

// priorityKey is the context key of WithPriority.
type priorityKey struct{}

// WithPriority returns a copy of ctx under which Hash, Verify and
// VerifyDummy wait for a hashing slot at priority p. A value outside Low,
// Normal and High is clamped to the nearest of them.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, min(max(p, Low), High))
}

// PriorityOf returns the priority WithPriority put on ctx, or Normal.
func PriorityOf(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return Normal
}

// HasherStats is a snapshot of a Hasher's slots, for metrics and tests.
type HasherStats struct {
	// Slots is MaxConcurrent; Running of them are hashing now.
	Slots, Running int
	// Waiting counts the callers waiting for a slot, by priority:
	// Waiting[p-Low].
	Waiting [priorities]int
	// MaxWaiting is HasherConfig.MaxWaiting: the most callers that may wait
	// at once, whatever their priority.
	MaxWaiting int
}

// slots hands out hashing slots (PW-04): at most size run at once, at most
// maxWaiting callers wait, in one FIFO queue per priority.
type slots struct {
	size, maxWaiting int

	mu      sync.Mutex // guards the fields below
	running int
	queues  [priorities][]*waiter // by priority - Low, oldest first
	waiting int                   // callers in queues
}

// waiter is a caller waiting for a slot. Whoever takes it out of its queue
// sends the answer: true, a slot is now the waiter's; false, it was pushed
// out by a caller of higher priority.
type waiter struct {
	p      Priority
	answer chan bool // buffered: the sender never blocks
}

func newSlots(size, maxWaiting int) *slots {
	return &slots{size: size, maxWaiting: maxWaiting}
}

// acquire takes a slot for a caller of priority p. It waits at most wait
// for one, and no longer than ctx lasts; then it returns ErrBusy. When
// maxWaiting callers wait already, it pushes out the newest of the lowest
// priority below p, or, when there is none, returns ErrBusy at once: the
// queue's memory is bounded whoever floods it.
func (s *slots) acquire(ctx context.Context, p Priority, wait time.Duration) error {
	s.mu.Lock()
	if s.running < s.size {
		s.running++
		s.mu.Unlock()
		return nil
	}
	if s.waiting >= s.maxWaiting {
		victim := s.lowestBelow(p)
		if victim == nil {
			s.mu.Unlock()
			return ErrBusy
		}
		s.remove(victim)
		victim.answer <- false
	}
	w := &waiter{p: p, answer: make(chan bool, 1)}
	s.queues[p-Low] = append(s.queues[p-Low], w)
	s.waiting++
	s.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var cause error
	select {
	case granted := <-w.answer:
		return busyUnless(granted)
	case <-timer.C:
	case <-ctx.Done():
		cause = context.Cause(ctx)
	}
	s.mu.Lock()
	queued := s.remove(w)
	s.mu.Unlock()
	if !queued { // answered meanwhile: take what it was
		return busyUnless(<-w.answer)
	}
	if cause != nil {
		return fmt.Errorf("%w: %w", ErrBusy, cause)
	}
	return ErrBusy
}

// busyUnless is nil when a slot was granted, else ErrBusy.
func busyUnless(granted bool) error {
	if granted {
		return nil
	}
	return ErrBusy
}

// release frees a slot acquire took: it goes to the oldest waiter of the
// highest priority, if any.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := priorities - 1; i >= 0; i-- {
		if q := s.queues[i]; len(q) > 0 {
			w := q[0]
			s.remove(w)
			w.answer <- true // the slot passes on: running stays the same
			return
		}
	}
	s.running--
}

// lowestBelow returns the newest waiter of the lowest priority below p, or
// nil. The caller holds s.mu.
func (s *slots) lowestBelow(p Priority) *waiter {
	for i := range int(p - Low) {
		if q := s.queues[i]; len(q) > 0 {
			return q[len(q)-1]
		}
	}
	return nil
}

// remove takes w out of its queue and reports whether it was there. The
// caller holds s.mu.
func (s *slots) remove(w *waiter) bool {
	q := s.queues[w.p-Low]
	i := slices.Index(q, w)
	if i < 0 {
		return false
	}
	s.queues[w.p-Low] = slices.Delete(q, i, i+1)
	s.waiting--
	return true
}

// saturated reports whether a caller of priority p would be refused at
// once: every slot runs and the queue is full of callers of p or higher.
func (s *slots) saturated(p Priority) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running >= s.size && s.waiting >= s.maxWaiting && s.lowestBelow(p) == nil
}

// stats returns a snapshot of s.
func (s *slots) stats() HasherStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := HasherStats{Slots: s.size, Running: s.running, MaxWaiting: s.maxWaiting}
	for i, q := range s.queues {
		st.Waiting[i] = len(q)
	}
	return st
}

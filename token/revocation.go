package token

import (
	"context"
	"sync"
	"time"
)

// MemoryRevocations is Revocations held in memory: a denylist of jtis,
// each kept until its token's exp, and each subject's generation. A
// verifier fed by a revocation stream, or a test, fills it. It is safe for
// concurrent use.
type MemoryRevocations struct {
	mu        sync.RWMutex         // guards the fields below
	jtis      map[string]time.Time // revoked jti -> its token's exp
	gens      map[string]uint64    // subject -> current generation
	pruneSize int                  // prune expired jtis when jtis grows past this
	now       func() time.Time
}

var _ Revocations = (*MemoryRevocations)(nil)

// NewMemoryRevocations returns an empty MemoryRevocations; now is the
// clock that decides which denylist entries have expired (nil: time.Now).
func NewMemoryRevocations(now func() time.Time) *MemoryRevocations {
	if now == nil {
		now = time.Now
	}
	return &MemoryRevocations{jtis: map[string]time.Time{}, gens: map[string]uint64{}, pruneSize: 1024, now: now}
}

// Check implements Revocations.
func (m *MemoryRevocations) Check(_ context.Context, subject string, generation uint64, jti string) error {
	m.mu.RLock()
	_, denied := m.jtis[jti]
	current := m.gens[subject]
	m.mu.RUnlock()
	if denied || generation < current {
		return ErrRevoked
	}
	return nil
}

// RevokeID puts jti on the denylist until exp, its token's expiry (JWT-09).
// Entries past their exp are dropped as the list grows: a token past its
// exp is refused as expired anyway.
func (m *MemoryRevocations) RevokeID(jti string, exp time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jtis[jti] = exp
	if len(m.jtis) > m.pruneSize {
		now := m.now()
		for id, e := range m.jtis {
			if e.Before(now) {
				delete(m.jtis, id)
			}
		}
		m.pruneSize = max(1024, 2*len(m.jtis))
	}
}

// SetGeneration records subject's current generation, as read from the
// store or a revocation stream. A generation never goes back: an older one
// (a stale or replayed message) is ignored.
func (m *MemoryRevocations) SetGeneration(subject string, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen > m.gens[subject] {
		m.gens[subject] = gen
	}
}

// RevokeSubject raises subject's generation by one and returns it: every
// token of subject issued before is dead, whenever in the second (CHG-03).
func (m *MemoryRevocations) RevokeSubject(subject string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gens[subject]++
	return m.gens[subject]
}

// Generation returns subject's current generation, the one an Issuer puts
// in the subject's new tokens (Grant.Generation).
func (m *MemoryRevocations) Generation(subject string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.gens[subject]
}

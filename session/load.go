package session

import (
	"sync"
	"time"
)

// LoadOutcome is what one Manager.Load found, for Config.OnLoad. The
// caller sees ErrNoSession for every outcome but LoadOK and
// LoadStoreError (SES-04); only the metrics tell them apart.
type LoadOutcome uint8

const (
	// LoadOK: a live session.
	LoadOK LoadOutcome = iota + 1
	// LoadMalformed: the token can't be one of ours; the store was not
	// asked.
	LoadMalformed
	// LoadUnknown: the store has no record of the token, and this node
	// can't say it was revoked (a token never issued, one the store
	// forgot after its deadline, or one revoked on another node while not
	// in this node's near-cache: see LoadRevoked).
	LoadUnknown
	// LoadExpired: the store has the record, past its idle or absolute
	// deadline (SES-07).
	LoadExpired
	// LoadRevoked: the store has no record, before the session could
	// have expired, and this node saw it end: signed out through this
	// Manager, or changed or revoked on any node (signed out, ended from
	// the list of devices, rotated away, capped, or its user's sessions
	// all revoked) while it was in this node's near-cache; among the last
	// endedSize such sessions.
	LoadRevoked
	// LoadStoreError: the store failed; the caller fails closed (SES-11).
	LoadStoreError
)

// String returns the outcome's name, as a metric label: "ok",
// "malformed", "unknown", "expired", "revoked" or "store_error".
func (o LoadOutcome) String() string {
	switch o {
	case LoadOK:
		return "ok"
	case LoadMalformed:
		return "malformed"
	case LoadUnknown:
		return "unknown"
	case LoadExpired:
		return "expired"
	case LoadRevoked:
		return "revoked"
	case LoadStoreError:
		return "store_error"
	}
	return "invalid"
}

// LoadResult is what Config.OnLoad learns of one Manager.Load.
type LoadResult struct {
	Outcome LoadOutcome
	// Cached: the near-cache answered; the store was not asked. A load
	// that is neither Cached nor LoadMalformed asked the store.
	Cached bool
}

// loaded tells Config.OnLoad, if set, what a Load found.
func (m *Manager) loaded(res LoadResult) {
	if m.cfg.OnLoad != nil {
		m.cfg.OnLoad(res)
	}
}

// endedSize is how many ended sessions a Manager remembers to tell
// LoadRevoked from LoadUnknown: 4096 hashes, about 400 KiB with their
// index.
const endedSize = 4096

// ended remembers the hashes of the last endedSize sessions this node saw
// end, each with a time before which it could not have expired by itself
// (see LoadRevoked). It learns of a session from the feed only while the
// session is in the near-cache, whose copy has its deadlines; a
// session's deadlines only ever move later, so that copy's are a lower
// bound. The feed reports every write of a session, a touch as much as a
// revocation: a session the store no longer has before that bound was
// deleted, while one missing after it may just have expired (unknown). A
// Manager keeps one only when Config.OnLoad is set; the nil *ended
// remembers nothing.
type ended struct {
	now  func() time.Time
	mu   sync.Mutex // guards the fields below
	set  map[Hash]endedAt
	ring []Hash // the set's hashes, in the order they came; next is the oldest once full
	next int
}

// endedAt is what ended knows of one session: before until, it could not
// have expired; slot is its place in the ring.
type endedAt struct {
	until time.Time
	slot  int
}

func newEnded(now func() time.Time) *ended {
	return &ended{now: now, set: make(map[Hash]endedAt, endedSize), ring: make([]Hash, 0, endedSize)}
}

// add remembers that the session h ended, and could not have expired
// before until, forgetting the oldest hash when full. A hash added again
// keeps its place and the later of its two bounds.
func (e *ended) add(h Hash, until time.Time) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if at, ok := e.set[h]; ok {
		if until.After(at.until) {
			e.set[h] = endedAt{until, at.slot}
		}
		return
	}
	slot := len(e.ring)
	if slot < endedSize {
		e.ring = append(e.ring, h)
	} else {
		slot = e.next
		delete(e.set, e.ring[slot])
		e.ring[slot] = h
		e.next = (e.next + 1) % endedSize
	}
	e.set[h] = endedAt{until, slot}
}

// has reports whether h is remembered.
func (e *ended) has(h Hash) bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.set[h]
	return ok
}

// outcome is the LoadOutcome of a token whose hash h the store does not
// have: LoadRevoked for a session remembered ended before it could have
// expired, else LoadUnknown.
func (e *ended) outcome(h Hash) LoadOutcome {
	if e == nil {
		return LoadUnknown
	}
	e.mu.Lock()
	at, ok := e.set[h]
	e.mu.Unlock()
	if ok && e.now().Before(at.until) {
		return LoadRevoked
	}
	return LoadUnknown
}

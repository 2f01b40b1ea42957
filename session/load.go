package session

import "sync"

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
	// LoadUnknown: the store has no live record of the token, and this
	// node's feed never said it ended (a token never issued, or one the
	// store forgot after its deadline, or one revoked on another node
	// before this node's Run started or while it was busy with others:
	// see LoadRevoked).
	LoadUnknown
	// LoadExpired: the store has the record, past its idle or absolute
	// deadline (SES-07).
	LoadExpired
	// LoadRevoked: the store has no live record, and this node's feed
	// reported it changed or revoked (signed out, ended from the list of
	// devices, rotated away, capped, or its user's sessions all revoked
	// while it was in the near-cache): among the last endedSize such
	// sessions.
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

// loaded tells Config.OnLoad, if set, the outcome of a Load.
func (m *Manager) loaded(o LoadOutcome, cached bool) {
	if m.cfg.OnLoad != nil {
		m.cfg.OnLoad(LoadResult{Outcome: o, Cached: cached})
	}
}

// endedSize is how many ended sessions a Manager remembers to tell
// LoadRevoked from LoadUnknown: 4096 hashes, 256 KiB with their index.
const endedSize = 4096

// ended remembers the hashes of the last endedSize sessions the feed
// reported ended (see LoadRevoked). A Manager keeps one only when
// Config.OnLoad is set; the nil *ended remembers nothing.
type ended struct {
	mu   sync.Mutex // guards the fields below
	set  map[Hash]struct{}
	ring []Hash // the set's hashes, in the order they came; next is the oldest once full
	next int
}

func newEnded() *ended {
	return &ended{set: make(map[Hash]struct{}, endedSize), ring: make([]Hash, 0, endedSize)}
}

// add remembers h, forgetting the oldest hash when full.
func (e *ended) add(h Hash) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.set[h]; ok {
		return
	}
	if len(e.ring) < endedSize {
		e.ring = append(e.ring, h)
	} else {
		delete(e.set, e.ring[e.next])
		e.ring[e.next] = h
		e.next = (e.next + 1) % endedSize
	}
	e.set[h] = struct{}{}
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
// have.
func (e *ended) outcome(h Hash) LoadOutcome {
	if e.has(h) {
		return LoadRevoked
	}
	return LoadUnknown
}

package keys

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrConflict: Storage.Save found the ring changed since the version the
// caller loaded.
var ErrConflict = errors.New("keys: the key ring changed meanwhile")

// Record is a key as a Storage keeps it. A Ring computes every state from
// the times, so one record never needs a second write to move on: a key is
// published from Created, signs from SignFrom until SignUntil, and is
// unpublished from RemoveAt.
type Record struct {
	Kid string // RFC 7638 thumbprint: the primary key
	Alg string // EdDSA or ES256
	// Private is the private key as PKCS#8 DER, sealed with the master key
	// when Sealed (KEY-04); empty once the key was removed (destroyed).
	Private Secret
	Sealed  bool

	Created   time.Time // added, and published in the JWKS from then
	SignFrom  time.Time // signs from then (when no newer key does)
	SignUntil time.Time // signs no more from then; zero: no end planned
	RemoveAt  time.Time // out of the JWKS from then; zero: no end planned
}

// LogValue logs the record without its private key (KEY-04).
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", r.Kid), slog.String("alg", r.Alg), slog.Bool("sealed", r.Sealed),
		slog.Time("created", r.Created), slog.Time("sign_from", r.SignFrom),
		slog.Time("sign_until", r.SignUntil), slog.Time("remove_at", r.RemoveAt))
}

// Storage keeps a ring's records: the server's account store implements
// it on SQLite and PostgreSQL (a table of records keyed by kid, and one
// row holding the ring's version). Implementations must be safe for
// concurrent use, by several processes when they share a database; every
// call honours ctx's deadline. Times must come back as they were saved, to
// the microsecond (the Ring writes no finer ones).
//
// The whole ring is one unit of concurrency: every change the Ring makes
// is a read (Load), a decision, and a conditional write (Save) of the
// version it read. So two nodes that decide on the same rotation at once
// can't both add a key: the second Save fails with ErrConflict, and that
// node decides again on what the first one wrote.
type Storage interface {
	// Load returns every record, in any order, and the ring's version:
	// 0 for a ring never saved. The records are the caller's to change.
	Load(ctx context.Context) (recs []Record, version uint64, err error)

	// Save writes recs in one atomic change if the ring's version is still
	// version, and returns the new version, greater than version. A record
	// replaces the stored one with its kid or is added; records not in
	// recs are left alone. If the version differs it writes nothing and
	// returns ErrConflict. Save never deletes a record.
	Save(ctx context.Context, version uint64, recs []Record) (uint64, error)
}

// MemoryStorage is a Storage in memory, for tests and single-process use.
type MemoryStorage struct {
	mu      sync.Mutex // guards the fields below
	version uint64
	recs    map[string]Record
}

var _ Storage = (*MemoryStorage)(nil)

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage { return &MemoryStorage{recs: map[string]Record{}} }

// Load implements Storage.
func (m *MemoryStorage) Load(ctx context.Context) ([]Record, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	recs := make([]Record, 0, len(m.recs))
	for _, r := range m.recs {
		r.Private = bytes.Clone(r.Private)
		recs = append(recs, r)
	}
	return recs, m.version, nil
}

// Save implements Storage.
func (m *MemoryStorage) Save(ctx context.Context, version uint64, recs []Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if version != m.version {
		return 0, ErrConflict
	}
	for _, r := range recs {
		r.Private = bytes.Clone(r.Private)
		m.recs[r.Kid] = r
	}
	m.version++
	return m.version, nil
}

package sqlite

import (
	"sync/atomic"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// BenchmarkStoreGet loads records by hash, in parallel, from a store of a
// thousand.
func BenchmarkStoreGet(b *testing.B) {
	db, _ := tempDB(b)
	s := newTestStore(b, db, Options{})
	hashes := make([]session.Hash, 1024)
	for n := range hashes {
		r := storekit.Record("user"+string(rune('a'+n%26)), n)
		if err := s.Create(b.Context(), r, session.CreateOptions{}); err != nil {
			b.Fatalf("create: %v", err)
		}
		hashes[n] = r.Hash
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := int(next.Add(7919))
		for pb.Next() {
			if _, err := s.Get(b.Context(), hashes[n%len(hashes)]); err != nil {
				b.Error(err)
				return
			}
			n++
		}
	})
}

// BenchmarkStoreSave replaces one record over and over, as the Manager does
// to refresh the idle deadline or change session data.
func BenchmarkStoreSave(b *testing.B) {
	db, _ := tempDB(b)
	s := newTestStore(b, db, Options{})
	r := storekit.Record("alice", 1)
	if err := s.Create(b.Context(), r, session.CreateOptions{}); err != nil {
		b.Fatalf("create: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.LastSeen = r.LastSeen.Add(1)
		if err := s.Save(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreRevokeUser revokes one user over and over (bumping the
// generation): a durable write (synchronous FULL, SES-15), to compare
// with BenchmarkStoreSave's NORMAL one.
func BenchmarkStoreRevokeUser(b *testing.B) {
	db, _ := tempDB(b)
	s := newTestStore(b, db, Options{})
	b.ReportAllocs()
	for b.Loop() {
		if err := s.RevokeUser(b.Context(), "alice", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFeedPoll: one poll of the change feed that finds nothing new,
// the read every Watch makes each PollInterval (100 ms by default), which
// is also its heartbeat (SES-14). Its cost times ten is what following
// the file costs a node each second.
func BenchmarkFeedPoll(b *testing.B) {
	db, _ := tempDB(b)
	conn, err := db.Conn(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dataVersion(b.Context(), conn); err != nil {
			b.Fatal(err)
		}
	}
}

package session_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

// newSQLite opens a store on file, with its own *sql.DB, both closed when
// the test ends.
func newSQLite(t testing.TB, file string) *sqlite.Store {
	t.Helper()
	store, err := sqlite.New(ctx, sqlitetest.Open(t, file), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() }) // before the database's close
	return store
}

// Two Managers over one SQLite file in one process, each with its own
// *sql.DB and Store, both caching: a revocation through one is refused
// through the other on the very next load.
func TestTwoManagersOneSQLiteFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tether.db")
	a := newManager(t, newSQLite(t, file), session.Config{})
	b := newManager(t, newSQLite(t, file), session.Config{})

	one, s1, err := a.Create(ctx, ticket(t, a, "user:alice"), session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	two, _ := mustCreate(t, a, "user:alice", session.Meta{})
	for _, tok := range []string{one, two} {
		if _, err := b.Load(ctx, tok); err != nil { // cached in b
			t.Fatal(err)
		}
	}
	if err := a.Revoke(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx, one); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("revoked through a, loaded through b: got %v, want ErrNoSession", err)
	}
	if err := b.RevokeUser(ctx, "user:alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(ctx, two); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("user revoked through b, loaded through a: got %v, want ErrNoSession", err)
	}
}

// BenchmarkManagerLoadSQLite: a token string to a session from SQLite, the
// near-cache off. Compare with BenchmarkSQLite_Modernc_Lookup/Parallel in
// ../shared/bench-anchors.
func BenchmarkManagerLoadSQLite(b *testing.B) {
	m := newManager(b, newSQLite(b, filepath.Join(b.TempDir(), "bench.db")), session.Config{CacheSize: -1})
	benchLoad(b, m, benchTokens(b, m, 1024))
}

// BenchmarkManagerCreate: creating a session in SQLite.
func BenchmarkManagerCreate(b *testing.B) {
	m := newManager(b, newSQLite(b, filepath.Join(b.TempDir(), "bench.db")), session.Config{})
	meta := session.Meta{UserAgent: "Mozilla/5.0 (X11; Linux x86_64) bench", IP: "127.0.0.1"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++ // a user each: measure a create, not the eviction of the cap (SES-13)
		if _, _, err := m.Create(ctx, ticket(b, m, "user:bench"+strconv.Itoa(i)), meta); err != nil {
			b.Fatal(err)
		}
	}
}

// Two nodes on one SQLite file touch the same session at once: node B's
// write is beaten by node A's touch, forced in between B's read and its
// compare-and-swap. B answers with the session, and writes nothing more
// (issue 9, point 4).
func TestSES07_TouchRaceAcrossNodes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tether.db")
	clk := newClock()
	cfg := session.Config{Now: clk.Now}
	a := newManager(t, newSQLite(t, file), cfg)
	rivalB := &racingStore{Store: newSQLite(t, file)}
	b := newManager(t, rivalB, cfg)
	token, _ := mustCreate(t, a, "user:alice", session.Meta{})
	sa, err := a.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	var saves int
	rivalB.before = func(*session.Record) {
		if saves++; saves == 1 {
			if _, err := a.Touch(ctx, sa); err != nil {
				t.Errorf("node A's touch: %v", err)
			}
		}
	}
	got, err := b.Touch(ctx, sb)
	if err != nil {
		t.Fatalf("node B lost the race: got %v, want no error", err)
	}
	if !got.LastSeen().Equal(clk.Now()) || saves != 1 {
		t.Errorf("node B: last seen %v after %d writes, want %v after 1", got.LastSeen(), saves, clk.Now())
	}
}

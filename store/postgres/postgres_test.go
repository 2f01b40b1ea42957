package postgres

import (
	"errors"
	"io/fs"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
	"github.com/tetherauth/tether/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (session.Store, func() error) {
		s, err := New(t.Context(), openPool(t, pgtest.Schema(t)), Options{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s, s.Close
	})
}

// openPool opens a pool with newPool (from pgtest.Schema), as
// another node would.
func openPool(t testing.TB, newPool func() (*pgxpool.Pool, error)) *pgxpool.Pool {
	t.Helper()
	pool, err := newPool()
	if err != nil {
		t.Fatalf("open a pool: %v", err)
	}
	return pool
}

// openStore returns a Store on pool that logs to the test, a node of its
// own unless node is empty (see newStore). It is closed when the test
// ends.
func openStore(t testing.TB, pool *pgxpool.Pool, node string) *Store {
	t.Helper()
	s, err := newStore(t.Context(), pool, Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, node)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// mustCreate creates r at its user's current generation, as the Manager
// does.
func mustCreate(t testing.TB, s *Store, r *session.Record) {
	t.Helper()
	gen, err := s.Generation(t.Context(), r.UserID)
	if err == nil {
		r.Gen = gen
		err = s.Create(t.Context(), r, session.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("create %s: %v", r.ID, err)
	}
}

func mustSave(t testing.TB, s *Store, r *session.Record) {
	t.Helper()
	if err := s.Save(t.Context(), r); err != nil {
		t.Fatalf("Save %s: %v", r.ID, err)
	}
}

// Nodes starting at once on a new schema: one creates the tables, the
// others find them, and all work.
func TestNewConcurrently(t *testing.T) {
	newPool := pgtest.Schema(t)
	pools := []*pgxpool.Pool{openPool(t, newPool), openPool(t, newPool), openPool(t, newPool)}
	stores := make([]*Store, len(pools))
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, pool := range pools {
		wg.Go(func() { stores[i], errs[i] = New(t.Context(), pool, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New #%d: %v", i+1, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	again := openStore(t, pools[0], "") // and once more, later
	var applied int
	if err := pools[0].QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations WHERE component = 'session'`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Errorf("migrations of component session recorded: got %d, want %d, once each", applied, len(files))
	}
	r := storekit.Record("alice", 1)
	mustCreate(t, stores[0], r)
	for i, s := range append(stores, again) {
		if _, err := s.Get(t.Context(), r.Hash); err != nil {
			t.Errorf("Get through store #%d: %v", i+1, err)
		}
	}
}

// Close leaves the caller's pool open, and the records in it.
func TestCloseLeavesPool(t *testing.T) {
	pool := openPool(t, pgtest.Schema(t))
	s, err := New(t.Context(), pool, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := storekit.Record("alice", 1)
	mustCreate(t, s, r)
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("pool after Close: %v", err)
	}
	if _, err := openStore(t, pool, "").Get(t.Context(), r.Hash); err != nil {
		t.Errorf("Get through a new Store: %v", err)
	}
}

// A record whose stored hash or data is damaged is an error, not a panic
// or a wrong record.
func TestGetCorruptRecord(t *testing.T) {
	pool := openPool(t, pgtest.Schema(t))
	s := openStore(t, pool, "")
	r := storekit.Record("alice", 1)
	mustCreate(t, s, r)
	if _, err := pool.Exec(t.Context(), `UPDATE sessions SET data = '\x01ff'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), r.Hash); !errors.Is(err, datacodec.ErrCorrupt) {
		t.Errorf("Get: got error %v, want %v", err, datacodec.ErrCorrupt)
	}
	if _, err := s.List(t.Context(), "alice"); !errors.Is(err, datacodec.ErrCorrupt) {
		t.Errorf("List: got error %v, want %v", err, datacodec.ErrCorrupt)
	}
}

// A user agent is whatever bytes the browser sent, UTF-8 or not.
func TestUserAgentAnyBytes(t *testing.T) {
	s := openStore(t, openPool(t, pgtest.Schema(t)), "")
	r := storekit.Record("alice", 1)
	r.UserAgent = "Mozilla/5.0 (caf\xe9\x00)"
	mustCreate(t, s, r)
	got, err := s.Get(t.Context(), r.Hash)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.UserAgent != r.UserAgent {
		t.Errorf("UserAgent: got %q, want %q", got.UserAgent, r.UserAgent)
	}
}

// Ids are text: what PostgreSQL's text can't hold is refused, and nothing
// is stored.
func TestIDsMustBeText(t *testing.T) {
	s := openStore(t, openPool(t, pgtest.Schema(t)), "")
	tests := []struct {
		name     string
		user, id string
	}{
		{"NUL in the user id", "al\x00ice", "s1"},
		{"invalid UTF-8 in the user id", "al\xffice", "s2"},
		{"NUL in the public id", "alice", "s\x003"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := storekit.Record("alice", i)
			r.UserID, r.ID = tc.user, tc.id
			if err := s.Create(t.Context(), r, session.CreateOptions{}); err == nil {
				t.Fatalf("Create: got no error, want one")
			}
			if _, err := s.Get(t.Context(), r.Hash); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Get after the failed Create: got error %v, want %v", err, session.ErrNotFound)
			}
		})
	}
}

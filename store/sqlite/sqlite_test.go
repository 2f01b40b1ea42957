package sqlite

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
	"github.com/tetherauth/tether/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (session.Store, func() error) {
		db, _ := tempDB(t)
		s, err := New(t.Context(), db, Options{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s, s.Close
	})
}

// tempDB opens a new database file in a temporary directory, closed when
// the test ends.
func tempDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tether.db")
	return openDB(t, path), path
}

// openDB opens path with Open, closed when the test ends.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close db: %v", err)
		}
	})
	return db
}

// newTestStore returns New(db, opts), closed when the test ends.
func newTestStore(t testing.TB, db *sql.DB, opts Options) *Store {
	t.Helper()
	s, err := New(t.Context(), db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closeOnCleanup(t, s)
	return s
}

func closeOnCleanup(t testing.TB, s *Store) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
}

var base = time.Date(2030, time.March, 4, 12, 30, 45, 0, time.UTC)

func TestOpenSettings(t *testing.T) {
	db, _ := tempDB(t)
	tests := []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"busy_timeout", "10000"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"journal_size_limit", "4194304"},
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s: got %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
}

// Transactions take the write lock when they begin (_txlock=immediate).
func TestOpenImmediateTransactions(t *testing.T) {
	db, path := tempDB(t)
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	probe, err := sql.Open("sqlite", path) // no busy timeout: fails at once when locked
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if _, err := probe.ExecContext(t.Context(), `INSERT INTO t VALUES (1)`); err == nil {
		t.Errorf("a write while a transaction is open but hasn't written: got no error, want the database locked")
	}
}

// Any character may be in the path; none is taken for part of the DSN.
func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b?mode=memory#c%41.db")
	db := openDB(t, path)
	if _, err := New(t.Context(), db, Options{}); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database file: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	db, _ := tempDB(t)
	tests := []struct {
		name string
		poll time.Duration
		want time.Duration // 0: New fails
	}{
		{"default", 0, 100 * time.Millisecond},
		{"short", time.Millisecond, time.Millisecond},
		{"the bound", time.Second, time.Second},
		{"past the bound", time.Second + 1, 0},
		{"negative", -time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(t.Context(), db, Options{PollInterval: tc.poll})
			if tc.want == 0 {
				if err == nil {
					s.Close()
					t.Errorf("New with PollInterval %v: got no error, want one", tc.poll)
				}
				return
			}
			if err != nil {
				t.Fatalf("New with PollInterval %v: %v", tc.poll, err)
			}
			closeOnCleanup(t, s)
			if s.interval != tc.want {
				t.Errorf("poll interval: got %v, want %v", s.interval, tc.want)
			}
		})
	}
}

// Close leaves the caller's *sql.DB open, and the records in it.
func TestCloseLeavesDB(t *testing.T) {
	db, _ := tempDB(t)
	s, err := New(t.Context(), db, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := storekit.Record("alice", 1)
	if err := s.Create(t.Context(), r, session.CreateOptions{}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("db after Close: %v", err)
	}
	again := newTestStore(t, db, Options{})
	if _, err := again.Get(t.Context(), r.Hash); err != nil {
		t.Errorf("Get through a new Store: %v", err)
	}
}

// A database without a file works too; its Stores share a hub through their
// *sql.DB.
func TestInMemory(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+t.Name()+"?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(1) // the database lives while a connection does
	a, b := newTestStore(t, db, Options{}), newTestStore(t, db, Options{})
	if a.hub != b.hub {
		t.Errorf("two Stores of one in-memory *sql.DB: got different hubs, want one")
	}
	r := storekit.Record("alice", 1)
	if err := a.Create(t.Context(), r, session.CreateOptions{}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if _, err := b.Get(t.Context(), r.Hash); err != nil {
		t.Errorf("Get: %v", err)
	}
}

// A record whose stored hash or data is damaged is an error, not a panic
// or a wrong record.
func TestGetCorruptRecord(t *testing.T) {
	db, _ := tempDB(t)
	s := newTestStore(t, db, Options{})
	r := storekit.Record("alice", 1)
	if err := s.Create(t.Context(), r, session.CreateOptions{}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE sessions SET data = x'01ff'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), r.Hash); !errors.Is(err, datacodec.ErrCorrupt) {
		t.Errorf("Get: got error %v, want %v", err, datacodec.ErrCorrupt)
	}
	if _, err := s.List(t.Context(), "alice"); !errors.Is(err, datacodec.ErrCorrupt) {
		t.Errorf("List: got error %v, want %v", err, datacodec.ErrCorrupt)
	}
}

// Processes opening a new file at the same moment all get it: the first
// switches it to WAL, and the others, answered SQLITE_BUSY without the
// busy timeout meanwhile, try again.
func TestOpenNewFileConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			db, err := Open(path)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
}

// SES-15: revocations commit with synchronous FULL, fsynced before they
// return; other writes with NORMAL; and the connection a revocation used
// goes back to the pool with NORMAL.
// TestSES15_RevocationsCommitSynchronousFull: a revocation, of sessions or
// of tokens, is fsynced before it is acknowledged.
func TestSES15_RevocationsCommitSynchronousFull(t *testing.T) {
	db, _ := tempDB(t)
	db.SetMaxOpenConns(1) // one connection: the one every write uses
	s := newTestStore(t, db, Options{})
	var got string
	s.beforeCommit = func(tx *sql.Tx) {
		if err := tx.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&got); err != nil {
			t.Errorf("PRAGMA synchronous: %v", err)
		}
	}
	ctx := t.Context()
	r := storekit.Record("alice", 1)
	const normal, full = "1", "2"
	for _, tc := range []struct {
		op   string
		do   func() error
		want string
	}{
		{"Create", func() error { return s.Create(ctx, r, session.CreateOptions{}) }, normal},
		{"Save", func() error { return s.Save(ctx, r) }, normal},
		{"Delete", func() error { return s.Delete(ctx, r.Hash) }, full},
		{"Create after a revocation", func() error { return s.Create(ctx, storekit.Record("alice", 2), session.CreateOptions{}) }, normal},
		{"RevokeUser", func() error { return s.RevokeUser(ctx, "alice", nil) }, full},
		{"RevokeToken", func() error {
			return s.RevokeToken(ctx, session.Revocation{JTI: "jti-1", Exp: base})
		}, full},
	} {
		got = ""
		if err := tc.do(); err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if got != tc.want {
			t.Errorf("%s: synchronous %s in its transaction, want %s", tc.op, got, tc.want)
		}
	}
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil || got != normal {
		t.Errorf("the pool's connection after the revocations: synchronous %s, %v; want %s", got, err, normal)
	}
}

// A file made before the token denylist (its change log without the
// revocation column) is brought up to date by the first New, and a
// revocation goes through its change log to another process.
func TestNewUpgradesOlderFile(t *testing.T) {
	db, path := tempDB(t)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE session_changes (
		seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, origin INTEGER NOT NULL, hash BLOB, user_id TEXT)`)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second New finds the column there
		newTestStore(t, db, Options{})
	}
	storetest.TokenFeedAcrossNodes(t, newTestStore(t, db, Options{}), otherProcess(t, path, Options{}))
}

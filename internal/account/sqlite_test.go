package account

import (
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/store/sqlite"
)

func TestSQLite(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) opener {
		path := filepath.Join(t.TempDir(), "tether.db")
		return func(now func() time.Time) (store, error) {
			db, err := sqlite.Open(path)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { db.Close() })
			s, err := NewSQLite(t.Context(), db)
			if err != nil {
				return nil, err
			}
			s.now = now
			return s, nil
		}
	})
}

func (s *SQLite) setCreateFirstHook(f func()) { s.testHookCreateFirst = f }
func (s *SQLite) setDeleteHook(f func())      { s.testHookDelete = f }
func (s *SQLite) setSaveKeysHook(f func())    { s.testHookSaveKeys = f }

// noWaitTwin opens another store on s's file whose connection never waits
// for a lock another holds (busy_timeout 0): it fails with SQLITE_BUSY at
// once instead.
func (s *SQLite) noWaitTwin(t *testing.T) (store, error) {
	var path string
	if err := s.db.QueryRowContext(t.Context(), `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(0)&_txlock=immediate"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { db.Close() })
	return NewSQLite(t.Context(), db)
}

// A row the store can't read back (written by hand, or damaged) is an
// error, never a client or token with a zero hash or no scopes. PostgreSQL's
// CHECK and array columns refuse such rows when they are written.
func TestSQLiteDamagedRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tether.db")
	db := sqlitetest.Open(t, path)
	s, err := NewSQLite(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	alice := mustCreate(t, s, &User{Name: "alice"})
	p := mustCreatePAT(t, s, newPATFor(alice, "script"))
	mustCreateClient(t, s, &Client{ID: "short-hash"})
	mustCreateClient(t, s, &Client{ID: "bad-scopes"})
	for _, stmt := range []string{
		`UPDATE clients SET secret_hash = x'00' WHERE id = 'short-hash'`,
		`UPDATE clients SET scopes = 'read write' WHERE id = 'bad-scopes'`,
		`UPDATE pats SET scopes = '{' WHERE id = '` + p.ID + `'`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"short-hash", "bad-scopes"} {
		if c, err := s.Client(ctx, id); err == nil || errors.Is(err, ErrClientNotFound) {
			t.Errorf("Client(%s) = %+v, %v; want an error other than ErrClientNotFound", id, c, err)
		}
	}
	if list, err := s.ClientList(ctx); err == nil {
		t.Errorf("ClientList() = %v, nil; want an error", list)
	}
	if got, err := s.PATByHash(ctx, p.Hash); err == nil || errors.Is(err, ErrPATNotFound) {
		t.Errorf("PATByHash = %+v, %v; want an error other than ErrPATNotFound", got, err)
	}
}

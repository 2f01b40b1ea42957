package account

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"
	"time"

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

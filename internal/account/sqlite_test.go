package account

import (
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

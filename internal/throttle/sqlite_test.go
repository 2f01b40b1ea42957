package throttle

import (
	"path/filepath"
	"testing"

	"github.com/tetherauth/tether/store/sqlite"
)

func TestSQLite(t *testing.T) {
	runThrottleSuite(t, func(t *testing.T) database {
		path := filepath.Join(t.TempDir(), "t.db")
		return database{open: func(cfg Config) (throttler, error) {
			db, err := sqlite.Open(path)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { db.Close() })
			return NewSQLite(t.Context(), db, cfg)
		}}
	})
}

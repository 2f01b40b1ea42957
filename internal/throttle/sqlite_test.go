package throttle

import (
	"path/filepath"
	"testing"

	"github.com/tetherauth/tether/store/sqlite"
)

func TestSQLite(t *testing.T) {
	runThrottleSuite(t, func(t *testing.T) database {
		path := filepath.Join(t.TempDir(), "t.db")
		open := func(cfg Config) (*SQLite, func(), error) {
			db, err := sqlite.Open(path)
			if err != nil {
				return nil, nil, err
			}
			t.Cleanup(func() { db.Close() })
			th, err := NewSQLite(t.Context(), db, cfg)
			return th, func() { db.Close() }, err
		}
		return database{
			open: func(cfg Config) (throttler, func(), error) { return open(cfg) },
			breakWrites: func(t *testing.T) {
				th, _, err := open(Config{})
				if err == nil {
					_, err = th.db.ExecContext(t.Context(), `
						CREATE TRIGGER broken_insert BEFORE INSERT ON login_failures
						WHEN NEW.key = '`+brokenKey+`' AND NEW.count > 0
						BEGIN SELECT RAISE(ABORT, 'broken'); END;
						CREATE TRIGGER broken_update BEFORE UPDATE ON login_failures
						WHEN NEW.key = '`+brokenKey+`' AND NEW.count > 0
						BEGIN SELECT RAISE(ABORT, 'broken'); END;`)
				}
				if err != nil {
					t.Fatalf("break writes: %v", err)
				}
			},
		}
	})
}

package throttle

import (
	"context"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
)

func TestPostgres(t *testing.T) {
	runThrottleSuite(t, func(t *testing.T) database {
		newPool := pgtest.Schema(t)
		open := func(cfg Config) (*Postgres, func(), error) {
			pool, err := newPool()
			if err != nil {
				return nil, nil, err
			}
			th, err := NewPostgres(t.Context(), pool, cfg)
			return th, pool.Close, err
		}
		return database{
			open: func(cfg Config) (throttler, func(), error) { return open(cfg) },
			breakWrites: func(t *testing.T) {
				th, _, err := open(Config{})
				if err == nil {
					_, err = th.pool.Exec(t.Context(), `
						CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql
						AS $$ BEGIN RAISE EXCEPTION 'broken'; END $$;
						CREATE TRIGGER broken BEFORE INSERT OR UPDATE ON login_failures FOR EACH ROW
						WHEN (NEW.key = '`+brokenKey+`' AND NEW.count > 0) EXECUTE FUNCTION broken();`)
				}
				if err != nil {
					t.Fatalf("break writes: %v", err)
				}
			},
			blockReads: func(t *testing.T) {
				pool, err := newPool()
				if err != nil {
					t.Fatal(err)
				}
				tx, err := pool.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tx.Rollback(context.Background()) })
				if _, err := tx.Exec(t.Context(), `LOCK TABLE login_failures IN ACCESS EXCLUSIVE MODE`); err != nil {
					t.Fatalf("block reads: %v", err)
				}
			},
		}
	})
}

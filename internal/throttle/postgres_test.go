package throttle

import (
	"testing"

	"github.com/tetherauth/tether/store/postgres/pgtest"
)

func TestPostgres(t *testing.T) {
	runThrottleSuite(t, func(t *testing.T) database {
		newPool := pgtest.Schema(t)
		return database{open: func(cfg Config) (throttler, error) {
			pool, err := newPool()
			if err != nil {
				return nil, err
			}
			return NewPostgres(t.Context(), pool, cfg)
		}}
	})
}

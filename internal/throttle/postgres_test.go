package throttle

import (
	"testing"

	"github.com/tetherauth/tether/internal/testkit"
)

func TestPostgres(t *testing.T) {
	runThrottleSuite(t, func(t *testing.T) opener {
		newPool := testkit.PostgresSchema(t)
		return func(cfg Config) (throttler, error) {
			pool, err := newPool()
			if err != nil {
				return nil, err
			}
			return NewPostgres(t.Context(), pool, cfg)
		}
	})
}

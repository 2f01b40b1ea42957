package memory_test

import (
	"testing"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
	"github.com/tetherauth/tether/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (session.Store, func() error) {
		s := memory.New()
		return s, s.Close
	})
}

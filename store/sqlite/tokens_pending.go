package sqlite

import (
	"context"
	"errors"
	"time"

	"github.com/tetherauth/tether/session"
)

// Placeholders until the token denylist is built here (issue 11).

func (s *Store) RevokeToken(context.Context, session.Revocation) error { return errors.ErrUnsupported }

func (s *Store) TokenRevoked(context.Context, string) (bool, error) {
	return false, errors.ErrUnsupported
}

func (s *Store) Revocations(context.Context, time.Time) ([]session.Revocation, error) {
	return nil, errors.ErrUnsupported
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/denylist"
)

// revokeTokenSQL puts an entry on the denylist, merged with the one of the
// same jti or subject (denylist.Merge), and notifies, committing with
// synchronous_commit on as every revocation does (SES-15).
const revokeTokenSQL = `WITH put AS (
		INSERT INTO token_denylist AS d (jti, subject, gen, exp) VALUES ($1, $2, $3, $4)
		ON CONFLICT (jti, subject) DO UPDATE
		SET gen = GREATEST(d.gen, excluded.gen), exp = GREATEST(d.exp, excluded.exp)
	)
	SELECT pg_notify($5, $6), ` + durableCommit

// RevokeToken puts r on the token denylist, in one statement that commits
// durably and notifies the schema's channel, like RevokeUser.
func (s *Store) RevokeToken(ctx context.Context, r session.Revocation) error {
	const op = "revoke token"
	if err := denylist.Check(r); err != nil {
		return fmt.Errorf("postgres store: %s: %w", op, err)
	}
	ev := session.Event{Kind: session.TokenRevoked, Revocation: r}
	if _, err := s.invalidate(ctx, ev, revokeTokenSQL, r.JTI, r.Subject, int64(r.Gen), r.Exp); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// TokenRevoked reports whether jti is on the denylist.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	const op = "read token denylist"
	if s.watches.Closed() {
		return false, closedError(op)
	}
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM token_denylist WHERE jti = $1 AND subject = '')`, jti).Scan(&revoked)
	if err != nil {
		return false, s.fail(op, err)
	}
	return revoked, nil
}

// Revocations returns the denylist's entries whose Exp is after now.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]session.Revocation, error) {
	const op = "read token denylist"
	if s.watches.Closed() {
		return nil, closedError(op)
	}
	rows, _ := s.pool.Query(ctx, `SELECT jti, subject, gen, exp FROM token_denylist WHERE exp > $1`, now) // CollectRows returns the error
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (session.Revocation, error) {
		var (
			r   session.Revocation
			gen int64
		)
		err := row.Scan(&r.JTI, &r.Subject, &gen, &r.Exp)
		r.Gen, r.Exp = uint64(gen), r.Exp.UTC()
		return r, err
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return list, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/denylist"
)

// revokeTokenSQL puts an entry on the denylist, merged with the one of the
// same jti or subject (denylist.Merge).
const revokeTokenSQL = `INSERT INTO token_denylist (jti, subject, gen, exp) VALUES (?, ?, ?, ?)
	ON CONFLICT (jti, subject) DO UPDATE SET gen = MAX(gen, excluded.gen), exp = MAX(exp, excluded.exp)`

// RevokeToken puts r on the token denylist. Like RevokeUser, it commits
// with synchronous FULL (SES-15), logs the entry in the change log for
// other processes, and hands it to this process's watchers before it
// returns.
func (s *Store) RevokeToken(ctx context.Context, r session.Revocation) error {
	const op = "revoke token"
	if err := denylist.Check(r); err != nil {
		return fmt.Errorf("sqlite store: %s: %w", op, err)
	}
	err := s.write(ctx, durable, func(tx *sql.Tx) ([]session.Event, error) {
		_, err := tx.ExecContext(ctx, revokeTokenSQL, r.JTI, r.Subject, int64(r.Gen), r.Exp.UnixMicro())
		if err != nil {
			return nil, err
		}
		return s.logged(ctx, tx, session.Event{Kind: session.TokenRevoked, Revocation: r})
	})
	if err != nil {
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
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM token_denylist WHERE jti = ? AND subject = '')`, jti).Scan(&revoked)
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
	rows, err := s.db.QueryContext(ctx, `SELECT jti, subject, gen, exp FROM token_denylist WHERE exp > ?`, now.UnixMicro())
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []session.Revocation
	for rows.Next() {
		var (
			r        session.Revocation
			gen, exp int64
		)
		if err := rows.Scan(&r.JTI, &r.Subject, &gen, &exp); err != nil {
			return nil, s.fail(op, err)
		}
		r.Gen, r.Exp = uint64(gen), fromMicros(exp)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
)

// recordColumns are the columns scanRecord reads, in its order.
const recordColumns = `s.hash, s.id, s.user_id, s.gen, s.version, s.created, s.last_seen,
	s.idle_deadline, s.abs_deadline, s.user_agent, s.ip, s.data`

// The statements. Those that invalidate take the channel and the feed
// message as their last two arguments, and notify in the statement itself:
// in its transaction, and only if it changed something it must tell.
const (
	// getSQL finds a record only if its user's generation hasn't moved past
	// it (a user without a generation row is at 0).
	getSQL = `SELECT ` + recordColumns + `
	FROM sessions s LEFT JOIN session_generations g ON g.user_id = s.user_id
	WHERE s.hash = $1 AND s.gen >= COALESCE(g.gen, 0)`

	// listSQL orders by the index on (user_id, created, hash).
	listSQL = `SELECT ` + recordColumns + `
	FROM sessions s
	WHERE s.user_id = $1 AND s.gen >= COALESCE((SELECT gen FROM session_generations WHERE user_id = $1), 0)
	ORDER BY s.created, s.hash`

	// genSQL is the current generation of user $1.
	genSQL = `SELECT COALESCE((SELECT gen FROM session_generations WHERE user_id = $1), 0)`

	// updateSQL replaces a live record whose version is still $12, and
	// returns one row if it did.
	updateSQL = `WITH saved AS (
		UPDATE sessions s SET id = $2, user_id = $3, version = s.version + 1,
			created = $4, last_seen = $5, idle_deadline = $6, abs_deadline = $7, expiry = $8,
			user_agent = $9, ip = $10, data = $11
		WHERE s.hash = $1 AND s.version = $12
			AND s.gen >= COALESCE((SELECT g.gen FROM session_generations g WHERE g.user_id = s.user_id), 0)
		RETURNING 1
	)
	SELECT pg_notify($13, $14) FROM saved`

	// durableCommit, in a revocation's statement, makes its transaction
	// commit with synchronous_commit on whatever the server's, database's
	// or role's default (SES-15): the revocation is acknowledged only once
	// its WAL is flushed to disk (and to the synchronous standbys, if
	// synchronous_standby_names names any), so that a crash of the
	// database's host can't undo it. It is local to the transaction (the
	// statement's own): other writes keep the configured setting.
	durableCommit = `set_config('synchronous_commit', 'on', true)`

	// deleteSQL notifies whether there was a record or not, as the
	// watchers of this process are told.
	deleteSQL = `WITH gone AS (DELETE FROM sessions WHERE hash = $1)
	SELECT pg_notify($2, $3), ` + durableCommit

	// revokeSQL bumps the generation of user $1, moves the record under $2
	// (NULL: none) to it if that is a live record of the user's, and
	// deletes the user's other records, dead from now on: per-user work
	// stays bounded by the user's live records (SES-13).
	//
	// The bump locks the user's generation row, as Create does first
	// (lockGenSQL), and acts on its latest version, waiting for a Create
	// that holds it. But under READ COMMITTED the statement's snapshot was
	// taken before that wait, so a record such a Create committed meanwhile
	// is not among those deleted, and survives the statement. It is dead
	// all the same: that Create held the lock before this bump, so its
	// record carries an older generation, which every read, Save and
	// eviction refuses. It goes at the user's next RevokeUser, or when it
	// expires (DeleteExpired). A Create that takes the lock after the bump
	// finds the new generation and refuses (session.ErrRevoked).
	revokeSQL = `WITH bumped AS (
		INSERT INTO session_generations AS g (user_id, gen) VALUES ($1, 1)
		ON CONFLICT (user_id) DO UPDATE SET gen = g.gen + 1
		RETURNING gen
	), kept AS (
		UPDATE sessions s SET gen = b.gen FROM bumped b
		WHERE s.hash = $2 AND s.user_id = $1 AND s.gen >= b.gen - 1
		RETURNING s.hash
	), gone AS (
		DELETE FROM sessions s USING bumped b
		WHERE s.user_id = $1 AND s.gen < b.gen AND s.hash NOT IN (SELECT hash FROM kept)
	)
	SELECT pg_notify($3, $4), ` + durableCommit
)

// Get returns the live record stored under h, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	const op = "get session"
	if s.watches.Closed() {
		return nil, closedError(op)
	}
	r, err := scanRecord(s.pool.QueryRow(ctx, getSQL, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres store: %s: %w", op, session.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	return r, nil
}

// List returns the live records of userID, oldest first.
func (s *Store) List(ctx context.Context, userID string) ([]*session.Record, error) {
	const op = "list sessions"
	if s.watches.Closed() {
		return nil, closedError(op)
	}
	rows, _ := s.pool.Query(ctx, listSQL, userID) // CollectRows returns the error
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*session.Record, error) {
		return scanRecord(row)
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	if records == nil {
		records = []*session.Record{}
	}
	return records, nil
}

// scanRecord reads the recordColumns of one row.
func scanRecord(row pgx.Row) (*session.Record, error) {
	var (
		r                     session.Record
		hash, userAgent, data []byte
		gen, version          int64
	)
	err := row.Scan(&hash, &r.ID, &r.UserID, &gen, &version, &r.Created, &r.LastSeen,
		&r.IdleDeadline, &r.AbsDeadline, &userAgent, &r.IP, &data)
	if err != nil {
		return nil, err
	}
	if r.Hash, err = datacodec.DecodeHash(hash); err != nil {
		return nil, err
	}
	if r.Data, err = datacodec.Decode(data); err != nil {
		return nil, err
	}
	r.Gen, r.Version = uint64(gen), uint64(version)
	r.UserAgent = string(userAgent)
	r.Created, r.LastSeen = r.Created.UTC(), r.LastSeen.UTC()
	r.IdleDeadline, r.AbsDeadline = r.IdleDeadline.UTC(), r.AbsDeadline.UTC()
	return &r, nil
}

// Generation returns the current generation of userID: 0 for a user never
// revoked.
func (s *Store) Generation(ctx context.Context, userID string) (uint64, error) {
	const op = "read generation"
	if s.watches.Closed() {
		return 0, closedError(op)
	}
	var gen int64
	if err := s.pool.QueryRow(ctx, genSQL, userID).Scan(&gen); err != nil {
		return 0, s.fail(op, err)
	}
	return uint64(gen), nil
}

// recordArgs are the arguments $1 to $11 of createSQL and updateSQL: r's
// columns but its generation and version. PostgreSQL keeps times to the
// microsecond.
func recordArgs(r *session.Record) []any {
	return []any{r.Hash[:], r.ID, r.UserID, r.Created, r.LastSeen, r.IdleDeadline, r.AbsDeadline,
		r.Expiry(), []byte(r.UserAgent), r.IP, datacodec.Encode(r.Data)}
}

// Save replaces the live record under r.Hash if its version still
// matches; see session.Store.
func (s *Store) Save(ctx context.Context, r *session.Record) error {
	ev := session.Event{Kind: session.Changed, Hash: r.Hash}
	tag, err := s.invalidate(ctx, ev, updateSQL, append(recordArgs(r), int64(r.Version))...)
	if isUniqueViolation(err) {
		err = fmt.Errorf("%w: %w", session.ErrConflict, err) // the public id is another record's
	} else if err == nil && tag.RowsAffected() == 0 {
		err = s.whyNotSaved(ctx, r.Hash)
	}
	if err != nil {
		return s.fail("save session", err)
	}
	r.Version++
	return nil
}

// whyNotSaved tells why an update of the record under h matched no row:
// ErrConflict if the record is live (another version), else ErrNotFound
// (none, or revoked by generation). It answers as of a moment after the
// update, which is as good an answer to the caller.
func (s *Store) whyNotSaved(ctx context.Context, h session.Hash) error {
	var live bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (`+getSQL+`)`, h[:]).Scan(&live); err != nil {
		return err
	}
	if live {
		return session.ErrConflict
	}
	return session.ErrNotFound
}

// isUniqueViolation reports whether err is PostgreSQL's refusal to break a
// unique constraint.
func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// Delete removes the record under h, if any.
func (s *Store) Delete(ctx context.Context, h session.Hash) error {
	if _, err := s.invalidate(ctx, session.Event{Kind: session.Changed, Hash: h}, deleteSQL, h[:]); err != nil {
		return s.fail("delete session", err)
	}
	return nil
}

// RevokeUser bumps userID's generation, moving the record under keep, if it
// is a live one of userID's, to the new generation, and deletes the others
// (see revokeSQL for the records a concurrent Create commits meanwhile).
func (s *Store) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	var kept []byte // NULL: none
	if keep != nil {
		kept = keep[:]
	}
	ev := session.Event{Kind: session.UserRevoked, UserID: userID}
	if _, err := s.invalidate(ctx, ev, revokeSQL, userID, kept); err != nil {
		return s.fail("revoke user's sessions", err)
	}
	return nil
}

// invalidate runs sql, a statement that notifies the channel of ev, with
// args, the channel and ev's feed message. It hands ev to the watchers of
// this process before it returns, even if the statement failed: it may
// have committed all the same.
func (s *Store) invalidate(ctx context.Context, ev session.Event, sql string, args ...any) (pgconn.CommandTag, error) {
	if s.watches.Closed() {
		return pgconn.CommandTag{}, session.ErrClosed
	}
	defer s.hub.Publish(ev)
	return s.pool.Exec(ctx, sql, append(args, s.channel, message(s.hub.origin, ev))...)
}

// DeleteExpired removes the records whose Expiry is at or before now and
// returns how many it removed, and the token denylist's entries whose Exp
// is at or before now (not counted). It is the optional capability the
// Manager calls from Run.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	const op = "delete expired sessions"
	if s.watches.Closed() {
		return 0, closedError(op)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expiry <= $1`, now)
	if err == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM token_denylist WHERE exp <= $1`, now)
	}
	if err != nil {
		return 0, s.fail(op, err)
	}
	return int(tag.RowsAffected()), nil
}

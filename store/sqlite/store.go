package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// recordColumns are the columns scanRecord reads, in its order.
const recordColumns = `s.hash, s.id, s.user_id, s.gen, s.version, s.created, s.last_seen,
	s.idle_deadline, s.abs_deadline, s.user_agent, s.ip, s.data`

const (
	// getSQL finds a record only if its user's generation hasn't moved past
	// it (a user without a generation row is at 0).
	getSQL = `SELECT ` + recordColumns + `
	FROM sessions s LEFT JOIN session_generations g ON g.user_id = s.user_id
	WHERE s.hash = ? AND s.gen >= IFNULL(g.gen, 0)`

	// listSQL orders by the index on (user_id, created), which ends with
	// the primary key: ties are broken by hash.
	listSQL = `SELECT ` + recordColumns + `
	FROM sessions s
	WHERE s.user_id = ?1 AND s.gen >= IFNULL((SELECT gen FROM session_generations WHERE user_id = ?1), 0)
	ORDER BY s.created, s.hash`

	// insertSQL stamps the user's current generation and returns it, or
	// returns no row if the hash or the public id is taken.
	insertSQL = `INSERT INTO sessions (hash, id, user_id, gen, version, created, last_seen,
		idle_deadline, abs_deadline, expiry, user_agent, ip, data)
	VALUES (?1, ?2, ?3, IFNULL((SELECT gen FROM session_generations WHERE user_id = ?3), 0), 1,
		?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
	ON CONFLICT DO NOTHING
	RETURNING gen`

	// updateSQL replaces a live record whose version is still ?12.
	updateSQL = `UPDATE sessions SET id = ?2, user_id = ?3, version = version + 1,
		created = ?4, last_seen = ?5, idle_deadline = ?6, abs_deadline = ?7, expiry = ?8,
		user_agent = ?9, ip = ?10, data = ?11
	WHERE hash = ?1 AND version = ?12
		AND gen >= IFNULL((SELECT g.gen FROM session_generations g WHERE g.user_id = sessions.user_id), 0)`

	logChangeSQL = `INSERT INTO session_changes (at, origin, hash, user_id) VALUES (?, ?, ?, ?)`
)

// Get returns the live record stored under h, or session.ErrNotFound.
func (s *Store) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	const op = "get session"
	if s.watches.Closed() {
		return nil, closedError(op)
	}
	r, err := scanRecord(s.get.QueryRowContext(ctx, h[:]).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite store: %s: %w", op, session.ErrNotFound)
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
	rows, err := s.list.QueryContext(ctx, userID)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	records := []*session.Record{}
	for rows.Next() {
		r, err := scanRecord(rows.Scan)
		if err != nil {
			return nil, s.fail(op, err)
		}
		records = append(records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return records, nil
}

// scanRecord reads the recordColumns of one row.
func scanRecord(scan func(dest ...any) error) (*session.Record, error) {
	var (
		r                                          session.Record
		hash, data                                 []byte
		gen, version, created, lastSeen, idle, abs int64
	)
	err := scan(&hash, &r.ID, &r.UserID, &gen, &version, &created, &lastSeen, &idle, &abs, &r.UserAgent, &r.IP, &data)
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
	r.Created, r.LastSeen = fromMicros(created), fromMicros(lastSeen)
	r.IdleDeadline, r.AbsDeadline = fromMicros(idle), fromMicros(abs)
	return &r, nil
}

// fromMicros is the time, in UTC, of a stored Unix microsecond count.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// Save creates r (r.Version == 0) or replaces it if its version still
// matches; see session.Store.
func (s *Store) Save(ctx context.Context, r *session.Record) error {
	args := []any{r.Hash[:], r.ID, r.UserID, r.Created.UnixMicro(), r.LastSeen.UnixMicro(),
		r.IdleDeadline.UnixMicro(), r.AbsDeadline.UnixMicro(), r.Expiry().UnixMicro(),
		r.UserAgent, r.IP, datacodec.Encode(r.Data)}
	if r.Version == 0 {
		return s.create(ctx, r, args)
	}
	return s.replace(ctx, r, args)
}

func (s *Store) create(ctx context.Context, r *session.Record, args []any) error {
	var gen int64
	err := s.write(ctx, func(tx *sql.Tx) ([]session.Event, error) {
		err := tx.StmtContext(ctx, s.insert).QueryRowContext(ctx, args...).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, session.ErrConflict
		}
		return nil, err
	})
	if err != nil {
		return s.fail("create session", err)
	}
	r.Gen, r.Version = uint64(gen), 1
	return nil
}

func (s *Store) replace(ctx context.Context, r *session.Record, args []any) error {
	h := r.Hash
	err := s.write(ctx, func(tx *sql.Tx) ([]session.Event, error) {
		res, err := tx.StmtContext(ctx, s.update).ExecContext(ctx, append(args, int64(r.Version))...)
		if isConstraint(err) {
			return nil, fmt.Errorf("%w: %w", session.ErrConflict, err) // the public id is another record's
		}
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, s.whyNotSaved(ctx, tx, h)
		}
		return s.logged(ctx, tx, session.Event{Kind: session.Changed, Hash: h})
	})
	if err != nil {
		return s.fail("save session", err)
	}
	r.Version++
	return nil
}

// whyNotSaved tells why an update of the record under h matched no row:
// ErrConflict if the record exists (another version, or revoked by
// generation), else ErrNotFound.
func (s *Store) whyNotSaved(ctx context.Context, tx *sql.Tx, h session.Hash) error {
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE hash = ?)`, h[:]).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return session.ErrConflict
	}
	return session.ErrNotFound
}

// isConstraint reports whether err is SQLite's refusal to break a
// constraint.
func isConstraint(err error) bool { return hasCode(err, sqlite3.SQLITE_CONSTRAINT) }

func isBusy(err error) bool { return hasCode(err, sqlite3.SQLITE_BUSY) }

// hasCode reports whether err is an SQLite error of the primary result code
// code (extended codes included).
func hasCode(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == code
}

// Delete removes the record under h, if any.
func (s *Store) Delete(ctx context.Context, h session.Hash) error {
	err := s.write(ctx, func(tx *sql.Tx) ([]session.Event, error) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, h[:]); err != nil {
			return nil, err
		}
		return s.logged(ctx, tx, session.Event{Kind: session.Changed, Hash: h})
	})
	if err != nil {
		return s.fail("delete session", err)
	}
	return nil
}

// RevokeUser bumps userID's generation, moving the record under keep, if it
// is a live one of userID's, to the new generation.
func (s *Store) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	err := s.write(ctx, func(tx *sql.Tx) ([]session.Event, error) {
		var gen int64
		err := tx.QueryRowContext(ctx, `INSERT INTO session_generations (user_id, gen) VALUES (?, 1)
			ON CONFLICT (user_id) DO UPDATE SET gen = gen + 1 RETURNING gen`, userID).Scan(&gen)
		if err != nil {
			return nil, err
		}
		if keep != nil {
			_, err := tx.ExecContext(ctx, `UPDATE sessions SET gen = ?1
				WHERE hash = ?2 AND user_id = ?3 AND gen >= ?1 - 1`, gen, keep[:], userID)
			if err != nil {
				return nil, err
			}
		}
		return s.logged(ctx, tx, session.Event{Kind: session.UserRevoked, UserID: userID})
	})
	if err != nil {
		return s.fail("revoke user's sessions", err)
	}
	return nil
}

// DeleteExpired removes the records whose Expiry is at or before now and
// returns how many it removed. It also prunes the change log of entries
// older than a minute by Options.Now. It is the optional capability the
// Manager calls from Run.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) ([]session.Event, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expiry <= ?`, now.UnixMicro())
		if err != nil {
			return nil, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return nil, err
		}
		cutoff := s.now().Add(-changeRetention).UnixMicro()
		_, err = tx.ExecContext(ctx, `DELETE FROM session_changes WHERE at < ?`, cutoff)
		return nil, err
	})
	if err != nil {
		return 0, s.fail("delete expired sessions", err)
	}
	return int(n), nil
}

// logged appends ev to the change log in tx and returns it, for write to
// publish once tx is committed.
func (s *Store) logged(ctx context.Context, tx *sql.Tx, ev session.Event) ([]session.Event, error) {
	var hash, user any // NULL unless set
	if ev.Kind == session.Changed {
		hash = ev.Hash[:]
	} else {
		user = ev.UserID
	}
	_, err := tx.StmtContext(ctx, s.logChange).ExecContext(ctx, s.now().UnixMicro(), s.hub.origin, hash, user)
	if err != nil {
		return nil, err
	}
	return []session.Event{ev}, nil
}

// write runs fn in a transaction, one write of this process to the file at
// a time, and once it is committed hands the events fn returned to every
// watcher of the file in this process before returning.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) ([]session.Event, error)) error {
	if s.watches.Closed() {
		return session.ErrClosed
	}
	if err := s.hub.lock(ctx); err != nil {
		return err
	}
	evs, err := s.inTx(ctx, fn)
	s.hub.unlock()
	if err != nil {
		return err
	}
	s.hub.Publish(evs...)
	return nil
}

func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) ([]session.Event, error)) ([]session.Event, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	evs, err := fn(tx)
	if err != nil {
		return nil, errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return evs, nil
}

// ignoreDone drops the error Rollback returns when the transaction already
// ended (as it does when its context was cancelled).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

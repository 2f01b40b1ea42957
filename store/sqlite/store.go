package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
	"github.com/tetherauth/tether/store/internal/denylist"
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

	// genSQL is the current generation of user ?1.
	genSQL = `SELECT IFNULL((SELECT gen FROM session_generations WHERE user_id = ?1), 0)`

	// insertSQL adds a record at generation ?12, or returns no row if the
	// hash or the public id is taken.
	insertSQL = `INSERT INTO sessions (hash, id, user_id, gen, version, created, last_seen,
		idle_deadline, abs_deadline, expiry, user_agent, ip, data)
	VALUES (?1, ?2, ?3, ?12, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
	ON CONFLICT DO NOTHING
	RETURNING 1`

	// evictSQL lists the records of user ?1 at generation ?2, but the new
	// one ?4, past the ?3 that expire last: those a create must delete to
	// stay under the cap.
	evictSQL = `SELECT hash FROM sessions WHERE user_id = ?1 AND gen >= ?2 AND hash != ?4
	ORDER BY expiry DESC, hash LIMIT -1 OFFSET ?3`

	// updateSQL replaces a live record whose version is still ?12.
	updateSQL = `UPDATE sessions SET id = ?2, user_id = ?3, version = version + 1,
		created = ?4, last_seen = ?5, idle_deadline = ?6, abs_deadline = ?7, expiry = ?8,
		user_agent = ?9, ip = ?10, data = ?11
	WHERE hash = ?1 AND version = ?12
		AND gen >= IFNULL((SELECT g.gen FROM session_generations g WHERE g.user_id = sessions.user_id), 0)`

	logChangeSQL = `INSERT INTO session_changes (at, origin, hash, user_id, revocation) VALUES (?, ?, ?, ?, ?)`
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

// Generation returns the current generation of userID.
func (s *Store) Generation(ctx context.Context, userID string) (uint64, error) {
	const op = "read generation"
	if s.watches.Closed() {
		return 0, closedError(op)
	}
	var gen int64
	if err := s.db.QueryRowContext(ctx, genSQL, userID).Scan(&gen); err != nil {
		return 0, s.fail(op, err)
	}
	return uint64(gen), nil
}

// Create adds r in one transaction, if its user's generation is still
// r.Gen, replacing opts.Replace and keeping the user under opts.MaxPerUser;
// see session.Store.
func (s *Store) Create(ctx context.Context, r *session.Record, opts session.CreateOptions) error {
	err := s.write(ctx, normal, func(tx *sql.Tx) ([]session.Event, error) {
		var current int64
		if err := tx.QueryRowContext(ctx, genSQL, r.UserID).Scan(&current); err != nil {
			return nil, err
		}
		var gone []session.Hash
		if opts.Replace != nil {
			gen, err := s.liveGen(ctx, tx, *opts.Replace, r.UserID, current)
			if err != nil {
				return nil, err
			}
			r.Gen = gen
		} else if r.Gen != uint64(current) {
			return nil, session.ErrRevoked
		}
		// The insert first: a create can't reuse the hash or id of what it
		// deletes.
		args := []any{r.Hash[:], r.ID, r.UserID, r.Created.UnixMicro(), r.LastSeen.UnixMicro(),
			r.IdleDeadline.UnixMicro(), r.AbsDeadline.UnixMicro(), r.Expiry().UnixMicro(),
			r.UserAgent, r.IP, datacodec.Encode(r.Data), int64(r.Gen)}
		var one int
		err := tx.StmtContext(ctx, s.insert).QueryRowContext(ctx, args...).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, session.ErrConflict
		}
		if err != nil {
			return nil, err
		}
		if opts.Replace != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, opts.Replace[:]); err != nil {
				return nil, err
			}
			gone = append(gone, *opts.Replace)
		}
		if opts.MaxPerUser > 0 {
			evicted, err := s.evict(ctx, tx, r, current, opts.MaxPerUser-1)
			if err != nil {
				return nil, err
			}
			gone = append(gone, evicted...)
		}
		var evs []session.Event
		for _, h := range gone {
			ev, err := s.logged(ctx, tx, session.Event{Kind: session.Changed, Hash: h})
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev...)
		}
		return evs, nil
	})
	if err != nil {
		return s.fail("create session", err)
	}
	r.Version = 1
	return nil
}

// liveGen returns the generation of the record under h if it is a live
// record of userID (whose generation is current), else ErrNotFound.
func (s *Store) liveGen(ctx context.Context, tx *sql.Tx, h session.Hash, userID string, current int64) (uint64, error) {
	var gen int64
	err := tx.QueryRowContext(ctx, `SELECT gen FROM sessions WHERE hash = ? AND user_id = ? AND gen >= ?`,
		h[:], userID, current).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("replaced record: %w", session.ErrNotFound)
	}
	return uint64(gen), err
}

// evict deletes the records of r's user at generation gen, but r, past
// the keep that expire last, and returns their hashes.
func (s *Store) evict(ctx context.Context, tx *sql.Tx, r *session.Record, gen int64, keep int) ([]session.Hash, error) {
	rows, err := tx.QueryContext(ctx, evictSQL, r.UserID, gen, keep, r.Hash[:])
	if err != nil {
		return nil, err
	}
	var gone []session.Hash
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return nil, err
		}
		h, err := datacodec.DecodeHash(raw)
		if err != nil {
			rows.Close()
			return nil, err
		}
		gone = append(gone, h)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	for _, h := range gone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, h[:]); err != nil {
			return nil, err
		}
	}
	return gone, nil
}

// Save replaces the record under r.Hash if its version still matches;
// see session.Store.
func (s *Store) Save(ctx context.Context, r *session.Record) error {
	h := r.Hash
	args := []any{r.Hash[:], r.ID, r.UserID, r.Created.UnixMicro(), r.LastSeen.UnixMicro(),
		r.IdleDeadline.UnixMicro(), r.AbsDeadline.UnixMicro(), r.Expiry().UnixMicro(),
		r.UserAgent, r.IP, datacodec.Encode(r.Data), int64(r.Version)}
	err := s.write(ctx, normal, func(tx *sql.Tx) ([]session.Event, error) {
		res, err := tx.StmtContext(ctx, s.update).ExecContext(ctx, args...)
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
// ErrConflict if the record is live (another version), else ErrNotFound.
func (s *Store) whyNotSaved(ctx context.Context, tx *sql.Tx, h session.Hash) error {
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (`+getSQL+`)`, h[:]).Scan(&exists); err != nil {
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

// Delete removes the record under h, if any. Like RevokeUser, it commits
// with synchronous FULL: it returns once the WAL is fsynced, so a power
// cut can't undo it (SES-15), nor anything committed to the file before
// it (a password change the revocation follows, say). Other writes commit
// with NORMAL: a session created or touched in the last moments before a
// power cut may be lost, which only means signing in again.
func (s *Store) Delete(ctx context.Context, h session.Hash) error {
	err := s.write(ctx, durable, func(tx *sql.Tx) ([]session.Event, error) {
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
// is a live one of userID's, to the new generation, and deletes the others.
func (s *Store) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	err := s.write(ctx, durable, func(tx *sql.Tx) ([]session.Event, error) {
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
		// The revoked records are dead by generation; deleting them keeps
		// every per-user query bounded by the user's live sessions (SES-13).
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND gen < ?`, userID, gen); err != nil {
			return nil, err
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
// older than a minute by Options.Now, and the token denylist of entries
// whose Exp is at or before now (not counted). It is the optional capability the
// Manager calls from Run.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, normal, func(tx *sql.Tx) ([]session.Event, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expiry <= ?`, now.UnixMicro())
		if err != nil {
			return nil, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM token_denylist WHERE exp <= ?`, now.UnixMicro()); err != nil {
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
	var hash, user, revocation any // NULL unless set
	switch ev.Kind {
	case session.Changed:
		hash = ev.Hash[:]
	case session.TokenRevoked:
		revocation = denylist.Encode(ev.Revocation)
	default:
		user = ev.UserID
	}
	_, err := tx.StmtContext(ctx, s.logChange).ExecContext(ctx, s.now().UnixMicro(), s.hub.origin, hash, user, revocation)
	if err != nil {
		return nil, err
	}
	return []session.Event{ev}, nil
}

// Commit modes of write: a revocation is fsynced before it is
// acknowledged, other writes are not (see durableConn).
const (
	normal  = false
	durable = true
)

// write runs fn in a transaction, one write of this process to the file at
// a time, and once it is committed hands the events fn returned to every
// watcher of the file in this process before returning. A durable write
// commits with synchronous FULL.
func (s *Store) write(ctx context.Context, sync bool, fn func(tx *sql.Tx) ([]session.Event, error)) error {
	if s.watches.Closed() {
		return session.ErrClosed
	}
	if err := s.hub.lock(ctx); err != nil {
		return err
	}
	evs, err := s.inTx(ctx, sync, fn)
	s.hub.unlock()
	if err != nil {
		return err
	}
	s.hub.Publish(evs...)
	return nil
}

func (s *Store) inTx(ctx context.Context, sync bool, fn func(tx *sql.Tx) ([]session.Event, error)) ([]session.Event, error) {
	var db interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	} = s.db
	if sync {
		conn, err := s.durableConn(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.release()
		db = conn
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	evs, err := fn(tx)
	if err == nil && s.beforeCommit != nil {
		s.beforeCommit(tx)
	}
	if err != nil {
		return nil, errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return evs, nil
}

// durableConn takes a connection out of the pool with synchronous FULL:
// in WAL mode, a transaction it commits is fsynced (the WAL, and so
// everything committed before it in the file) before the commit returns,
// and survives a power cut (SES-15). With NORMAL, the pool's setting, a
// commit survives a crash of the process but not of the host: the WAL is
// fsynced only at checkpoints. Release puts NORMAL back.
func (s *Store) durableConn(ctx context.Context) (syncConn, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return syncConn{}, err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return syncConn{}, errors.Join(err, conn.Close())
	}
	return syncConn{conn}, nil
}

// syncConn is a connection of durableConn's.
type syncConn struct{ *sql.Conn }

// release puts synchronous NORMAL back and returns the connection to the
// pool; a connection that can't be put back is closed instead (FULL would
// only make its writes slower).
func (c syncConn) release() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		c.Raw(func(any) error { return driver.ErrBadConn })
	}
	c.Close()
}

// ignoreDone drops the error Rollback returns when the transaction already
// ended (as it does when its context was cancelled).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

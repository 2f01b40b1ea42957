package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
)

// The statements of Create, in the order it sends them, in one transaction
// at READ COMMITTED. The first locks the user's generation row, which
// RevokeUser's bump locks too: the creates and revocations of one user
// happen one at a time, on every node. And since READ COMMITTED takes a
// snapshot per statement, every statement after the lock sees whatever the
// creates and revocations before it committed: none of them counts the
// user's records, or reads the generation, as of a moment before it held
// the lock.
const (
	// lockGenSQL returns the generation of user $1 and locks its row until
	// the transaction ends, adding the row (at 0) for a user never revoked.
	// When it has to wait for a RevokeUser that holds the row, it returns
	// the generation that RevokeUser committed: ON CONFLICT DO UPDATE acts
	// on the row's latest version, not on the statement's snapshot.
	lockGenSQL = `INSERT INTO session_generations AS g (user_id, gen) VALUES ($1, 0)
	ON CONFLICT (user_id) DO UPDATE SET gen = g.gen
	RETURNING gen`

	// createSQL adds a record at the generation of the record under $13,
	// the one it replaces (NULL: none), or else at $12, and returns that
	// generation; it returns no row if the hash or the public id is taken.
	// It comes before the deletes, so that a record can't make room for
	// one with its own hash or public id.
	createSQL = `INSERT INTO sessions (hash, id, user_id, gen, version, created, last_seen,
		idle_deadline, abs_deadline, expiry, user_agent, ip, data)
	VALUES ($1, $2, $3, COALESCE((SELECT gen FROM sessions WHERE hash = $13), $12), 1,
		$4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT DO NOTHING
	RETURNING gen`

	// replaceSQL deletes the record under $1 if it is a live record of user
	// $2's, and returns its hash. Like the statements below, it notifies
	// channel $3 of each record it deletes, with the message prefix $4
	// (changedPrefix) and the record's hash; PostgreSQL sends the
	// notifications on commit, and drops them on rollback.
	//
	// A Delete of the record on another node either commits first, and
	// this statement finds nothing (session.ErrNotFound), or waits for this
	// transaction to end and finds nothing itself.
	replaceSQL = `WITH gone AS (
		DELETE FROM sessions WHERE hash = $1 AND user_id = $2
			AND gen >= (SELECT gen FROM session_generations WHERE user_id = $2)
		RETURNING hash
	)
	SELECT hash, pg_notify($3, $4 || encode(hash, 'hex')) FROM gone`

	// evictSQL deletes the live records of user $1 but the new one, $2,
	// past the $3 that expire last, and returns their hashes. The replaced
	// record is gone already. It walks the user's records through the index
	// on (user_id, created, hash) and sorts them: they are at most the cap,
	// plus the dead ones a RevokeUser left (see revokeSQL).
	evictSQL = `WITH gone AS (
		DELETE FROM sessions WHERE hash IN (
			SELECT hash FROM sessions
			WHERE user_id = $1 AND hash <> $2
				AND gen >= (SELECT gen FROM session_generations WHERE user_id = $1)
			ORDER BY expiry DESC, hash
			OFFSET $3
		)
		RETURNING hash
	)
	SELECT hash, pg_notify($4, $5 || encode(hash, 'hex')) FROM gone`
)

// Create adds r in one transaction if its user's generation is still r.Gen,
// replacing opts.Replace and keeping the user under opts.MaxPerUser; see
// session.Store. It sends its statements in one pipeline, BEGIN first,
// reads their results, then commits, or rolls back if a condition failed:
// two round trips, whatever the options.
//
// Whatever RevokeUser commits, on any node, Create either sees its new
// generation and refuses (session.ErrRevoked), or held the user's
// generation row before it and committed a record of the older
// generation, dead once the bump commits (SES-12).
func (s *Store) Create(ctx context.Context, r *session.Record, opts session.CreateOptions) error {
	const op = "create session"
	if s.watches.Closed() {
		return closedError(op)
	}
	var replaced []byte // NULL: none
	if opts.Replace != nil {
		replaced = opts.Replace[:]
	}
	var (
		current, gen int64 // the user's generation; the new record's
		created      bool
		found        bool // the record to replace, live
		gone         []session.Event
	)
	deleted := func(found *bool) func(pgx.Rows) error {
		return func(rows pgx.Rows) error {
			for rows.Next() {
				var raw []byte
				if err := rows.Scan(&raw, nil); err != nil {
					return err
				}
				h, err := datacodec.DecodeHash(raw)
				if err != nil {
					return err
				}
				gone = append(gone, session.Event{Kind: session.Changed, Hash: h})
				if found != nil {
					*found = true
				}
			}
			return rows.Err()
		}
	}
	prefix := changedPrefix(s.hub.origin)

	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted}) // the lock above relies on a snapshot per statement
	b.Queue(lockGenSQL, r.UserID).QueryRow(func(row pgx.Row) error { return row.Scan(&current) })
	b.Queue(createSQL, append(recordArgs(r), int64(r.Gen), replaced)...).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&gen)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // taken
		}
		created = err == nil
		return err
	})
	if opts.Replace != nil {
		b.Queue(replaceSQL, replaced, r.UserID, s.channel, prefix).Query(deleted(&found))
	}
	if opts.MaxPerUser > 0 {
		b.Queue(evictSQL, r.UserID, r.Hash[:], opts.MaxPerUser-1, s.channel, prefix).Query(deleted(nil))
	}
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx) // gives the connection back; does nothing after Commit

	err := br.Close()
	switch {
	case err != nil:
	case opts.Replace == nil && uint64(current) != r.Gen:
		err = session.ErrRevoked
	case opts.Replace != nil && !found:
		err = fmt.Errorf("replaced record: %w", session.ErrNotFound)
	case !created:
		err = session.ErrConflict
	}
	if err != nil {
		return s.fail(op, err) // rolled back: nothing changed
	}
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	err = tx.Commit(ctx)
	s.hub.Publish(gone...) // even if Commit failed: it may have committed all the same
	if err != nil {
		return s.fail(op, err)
	}
	r.Gen, r.Version = uint64(gen), 1
	return nil
}

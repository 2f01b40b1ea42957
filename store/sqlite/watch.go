package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/datacodec"
	"github.com/tetherauth/tether/store/internal/denylist"
	"github.com/tetherauth/tether/store/internal/feed"
)

// readChangesSQL returns, in one snapshot, the log's high-water mark (the
// last seq ever given, pruned or not) with every entry after ?, one per
// row; or the mark alone in a row of NULLs when there is none. It returns
// no row at all before the first entry.
const readChangesSQL = `SELECT q.seq, c.seq, c.origin, c.hash, c.user_id, c.revocation
	FROM sqlite_sequence q LEFT JOIN session_changes c ON c.seq > ?
	WHERE q.name = 'session_changes'
	ORDER BY c.seq`

// Watch delivers the invalidations of every writer of the file to fn until
// ctx is done or the store is closed; see the package documentation for
// how and how fast. It returns ctx.Err(), or an error wrapping
// session.ErrClosed. fn is called from the writers of this process as well
// as from Watch's goroutine, never with a lock held; it must not call Close.
//
// When following the change log fails, Watch delivers FeedDown (if it had
// delivered FeedUp) and starts over after a delay growing from the poll
// interval up to maxRetryWait.
func (s *Store) Watch(ctx context.Context, fn func(session.Event)) error {
	err := s.watches.Run(ctx, &s.hub.Hub, fn, feed.Source{
		Follow:  s.follow,
		MinWait: s.interval,
		MaxWait: maxRetryWait,
		Lost: func(ctx context.Context, err error, retryIn time.Duration) {
			s.log.WarnContext(ctx, "following other processes' session writes failed; retrying", "err", err, "retry_in", retryIn)
		},
	})
	if errors.Is(err, session.ErrClosed) {
		return closedError("watch")
	}
	return err
}

// follow takes a connection of its own, notes where the change log ends,
// delivers FeedUp, then every poll interval checks the file's data_version
// and, when it moved, hands the watcher the log's new entries written by
// other processes; each poll then delivers a heartbeat (FeedCurrent) for
// the time it began. It returns when ctx is done or on the first error, and
// reports whether it delivered FeedUp.
func (s *Store) follow(ctx context.Context, w *feed.Watcher) (wentUp bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()

	// data_version first: a write committed between the two reads moves it,
	// so the next poll reads the log again.
	version, err := dataVersion(ctx, conn)
	if err != nil {
		return false, err
	}
	_, _, last, err := s.readChanges(ctx, conn, math.MaxInt64)
	if err != nil {
		return false, err
	}
	w.Up()

	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-tick.C:
		}
		// Every write committed before at moves data_version; once what it
		// logged is delivered, the poll is a heartbeat vouching for at.
		at := time.Now()
		v, err := dataVersion(ctx, conn)
		if err != nil {
			return true, err
		}
		if v != version {
			version = v
			evs, n, high, err := s.readChanges(ctx, conn, last)
			if err != nil {
				return true, err
			}
			if high-last == n { // seq has no gaps but pruned ones
				w.Deliver(evs...)
			} else {
				// Entries after last were pruned before this watcher read
				// them (or the log was recreated): what they said is lost.
				w.Down()
				w.Up()
			}
			last = high
		}
		w.Current(at)
	}
}

func dataVersion(ctx context.Context, conn *sql.Conn) (int64, error) {
	var v int64
	if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read data_version: %w", err)
	}
	return v, nil
}

// readChanges reads the change log's entries after seq last and its
// high-water mark. It returns the invalidations other processes wrote (this
// process's watchers had the others when they were written), how many
// entries it read, and the mark.
func (s *Store) readChanges(ctx context.Context, conn *sql.Conn, last int64) (evs []session.Event, n, high int64, err error) {
	rows, err := conn.QueryContext(ctx, readChangesSQL, last)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read change log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq, origin sql.NullInt64
			hash        []byte
			user, rev   sql.NullString
		)
		if err := rows.Scan(&high, &seq, &origin, &hash, &user, &rev); err != nil {
			return nil, 0, 0, fmt.Errorf("read change log: %w", err)
		}
		if !seq.Valid {
			continue
		}
		n++
		if origin.Int64 == s.hub.origin {
			continue
		}
		switch {
		case len(hash) == len(session.Hash{}):
			evs = append(evs, session.Event{Kind: session.Changed, Hash: session.Hash(hash)})
		case user.Valid:
			evs = append(evs, session.Event{Kind: session.UserRevoked, UserID: user.String})
		case rev.Valid:
			r, err := denylist.Parse(rev.String)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("read change log: entry %d: %w: %w", seq.Int64, datacodec.ErrCorrupt, err)
			}
			evs = append(evs, session.Event{Kind: session.TokenRevoked, Revocation: r})
		default:
			return nil, 0, 0, fmt.Errorf("read change log: entry %d: %w", seq.Int64, datacodec.ErrCorrupt)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("read change log: %w", err)
	}
	return evs, n, high, nil
}

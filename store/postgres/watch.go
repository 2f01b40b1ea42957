package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/feed"
)

const (
	// minRetryWait and maxRetryWait bound the delay before listening again
	// after the feed was lost.
	minRetryWait = 50 * time.Millisecond
	maxRetryWait = 5 * time.Second
	// pingTimeout is how long a heartbeat's ping of the listening
	// connection may take; a connection pinged every
	// session.HeartbeatInterval that doesn't answer within it is taken for
	// dead.
	pingTimeout = time.Second
)

// Watch delivers the invalidations of every writer of the schema to fn
// until ctx is done or the store is closed; see the package documentation
// for how and how fast. It returns ctx.Err(), or an error wrapping
// session.ErrClosed. fn is called from the writers of this process as well
// as from Watch's goroutine; it must not call Close, nor call the store
// while it handles FeedUp or FeedDown.
//
// When the listening connection fails, Watch delivers FeedDown (if it had
// delivered FeedUp) and listens again after a delay growing from
// minRetryWait to maxRetryWait.
func (s *Store) Watch(ctx context.Context, fn func(session.Event)) error {
	err := s.watches.Run(ctx, &s.hub.Hub, fn, feed.Source{
		Follow:  s.listen,
		MinWait: minRetryWait,
		MaxWait: maxRetryWait,
		Lost: func(ctx context.Context, err error, retryIn time.Duration) {
			s.log.WarnContext(ctx, "invalidation feed lost; listening again", "err", err, "retry_in", retryIn)
		},
	})
	if errors.Is(err, session.ErrClosed) {
		return closedError("watch")
	}
	return err
}

// listen takes a connection out of the pool, LISTENs on the channel,
// delivers FeedUp, then hands the watcher what other processes notify until
// ctx is done or the connection fails. It reports whether it delivered
// FeedUp.
func (s *Store) listen(ctx context.Context, w *feed.Watcher) (wentUp bool, err error) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	conn := pooled.Hijack() // LISTEN lasts as long as the session: not a connection to give back
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	w.Up()
	for {
		due := time.Now().Add(session.HeartbeatInterval)
		for time.Now().Before(due) {
			if err := s.next(ctx, conn, w, due); err != nil {
				return true, err
			}
		}
		if err := s.heartbeat(ctx, conn, w); err != nil {
			return true, err
		}
	}
}

// next waits until due for a notification and hands it to w.
func (s *Store) next(ctx context.Context, conn *pgx.Conn, w *feed.Watcher, due time.Time) error {
	waitCtx, cancel := context.WithDeadline(ctx, due)
	n, err := conn.WaitForNotification(waitCtx)
	cancel()
	switch {
	case err == nil:
		s.receive(ctx, w, n.Payload)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed():
		return err
	}
	return nil
}

// heartbeat pings the listening connection and delivers FeedCurrent for
// the time it began (SES-14). PostgreSQL sends a notification committed
// before the ping's query ahead of its answer; pgx keeps the ones that
// came with the answer, and they are handed to w first.
func (s *Store) heartbeat(ctx context.Context, conn *pgx.Conn, w *feed.Watcher) error {
	at := time.Now()
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := conn.Ping(pingCtx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	// With a context already done, WaitForNotification returns what pgx
	// kept and then fails without reading the connection.
	kept, none := context.WithCancel(ctx)
	none()
	for {
		n, _ := conn.WaitForNotification(kept)
		if n == nil {
			break
		}
		s.receive(ctx, w, n.Payload)
	}
	w.Current(at)
	return nil
}

// receive hands the watcher a feed message, unless this process wrote it
// (and so delivered it already). A message no Store sends can't be
// understood, nor what it invalidates: the watch starts over.
func (s *Store) receive(ctx context.Context, w *feed.Watcher, payload string) {
	origin, ev, err := parseMessage(payload)
	if err != nil {
		s.log.WarnContext(ctx, "a notification no Store sends on the channel; starting the feed over", "channel", s.channel, "err", err)
		w.Down()
		w.Up()
		return
	}
	if origin != s.hub.origin {
		w.Deliver(ev)
	}
}

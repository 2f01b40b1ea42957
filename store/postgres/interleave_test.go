package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/session"
)

// The helpers here let the tests of create_test.go force the interleavings
// of writes on two nodes: Stores on pools of their own, whose connections
// carry an application name each, and an admin pool that holds locks and
// watches who waits for one. An operation is known to be stuck
// mid-transaction when PostgreSQL says its backend waits for a lock;
// nothing here waits for time to pass.

// node is a Store with a pool of its own, as another process would have.
type node struct {
	*Store
	name string // its connections' application_name
}

// nodes returns two nodes on one fresh schema, and a pool of the schema for
// the test's own statements.
func nodes(t *testing.T) (a, b node, admin *pgxpool.Pool) {
	t.Helper()
	admin = openPool(t, pgtest.Schema(t))
	poolA, nameA := namedPool(t, admin)
	poolB, nameB := namedPool(t, admin)
	return node{openStore(t, poolA, "a"), nameA}, node{openStore(t, poolB, "b"), nameB}, admin
}

// call is a store operation running in a goroutine of its own.
type call struct {
	done chan struct{}
	err  error
}

func start(fn func() error) *call {
	c := &call{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = fn()
	}()
	return c
}

// wait returns the call's error once it has returned.
func (c *call) wait() error {
	<-c.done
	return c.err
}

// awaitLockWaits returns once n backends of the node wait for a lock, and
// fails the test if one of calls returns first: it didn't wait where the
// test meant it to.
func awaitLockWaits(t *testing.T, admin *pgxpool.Pool, n node, want int, calls ...*call) {
	t.Helper()
	for {
		var waiting int
		err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, n.name).Scan(&waiting)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if waiting >= want {
			return
		}
		for _, c := range calls {
			select {
			case <-c.done:
				t.Fatalf("a call on node %s returned (error %v) before %d of its backends waited for a lock", n.Store.hub.key.node, c.err, want)
			default:
			}
		}
	}
}

// hold runs sql in a transaction of its own on a connection of admin's,
// and keeps the transaction, and what it locked or wrote, until end is
// called (committing or rolling back) or the test ends.
func hold(t *testing.T, admin *pgxpool.Pool, sql string, args ...any) (end func(commit bool)) {
	t.Helper()
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	var once sync.Once
	end = func(commit bool) {
		once.Do(func() {
			ctx := context.WithoutCancel(t.Context()) // still there in Cleanup
			if commit {
				err = tx.Commit(ctx)
			} else {
				err = tx.Rollback(ctx)
			}
			if err != nil {
				t.Errorf("end the holding transaction: %v", err)
			}
		})
	}
	t.Cleanup(func() { end(false) })
	if _, err := tx.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("hold: %v", err)
	}
	return end
}

// lockRecord locks the row of the record under h until the returned
// function is called.
func lockRecord(t *testing.T, admin *pgxpool.Pool, h session.Hash) (release func()) {
	t.Helper()
	end := hold(t, admin, `SELECT 1 FROM sessions WHERE hash = $1 FOR UPDATE`, h[:])
	return func() { end(true) }
}

// claimHash inserts, uncommitted, a record of another user under h: an
// insert of h waits for the transaction, and the returned function rolls
// it back.
func claimHash(t *testing.T, admin *pgxpool.Pool, h session.Hash) (release func()) {
	t.Helper()
	end := hold(t, admin, `INSERT INTO sessions (hash, id, user_id, gen, version, created, last_seen,
		idle_deadline, abs_deadline, expiry, user_agent, ip, data)
		VALUES ($1, 'claim', 'someone else', 0, 1, now(), now(), now(), now(), now(), '', '', '')`, h[:])
	return func() { end(false) }
}

// pauseBeforeCommit makes s's Creates stop between their statements and
// their COMMIT, holding their locks, until resume is called (or the test
// ends): paused is closed when the first gets there. Call it before the
// Create starts.
func pauseBeforeCommit(t *testing.T, s *Store) (paused <-chan struct{}, resume func()) {
	p, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.beforeCommit = func() {
		once.Do(func() { close(p) })
		<-r
	}
	resume = sync.OnceFunc(func() { close(r) })
	t.Cleanup(resume)
	return p, resume
}

// awaitPause returns once c, a Create, is paused (see pauseBeforeCommit),
// and fails the test if it returns instead.
func awaitPause(t *testing.T, paused <-chan struct{}, c *call) {
	t.Helper()
	select {
	case <-paused:
	case <-c.done:
		t.Fatalf("Create returned (error %v) instead of pausing before its COMMIT", c.err)
	}
}

// createCall starts a Create of r on s, at generation gen.
func createCall(t *testing.T, s *Store, r *session.Record, gen uint64, opts session.CreateOptions) *call {
	r.Gen = gen
	return start(func() error { return s.Create(t.Context(), r, opts) })
}

func revokeCall(t *testing.T, s *Store, user string) *call {
	return start(func() error { return s.RevokeUser(t.Context(), user, nil) })
}

func deleteCall(t *testing.T, s *Store, h session.Hash) *call {
	return start(func() error { return s.Delete(t.Context(), h) })
}

func mustGeneration(t *testing.T, s *Store, user string) uint64 {
	t.Helper()
	gen, err := s.Generation(t.Context(), user)
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}
	return gen
}

// checkLive checks, through every store, that user's live records are
// exactly want, and that the records under dead are not served.
func checkLive(t *testing.T, stores []*Store, user string, want []*session.Record, dead ...session.Hash) {
	t.Helper()
	for _, s := range stores {
		list, err := s.List(t.Context(), user)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(list) != len(want) {
			t.Errorf("node %s: live records of %s: got %d, want %d", s.hub.key.node, user, len(list), len(want))
		}
		for i := range min(len(list), len(want)) {
			if list[i].Hash != want[i].Hash {
				t.Errorf("node %s: live record #%d: got %s, want %s", s.hub.key.node, i, list[i].ID, want[i].ID)
			}
		}
		for _, h := range dead {
			if _, err := s.Get(t.Context(), h); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("node %s: Get of a record that must be dead: got error %v, want %v", s.hub.key.node, err, session.ErrNotFound)
			}
		}
	}
}

func wantError(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) { // nil is only nil
		t.Errorf("%s: got error %v, want %v", what, got, want)
	}
}

// rowsOf returns the generations of the rows the table holds for user,
// live or not, and the user's current generation.
func rowsOf(t *testing.T, admin *pgxpool.Pool, user string) (gens []int64, current int64) {
	t.Helper()
	rows, _ := admin.Query(t.Context(), `SELECT gen FROM sessions WHERE user_id = $1`, user)
	gens, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err == nil {
		err = admin.QueryRow(t.Context(), genSQL, user).Scan(&current)
	}
	if err != nil {
		t.Fatalf("rows of %s: %v", user, err)
	}
	return gens, current
}

// Package testkit holds what the server's tests share: a clock they move
// by hand, the SQLite file the server uses, and the rule for tests that
// need a service this machine may lack.
//
// Library packages (session, csrf, password, store/...) don't import it:
// they never import internal/, not even in tests. What their tests share
// with the server's is in storetest (NeedService) and store/postgres/pgtest
// (a fresh PostgreSQL schema).
package testkit

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/store/sqlite"
	"github.com/tetherauth/tether/storetest"
)

// Clock is a clock tests move by hand; its Now can be injected wherever a
// Config takes a clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewClock returns a Clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// OpenSQLite opens the SQLite file at path the way the server does, and
// closes it when the test ends.
func OpenSQLite(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NeedService is storetest.NeedService: a test that needs a service
// (Redis, PostgreSQL, nginx, a browser) skips without it, saying what is
// missing, or fails when TETHER_TEST_REQUIRE_SERVICES=1.
func NeedService(t testing.TB, what string, err error) {
	t.Helper()
	storetest.NeedService(t, what, err)
}

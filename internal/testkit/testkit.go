// Package testkit holds what the server's tests share: a clock they move
// by hand, the SQLite file the server uses, a fresh PostgreSQL schema, and
// the rule for tests that need a service this machine may lack.
//
// Library packages (session, csrf, password, store/...) don't import it:
// they never import internal/, not even in tests.
package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/store/sqlite"
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

// RequireServicesEnv names the environment variable that turns a missing
// service from a skip into a failure; CI sets it to 1.
const RequireServicesEnv = "TETHER_TEST_REQUIRE_SERVICES"

// NeedService is for a test that needs a service (Redis, PostgreSQL, nginx,
// a browser): err says why the service can't be had. With err nil it does
// nothing; otherwise the test skips, saying what is missing, or fails when
// TETHER_TEST_REQUIRE_SERVICES=1.
func NeedService(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(RequireServicesEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but unavailable: %v", what, RequireServicesEnv, err)
	}
	t.Skipf("skipping: %s unavailable: %v (set %s=1 to fail instead)", what, err, RequireServicesEnv)
}

// PostgresEnv names the environment variable with the URL of the
// PostgreSQL database that tests use; DefaultPostgres when it is empty.
// Tests only ever create schemas there and drop the ones they created.
const PostgresEnv = "TETHER_TEST_POSTGRES"

// DefaultPostgres is the test database of this machine and of CI.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresSchema creates a fresh, empty schema t_<random> in the test
// database (see PostgresEnv) and returns a function that opens a new
// connection pool on it, as another node would: its connections have
// search_path set to that schema alone, so tables are created and found
// there. The function is safe to call from several goroutines. When the
// test ends the pools are closed and the schema dropped with what it holds.
// If the database can't be reached, PostgresSchema calls NeedService.
func PostgresSchema(t testing.TB) (newPool func() (*pgxpool.Pool, error)) {
	t.Helper()
	url := os.Getenv(PostgresEnv)
	if url == "" {
		url = DefaultPostgres
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	schema := fmt.Sprintf("t_%x", b)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 4 // tests of several packages share the server's connections

	// A bound on connecting, not on speed: an address that swallows
	// packets would otherwise hang the test until its deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	NeedService(t, "PostgreSQL", err)
	defer conn.Close(context.Background())
	quoted := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+quoted); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	// Registered before any pool, so it runs after they are closed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA "+quoted+" CASCADE")
			conn.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return func() (*pgxpool.Pool, error) {
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg.Copy())
		if err != nil {
			return nil, err
		}
		t.Cleanup(pool.Close)
		return pool, nil
	}
}

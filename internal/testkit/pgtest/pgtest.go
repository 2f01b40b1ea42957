// Package pgtest gives a test a PostgreSQL schema of its own in the test
// database: the store/postgres tests use it, and so do the server's tests
// of its PostgreSQL stores. Tests only ever create schemas there and drop
// the ones they created, so they can share the database with other tests
// and with CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit"
)

// URLEnv names the environment variable with the URL of the
// PostgreSQL database that tests use; DefaultURL when it is empty.
// Tests only ever create schemas there and drop the ones they created.
const URLEnv = "TETHER_TEST_POSTGRES"

// DefaultURL is the test database of this machine and of CI.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Schema creates a fresh, empty schema t_<random> in the test
// database (see URLEnv) and returns a function that opens a new
// connection pool on it, as another node would: its connections have
// search_path set to that schema alone, so tables are created and found
// there. The function is safe to call from several goroutines. When the
// test ends the pools are closed and the schema dropped with what it holds.
// If the database can't be reached, Schema calls testkit.NeedService.
func Schema(t testing.TB) (newPool func() (*pgxpool.Pool, error)) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL())
	if err != nil {
		t.Fatalf("%s: %v", URLEnv, err)
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
	testkit.NeedService(t, "PostgreSQL", err)
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

// databaseURL returns the URL of the test database.
func databaseURL() string {
	if u := os.Getenv(URLEnv); u != "" {
		return u
	}
	return DefaultURL
}

// URL returns the URL of the test database with search_path set to the
// schema of pool, one of Schema's: what another process (a tether command,
// say) is given to work in that schema. pgx passes search_path to the
// server as a run-time parameter of every connection.
func URL(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	u, err := url.Parse(databaseURL())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s: want a postgres:// URL, as tether takes", URLEnv)
	}
	q := u.Query()
	q.Set("search_path", pool.Config().ConnConfig.RuntimeParams["search_path"])
	u.RawQuery = q.Encode()
	return u.String()
}

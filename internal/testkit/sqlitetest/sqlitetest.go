// Package sqlitetest opens the SQLite file of a test the way the server
// does. It is apart from package testkit because it imports store/sqlite,
// whose own tests use testkit.
package sqlitetest

import (
	"database/sql"
	"testing"

	"github.com/tetherauth/tether/store/sqlite"
)

// Open opens the SQLite file at path the way the server does, and closes
// it when the test ends.
func Open(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

package account

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
)

// newPostgres returns an opener of stores in a fresh PostgreSQL schema.
func newPostgres(t *testing.T) opener {
	newPool := pgtest.Schema(t)
	return func(now func() time.Time) (store, error) {
		pool, err := newPool()
		if err != nil {
			return nil, err
		}
		s, err := NewPostgres(t.Context(), pool)
		if err != nil {
			return nil, err
		}
		s.now = now
		return s, nil
	}
}

func TestPostgres(t *testing.T) {
	runStoreSuite(t, newPostgres)
}

// Names compare and sort byte by byte, as in SQLite, even on a database
// whose default collation is a language's: ListOrderedByName can't show it
// on a server whose default is C already.
func TestPostgresNamesCollateC(t *testing.T) {
	s, err := newPostgres(t)(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var collation string
	if err := s.(*Postgres).pool.QueryRow(t.Context(), `SELECT c.collname FROM pg_attribute a
		JOIN pg_collation c ON c.oid = a.attcollation
		WHERE a.attrelid = 'users'::regclass AND a.attname = 'name'`).Scan(&collation); err != nil {
		t.Fatal(err)
	}
	if collation != "C" {
		t.Fatalf("collation of users.name: got %q, want %q", collation, "C")
	}
}

func (s *Postgres) setCreateFirstHook(f func()) { s.testHookCreateFirst = f }
func (s *Postgres) setDeleteHook(f func())      { s.testHookDelete = f }
func (s *Postgres) setSaveKeysHook(f func())    { s.testHookSaveKeys = f }

// noWaitTwin opens another pool on s's schema whose connections give up on
// a lock another transaction holds at once (lock_timeout 1 ms: PostgreSQL
// has no setting for not waiting at all).
func (s *Postgres) noWaitTwin(t *testing.T) (store, error) {
	cfg := s.pool.Config()
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "1ms"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(pool.Close)
	return NewPostgres(t.Context(), pool)
}

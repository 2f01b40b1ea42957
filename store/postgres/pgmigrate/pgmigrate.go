// Package pgmigrate brings a PostgreSQL schema up to date with the
// numbered SQL files a component embeds, once, however many nodes start at
// the same time.
//
// Usage, in a component's constructor:
//
//	//go:embed postgres/*.sql
//	var migrations embed.FS
//	...
//	files, _ := fs.Sub(migrations, "postgres")
//	if err := pgmigrate.Run(ctx, pool, "account", files); err != nil {
//		...
//	}
//
// The files are named NNNN_what.sql: a version (1, 2, 3, ... with no gap,
// leading zeros allowed) and a description. Run records each applied
// version of each component in table schema_migrations of the pool's
// current schema (the first in search_path) and applies only the missing
// ones, in order, all in one transaction: either every missing migration is
// applied or none is. A transaction-level advisory lock on the schema makes
// a second node starting at once wait, then find nothing left to do.
// Versions that a newer tether applied and this one doesn't know are left
// alone: a migration only adds, so an older node keeps working beside it.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadMigrations: the embedded files don't form a valid set (see Run).
var ErrBadMigrations = errors.New("pgmigrate: bad migration files: name them 0001_what.sql, 0002_what.sql, ... with no gap")

// migration is one file of a component's set.
type migration struct {
	version int
	name    string // file name
	sql     string
}

var fileName = regexp.MustCompile(`^([0-9]+)_[a-z0-9_]+\.sql$`)

// load returns the migrations in files, ordered by version, or an error
// wrapping ErrBadMigrations when a name or the numbering is wrong.
func load(files fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("pgmigrate: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("%w: got %q", ErrBadMigrations, e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("%w: got %q", ErrBadMigrations, e.Name())
		}
		sql, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, fmt.Errorf("pgmigrate: read %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: version, name: e.Name(), sql: string(sql)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("%w: got %q where version %d belongs", ErrBadMigrations, m.name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: got none", ErrBadMigrations)
	}
	return ms, nil
}

// Run applies the migrations in files (see the package comment) that the
// pool's current schema lacks for component, and returns how many it
// applied. files holds only the migration files; a file that has been
// released must never change, since it is never run again.
func Run(ctx context.Context, pool *pgxpool.Pool, component string, files fs.FS) (applied int, err error) {
	ms, err := load(files)
	if err != nil {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Two nodes starting at once: the second waits here until the
		// first commits. CREATE TABLE IF NOT EXISTS alone is not safe
		// against a concurrent one. Without a current schema the lock
		// argument is NULL and CREATE TABLE fails, saying so.
		if _, err := tx.Exec(ctx,
			`SELECT pg_advisory_xact_lock(hashtextextended('tether schema_migrations ' || current_schema(), 0))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component text COLLATE "C" NOT NULL,
			version   integer NOT NULL,
			name      text NOT NULL,
			applied   timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (component, version)
		)`); err != nil {
			return fmt.Errorf("create table schema_migrations: %w", err)
		}
		rows, _ := tx.Query(ctx, `SELECT version FROM schema_migrations WHERE component = $1`, component)
		done, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		for _, m := range ms {
			if slices.Contains(done, m.version) {
				continue
			}
			// Without arguments pgx uses the simple protocol, so a file
			// may hold several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)`,
				component, m.version, m.name); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			applied++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgmigrate: migrate %s: %w", component, err)
	}
	return applied, nil
}

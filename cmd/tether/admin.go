package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/account"
)

// What an admin command does before and after it acts, so that it never
// reports done when it wasn't (ADM-01): it opens only the deployment's
// own stores, creates none, and checks that what it ended is gone.

// openForAdmin opens the stores c names for an admin command. It creates
// no file and no table, and stops, naming the server's settings, unless
// the deployment record says the sessions live where c keeps them.
func openForAdmin(ctx context.Context, c config) (*stores, error) {
	return openStoresWith(ctx, c, nil, opening{accountsOpen: func(ctx context.Context, acc accounts) error {
		return checkDeployment(ctx, acc, c)
	}})
}

// openForSetup opens the stores c names for command, one that sets a
// deployment up (init, user add --create): it creates what is missing
// and records where c keeps the sessions, as serve does, saying so on
// stderr.
func openForSetup(ctx context.Context, c config, command string, stderr io.Writer) (*stores, error) {
	return openStoresWith(ctx, c, nil, opening{create: true, accountsOpen: func(ctx context.Context, acc accounts) error {
		_, err := claimDeployment(ctx, acc, c, recording{by: recorder(command), mayMove: true}, time.Now(), stderrLog(stderr))
		return err
	}})
}

// initCmd creates the database (the --data file, the PostgreSQL tables)
// and records where the sessions live, then exits; on a database that
// exists it checks the record and changes nothing else.
func initCmd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, err := e.parseNoArgs(fs, args, changeSettings...)
	if err != nil {
		return err
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, e.auditCLI(ctx, c, "init", "", []any{"sessions", sessionStoreOf(c).String()}, err))
	}()
	st, err := openForSetup(ctx, c, "init", e.stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	fmt.Fprintf(e.stdout, "ready: users in %s, sessions in %s\n", accountsPlace(c), sessionStoreOf(c))
	return nil
}

// verifyRevoked returns nil if u has no live session left in the session
// store, which a command that ended them all checks before it says so.
func (a admin) verifyRevoked(ctx context.Context, u *account.User) error {
	list, err := a.sessions.List(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("could not check that the sessions of %s are gone: %w; run tether sessions list %s", u.Name, err, u.Name)
	}
	if n := len(list); n > 0 {
		return fmt.Errorf("the session store still lists live sessions of %s after ending them all (%d, the newest created at %s): "+
			"if %s signed in again meanwhile, run tether sessions revoke %s again (or disable the user); else the store lost the revocation",
			u.Name, n, list[n-1].Created().UTC().Format(time.RFC3339), u.Name, u.Name)
	}
	return nil
}

// checkDataFile returns what keeps the --data file at path from being
// opened, in an operator's terms: its directory missing or out of reach,
// no permission to read and write it, or, unless create, no file at all.
func checkDataFile(path string, create bool) error {
	dir := filepath.Dir(path)
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("no permission to enter the directory %s of the database %s: run the command as the user tether serve runs as", dir, path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		fi, derr := os.Stat(dir)
		switch {
		case errors.Is(derr, fs.ErrNotExist):
			return fmt.Errorf("the directory %s of the database %s is missing: create it, or pass --data (env TETHER_DATA) naming the server's file", dir, path)
		case derr == nil && !fi.IsDir():
			return fmt.Errorf("%s, the directory of the database %s, is not a directory: pass another --data (env TETHER_DATA)", dir, path)
		case create:
			return nil
		default:
			return fmt.Errorf("no database at %s: run tether serve or tether init there first, or pass --data (env TETHER_DATA) naming the server's file", showPath(path))
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("no permission to read and write the database %s: run the command as the user tether serve runs as", path)
	case err != nil:
		return fmt.Errorf("the database %s: %w", path, err)
	}
	return f.Close()
}

// showPath returns path for an error, with the absolute path after a
// relative one: run in another directory, a command looks elsewhere.
func showPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil && abs != path {
		return fmt.Sprintf("%s (%s)", path, abs)
	}
	return path
}

// dataFileError is the error of opening the --data file at path, with
// err, sqlite.Open's, said plainly when it is about permissions: the
// file itself passed checkDataFile, so what is left is its directory,
// where SQLite creates the file and its -wal and -shm files.
func dataFileError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("no permission to create files in %s, where the database %s and its -wal and -shm files live: run the command as the user tether serve runs as", filepath.Dir(path), path)
	}
	return err
}

// checkSQLiteTable returns an error unless the database file at path,
// open as db, holds table, as a tether database does: a command that isn't
// meant to create one would otherwise make an empty deployment there.
func checkSQLiteTable(ctx context.Context, db *sql.DB, path, table string) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
		return fmt.Errorf("the database %s: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%s is not a tether database (it has no %s table): pass --data (env TETHER_DATA) naming the server's file, or run tether init there", path, table)
	}
	return nil
}

// checkSchema returns an error naming the search_path when no schema of it
// exists (PostgreSQL would create no table and say only "no schema has been
// selected to create in"), and, unless create, when the current schema has
// no table called table: an admin command migrates no empty schema.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, table string, create bool) error {
	var schema *string
	var path string
	var exists bool
	err := pool.QueryRow(ctx, `SELECT current_schema(), current_setting('search_path'),
		to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) IS NOT NULL`, table).Scan(&schema, &path, &exists)
	switch {
	case err != nil:
		return err
	case schema == nil:
		return fmt.Errorf("no schema of the search_path %s exists: create it (CREATE SCHEMA), or name an existing one in the URL's search_path", path)
	case !create && !exists:
		return fmt.Errorf("the schema %s has no %s table: tether serve or tether init never ran with these settings "+
			"(this command creates no tables): check the URL and its search_path against the server's", pgx.Identifier{*schema}.Sanitize(), table)
	}
	return nil
}

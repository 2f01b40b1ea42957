package account

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// SQLite is the Store, Clients and PATs, and the KeyStorage (machines),
// kept in tables of a SQLite database, usually the one file the server shares
// with its session store (see store/sqlite.Open). Several processes may
// use the same file. Times are kept in Unix microseconds.
type SQLite struct {
	machines // Clients, PATs, KeyStorage; the clock
	db       *sql.DB
	// byID and byName are prepared once: every signed-in page reads its
	// user by id, and compiling the query each time was a good part of the
	// cost.
	byID, byName *sql.Stmt
	// testHookCreateFirst, if set, runs in CreateFirst between its check
	// and its insert: tests run another CreateFirst there.
	testHookCreateFirst func()
	// testHookDelete, if set, runs in Delete between its check and its
	// removal: tests run another Delete there.
	testHookDelete func()
}

var (
	_ Store       = (*SQLite)(nil)
	_ Clients     = (*SQLite)(nil)
	_ Revocations = (*SQLite)(nil)
	_ PATs        = (*SQLite)(nil)
)

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	admin         INTEGER NOT NULL,
	disabled      INTEGER NOT NULL,
	created       INTEGER NOT NULL -- Unix microseconds, as store/sqlite keeps times
) STRICT;
CREATE TABLE IF NOT EXISTS settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS clients (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL,
	scopes      TEXT NOT NULL, -- a JSON array of strings, sorted
	audiences   TEXT NOT NULL, -- the same
	max_ttl     INTEGER NOT NULL, -- nanoseconds
	disabled    INTEGER NOT NULL,
	created     INTEGER NOT NULL
) STRICT;
-- Delete removes a user's tokens itself, in its transaction, because
-- PRAGMA foreign_keys is a setting of each connection; the reference
-- refuses orphans on connections that have it (store/sqlite.Open's).
CREATE TABLE IF NOT EXISTS pats (
	id        TEXT PRIMARY KEY,
	user_id   TEXT NOT NULL REFERENCES users (id),
	name      TEXT NOT NULL,
	hash      BLOB NOT NULL UNIQUE,
	scopes    TEXT NOT NULL, -- as in clients
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	last_used INTEGER, -- NULL: never used
	gen       INTEGER NOT NULL -- the user's token generation when it was made
) STRICT;
CREATE INDEX IF NOT EXISTS pats_user ON pats (user_id, created);
-- The durable copy of the token denylist's jti entries (Revocations).
CREATE TABLE IF NOT EXISTS revoked_tokens (
	jti TEXT PRIMARY KEY,
	exp INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS revoked_tokens_exp ON revoked_tokens (exp);
-- The signing keys (package keys' Storage) and the ring's version, in
-- its one row.
CREATE TABLE IF NOT EXISTS signing_keys (
	kid        TEXT PRIMARY KEY,
	alg        TEXT NOT NULL,
	private    BLOB NOT NULL,
	sealed     INTEGER NOT NULL,
	created    INTEGER NOT NULL,
	sign_from  INTEGER NOT NULL,
	sign_until INTEGER, -- NULL: no end planned
	remove_at  INTEGER  -- the same
) STRICT;
CREATE TABLE IF NOT EXISTS key_ring (
	one     INTEGER PRIMARY KEY CHECK (one = 1),
	version INTEGER NOT NULL -- no row: never saved, version 0
) STRICT;
`

// NewSQLite returns the store kept in db, creating its tables if they are
// missing. It doesn't close db.
func NewSQLite(ctx context.Context, db *sql.DB) (*SQLite, error) {
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("account: create tables: %w", err)
	}
	s := &SQLite{db: db, machines: machines{q: sqliteDB{q: db, db: db}, now: time.Now}}
	var err error
	if s.byID, err = db.PrepareContext(ctx, columns+`WHERE id = ?`); err != nil {
		return nil, fmt.Errorf("account: prepare: %w", err)
	}
	if s.byName, err = db.PrepareContext(ctx, columns+`WHERE name = ?`); err != nil {
		return nil, errors.Join(fmt.Errorf("account: prepare: %w", err), s.byID.Close())
	}
	return s, nil
}

// Create implements Store.
func (s *SQLite) Create(ctx context.Context, u *User) error {
	name, err := CanonicalName(u.Name)
	if err != nil {
		return err
	}
	id := randomID("u_")
	created := s.now().UnixMicro()
	err = inTx(ctx, s.db, nil, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO users (id, name, password_hash, admin, disabled, created)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			id, name, u.PasswordHash, u.Admin, u.Disabled, created)
		if err := oneRow(res, err, ErrExists); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM settings WHERE name LIKE ?`, setupRows)
		return err
	})
	if err != nil {
		return fmt.Errorf("account: create %q: %w", name, err)
	}
	u.ID, u.Name, u.Created = id, name, time.UnixMicro(created).UTC()
	return nil
}

// CreateFirst implements Store. Its transaction takes SQLite's write lock
// (one writer per file, across processes) when it begins: store/sqlite.Open
// makes every transaction BEGIN IMMEDIATE. So no other writer can add a
// user between the check and the insert. (On a *sql.DB opened otherwise,
// the transaction would begin deferred: a writer that got in between would
// make the insert fail with SQLITE_BUSY, still never a second user.)
func (s *SQLite) CreateFirst(ctx context.Context, u *User, setup SetupHash, now time.Time) error {
	name, err := CanonicalName(u.Name)
	if err != nil {
		return err
	}
	id := randomID("u_")
	created := s.now().UnixMicro()
	err = inTx(ctx, s.db, nil, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return ErrNotFirst
		}
		if live, err := sqliteSetupLive(ctx, tx, setup, now); err != nil || !live {
			return cmp.Or(err, ErrNoSetup)
		}
		if s.testHookCreateFirst != nil {
			s.testHookCreateFirst()
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO users (id, name, password_hash, admin, disabled, created)
			VALUES (?, ?, ?, ?, ?, ?)`,
			id, name, u.PasswordHash, u.Admin, u.Disabled, created); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE name LIKE ?`, setupRows)
		return err
	})
	if err != nil {
		return fmt.Errorf("account: create first user %q: %w", name, err)
	}
	u.ID, u.Name, u.Created = id, name, time.UnixMicro(created).UTC()
	return nil
}

// AddSetup implements Store.
func (s *SQLite) AddSetup(ctx context.Context, setup SetupHash, expires time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)`,
		setupKey(setup), setupValue(expires)); err != nil {
		return fmt.Errorf("account: add setup link: %w", err)
	}
	return nil
}

// SetupValid implements Store.
func (s *SQLite) SetupValid(ctx context.Context, setup SetupHash, now time.Time) (bool, error) {
	live, err := sqliteSetupLive(ctx, s.db, setup, now)
	if err != nil {
		return false, fmt.Errorf("account: setup link: %w", err)
	}
	return live, nil
}

// sqliteSetupLive reports whether q (the database or a transaction)
// keeps the setup link setup, unexpired at now.
func sqliteSetupLive(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, setup SetupHash, now time.Time) (bool, error) {
	var value []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, setupKey(setup)).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && setupLive(value, now), err
}

// inTx runs f in a transaction of db, begun with opts, committed if f
// returns nil.
func inTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// ByName implements Store.
func (s *SQLite) ByName(ctx context.Context, name string) (*User, error) {
	canonical, err := CanonicalName(name)
	if err != nil {
		return nil, ErrNotFound
	}
	return user(ctx, s.byName, "name", canonical)
}

// ByID implements Store.
func (s *SQLite) ByID(ctx context.Context, id string) (*User, error) {
	return user(ctx, s.byID, "id", id)
}

const columns = `SELECT id, name, password_hash, admin, disabled, created FROM users `

// user returns the user that stmt, a query by column, finds for v.
func user(ctx context.Context, stmt *sql.Stmt, column, v string) (*User, error) {
	u, err := scanUser(stmt.QueryRowContext(ctx, v))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: user with %s %q: %w", column, v, err)
	}
	return u, nil
}

// List implements Store.
func (s *SQLite) List(ctx context.Context) ([]*User, error) {
	users, err := list(ctx, s.q, scanUser, columns+`ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("account: list: %w", err)
	}
	return users, nil
}

// Count implements Store.
func (s *SQLite) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("account: count: %w", err)
	}
	return n, nil
}

// SetPassword implements Store.
func (s *SQLite) SetPassword(ctx context.Context, id, old, hash string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`, hash, id, old)
	if err := oneRow(res, err, errNotSet); err != nil {
		return whyNotSet(ctx, s, id, err)
	}
	return nil
}

// SetDisabled implements Store.
func (s *SQLite) SetDisabled(ctx context.Context, id string, disabled bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id)
	if err := oneRow(res, err, ErrNotFound); err != nil {
		return fmt.Errorf("account: set disabled of %q: %w", id, err)
	}
	return nil
}

// Rename implements Store. OR IGNORE makes a name taken by another user
// change no row rather than fail with the driver's constraint error.
func (s *SQLite) Rename(ctx context.Context, id, name string) error {
	canonical, err := CanonicalName(name)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE OR IGNORE users SET name = ? WHERE id = ?`, canonical, id)
	if err = oneRow(res, err, ErrNotFound); errors.Is(err, ErrNotFound) {
		if _, err = s.ByID(ctx, id); err == nil { // the user is there: the name was taken
			err = ErrExists
		}
	}
	if err != nil {
		return fmt.Errorf("account: rename %q to %q: %w", id, canonical, err)
	}
	return nil
}

// Delete implements Store. As in CreateFirst, the transaction holds
// SQLite's write lock from its start, so no other Delete (nor a
// SetDisabled) runs between the check and the removal.
func (s *SQLite) Delete(ctx context.Context, id string) error {
	err := inTx(ctx, s.db, nil, func(tx *sql.Tx) error {
		var last bool
		err := tx.QueryRowContext(ctx, `SELECT admin AND NOT disabled AND NOT EXISTS
			(SELECT 1 FROM users WHERE admin AND NOT disabled AND id <> ?) FROM users WHERE id = ?`, id, id).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case last:
			return ErrLastAdmin
		}
		if s.testHookDelete != nil {
			s.testHookDelete()
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pats WHERE user_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		return oneRow(res, err, ErrNotFound)
	})
	if err != nil {
		return fmt.Errorf("account: delete %q: %w", id, err)
	}
	return nil
}

// Secret returns the server secret called name, size bytes long. The first
// call anywhere makes it with crypto/rand and keeps it in the settings
// table; every later call, from this process or another one on the same
// file, returns the same bytes, and so do concurrent first calls (the first
// write wins and every caller reads the winner back). It is an error to ask
// for a size other than the stored one.
func (s *SQLite) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("account: secret %q: size %d is not positive", name, size)
	}
	key := "secret/" + name
	fresh := make([]byte, size)
	rand.Read(fresh) // never fails: crypto/rand crashes the program instead
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`,
		key, fresh); err != nil {
		return nil, fmt.Errorf("account: secret %q: %w", name, err)
	}
	var secret []byte
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, key).Scan(&secret); err != nil {
		return nil, fmt.Errorf("account: secret %q: %w", name, err)
	}
	if len(secret) != size {
		return nil, fmt.Errorf("account: secret %q has %d bytes, not the %d asked for", name, len(secret), size)
	}
	return secret, nil
}

// Setting returns the value of the setting called name, or ErrNoSetting.
// Settings are what a deployment records about itself (see
// cmd/tether's deployment record), beside the secrets.
func (s *SQLite) Setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, settingKey(name)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNoSetting
	}
	if err != nil {
		return nil, fmt.Errorf("account: setting %q: %w", name, err)
	}
	return v, nil
}

// SwapSetting sets the setting called name to value if it still holds
// old, or, for a nil old, if it doesn't exist yet; ErrSettingChanged if
// another writer got there first.
func (s *SQLite) SwapSetting(ctx context.Context, name string, old, value []byte) error {
	var res sql.Result
	var err error
	if old == nil {
		res, err = s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, settingKey(name), value)
	} else {
		res, err = s.db.ExecContext(ctx, `UPDATE settings SET value = ? WHERE name = ? AND value = ?`, value, settingKey(name), old)
	}
	if err := oneRow(res, err, ErrSettingChanged); err != nil {
		return fmt.Errorf("account: set %q: %w", name, err)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (*User, error) {
	var u User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Admin, &u.Disabled, &created); err != nil {
		return nil, err
	}
	u.Created = time.UnixMicro(created).UTC()
	return &u, nil
}

// oneRow returns err, or else none if res changed not exactly one row.
func oneRow(res sql.Result, err, none error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	return one(n, err, none)
}

// randomID returns prefix and 128 random bits in base64url.
func randomID(prefix string) string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

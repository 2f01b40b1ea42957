package account

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/store/postgres/pgmigrate"
)

// Postgres is the Store kept in tables users and settings of a PostgreSQL
// schema (the first in the connections' search_path), for several nodes
// sharing their accounts. It keeps the Store contract exactly as SQLite
// does, errors included.
type Postgres struct {
	pool *pgxpool.Pool
	now  func() time.Time
	// testHookCreateFirst, if set, runs in CreateFirst between its check
	// and its insert: tests run another CreateFirst there.
	testHookCreateFirst func()
}

var _ Store = (*Postgres)(nil)

//go:embed postgres/*.sql
var migrations embed.FS

// NewPostgres returns the store kept in the database behind pool, first
// bringing its tables up to date (package pgmigrate, component "account");
// several nodes may start at once. It doesn't close pool.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool) (*Postgres, error) {
	files, err := fs.Sub(migrations, "postgres")
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	if _, err := pgmigrate.Run(ctx, pool, "account", files); err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return &Postgres{pool: pool, now: time.Now}, nil
}

// Create implements Store.
func (s *Postgres) Create(ctx context.Context, u *User) error {
	name, err := CanonicalName(u.Name)
	if err != nil {
		return err
	}
	id := randomID()
	// PostgreSQL keeps microseconds, as SQLite's store does.
	created := s.now().Truncate(time.Microsecond).UTC()
	tag, err := s.pool.Exec(ctx,
		`INSERT INTO users (id, name, password_hash, admin, disabled, created)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING`,
		id, name, u.PasswordHash, u.Admin, u.Disabled, created)
	if err := oneTag(tag, err, ErrExists); err != nil {
		return fmt.Errorf("account: create %q: %w", name, err)
	}
	u.ID, u.Name, u.Created = id, name, created
	return nil
}

// CreateFirst implements Store. Under READ COMMITTED, two transactions
// that each check for users and insert would both see the table empty and
// both insert (their names differ, so no constraint stops them). So the
// transaction first locks the users table in SHARE ROW EXCLUSIVE mode:
// that mode conflicts with itself and with the ROW EXCLUSIVE lock every
// INSERT, UPDATE and DELETE takes, but not with reads, so concurrent
// CreateFirst calls, and Creates, wait for each other while sign-ins go
// on. The check, a statement after the lock is granted, sees every user
// committed before. The lock lasts one short transaction, once in the
// life of a deployment, and needs the UPDATE privilege on users, which
// SetPassword needs anyway.
//
// Not an advisory lock: its key would be shared by every schema and
// application of the database, and a Create would not take it. Not a
// marker row in settings: it would outlive the users it stood for, and a
// Create would not insert it either.
func (s *Postgres) CreateFirst(ctx context.Context, u *User) error {
	name, err := CanonicalName(u.Name)
	if err != nil {
		return err
	}
	id := randomID()
	created := s.now().Truncate(time.Microsecond).UTC()
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return ErrNotFirst
		}
		if s.testHookCreateFirst != nil {
			s.testHookCreateFirst()
		}
		_, err := tx.Exec(ctx,
			`INSERT INTO users (id, name, password_hash, admin, disabled, created)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			id, name, u.PasswordHash, u.Admin, u.Disabled, created)
		return err
	})
	if err != nil {
		return fmt.Errorf("account: create first user %q: %w", name, err)
	}
	u.ID, u.Name, u.Created = id, name, created
	return nil
}

// ByName implements Store.
func (s *Postgres) ByName(ctx context.Context, name string) (*User, error) {
	canonical, err := CanonicalName(name)
	if err != nil {
		return nil, ErrNotFound
	}
	return s.user(ctx, "name", canonical)
}

// ByID implements Store.
func (s *Postgres) ByID(ctx context.Context, id string) (*User, error) {
	return s.user(ctx, "id", id)
}

// user returns the user whose column (a constant of this file) equals v.
func (s *Postgres) user(ctx context.Context, column, v string) (*User, error) {
	u, err := scanPostgresUser(s.pool.QueryRow(ctx, columns+`WHERE `+column+` = $1`, v))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: user with %s %q: %w", column, v, err)
	}
	return u, nil
}

// List implements Store.
func (s *Postgres) List(ctx context.Context) ([]*User, error) {
	rows, _ := s.pool.Query(ctx, columns+`ORDER BY name`)
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*User, error) {
		return scanPostgresUser(row)
	})
	if err != nil {
		return nil, fmt.Errorf("account: list: %w", err)
	}
	if users == nil {
		users = []*User{}
	}
	return users, nil
}

// Count implements Store.
func (s *Postgres) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("account: count: %w", err)
	}
	return n, nil
}

// SetPassword implements Store.
func (s *Postgres) SetPassword(ctx context.Context, id, old, hash string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3`, hash, id, old)
	if err := oneTag(tag, err, errNotSet); err != nil {
		return whyNotSet(ctx, s, id, err)
	}
	return nil
}

// SetDisabled implements Store.
func (s *Postgres) SetDisabled(ctx context.Context, id string, disabled bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, id)
	if err := oneTag(tag, err, ErrNotFound); err != nil {
		return fmt.Errorf("account: set disabled of %q: %w", id, err)
	}
	return nil
}

// Secret returns the server secret called name, size bytes long, exactly
// as SQLite.Secret does: made once with crypto/rand, then the same bytes
// for every caller on every node, concurrent first calls included; an
// error for a size other than the stored one.
func (s *Postgres) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("account: secret %q: size %d is not positive", name, size)
	}
	key := "secret/" + name
	fresh := make([]byte, size)
	rand.Read(fresh) // never fails: crypto/rand crashes the program instead
	// Two statements, not one: an INSERT that finds a concurrent first
	// call's row waits for it to commit, but a SELECT in the same
	// statement would still read the snapshot from before it.
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, fresh); err != nil {
		return nil, fmt.Errorf("account: secret %q: %w", name, err)
	}
	var secret []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, key).Scan(&secret); err != nil {
		return nil, fmt.Errorf("account: secret %q: %w", name, err)
	}
	if len(secret) != size {
		return nil, fmt.Errorf("account: secret %q has %d bytes, not the %d asked for", name, len(secret), size)
	}
	return secret, nil
}

// Setting returns the value of the setting called name, or ErrNoSetting,
// as SQLite.Setting does.
func (s *Postgres) Setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, settingKey(name)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNoSetting
	}
	if err != nil {
		return nil, fmt.Errorf("account: setting %q: %w", name, err)
	}
	return v, nil
}

// SwapSetting sets a setting if it still holds old (nil: if it doesn't
// exist), as SQLite.SwapSetting does.
func (s *Postgres) SwapSetting(ctx context.Context, name string, old, value []byte) error {
	var tag pgconn.CommandTag
	var err error
	if old == nil {
		tag, err = s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, settingKey(name), value)
	} else {
		tag, err = s.pool.Exec(ctx, `UPDATE settings SET value = $1 WHERE name = $2 AND value = $3`, value, settingKey(name), old)
	}
	if err := oneTag(tag, err, ErrSettingChanged); err != nil {
		return fmt.Errorf("account: set %q: %w", name, err)
	}
	return nil
}

func scanPostgresUser(row pgx.Row) (*User, error) {
	var u User
	if err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Admin, &u.Disabled, &u.Created); err != nil {
		return nil, err
	}
	u.Created = u.Created.UTC()
	return &u, nil
}

// oneTag returns err, or else none if tag says exactly one row changed.
func oneTag(tag pgconn.CommandTag, err, none error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return none
	}
	return nil
}

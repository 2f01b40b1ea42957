package account

import (
	"cmp"
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

// Postgres is the Store, Clients and PATs, and the KeyStorage (machines),
// kept in tables of a PostgreSQL schema (the first in the connections'
// search_path), for several nodes sharing their accounts. It keeps every
// contract exactly as SQLite does, errors included.
type Postgres struct {
	machines // Clients, PATs, KeyStorage; the clock
	pool     *pgxpool.Pool
	// testHookCreateFirst, if set, runs in CreateFirst between its check
	// and its insert: tests run another CreateFirst there.
	testHookCreateFirst func()
	// testHookDelete, if set, runs in Delete between its check and its
	// removal: tests run another Delete there.
	testHookDelete func()
}

var (
	_ Store       = (*Postgres)(nil)
	_ Clients     = (*Postgres)(nil)
	_ Revocations = (*Postgres)(nil)
	_ PATs        = (*Postgres)(nil)
)

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
	return &Postgres{pool: pool, machines: machines{q: pgDB{q: pool, pool: pool}, now: time.Now}}, nil
}

// Create implements Store.
func (s *Postgres) Create(ctx context.Context, u *User) error {
	name, err := CanonicalName(u.Name)
	if err != nil {
		return err
	}
	id := randomID("u_")
	// PostgreSQL keeps microseconds, as SQLite's store does.
	created := s.now().Truncate(time.Microsecond).UTC()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`INSERT INTO users (id, name, password_hash, admin, disabled, created)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING`,
			id, name, u.PasswordHash, u.Admin, u.Disabled, created)
		if err := oneTag(tag, err, ErrExists); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM settings WHERE name LIKE $1`, setupRows)
		return err
	})
	if err != nil {
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
func (s *Postgres) CreateFirst(ctx context.Context, u *User, setup SetupHash, now time.Time) error {
	name, err := CanonicalName(u.Name)
	if err != nil {
		return err
	}
	id := randomID("u_")
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
		if live, err := postgresSetupLive(ctx, tx, setup, now); err != nil || !live {
			return cmp.Or(err, ErrNoSetup)
		}
		if s.testHookCreateFirst != nil {
			s.testHookCreateFirst()
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO users (id, name, password_hash, admin, disabled, created)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			id, name, u.PasswordHash, u.Admin, u.Disabled, created); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM settings WHERE name LIKE $1`, setupRows)
		return err
	})
	if err != nil {
		return fmt.Errorf("account: create first user %q: %w", name, err)
	}
	u.ID, u.Name, u.Created = id, name, created
	return nil
}

// AddSetup implements Store.
func (s *Postgres) AddSetup(ctx context.Context, setup SetupHash, expires time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)`,
		setupKey(setup), setupValue(expires)); err != nil {
		return fmt.Errorf("account: add setup link: %w", err)
	}
	return nil
}

// SetupValid implements Store.
func (s *Postgres) SetupValid(ctx context.Context, setup SetupHash, now time.Time) (bool, error) {
	live, err := postgresSetupLive(ctx, s.pool, setup, now)
	if err != nil {
		return false, fmt.Errorf("account: setup link: %w", err)
	}
	return live, nil
}

// postgresSetupLive reports whether q (the pool or a transaction) keeps
// the setup link setup, unexpired at now.
func postgresSetupLive(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, setup SetupHash, now time.Time) (bool, error) {
	var value []byte
	err := q.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, setupKey(setup)).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil && setupLive(value, now), err
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
	users, err := list(ctx, s.q, scanPostgresUser, columns+`ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("account: list: %w", err)
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

// Rename implements Store.
func (s *Postgres) Rename(ctx context.Context, id, name string) error {
	canonical, err := CanonicalName(name)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET name = $1 WHERE id = $2`, canonical, id)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		err = ErrExists
	}
	if err := oneTag(tag, err, ErrNotFound); err != nil {
		return fmt.Errorf("account: rename %q to %q: %w", id, canonical, err)
	}
	return nil
}

// uniqueViolation is PostgreSQL's SQLSTATE for a UNIQUE constraint broken.
const uniqueViolation = "23505"

// Delete implements Store. Its transaction locks the user's row and the
// rows of every admin who can sign in (FOR UPDATE, in id order, so two
// Deletes never deadlock) before it counts them: a concurrent Delete of
// another admin waits for it, then finds that admin's row gone and
// counts without it. So of two Deletes of the last two admins, the
// second finds the first's admin gone and refuses. SetDisabled, which
// locks the row it changes, is ordered the same way; sign-ins only read
// and never wait.
func (s *Postgres) Delete(ctx context.Context, id string) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id, admin AND NOT disabled FROM users
			WHERE id = $1 OR (admin AND NOT disabled) ORDER BY id FOR UPDATE`, id)
		var rowID string
		var admin, found, isAdmin bool
		otherAdmins := 0 // every row but the user's is an admin who can sign in
		_, err := pgx.ForEachRow(rows, []any{&rowID, &admin}, func() error {
			if rowID == id {
				found, isAdmin = true, admin
			} else {
				otherAdmins++
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case !found:
			return ErrNotFound
		case isAdmin && otherAdmins == 0:
			return ErrLastAdmin
		}
		if s.testHookDelete != nil {
			s.testHookDelete()
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return oneTag(tag, err, ErrNotFound)
	})
	if err != nil {
		return fmt.Errorf("account: delete %q: %w", id, err)
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

func scanPostgresUser(row scanner) (*User, error) {
	var u User
	if err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Admin, &u.Disabled, &u.Created); err != nil {
		return nil, err
	}
	u.Created = u.Created.UTC()
	return &u, nil
}

// oneTag returns err, or else none if tag says not exactly one row
// changed.
func oneTag(tag pgconn.CommandTag, err, none error) error {
	return one(tag.RowsAffected(), err, none)
}

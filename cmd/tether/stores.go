package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

// stores are what every command works on, all in one SQLite file.
type stores struct {
	db       *sql.DB
	sessions *sqlite.Store
	accounts *account.SQLite
}

// openStores opens the SQLite file at path, creating it and its tables if
// they are missing. The session store logs to log; nil logs nothing.
func openStores(ctx context.Context, path string, log *slog.Logger) (*stores, error) {
	db, err := sqlite.Open(path)
	if err != nil {
		return nil, err
	}
	sessions, err := sqlite.New(ctx, db, sqlite.Options{Logger: log})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	accounts, err := account.NewSQLite(ctx, db)
	if err != nil {
		return nil, errors.Join(err, sessions.Close(), db.Close())
	}
	return &stores{db: db, sessions: sessions, accounts: accounts}, nil
}

func (s *stores) Close() error {
	return errors.Join(s.sessions.Close(), s.db.Close())
}

// withUser opens the stores of c.Data and calls do with them, a session
// manager and the user called name.
func withUser(ctx context.Context, c config, name string, do func(st *stores, m *session.Manager, u *account.User) error) (err error) {
	st, err := openStores(ctx, c.Data, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	u, err := st.accounts.ByName(ctx, name)
	if errors.Is(err, account.ErrNotFound) {
		return fmt.Errorf("no user %q in %s: see tether user list", name, c.Data)
	}
	if err != nil {
		return err
	}
	m, err := session.NewManager(st.sessions, session.Config{})
	if err != nil {
		return err
	}
	return do(st, m, u)
}

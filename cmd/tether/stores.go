package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/credential"
	"github.com/tetherauth/tether/internal/server"
	"github.com/tetherauth/tether/internal/throttle"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/postgres"
	"github.com/tetherauth/tether/store/redis"
	"github.com/tetherauth/tether/store/sqlite"
)

// stores are what every command works on. By default everything is in the
// SQLite file --data; --sessions moves sessions to Redis or PostgreSQL,
// --accounts moves users and sign-in throttles to PostgreSQL. The file is opened only if
// something still lives in it.
type stores struct {
	sessions session.Store
	accounts accounts
	throttle server.Throttle
	data     string  // the --data file if it was opened, else ""
	db       *sql.DB // the --data file if it was opened, else nil
	// durability says which failures an acknowledged revocation of the
	// session store survives (SES-15), and which of its settings serve
	// refuses (checkDurability).
	durability func(ctx context.Context) (durability, error)
	closers    []func() error // run in reverse order by Close
}

// durability is what a session store keeps of an acknowledged revocation.
type durability struct {
	survives         string // which failures it survives, for the log
	hostCrashCanUndo bool
	risks            []risk   // settings serve refuses unless accepted (redisRisks)
	unchecked        []string // settings it couldn't read, which serve warns about
}

// accounts is an account store that also keeps the server's secrets and
// what machine tokens need: the clients, the personal access tokens and
// the signing keys.
type accounts interface {
	account.Store
	account.Clients
	account.PATs
	account.Revocations
	KeyStorage() keys.Storage
	Secret(ctx context.Context, name string, size int) ([]byte, error)
	// Setting and SwapSetting keep the deployment record (ADM-01).
	Setting(ctx context.Context, name string) ([]byte, error)
	SwapSetting(ctx context.Context, name string, old, value []byte) error
}

// openTimeout bounds opening the stores (connecting, creating or
// migrating their tables) and the other store calls a command makes
// before it serves: a store that doesn't answer makes the command fail
// with an error after it, rather than hang (MISC-05).
const openTimeout = 30 * time.Second

// openStores opens the stores c names, creating the --data file and the
// tables that are missing, within openTimeout: serve's way. The stores
// log to log; nil logs nothing.
func openStores(ctx context.Context, c config, log *slog.Logger) (*stores, error) {
	return openStoresWith(ctx, c, log, opening{create: true})
}

// opening says how openStoresWith opens the stores.
type opening struct {
	// create makes the --data file and the tables if missing; else a
	// missing file or table is an error that says so (ADM-01).
	create bool
	// accountsOpen, if set, runs once the account store is open, before
	// the session store is: an error stops there.
	accountsOpen func(ctx context.Context, acc accounts) error
}

// openStoresWith is openStores as o says.
func openStoresWith(ctx context.Context, c config, log *slog.Logger, o opening) (_ *stores, err error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	st := &stores{}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.Close())
		}
	}()
	var db *sql.DB // the --data file, opened when first needed
	// file opens the --data file, which holds table (unless o.create
	// makes it) if it is a tether database.
	file := func(table string) (*sql.DB, error) {
		if db != nil {
			return db, nil
		}
		if err := checkDataFile(c.Data, o.create); err != nil {
			return nil, err
		}
		var err error
		if db, err = sqlite.Open(c.Data); err != nil {
			return nil, dataFileError(c.Data, err)
		}
		st.closers = append(st.closers, db.Close)
		st.data, st.db = c.Data, db
		if !o.create {
			return db, checkSQLiteTable(ctx, db, c.Data, table)
		}
		return db, nil
	}

	pools := map[string]*pgxpool.Pool{} // by URL: accounts and sessions in one database share one
	openPool := func(url string) (*pgxpool.Pool, error) {
		if p, ok := pools[url]; ok {
			return p, nil
		}
		pc, err := poolConfig(url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", redactURL(url), err)
		}
		p, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", redactURL(url), err)
		}
		pools[url] = p
		st.closers = append(st.closers, func() error { p.Close(); return nil })
		return p, nil
	}

	if isPostgresURL(c.Accounts) {
		pool, err := openPool(c.Accounts)
		if err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		if err := checkSchema(ctx, pool, "users", o.create); err != nil {
			return nil, fmt.Errorf("accounts: %s: %w", redactURL(c.Accounts), err)
		}
		if st.accounts, err = account.NewPostgres(ctx, pool); err != nil {
			return nil, err
		}
		if st.throttle, err = throttle.NewPostgres(ctx, pool, throttle.Config{}); err != nil {
			return nil, err
		}
	} else {
		db, err := file("users")
		if err != nil {
			return nil, err
		}
		if st.accounts, err = account.NewSQLite(ctx, db); err != nil {
			return nil, err
		}
		if st.throttle, err = throttle.NewSQLite(ctx, db, throttle.Config{}); err != nil {
			return nil, err
		}
	}

	if o.accountsOpen != nil {
		if err := o.accountsOpen(ctx, st.accounts); err != nil {
			return nil, err
		}
	}

	switch {
	case isPostgresURL(c.Sessions):
		pool, err := openPool(c.Sessions)
		if err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		if err := checkSchema(ctx, pool, "sessions", o.create); err != nil {
			return nil, fmt.Errorf("sessions: %s: %w", redactURL(c.Sessions), err)
		}
		ps, err := postgres.New(ctx, pool, postgres.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		st.sessions = ps
		st.durability = func(ctx context.Context) (durability, error) {
			survives, weak, err := postgresDurability(ctx, pool)
			return durability{survives: survives, hostCrashCanUndo: weak}, err
		}
		st.closers = append(st.closers, ps.Close)
	case c.Sessions != "":
		rs, err := redis.New(ctx, c.Sessions, redis.Options{KeyPrefix: c.RedisPrefix, MinReplicas: c.MinReplicas, Logger: log,
			DialTimeout: redisTimeout(c.StoreTimeout), Timeout: redisTimeout(c.StoreTimeout), WaitTimeout: c.StoreTimeout / 2})
		if err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		st.sessions = rs
		st.durability = func(ctx context.Context) (durability, error) {
			d, err := rs.Durability(ctx)
			if err != nil {
				return durability{}, err
			}
			risks, unchecked := redisRisks(d)
			return durability{survives: d.String(), hostCrashCanUndo: d.HostCrashCanUndo(), risks: risks, unchecked: unchecked}, nil
		}
		st.closers = append(st.closers, rs.Close)
	default:
		db, err := file("sessions")
		if err != nil {
			return nil, err
		}
		ss, err := sqlite.New(ctx, db, sqlite.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		st.sessions = ss
		st.durability = func(context.Context) (durability, error) {
			return durability{survives: "survives a host crash: revocations are fsynced (synchronous FULL); not the loss of the machine: one file"}, nil
		}
		st.closers = append(st.closers, ss.Close)
	}
	return st, nil
}

// postgresDurability is stores.durability for sessions in PostgreSQL:
// revocations commit with synchronous_commit on (store/postgres), so what
// decides is whether the server fsyncs, and whether standbys confirm.
func postgresDurability(ctx context.Context, pool *pgxpool.Pool) (string, bool, error) {
	var fsync, standbys string
	err := pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_standby_names')`).Scan(&fsync, &standbys)
	if err != nil {
		return "", true, err
	}
	if fsync != "on" {
		return "survives a PostgreSQL process crash, not a host crash: the server runs with fsync off", true, nil
	}
	if standbys == "" {
		return "survives a host crash: revocations commit with synchronous_commit on; not the loss of the database's machine: no synchronous standby", false, nil
	}
	return "survives a host crash and the loss of the database's machine: revocations commit with synchronous_commit on, confirmed by the standbys " + standbys, false, nil
}

// The Redis store's wait for --redis-min-replicas (WaitTimeout) is half
// the store timeout, so that too few replicas fail a write with
// ErrNotReplicated, which says why, before the store timeout cuts it
// short.
//
// redisTimeout is the Redis client's dial and command timeout (after which
// it takes a connection for dead and closes it) for a store timeout of d:
// d, but at least a second, so that a short store timeout fails requests
// quickly without tearing down connections over a hiccup, and at most
// store/redis's default of 3 s.
func redisTimeout(d time.Duration) time.Duration {
	return min(max(d, time.Second), 3*time.Second)
}

// Close closes what openStores opened, the last opened first.
func (s *stores) Close() error {
	var errs []error
	for _, c := range slices.Backward(s.closers) {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// ready reports whether every store answers, and the --data file, if
// open, takes a write (a full disk fails it): the server's readiness.
func (s *stores) ready(ctx context.Context) error {
	if s.db != nil {
		if err := sqlite.Writable(ctx, s.db); err != nil {
			return fmt.Errorf("data file: %w", err)
		}
	}
	if err := s.sessionsReachable(ctx); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	if err := s.accountsReachable(ctx); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

// sessionsReachable reports whether the session store answers: a read
// of a session that can't exist, which writes nothing (ADM-01).
func (s *stores) sessionsReachable(ctx context.Context) error {
	if _, err := s.sessions.Get(ctx, session.Hash{}); !errors.Is(err, session.ErrNotFound) {
		return err
	}
	return nil
}

// accountsReachable reports whether the account store answers: a count
// of the users, which writes nothing (ADM-01).
func (s *stores) accountsReachable(ctx context.Context) error {
	_, err := s.accounts.Count(ctx)
	return err
}

// adminStoreTimeout bounds each account-store call an admin command
// makes once the stores are open (MISC-05): longer than serve's
// --store-timeout, since a command may wait its turn behind a busy
// server's writes, and no page waits on it.
const adminStoreTimeout = 10 * time.Second

// users is the account store as an admin command calls it: every call
// bounded by adminStoreTimeout.
func (s *stores) users() account.Store {
	return server.BoundedAccounts(s.accounts, adminStoreTimeout)
}

// admin is what an admin command acts through: a session manager and the
// credential service over the stores, and the personal access tokens (see
// withUser).
type admin struct {
	sessions *session.Manager
	creds    *credential.Service
	pats     account.PATs
}

// withUser opens the stores c names as an admin command does
// (openForAdmin) and calls do with an admin over them (the password
// policy's minimum length is c's) and the user called name.
func withUser(ctx context.Context, c config, name string, do func(a admin, u *account.User) error) (err error) {
	st, err := openForAdmin(ctx, c)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	users := st.users()
	u, err := users.ByName(ctx, name)
	if errors.Is(err, account.ErrNotFound) {
		return fmt.Errorf("no user %q: see tether user list", name)
	}
	if err != nil {
		return err
	}
	m, err := session.NewManager(st.sessions, session.Config{})
	if err != nil {
		return err
	}
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return err
	}
	creds, err := credential.New(credential.Config{
		Accounts: users,
		Sessions: m,
		Hasher:   hasher,
		Policy:   password.Policy{MinLength: c.MinPassword},
		PATs:     st.accounts,

		KeepTokensOnPasswordChange: c.KeepTokens,
	})
	if err != nil {
		return err
	}
	return do(admin{sessions: m, creds: creds, pats: st.accounts}, u)
}

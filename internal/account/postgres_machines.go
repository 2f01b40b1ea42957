package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tetherauth/tether/keys"
)

// Postgres keeps clients and personal access tokens as SQLite does, with
// the same statements (machines.go), in timestamptz and text[] columns
// (migration 0002).

// CreateClient implements Clients.
func (s *Postgres) CreateClient(ctx context.Context, c *Client) error {
	n, err := newClient(c, s.now())
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, insertClient, n.ID, n.SecretHash[:], pgSet(n.Scopes), pgSet(n.Audiences),
		int64(n.MaxTTL), n.Disabled, n.Created)
	if err := oneTag(tag, err, ErrClientExists); err != nil {
		return fmt.Errorf("account: create client %q: %w", c.ID, err)
	}
	*c = n
	return nil
}

// Client implements Clients.
func (s *Postgres) Client(ctx context.Context, id string) (*Client, error) {
	c, err := scanPostgresClient(s.pool.QueryRow(ctx, clientColumns+`WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: client %q: %w", id, err)
	}
	return c, nil
}

// ClientList implements Clients.
func (s *Postgres) ClientList(ctx context.Context) ([]*Client, error) {
	clients, err := pgRows(ctx, s.pool, scanPostgresClient, clientColumns+`ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("account: list clients: %w", err)
	}
	return clients, nil
}

// SetClientSecret implements Clients.
func (s *Postgres) SetClientSecret(ctx context.Context, id string, h SecretHash) error {
	return s.updateClient(ctx, "secret of", setClientSecret, h[:], id)
}

// SetClientDisabled implements Clients.
func (s *Postgres) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	return s.updateClient(ctx, "disabled flag of", setClientDisabled, disabled, id)
}

// DeleteClient implements Clients.
func (s *Postgres) DeleteClient(ctx context.Context, id string) error {
	return s.updateClient(ctx, "delete", deleteClient, id)
}

// updateClient runs stmt, which changes the client that its last argument
// names, for the action what.
func (s *Postgres) updateClient(ctx context.Context, what, stmt string, args ...any) error {
	tag, err := s.pool.Exec(ctx, stmt, args...)
	if err := oneTag(tag, err, ErrClientNotFound); err != nil {
		return fmt.Errorf("account: %s client %q: %w", what, args[len(args)-1], err)
	}
	return nil
}

// foreignKeyViolation is PostgreSQL's SQLSTATE for a REFERENCES
// constraint broken.
const foreignKeyViolation = "23503"

// CreatePAT implements PATs. The reference to the user is checked with
// the user's row locked (FOR KEY SHARE), so a Delete of the user either
// comes first (ErrNotFound) or waits and removes the new token with the
// user.
func (s *Postgres) CreatePAT(ctx context.Context, p *PAT) error {
	n, err := newPAT(p, s.now())
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO pats (id, user_id, name, hash, scopes, created, expires)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, n.ID, n.UserID, n.Name, n.Hash[:], pgSet(n.Scopes), n.Created, n.Expires)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("account: create personal access token of %q: %w", p.UserID, err)
	}
	*p = n
	return nil
}

// PATByHash implements PATs.
func (s *Postgres) PATByHash(ctx context.Context, h SecretHash) (*PAT, error) {
	p, err := scanPostgresPAT(s.pool.QueryRow(ctx, patColumns+`FROM pats WHERE hash = $1`, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrPATNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: personal access token by hash: %w", err)
	}
	return p, nil
}

// PATList implements PATs.
func (s *Postgres) PATList(ctx context.Context, userID string) ([]*PAT, error) {
	pats, err := pgRows(ctx, s.pool, scanPostgresPAT, patColumns+`FROM pats WHERE user_id = $1 ORDER BY created, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("account: list personal access tokens of %q: %w", userID, err)
	}
	return pats, nil
}

// DeletePAT implements PATs.
func (s *Postgres) DeletePAT(ctx context.Context, userID, id string) (*PAT, error) {
	p, err := scanPostgresPAT(s.pool.QueryRow(ctx, deletePAT, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrPATNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: delete personal access token %q of %q: %w", id, userID, err)
	}
	return p, nil
}

// TouchPAT implements PATs.
func (s *Postgres) TouchPAT(ctx context.Context, id string, t time.Time) error {
	if _, err := s.pool.Exec(ctx, touchPAT, micro(t), id); err != nil {
		return fmt.Errorf("account: touch personal access token %q: %w", id, err)
	}
	return nil
}

// KeyStorage returns the storage of the signing-key ring in s's database.
func (s *Postgres) KeyStorage() keys.Storage { return postgresKeys{s} }

// postgresKeys is the keys.Storage of a PostgreSQL store.
type postgresKeys struct{ s *Postgres }

// Load implements keys.Storage. Its transaction is REPEATABLE READ, so
// both statements read one snapshot.
func (k postgresKeys) Load(ctx context.Context) ([]keys.Record, uint64, error) {
	var recs []keys.Record
	var version uint64
	err := pgx.BeginTxFunc(ctx, k.s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var v int64
		if err := tx.QueryRow(ctx, keyRingVersion).Scan(&v); err != nil {
			return err
		}
		var err error
		version = uint64(v)
		recs, err = pgRows(ctx, tx, scanPostgresRecord, keyRecords)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("account: load the key ring: %w", err)
	}
	return recs, version, nil
}

// Save implements keys.Storage. Its write of the version row (swapKeyRing)
// locks the row until the commit; under READ COMMITTED, a concurrent Save
// of the same version waits for it, then finds the version changed, or
// the row there, and writes nothing (ErrConflict).
func (k postgresKeys) Save(ctx context.Context, version uint64, recs []keys.Record) (uint64, error) {
	err := pgx.BeginTxFunc(ctx, k.s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		stmt, args := swapKeyRing(version)
		tag, err := tx.Exec(ctx, stmt, args...)
		if err := oneTag(tag, err, keys.ErrConflict); err != nil {
			return err
		}
		if k.s.testHookSaveKeys != nil {
			k.s.testHookSaveKeys()
		}
		for _, r := range recs {
			if _, err := tx.Exec(ctx, upsertKeyRecord, r.Kid, r.Alg, append([]byte{}, r.Private...), r.Sealed,
				micro(r.Created), micro(r.SignFrom), nullTime(r.SignUntil), nullTime(r.RemoveAt)); err != nil {
				return fmt.Errorf("key %s: %w", r.Kid, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("account: save the key ring: %w", err)
	}
	return version + 1, nil
}

// pgRows runs query on q (the pool or a transaction) and returns a slice
// of what scan makes of each row: empty, not nil, when there are none.
func pgRows[T any](ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	rows, _ := q.Query(ctx, query, args...) // CollectRows reports its error
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []T{}
	}
	return list, nil
}

func scanPostgresClient(row pgx.Row) (*Client, error) {
	var c Client
	var hash []byte
	var maxTTL int64
	err := row.Scan(&c.ID, &hash, &c.Scopes, &c.Audiences, &maxTTL, &c.Disabled, &c.Created)
	if err == nil {
		err = secretHash(&c.SecretHash, hash)
	}
	if err != nil {
		return nil, err
	}
	c.Scopes, c.Audiences, c.MaxTTL, c.Created = set(c.Scopes), set(c.Audiences), time.Duration(maxTTL), c.Created.UTC()
	return &c, nil
}

func scanPostgresPAT(row pgx.Row) (*PAT, error) {
	var p PAT
	var hash []byte
	var lastUsed *time.Time
	err := row.Scan(&p.ID, &p.UserID, &p.Name, &hash, &p.Scopes, &p.Created, &p.Expires, &lastUsed)
	if err == nil {
		err = secretHash(&p.Hash, hash)
	}
	if err != nil {
		return nil, err
	}
	p.Scopes, p.Created, p.Expires, p.LastUsed = set(p.Scopes), p.Created.UTC(), p.Expires.UTC(), fromNullTime(lastUsed)
	return &p, nil
}

func scanPostgresRecord(row pgx.Row) (keys.Record, error) {
	var r keys.Record
	var private []byte
	var signUntil, removeAt *time.Time
	if err := row.Scan(&r.Kid, &r.Alg, &private, &r.Sealed, &r.Created, &r.SignFrom, &signUntil, &removeAt); err != nil {
		return keys.Record{}, err
	}
	r.Private, r.Created, r.SignFrom = private, r.Created.UTC(), r.SignFrom.UTC()
	r.SignUntil, r.RemoveAt = fromNullTime(signUntil), fromNullTime(removeAt)
	return r, nil
}

// pgSet is how PostgreSQL keeps a set of strings: a text[], never NULL.
func pgSet(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nullTime is how PostgreSQL keeps a time that may be zero: NULL, or a
// timestamptz.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = micro(t)
	return &t
}

func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

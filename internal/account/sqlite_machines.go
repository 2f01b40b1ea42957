package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tetherauth/tether/keys"
)

// SQLite keeps clients and personal access tokens as Postgres does, with
// the same statements (machines.go), but times in Unix microseconds and
// sets of strings as JSON arrays.

// CreateClient implements Clients.
func (s *SQLite) CreateClient(ctx context.Context, c *Client) error {
	n, err := newClient(c, s.now())
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, insertClient, n.ID, n.SecretHash[:], jsonSet(n.Scopes), jsonSet(n.Audiences),
		int64(n.MaxTTL), n.Disabled, n.Created.UnixMicro())
	if err := oneRow(res, err, ErrClientExists); err != nil {
		return fmt.Errorf("account: create client %q: %w", c.ID, err)
	}
	*c = n
	return nil
}

// Client implements Clients.
func (s *SQLite) Client(ctx context.Context, id string) (*Client, error) {
	c, err := scanSQLiteClient(s.db.QueryRowContext(ctx, clientColumns+`WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: client %q: %w", id, err)
	}
	return c, nil
}

// ClientList implements Clients.
func (s *SQLite) ClientList(ctx context.Context) ([]*Client, error) {
	clients, err := sqliteRows(ctx, s.db, scanSQLiteClient, clientColumns+`ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("account: list clients: %w", err)
	}
	return clients, nil
}

// SetClientSecret implements Clients.
func (s *SQLite) SetClientSecret(ctx context.Context, id string, h SecretHash) error {
	return s.updateClient(ctx, "secret of", setClientSecret, h[:], id)
}

// SetClientDisabled implements Clients.
func (s *SQLite) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	return s.updateClient(ctx, "disabled flag of", setClientDisabled, disabled, id)
}

// DeleteClient implements Clients.
func (s *SQLite) DeleteClient(ctx context.Context, id string) error {
	return s.updateClient(ctx, "delete", deleteClient, id)
}

// updateClient runs stmt, which changes the client that its last argument
// names, for the action what.
func (s *SQLite) updateClient(ctx context.Context, what, stmt string, args ...any) error {
	res, err := s.db.ExecContext(ctx, stmt, args...)
	if err := oneRow(res, err, ErrClientNotFound); err != nil {
		return fmt.Errorf("account: %s client %q: %w", what, args[len(args)-1], err)
	}
	return nil
}

// CreatePAT implements PATs. SQLite runs one writer at a time, so the
// user can't go between the statement's check and its insert.
func (s *SQLite) CreatePAT(ctx context.Context, p *PAT) error {
	n, err := newPAT(p, s.now())
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO pats (id, user_id, name, hash, scopes, created, expires)
		SELECT $1, id, $3, $4, $5, $6, $7 FROM users WHERE id = $2`, n.ID, n.UserID, n.Name, n.Hash[:], jsonSet(n.Scopes),
		n.Created.UnixMicro(), n.Expires.UnixMicro())
	if err := oneRow(res, err, ErrNotFound); err != nil {
		return fmt.Errorf("account: create personal access token of %q: %w", p.UserID, err)
	}
	*p = n
	return nil
}

// PATByHash implements PATs.
func (s *SQLite) PATByHash(ctx context.Context, h SecretHash) (*PAT, error) {
	p, err := scanSQLitePAT(s.db.QueryRowContext(ctx, patColumns+`FROM pats WHERE hash = $1`, h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrPATNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: personal access token by hash: %w", err)
	}
	return p, nil
}

// PATList implements PATs.
func (s *SQLite) PATList(ctx context.Context, userID string) ([]*PAT, error) {
	pats, err := sqliteRows(ctx, s.db, scanSQLitePAT, patColumns+`FROM pats WHERE user_id = $1 ORDER BY created, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("account: list personal access tokens of %q: %w", userID, err)
	}
	return pats, nil
}

// DeletePAT implements PATs.
func (s *SQLite) DeletePAT(ctx context.Context, userID, id string) (*PAT, error) {
	p, err := scanSQLitePAT(s.db.QueryRowContext(ctx, deletePAT, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrPATNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: delete personal access token %q of %q: %w", id, userID, err)
	}
	return p, nil
}

// TouchPAT implements PATs.
func (s *SQLite) TouchPAT(ctx context.Context, id string, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, touchPAT, t.UnixMicro(), id); err != nil {
		return fmt.Errorf("account: touch personal access token %q: %w", id, err)
	}
	return nil
}

// KeyStorage returns the storage of the signing-key ring in s's database.
func (s *SQLite) KeyStorage() keys.Storage { return sqliteKeys{s} }

// sqliteKeys is the keys.Storage of a SQLite store.
type sqliteKeys struct{ s *SQLite }

// Load implements keys.Storage. Its transaction begins deferred (read
// only), so it reads one snapshot of the file without taking the write
// lock.
func (k sqliteKeys) Load(ctx context.Context) ([]keys.Record, uint64, error) {
	var recs []keys.Record
	var version uint64
	err := inTx(ctx, k.s.db, &sql.TxOptions{ReadOnly: true}, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, keyRingVersion).Scan(&version); err != nil {
			return err
		}
		var err error
		recs, err = sqliteRows(ctx, tx, scanSQLiteRecord, keyRecords)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("account: load the key ring: %w", err)
	}
	return recs, version, nil
}

// Save implements keys.Storage. Its transaction holds SQLite's write lock
// from its start (store/sqlite.Open's BEGIN IMMEDIATE), so no other Save
// runs between its check of the version and its commit.
func (k sqliteKeys) Save(ctx context.Context, version uint64, recs []keys.Record) (uint64, error) {
	err := inTx(ctx, k.s.db, nil, func(tx *sql.Tx) error {
		stmt, args := swapKeyRing(version)
		res, err := tx.ExecContext(ctx, stmt, args...)
		if err := oneRow(res, err, keys.ErrConflict); err != nil {
			return err
		}
		if k.s.testHookSaveKeys != nil {
			k.s.testHookSaveKeys()
		}
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, upsertKeyRecord, r.Kid, r.Alg, append([]byte{}, r.Private...), r.Sealed,
				r.Created.UnixMicro(), r.SignFrom.UnixMicro(), nullMicros(r.SignUntil), nullMicros(r.RemoveAt)); err != nil {
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

// sqliteRows runs query on q (the database or a transaction) and returns
// a slice of what scan makes of each row: empty, not nil, when there are
// none.
func sqliteRows[T any](ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

func scanSQLiteClient(row scanner) (*Client, error) {
	var c Client
	var hash []byte
	var scopes, audiences string
	var maxTTL, created int64
	err := row.Scan(&c.ID, &hash, &scopes, &audiences, &maxTTL, &c.Disabled, &created)
	if err == nil {
		err = errors.Join(secretHash(&c.SecretHash, hash), parseJSONSet(&c.Scopes, scopes), parseJSONSet(&c.Audiences, audiences))
	}
	if err != nil {
		return nil, err
	}
	c.MaxTTL, c.Created = time.Duration(maxTTL), time.UnixMicro(created).UTC()
	return &c, nil
}

func scanSQLitePAT(row scanner) (*PAT, error) {
	var p PAT
	var hash []byte
	var scopes string
	var created, expires int64
	var lastUsed sql.Null[int64]
	err := row.Scan(&p.ID, &p.UserID, &p.Name, &hash, &scopes, &created, &expires, &lastUsed)
	if err == nil {
		err = errors.Join(secretHash(&p.Hash, hash), parseJSONSet(&p.Scopes, scopes))
	}
	if err != nil {
		return nil, err
	}
	p.Created, p.Expires, p.LastUsed = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC(), fromNullMicros(lastUsed)
	return &p, nil
}

func scanSQLiteRecord(row scanner) (keys.Record, error) {
	var r keys.Record
	var private []byte
	var created, signFrom int64
	var signUntil, removeAt sql.Null[int64]
	if err := row.Scan(&r.Kid, &r.Alg, &private, &r.Sealed, &created, &signFrom, &signUntil, &removeAt); err != nil {
		return keys.Record{}, err
	}
	r.Private, r.Created, r.SignFrom = private, time.UnixMicro(created).UTC(), time.UnixMicro(signFrom).UTC()
	r.SignUntil, r.RemoveAt = fromNullMicros(signUntil), fromNullMicros(removeAt)
	return r, nil
}

// jsonSet is how SQLite keeps a set of strings: a JSON array.
func jsonSet(s []string) string {
	if s == nil {
		return "[]"
	}
	b, _ := json.Marshal(s) // a []string always marshals
	return string(b)
}

// parseJSONSet sets *s to the set that text, a jsonSet, holds.
func parseJSONSet(s *[]string, text string) error {
	var list []string
	if err := json.Unmarshal([]byte(text), &list); err != nil {
		return fmt.Errorf("a set of strings: %w", err)
	}
	*s = set(list)
	return nil
}

// nullMicros is how SQLite keeps a time that may be zero: NULL, or Unix
// microseconds.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(v sql.Null[int64]) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.V).UTC()
}

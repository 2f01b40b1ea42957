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

// The machine part of both stores is written once, over machineDB, which
// SQLite and PostgreSQL each implement in a few lines: they run the same
// statements (machines.go) and read rows into the same Scanners. Where
// they keep a value differently, machineDB says how to write it (times:
// Unix microseconds in SQLite, timestamptz in PostgreSQL), and the
// Scanners below read either form. Sets of strings are JSON arrays in
// text columns in both.

// machineDB is a store's database, or a transaction of it, as the machine
// part uses it.
type machineDB interface {
	// exec runs stmt and returns how many rows it changed.
	exec(ctx context.Context, stmt string, args ...any) (int64, error)
	// queryRow runs a query of one row; its Scan's error is
	// sql.ErrNoRows (errors.Is) when there is none.
	queryRow(ctx context.Context, query string, args ...any) scanner
	// query runs query and calls each for every row, until it fails.
	query(ctx context.Context, query string, args []any, each func(scanner) error) error
	// inTx runs f in a transaction, committed if f returns nil. A
	// readOnly one reads one snapshot of the database; any other excludes
	// every other transaction's write to the rows it writes, until it ends.
	inTx(ctx context.Context, readOnly bool, f func(machineDB) error) error
	// time returns t as the database keeps it; NULL for the zero time.
	time(t time.Time) any
}

// machines implements Clients, PATs and KeyStorage for the store that
// embeds it.
type machines struct {
	q   machineDB
	now func() time.Time
	// testHookSaveKeys, if set, runs in KeyStorage's Save between its
	// check of the version and its commit: tests run another Save there.
	testHookSaveKeys func()
}

// RecordRevocation implements Revocations.
func (m *machines) RecordRevocation(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" || exp.IsZero() {
		return errors.New("account: record revocation: a jti and an exp are required")
	}
	err := m.q.inTx(ctx, false, func(tx machineDB) error {
		if _, err := tx.exec(ctx, pruneRevocations, tx.time(micro(m.now()))); err != nil {
			return err
		}
		_, err := tx.exec(ctx, recordRevocation, jti, tx.time(micro(exp)))
		return err
	})
	if err != nil {
		return fmt.Errorf("account: record revocation: %w", err)
	}
	return nil
}

// RevocationRecorded implements Revocations.
func (m *machines) RevocationRecorded(ctx context.Context, jti string) (bool, error) {
	var n int64
	if err := m.q.queryRow(ctx, revocationRecorded, jti).Scan(&n); err != nil {
		return false, fmt.Errorf("account: read revocation: %w", err)
	}
	return n > 0, nil
}

// RecordedRevocations implements Revocations.
func (m *machines) RecordedRevocations(ctx context.Context, now time.Time) ([]RecordedRevocation, error) {
	var list []RecordedRevocation
	err := m.q.query(ctx, recordedRevocations, []any{m.q.time(micro(now))}, func(row scanner) error {
		var r RecordedRevocation
		if err := row.Scan(&r.JTI, timeDest{&r.Exp}); err != nil {
			return err
		}
		list = append(list, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("account: read revocations: %w", err)
	}
	return list, nil
}

// CreateClient implements Clients.
func (m *machines) CreateClient(ctx context.Context, c *Client) error {
	n, err := newClient(c, m.now())
	if err != nil {
		return err
	}
	changed, err := m.q.exec(ctx, insertClient, n.ID, n.SecretHash[:], jsonList(n.Scopes), jsonList(n.Audiences),
		int64(n.MaxTTL), n.Disabled, m.q.time(n.Created))
	if err := one(changed, err, ErrClientExists); err != nil {
		return fmt.Errorf("account: create client %q: %w", c.ID, err)
	}
	*c = n
	return nil
}

// Client implements Clients.
func (m *machines) Client(ctx context.Context, id string) (*Client, error) {
	c, err := scanClient(m.q.queryRow(ctx, clientColumns+`WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: client %q: %w", id, err)
	}
	return c, nil
}

// ClientList implements Clients.
func (m *machines) ClientList(ctx context.Context) ([]*Client, error) {
	clients, err := list(ctx, m.q, scanClient, clientColumns+`ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("account: list clients: %w", err)
	}
	return clients, nil
}

// SetClientSecret implements Clients.
func (m *machines) SetClientSecret(ctx context.Context, id string, h SecretHash) error {
	return m.changeClient(ctx, "set the secret of", setClientSecret, h[:], id)
}

// SetClientDisabled implements Clients.
func (m *machines) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	return m.changeClient(ctx, "set the disabled flag of", setClientDisabled, disabled, id)
}

// DeleteClient implements Clients.
func (m *machines) DeleteClient(ctx context.Context, id string) error {
	return m.changeClient(ctx, "delete", deleteClient, id)
}

// changeClient runs stmt, which changes the client its last argument
// names: what says how, for the error.
func (m *machines) changeClient(ctx context.Context, what, stmt string, args ...any) error {
	changed, err := m.q.exec(ctx, stmt, args...)
	if err := one(changed, err, ErrClientNotFound); err != nil {
		return fmt.Errorf("account: %s client %q: %w", what, args[len(args)-1], err)
	}
	return nil
}

// CreatePAT implements PATs. Its one statement inserts nothing when the
// user is not there; a Delete of the user that runs at once either
// comes first (ErrNotFound) or removes the new token with the user (see
// each backend's Delete).
func (m *machines) CreatePAT(ctx context.Context, p *PAT) error {
	n, err := newPAT(p, m.now())
	if err != nil {
		return err
	}
	changed, err := m.q.exec(ctx, insertPAT, n.ID, n.UserID, n.Name, n.Hash[:], jsonList(n.Scopes),
		m.q.time(n.Created), m.q.time(n.Expires), int64(n.Gen))
	if err := one(changed, err, ErrNotFound); err != nil {
		return fmt.Errorf("account: create personal access token of %q: %w", p.UserID, err)
	}
	*p = n
	return nil
}

// PATByHash implements PATs.
func (m *machines) PATByHash(ctx context.Context, h SecretHash) (*PAT, error) {
	p, err := scanPAT(m.q.queryRow(ctx, patColumns+`FROM pats WHERE hash = $1`, h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrPATNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: personal access token by hash: %w", err)
	}
	return p, nil
}

// PATList implements PATs.
func (m *machines) PATList(ctx context.Context, userID string) ([]*PAT, error) {
	pats, err := list(ctx, m.q, scanPAT, patColumns+`FROM pats WHERE user_id = $1 ORDER BY created, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("account: list personal access tokens of %q: %w", userID, err)
	}
	return pats, nil
}

// DeletePAT implements PATs.
func (m *machines) DeletePAT(ctx context.Context, userID, id string) (*PAT, error) {
	p, err := scanPAT(m.q.queryRow(ctx, deletePAT, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrPATNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: delete personal access token %q of %q: %w", id, userID, err)
	}
	return p, nil
}

// DeletePATs implements PATs.
func (m *machines) DeletePATs(ctx context.Context, userID string) (int, error) {
	n, err := m.q.exec(ctx, deletePATs, userID)
	if err != nil {
		return 0, fmt.Errorf("account: delete the personal access tokens of %q: %w", userID, err)
	}
	return int(n), nil
}

// TouchPAT implements PATs.
func (m *machines) TouchPAT(ctx context.Context, id string, t time.Time) error {
	if _, err := m.q.exec(ctx, touchPAT, m.q.time(micro(t)), id); err != nil {
		return fmt.Errorf("account: touch personal access token %q: %w", id, err)
	}
	return nil
}

// KeyStorage returns the storage of the signing-key ring in the store's
// database.
func (m *machines) KeyStorage() keys.Storage { return keyStorage{m} }

// keyStorage is the keys.Storage of a store.
type keyStorage struct{ m *machines }

// Load implements keys.Storage, reading the version and the records in
// one snapshot.
func (k keyStorage) Load(ctx context.Context) ([]keys.Record, uint64, error) {
	var recs []keys.Record
	var version int64
	err := k.m.q.inTx(ctx, true, func(tx machineDB) error {
		if err := tx.queryRow(ctx, keyRingVersion).Scan(&version); err != nil {
			return err
		}
		var err error
		recs, err = list(ctx, tx, scanRecord, keyRecords)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("account: load the key ring: %w", err)
	}
	return recs, uint64(version), nil
}

// Save implements keys.Storage. Its transaction writes the version row
// first (swapKeyRing), so a concurrent Save of the same version waits for
// it to end, then finds the version changed and writes nothing
// (ErrConflict).
func (k keyStorage) Save(ctx context.Context, version uint64, recs []keys.Record) (uint64, error) {
	err := k.m.q.inTx(ctx, false, func(tx machineDB) error {
		stmt, args := swapKeyRing(version)
		changed, err := tx.exec(ctx, stmt, args...)
		if err := one(changed, err, keys.ErrConflict); err != nil {
			return err
		}
		if k.m.testHookSaveKeys != nil {
			k.m.testHookSaveKeys()
		}
		for _, r := range recs {
			if _, err := tx.exec(ctx, upsertKeyRecord, r.Kid, r.Alg, append([]byte{}, r.Private...), r.Sealed,
				tx.time(micro(r.Created)), tx.time(micro(r.SignFrom)),
				tx.time(micro(r.SignUntil)), tx.time(micro(r.RemoveAt))); err != nil {
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

// list runs query on q and returns what scan makes of each row: an empty
// slice, not nil, when there are none.
func list[T any](ctx context.Context, q machineDB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	out := []T{}
	err := q.query(ctx, query, args, func(row scanner) error {
		v, err := scan(row)
		out = append(out, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// one returns err, or else none if changed is not 1: how many rows a
// statement changed.
func one(changed int64, err, none error) error {
	if err == nil && changed != 1 {
		return none
	}
	return err
}

func scanClient(row scanner) (*Client, error) {
	var c Client
	err := row.Scan(&c.ID, hashDest{&c.SecretHash}, listDest{&c.Scopes}, listDest{&c.Audiences}, (*int64)(&c.MaxTTL),
		&c.Disabled, timeDest{&c.Created})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func scanPAT(row scanner) (*PAT, error) {
	var p PAT
	var gen int64
	err := row.Scan(&p.ID, &p.UserID, &p.Name, hashDest{&p.Hash}, listDest{&p.Scopes},
		timeDest{&p.Created}, timeDest{&p.Expires}, timeDest{&p.LastUsed}, &gen)
	if err != nil {
		return nil, err
	}
	p.Gen = uint64(gen)
	return &p, nil
}

func scanRecord(row scanner) (keys.Record, error) {
	var r keys.Record
	err := row.Scan(&r.Kid, &r.Alg, (*[]byte)(&r.Private), &r.Sealed,
		timeDest{&r.Created}, timeDest{&r.SignFrom}, timeDest{&r.SignUntil}, timeDest{&r.RemoveAt})
	return r, err
}

// timeDest reads a time as either database keeps it: Unix microseconds
// (SQLite) or a time (PostgreSQL), in UTC; NULL is the zero time.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	case time.Time:
		*d.t = v.UTC()
	default:
		return fmt.Errorf("a time can't be a %T", v)
	}
	return nil
}

// hashDest reads a SecretHash.
type hashDest struct{ h *SecretHash }

func (d hashDest) Scan(v any) error {
	b, ok := v.([]byte)
	if !ok || len(b) != len(d.h) {
		return fmt.Errorf("a secret hash can't be %T of %d bytes", v, len(b))
	}
	copy(d.h[:], b)
	return nil
}

// listDest reads a list of strings as jsonList wrote it, in its order;
// an empty one is nil.
type listDest struct{ s *[]string }

func (d listDest) Scan(v any) error {
	var text []byte
	switch v := v.(type) {
	case string:
		text = []byte(v)
	case []byte:
		text = v
	}
	var list []string
	if err := json.Unmarshal(text, &list); err != nil {
		return fmt.Errorf("a set of strings: %w", err)
	}
	if len(list) == 0 {
		list = nil
	}
	*d.s = list
	return nil
}

// jsonList is how both databases keep a list of strings (scopes, a
// client's audiences): a JSON array, in a text column.
func jsonList(s []string) string {
	if s == nil {
		return "[]"
	}
	b, _ := json.Marshal(s) // a []string always marshals
	return string(b)
}

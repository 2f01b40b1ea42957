package account

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgDB is the machineDB of a Postgres store: its pool, or a transaction
// of it.
type pgDB struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
	pool *pgxpool.Pool // for transactions
}

// foreignKeyViolation is PostgreSQL's SQLSTATE for a REFERENCES
// constraint broken.
const foreignKeyViolation = "23503"

// exec counts a REFERENCES constraint broken as no row changed: the only
// one, pats.user_id, is broken by an insert that a Delete of the user
// came before (the insert's check of the user waits for the Delete, which
// holds the user's row).
func (d pgDB) exec(ctx context.Context, stmt string, args ...any) (int64, error) {
	tag, err := d.q.Exec(ctx, stmt, args...)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation {
		return 0, nil
	}
	return tag.RowsAffected(), err
}

func (d pgDB) queryRow(ctx context.Context, query string, args ...any) scanner {
	return d.q.QueryRow(ctx, query, args...)
}

func (d pgDB) query(ctx context.Context, query string, args []any, each func(scanner) error) error {
	rows, _ := d.q.Query(ctx, query, args...) // rows.Err reports its error
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// inTx begins a read-only transaction REPEATABLE READ, so that all its
// statements read one snapshot; any other READ COMMITTED: a statement
// that finds a row another transaction wrote waits for it, then reads the
// row as committed.
func (d pgDB) inTx(ctx context.Context, readOnly bool, f func(machineDB) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	if readOnly {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	return pgx.BeginTxFunc(ctx, d.pool, opts, func(tx pgx.Tx) error { return f(pgDB{q: tx, pool: d.pool}) })
}

func (pgDB) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micro(t)
}

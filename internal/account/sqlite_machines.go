package account

import (
	"context"
	"database/sql"
	"time"
)

// sqliteDB is the machineDB of a SQLite store: its database, or a
// transaction of it.
type sqliteDB struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	db *sql.DB // the database, for transactions
}

func (d sqliteDB) exec(ctx context.Context, stmt string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, stmt, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqliteDB) queryRow(ctx context.Context, query string, args ...any) scanner {
	return d.q.QueryRowContext(ctx, query, args...)
}

func (d sqliteDB) query(ctx context.Context, query string, args []any, each func(scanner) error) error {
	rows, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// inTx begins a read-only transaction deferred: it reads one snapshot of
// the file (WAL) without the write lock. Any other begins IMMEDIATE on a
// database of store/sqlite.Open, holding the file's write lock from its
// start.
func (d sqliteDB) inTx(ctx context.Context, readOnly bool, f func(machineDB) error) error {
	return inTx(ctx, d.db, &sql.TxOptions{ReadOnly: readOnly}, func(tx *sql.Tx) error {
		return f(sqliteDB{q: tx, db: d.db})
	})
}

func (sqliteDB) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

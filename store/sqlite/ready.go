package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// JournalSizeLimit is the size, in bytes, Open's connections truncate the
// WAL file back to once a checkpoint has emptied it (PRAGMA
// journal_size_limit). Without it the WAL file keeps its largest size
// for good: on a nearly full disk, a burst of writes would take the space
// freed meanwhile and never give it back.
const JournalSizeLimit = 4 << 20

// Writable reports whether db can be written to, by writing: it stamps
// the one row of the table tether_ready (created if missing) with the
// time. A file that can still be read but no longer written (its disk
// full, its directory read-only, another process holding the write lock
// past ctx's deadline) fails it, where a ping or a read would pass: a
// server's readiness check calls it (MISC-05). Bound it with ctx: SQLite
// waits up to its busy timeout (10 s) for the write lock.
func Writable(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS tether_ready (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL)`)
	if err == nil {
		_, err = db.ExecContext(ctx, `INSERT INTO tether_ready (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`,
			time.Now().UnixMicro())
	}
	if err != nil {
		return fmt.Errorf("sqlite: write check: %w", err)
	}
	return nil
}

package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// MISC-05: a database whose disk is full can still be read (a ping
// passes) but not written: Writable says so, and says it is fine again
// once there is room.
func TestMISC05_WritableOnAFullDisk(t *testing.T) {
	dir := testkit.SmallDisk(t, 2<<20)
	db := openDB(t, filepath.Join(dir, "tether.db"))
	newTestStore(t, db, Options{})
	if err := Writable(t.Context(), db); err != nil {
		t.Fatalf("Writable with room to spare: %v", err)
	}
	// An empty WAL, as after a checkpoint: the next write must grow it.
	if _, err := db.ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	free := testkit.FillDisk(t, dir)
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("ping on a full disk: %v (the point is that it passes)", err)
	}
	if err := Writable(t.Context(), db); err == nil {
		t.Fatal("Writable on a full disk: no error")
	} else {
		t.Logf("Writable on a full disk: %v", err)
	}
	free()
	if err := Writable(t.Context(), db); err != nil {
		t.Errorf("Writable once there is room again: %v", err)
	}
}

// MISC-05: Writable keeps to its context's deadline when another
// connection holds the write lock, rather than SQLite's 10 s busy
// timeout.
func TestMISC05_WritableKeepsItsDeadline(t *testing.T) {
	db, path := tempDB(t)
	if err := Writable(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	other := openDB(t, path)
	tx, err := other.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = Writable(ctx, db)
	took := time.Since(start)
	t.Logf("Writable with the write lock held elsewhere: %v after %v", err, took)
	if err == nil {
		t.Fatal("Writable succeeded while another connection held the write lock")
	}
	if took > 5*time.Second { // the busy timeout is 10 s
		t.Errorf("Writable returned after %v, want about its 100 ms deadline", took)
	}
}

// On a nearly full disk the WAL must give back what a burst of writes made
// it take: once a checkpoint has emptied it, it is truncated to
// JournalSizeLimit.
func TestWALTruncatedToJournalSizeLimit(t *testing.T) {
	db, path := tempDB(t)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "CREATE TABLE burst (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil) // one transaction: no checkpoint can empty the WAL meanwhile
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 1<<20)
	for range 3 * JournalSizeLimit / len(blob) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO burst (b) VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	grown := walSize()
	if grown <= JournalSizeLimit {
		t.Fatalf("WAL grew to %d bytes only: the test must make it pass %d", grown, JournalSizeLimit)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM burst"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	if err := Writable(ctx, db); err != nil { // a write after the checkpoint restarts the WAL
		t.Fatal(err)
	}
	if got := walSize(); got > JournalSizeLimit {
		t.Errorf("WAL is %d bytes after a checkpoint (it grew to %d), want at most %d", got, grown, JournalSizeLimit)
	} else {
		t.Logf("WAL grew to %d bytes, back to %d after a checkpoint", grown, got)
	}
}

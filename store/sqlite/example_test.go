package sqlite_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

func Example() {
	dir, err := os.MkdirTemp("", "tether-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(dir, "tether.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlite.New(ctx, db, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The Manager does this, given a token; the store only sees its hash.
	now := time.Date(2030, time.March, 4, 12, 0, 0, 0, time.UTC)
	r := &session.Record{
		Hash:         sha256.Sum256([]byte("a token from crypto/rand")),
		ID:           "s_1",
		UserID:       "alice",
		Created:      now,
		LastSeen:     now,
		IdleDeadline: now.Add(30 * time.Minute),
		AbsDeadline:  now.Add(12 * time.Hour),
		Data:         map[string][]byte{"theme": []byte("dark")},
	}
	if err := store.Create(ctx, r, session.CreateOptions{}); err != nil {
		log.Fatal(err)
	}
	got, err := store.Get(ctx, r.Hash)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.UserID, got.Version, string(got.Data["theme"]))

	// Sign alice out everywhere.
	if err := store.RevokeUser(ctx, "alice", nil); err != nil {
		log.Fatal(err)
	}
	_, err = store.Get(ctx, r.Hash)
	fmt.Println(errors.Is(err, session.ErrNotFound))
	// Output:
	// alice 1 dark
	// true
}

func ExampleStore_Watch() {
	store, done := exampleStore()
	defer done()

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan session.Event, 10)
	stopped := make(chan error)
	go func() {
		stopped <- store.Watch(ctx, func(ev session.Event) { events <- ev })
	}()
	fmt.Println((<-events).Kind == session.FeedUp)

	// A write of this process reaches the watchers before it returns.
	if err := store.RevokeUser(ctx, "alice", nil); err != nil {
		log.Fatal(err)
	}
	ev := <-events
	fmt.Println(ev.Kind == session.UserRevoked, ev.UserID)

	cancel()
	fmt.Println((<-events).Kind == session.FeedDown, <-stopped)
	// Output:
	// true
	// true alice
	// true context canceled
}

// exampleStore returns a Store in a new temporary file, and the function
// that closes and removes everything.
func exampleStore() (*sqlite.Store, func()) {
	dir, err := os.MkdirTemp("", "tether-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := sqlite.Open(filepath.Join(dir, "tether.db"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlite.New(context.Background(), db, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return store, func() {
		store.Close()
		db.Close()
		os.RemoveAll(dir)
	}
}

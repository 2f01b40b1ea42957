package sqlite

import (
	"context"
	"database/sql"
	"math/rand/v2"

	"github.com/tetherauth/tether/store/internal/feed"
)

// hubs holds a hub for every database file that Stores of this process
// have open, whichever *sql.DB they were made from (the server's and an
// admin command's, say). It is the package's one variable, and has to be
// (see feed.Registry); everything else belongs to a Store.
var hubs = feed.Registry[hubKey, *hub]{New: newHub}

// hubKey names a database file.
type hubKey struct {
	path string  // the file's cleaned absolute path
	db   *sql.DB // set only for a database without a file
}

// hub joins the Stores of this process that share a database file.
type hub struct {
	feed.Hub // the watchers of the file in this process

	key hubKey

	// origin tags the hub's entries in the change log: its watchers were
	// handed those already and skip them when they poll.
	origin int64
	// writing holds a token while a Store of the hub writes. SQLite has one
	// writer at a time; queueing here hands the lock over at once, where
	// SQLite's busy handler would sleep and retry.
	writing chan struct{}
}

func newHub(key hubKey) *hub {
	return &hub{key: key, origin: rand.Int64(), writing: make(chan struct{}, 1)}
}

// lock waits for the hub's write token, or for ctx to be done.
func (h *hub) lock(ctx context.Context) error {
	select {
	case h.writing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hub) unlock() { <-h.writing }

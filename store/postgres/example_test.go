package postgres_test

import (
	"context"
	"log"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/postgres"
)

// A node of a tether deployment: sessions in a PostgreSQL schema that every
// node shares, and the near-cache kept coherent by the store's feed
// (LISTEN/NOTIFY) while Run runs. (No Output: it needs a PostgreSQL.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://tether:secret@db.internal:5432/tether?search_path=tether")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.New(ctx, pool, postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	sessions, err := session.NewManager(store, session.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go sessions.Run(ctx) // the invalidation feed, and sweeping expired sessions

	mux := http.NewServeMux()
	log.Fatal(http.ListenAndServe(":8080", sessions.Middleware(mux)))
}

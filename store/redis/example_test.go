package redis_test

import (
	"context"
	"log"
	"net/http"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/redis"
)

// A node of a tether deployment: sessions in Redis under Sentinel, each
// create and revocation acknowledged once a replica has it, and the
// near-cache kept coherent by the store's feed while Run runs. (No Output:
// it needs a Redis.)
func Example() {
	ctx := context.Background()
	store, err := redis.New(ctx, "redis-sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/tether",
		redis.Options{MinReplicas: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	sessions, err := session.NewManager(store, session.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go sessions.Run(ctx) // the invalidation feed

	mux := http.NewServeMux()
	log.Fatal(http.ListenAndServe(":8080", sessions.Middleware(mux)))
}

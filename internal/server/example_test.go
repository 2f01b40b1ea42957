package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/server"
	"github.com/tetherauth/tether/store/sqlite"
)

// On an empty database the server offers a one-time link that creates the
// first admin (PW-08). Print the link once; only the token's hash is kept,
// in the account store, so that every server sharing it opens the link.
func ExampleNewSetup() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tether-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(filepath.Join(dir, "tether.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	accounts, err := account.NewSQLite(ctx, db)
	if err != nil {
		panic(err)
	}
	token, err := server.NewSetup(ctx, accounts, time.Now(), server.DefaultSetupTTL)
	if err != nil {
		panic(err)
	}
	fmt.Printf("setup link: http://127.0.0.1:8080/setup?token=<%d characters>\n", len(token))
	// Output: setup link: http://127.0.0.1:8080/setup?token=<43 characters>
}

package server_test

import (
	"fmt"
	"time"

	"github.com/tetherauth/tether/internal/server"
)

// On an empty database the server offers a one-time link that creates the
// first admin (PW-08). Print the link once; only the token's hash is kept.
func ExampleNewSetup() {
	setup, token, err := server.NewSetup(time.Now, server.DefaultSetupTTL)
	if err != nil {
		panic(err)
	}
	_ = setup // goes into server.Config.Setup
	fmt.Printf("setup link: http://127.0.0.1:8080/setup?token=<%d characters>\n", len(token))
	// Output: setup link: http://127.0.0.1:8080/setup?token=<43 characters>
}

package token_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// A resource server follows its issuer's revocation stream, and its
// Verifier refuses a revoked token within the bound, with no call to the
// issuer per request; cut off for longer than MaxStaleness, it answers 503
// rather than trust what it may have missed.
func ExampleRevocationStream() {
	ctx := context.Background()
	revocations, err := token.NewRevocationStream(token.RevocationStreamConfig{
		URL: "https://auth.example.com/oauth2/revocations",
		Authorize: func(r *http.Request) error {
			r.SetBasicAuth("resource-server", "its client secret")
			return nil
		},
		MaxStaleness: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	go revocations.Run(ctx)

	jwks, err := keys.NewRemote(keys.RemoteConfig{URL: "https://auth.example.com/.well-known/jwks.json"})
	if err != nil {
		log.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer: "https://auth.example.com", Audience: "https://api.example.com",
		Keys: jwks, Revocations: revocations,
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/invoices", v.Middleware("invoices:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + token.FromContext(r.Context()).Subject))
	})))
}

package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/tetherauth/tether/token"
)

// An Issuer signs a client's token; a resource server's Verifier checks it,
// and refuses it once revoked.
func Example() {
	ctx := context.Background()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys := token.StaticKeys{KID: "k1", Alg: token.EdDSA, Key: priv} // a server uses package keys

	iss, err := token.NewIssuer(token.IssuerConfig{Issuer: "https://auth.example.com", Keys: keys})
	if err != nil {
		panic(err)
	}
	revocations := token.NewMemoryRevocations(nil)
	tok, _, err := iss.Issue(ctx, token.Grant{
		Subject:    token.ClientSubject("billing"),
		ClientID:   "billing",
		Audience:   []string{"https://api.example.com"},
		Scope:      "invoices:read",
		Generation: revocations.Generation(token.ClientSubject("billing")),
	})
	if err != nil {
		panic(err)
	}

	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer:      "https://auth.example.com",
		Audience:    "https://api.example.com",
		Keys:        keys,
		Revocations: revocations,
	})
	if err != nil {
		panic(err)
	}
	c, err := v.Verify(ctx, tok)
	fmt.Println(c.Subject, c.HasScope("invoices:read"), err)

	revocations.RevokeID(c.ID, c.Expiry)
	_, err = v.Verify(ctx, tok)
	fmt.Println(errors.Is(err, token.ErrInvalid), errors.Is(err, token.ErrRevoked))
	// Output:
	// client:billing true <nil>
	// true true
}

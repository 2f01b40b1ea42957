package keys_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// JWT-03, JWT-10: a token whose kid the ring doesn't publish (a forger's
// own key, or one removed with retire --now) is refused as invalid (401),
// never as a failure to answer (503), by a Verifier over a Ring.
func TestJWT03_UnknownKidIsInvalid(t *testing.T) {
	ctx := context.Background()
	ring, err := keys.NewRing(ctx, keys.NewMemoryStorage(), keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: "https://auth.example.com", Audience: "api://x", Keys: ring})
	if err != nil {
		t.Fatal(err)
	}
	_, forger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, _, _, err := ring.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	grant := token.Grant{Subject: token.ClientSubject("ci"), ClientID: "ci", Audience: []string{"api://x"}, TTL: time.Minute}
	for name, signer := range map[string]token.Signer{
		"a forger's key":              token.StaticKeys{KID: "forged", Alg: token.EdDSA, Key: forger},
		"the ring's kid, another key": token.StaticKeys{KID: kid, Alg: token.EdDSA, Key: forger},
	} {
		iss, err := token.NewIssuer(token.IssuerConfig{Issuer: "https://auth.example.com", Keys: signer})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := iss.Issue(ctx, grant)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if err := ring.Retire(ctx, kid, true); err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(token.IssuerConfig{Issuer: "https://auth.example.com", Keys: token.StaticKeys{KID: kid, Alg: token.EdDSA, Key: forger}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Issue(ctx, grant)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrUnknownKey) || !errors.Is(err, token.ErrInvalid) {
		t.Errorf("a removed kid: got %v, want ErrUnknownKey and ErrInvalid", err)
	}
}

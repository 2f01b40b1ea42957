package token

import (
	"context"
	"crypto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// newIssuer is an Issuer of edKeys at t0.
func newIssuer(t testing.TB) *Issuer {
	t.Helper()
	i, err := NewIssuer(IssuerConfig{Issuer: testIss, Keys: edKeys, Now: testkit.NewClock(t0).Now})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestRoundTrip(t *testing.T) {
	for _, keys := range []StaticKeys{edKeys, ecKeys} {
		t.Run(keys.Alg, func(t *testing.T) {
			clk := testkit.NewClock(t0.Add(123 * time.Millisecond))
			iss, err := NewIssuer(IssuerConfig{Issuer: testIss, Keys: keys, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(VerifierConfig{Issuer: testIss, Audience: testAud, Keys: keys,
				Algorithms: []string{keys.Alg}, Now: clk.Now, Revocations: NewMemoryRevocations(clk.Now)})
			if err != nil {
				t.Fatal(err)
			}
			g := Grant{Subject: ClientSubject("svc"), ClientID: "svc", Audience: []string{"other", testAud},
				Scope: "read write", Generation: 7}
			tok, issued, err := iss.Issue(context.Background(), g)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, issued) {
				t.Fatalf("got %+v, want %+v", got, issued)
			}
			if got.Expiry.Sub(got.IssuedAt) != 10*time.Minute || len(got.ID) != 22 || !got.HasScope("write") || got.HasScope("wri") {
				t.Fatalf("got %+v: want a 10 min lifetime, a 128-bit jti and scope write", got)
			}
		})
	}
}

func TestIssuerRefuses(t *testing.T) {
	iss := newIssuer(t)
	ok := Grant{Subject: "client:svc", ClientID: "svc", Audience: []string{testAud}}
	for _, c := range []struct {
		name string
		edit func(*Grant)
	}{
		{"lifetime over MaxTTL", func(g *Grant) { g.TTL = time.Hour + time.Second }},
		{"lifetime under a second", func(g *Grant) { g.TTL = time.Millisecond }},
		{"no audience", func(g *Grant) { g.Audience = nil }},
		{"an empty audience", func(g *Grant) { g.Audience = []string{""} }},
		{"no client_id", func(g *Grant) { g.Subject, g.ClientID = "user:a", "" }},
		{"scope not space-separated", func(g *Grant) { g.Scope = "a,b  c" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := ok
			c.edit(&g)
			if tok, _, err := iss.Issue(context.Background(), g); err == nil {
				t.Fatalf("issued %q, want refused", tok)
			}
		})
	}
	if _, err := NewIssuer(IssuerConfig{Issuer: testIss, Keys: edKeys, DefaultTTL: 2 * time.Hour}); err == nil {
		t.Error("DefaultTTL over MaxTTL accepted")
	}
	if _, _, err := mustIssuer(t, StaticKeys{KID: "k", Alg: ES256, Key: edPriv}).Issue(context.Background(), ok); err == nil {
		t.Error("an Ed25519 key signed as ES256")
	}
}

func mustIssuer(t *testing.T, keys Signer) *Issuer {
	t.Helper()
	i, err := NewIssuer(IssuerConfig{Issuer: testIss, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// opaqueSigner hides a key's type behind crypto.Signer, as a KMS does.
type opaqueSigner struct{ crypto.Signer }

// Signatures are golang-jwt's: EdDSA signs with any crypto.Signer of an
// Ed25519 key, ES256 only with an *ecdsa.PrivateKey (the package doc).
func TestIssuerSigners(t *testing.T) {
	g := Grant{Subject: "client:svc", ClientID: "svc", Audience: []string{testAud}}
	kms := StaticKeys{KID: "k1", Alg: EdDSA, Key: opaqueSigner{edPriv}}
	tok, _, err := mustIssuer(t, kms).Issue(context.Background(), g)
	if err != nil {
		t.Fatalf("an opaque Ed25519 signer: %v", err)
	}
	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Now = time.Now })
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("its token: %v", err)
	}
	opaqueEC := StaticKeys{KID: "k2", Alg: ES256, Key: opaqueSigner{ecPriv}}
	if _, _, err := mustIssuer(t, opaqueEC).Issue(context.Background(), g); err == nil || !strings.Contains(err.Error(), "*ecdsa.PrivateKey") {
		t.Fatalf("an opaque ES256 signer: got %v, want refused for its type", err)
	}
}

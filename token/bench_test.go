package token

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The tokens of these benchmarks carry the claims of the yardstick in
// ../shared/bench-anchors (jwt_golangjwt_test.go) plus tether's client_id
// and gen, so that BenchmarkVerifierEdDSA compares with
// BenchmarkJWT_GolangJWT_Verify/EdDSA there, and with
// BenchmarkEd25519Verify here: the bare signature check of the same bytes.

var benchGrant = Grant{
	Subject:  UserSubject("01HZX3K5Q8N2M4P6R7T9V0W1Y2"),
	ClientID: "cli_01HZX3K5Q8",
	Audience: []string{"https://api.example.com"},
	Scope:    "openid profile email read:orders write:orders",
}

func benchIssuer(b *testing.B) *Issuer {
	i, err := NewIssuer(IssuerConfig{Issuer: "https://auth.example.com", Keys: edKeys})
	if err != nil {
		b.Fatal(err)
	}
	return i
}

// benchRevocations holds a thousand revoked jtis and subjects, so that
// the lookups are not in an empty map.
func benchRevocations() *MemoryRevocations {
	m := NewMemoryRevocations(nil)
	for i := range 1000 {
		m.RevokeID(fmt.Sprint("jti-", i), time.Now().Add(time.Hour))
		m.SetGeneration(fmt.Sprint("user:", i), uint64(i))
	}
	return m
}

func BenchmarkVerifierEdDSA(b *testing.B) {
	ctx := context.Background()
	tok, _, err := benchIssuer(b).Issue(ctx, benchGrant)
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Issuer: "https://auth.example.com", Audience: "https://api.example.com",
		Keys: edKeys, Revocations: benchRevocations()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	tok, _, err := benchIssuer(b).Issue(context.Background(), benchGrant)
	if err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, _ := b64.DecodeString(tok[dot+1:])
	pub := edPriv.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkIssuerEdDSA(b *testing.B) {
	ctx := context.Background()
	i := benchIssuer(b)
	for b.Loop() {
		if _, _, err := i.Issue(ctx, benchGrant); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Sign(b *testing.B) {
	tok, _, err := benchIssuer(b).Issue(context.Background(), benchGrant)
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	for b.Loop() {
		ed25519.Sign(edPriv, input)
	}
}

func BenchmarkRevocationCheck(b *testing.B) {
	ctx := context.Background()
	m := benchRevocations()
	for b.Loop() {
		if err := m.Check(ctx, "user:500", 500, "9f1c2b7e-4d3a-4e8b-9c61-0a5f7d2e3b14"); err != nil {
			b.Fatal(err)
		}
	}
}

package token

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"
)

// The tokens of these benchmarks carry the claims of the yardstick in
// ../shared/bench-anchors (jwt_golangjwt_test.go) plus tether's client_id
// and gen, so that BenchmarkVerifierEdDSA compares with
// BenchmarkJWT_GolangJWT_Verify/EdDSA there, and with
// BenchmarkEd25519Verify here: the bare signature check of the same bytes.
// BenchmarkGolangJWTParseEdDSA and BenchmarkGoJoseParseEdDSA verify the
// same token through each JOSE library's full parser, and the Sign ones
// sign its claims through each library's builder, so that the choice the
// package doc writes down is measured in one run.

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
	tok, _, _ := benchToken(b)
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
	_, input, sig := benchToken(b)
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
	_, input, _ := benchToken(b)
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

// benchToken is a token of benchGrant, its signing input and signature.
func benchToken(b *testing.B) (tok string, input, sig []byte) {
	tok, _, err := benchIssuer(b).Issue(context.Background(), benchGrant)
	if err != nil {
		b.Fatal(err)
	}
	dot := strings.LastIndexByte(tok, '.')
	sig, err = b64.DecodeString(tok[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	return tok, []byte(tok[:dot]), sig
}

// golangJWTClaims are benchGrant's claims as golang-jwt reads them.
type golangJWTClaims struct {
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Gen      uint64 `json:"gen"`
	jwt.RegisteredClaims
}

// BenchmarkGolangJWTParseEdDSA is the yardstick of golang-jwt v5's full
// Parser on benchGrant's token: algorithm allowlist, issuer, audience,
// exp and iat required, claims into a struct (no revocation check).
func BenchmarkGolangJWTParseEdDSA(b *testing.B) {
	tok, _, _ := benchToken(b)
	p := jwt.NewParser(jwt.WithValidMethods([]string{EdDSA}), jwt.WithIssuer("https://auth.example.com"),
		jwt.WithAudience("https://api.example.com"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	pub := edPriv.Public()
	kf := func(*jwt.Token) (any, error) { return pub, nil }
	for b.Loop() {
		var c golangJWTClaims
		if _, err := p.ParseWithClaims(tok, &c, kf); err != nil {
			b.Fatal(err)
		}
	}
}

// goJoseClaims are the claims go-jose's Claims does not name.
type goJoseClaims struct {
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Gen      uint64 `json:"gen"`
}

// BenchmarkGoJoseParseEdDSA is the yardstick of go-jose v4's jwt package
// on benchGrant's token: ParseSigned with an allowlist of EdDSA, Claims
// (signature and decoding), Validate of issuer, audience and time.
func BenchmarkGoJoseParseEdDSA(b *testing.B) {
	tok, _, _ := benchToken(b)
	pub := edPriv.Public()
	want := josejwt.Expected{Issuer: "https://auth.example.com", AnyAudience: josejwt.Audience{"https://api.example.com"}}
	for b.Loop() {
		t, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			b.Fatal(err)
		}
		var c josejwt.Claims
		var extra goJoseClaims
		if err := t.Claims(pub, &c, &extra); err != nil {
			b.Fatal(err)
		}
		if err := c.Validate(want.WithTime(time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGolangJWTSignEdDSA signs benchGrant's claims through
// golang-jwt v5's Token.SignedString.
func BenchmarkGolangJWTSignEdDSA(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, golangJWTClaims{
			ClientID: benchGrant.ClientID, Scope: benchGrant.Scope,
			RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://auth.example.com", Subject: benchGrant.Subject,
				Audience: benchGrant.Audience, ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
				IssuedAt: jwt.NewNumericDate(now), ID: "9f1c2b7e4d3a4e8b9c610a5f"},
		})
		t.Header["typ"], t.Header["kid"] = "at+jwt", edKeys.KID
		if _, err := t.SignedString(edPriv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoJoseSignEdDSA signs benchGrant's claims through go-jose v4's
// jwt builder.
func BenchmarkGoJoseSignEdDSA(b *testing.B) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: edPriv},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", edKeys.KID))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for b.Loop() {
		c := josejwt.Claims{Issuer: "https://auth.example.com", Subject: benchGrant.Subject,
			Audience: benchGrant.Audience, Expiry: josejwt.NewNumericDate(now.Add(10 * time.Minute)),
			IssuedAt: josejwt.NewNumericDate(now), ID: "9f1c2b7e4d3a4e8b9c610a5f"}
		extra := goJoseClaims{ClientID: benchGrant.ClientID, Scope: benchGrant.Scope}
		if _, err := josejwt.Signed(signer).Claims(c).Claims(extra).Serialize(); err != nil {
			b.Fatal(err)
		}
	}
}

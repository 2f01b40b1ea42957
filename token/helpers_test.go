package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/tetherauth/tether/internal/testkit"
)

const (
	testIss = "https://auth.example.com"
	testAud = "https://api.example.com"
)

var (
	t0       = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	edPriv   = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	edOther  = ed25519.NewKeyFromSeed([]byte("another key, not in the key set!"))
	ecPriv   = mustEC()
	edKeys   = StaticKeys{KID: "k1", Alg: EdDSA, Key: edPriv}
	ecKeys   = StaticKeys{KID: "k2", Alg: ES256, Key: ecPriv}
	goodHead = `{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}`
)

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// claimsJSON is a valid claim set as of t0 with the members of mods set
// (nil: removed).
func claimsJSON(mods map[string]any) string {
	m := map[string]any{
		"iss": testIss, "sub": "client:svc", "aud": testAud, "exp": t0.Add(5 * time.Minute).Unix(),
		"iat": t0.Unix(), "jti": "j1", "client_id": "svc", "scope": "read write", "gen": 0,
	}
	for k, v := range mods {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m, json.Deterministic(true))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// forge signs header and claims, raw JSON texts, with key as alg would.
func forge(header, claims string, alg string, key crypto.Signer) string {
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	m, err := signingMethod(alg, key)
	if err != nil {
		panic(err)
	}
	sig, err := m.Sign(in, key)
	if err != nil {
		panic(err)
	}
	return in + "." + b64.EncodeToString(sig)
}

// good signs claims with the key set's EdDSA key under a valid header.
func good(claims string) string { return forge(goodHead, claims, EdDSA, edPriv) }

// newVerifier is a Verifier of edKeys at t0, changed by edit.
func newVerifier(t testing.TB, edit func(*VerifierConfig)) (*Verifier, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	cfg := VerifierConfig{Issuer: testIss, Audience: testAud, Keys: edKeys, Now: clk.Now}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v, clk
}

type hostile struct {
	name string
	tok  string
	want error // the specific sentinel besides ErrInvalid, or nil
}

// refuse checks that v refuses every case with ErrInvalid (and want).
func refuse(t *testing.T, v *Verifier, cases []hostile) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), c.tok)
			if got != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %+v, %v; want ErrInvalid", got, err)
			}
			t.Log(err)
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// accept checks that v accepts tok.
func accept(t *testing.T, v *Verifier, tok string) *Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("got %v, want the token accepted", err)
	}
	return c
}

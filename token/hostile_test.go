package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/hostile"
	"github.com/tetherauth/tether/token"
)

// hostileVerifier is a Verifier of one key of alg, allowing both
// algorithms (so that a key bound to one is what refuses the other,
// JWT-02) and leeway, with a revocation view holding one jti; and the
// Valid token it accepts. Its removed key is one the key set doesn't
// hold, as after retire --now (keys' own test removes a ring's).
func hostileVerifier(t testing.TB, alg string, leeway time.Duration) (*token.Verifier, hostile.Valid) {
	t.Helper()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	valid := hostile.Valid{
		Issuer: "https://auth.example.com", Audience: "https://api.example.com", ClientID: "svc",
		Key: hostile.Key{KID: "k1", Alg: alg, Signer: hostile.NewKey(t, alg)}, Now: now, Leeway: leeway,
		Removed: &hostile.Key{KID: "k0", Alg: alg, Signer: hostile.NewKey(t, alg)}, RevokedJTI: "revoked-jti",
	}
	revs := token.NewMemoryRevocations(func() time.Time { return now })
	revs.RevokeID(valid.RevokedJTI, now.Add(time.Hour))
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer: valid.Issuer, Audience: valid.Audience,
		Keys:        token.StaticKeys{KID: valid.Key.KID, Alg: alg, Key: valid.Key.Signer},
		Revocations: revs, Algorithms: []string{token.EdDSA, token.ES256}, Leeway: leeway,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, valid
}

// TestJWT_HostileTable: every case of the shared table (JWT-01..12,
// KEY-01..03) is refused by Verify as ErrInvalid, and by the middleware
// with JWT-10's one answer: 401, `Bearer error="invalid_token"`, the
// handler never reached. The valid token, verified first, is accepted by
// both.
func TestJWT_HostileTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		alg    string
		leeway time.Duration
	}{
		{"EdDSA", token.EdDSA, 0},
		{"ES256, leeway 60 s", token.ES256, token.MaxLeeway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, valid := hostileVerifier(t, tc.alg, tc.leeway)
			reached := false
			h := v.Middleware("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
			serve := func(c hostile.Case) *httptest.ResponseRecorder {
				reached = false
				r := httptest.NewRequest("GET", "/resource", nil)
				c.Authorize(r)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			good := valid.Token(t)
			if _, err := v.Verify(context.Background(), good); err != nil {
				t.Fatalf("the valid token: %v", err)
			}
			if w := serve(hostile.Case{Token: good}); w.Code != http.StatusOK || !reached {
				t.Fatalf("the valid token: status %d, handler reached %v", w.Code, reached)
			}
			for _, c := range valid.Cases(t) {
				t.Run(c.String(), func(t *testing.T) {
					if c.Where == hostile.Bearer {
						if got, err := v.Verify(context.Background(), c.Token); got != nil || !errors.Is(err, token.ErrInvalid) {
							t.Errorf("Verify: got %+v, %v; want ErrInvalid", got, err)
						}
					}
					w := serve(c)
					if got := w.Header().Get("WWW-Authenticate"); w.Code != http.StatusUnauthorized || got != `Bearer error="invalid_token"` || w.Body.String() != "invalid token\n" || reached {
						t.Errorf("middleware: %d %q %q, handler reached %v; want 401 invalid_token", w.Code, got, w.Body.String(), reached)
					}
				})
			}
		})
	}
}

// FuzzVerify_HostileTable starts from the shared table's cases: whatever
// the fuzzer makes of them, the verifier never panics and accepts one
// text only, the valid token (Ed25519 and strict base64url leave a
// signed token one text).
func FuzzVerify_HostileTable(f *testing.F) {
	v, valid := hostileVerifier(f, token.EdDSA, 0)
	good := valid.Token(f)
	f.Add(good)
	for _, c := range valid.Cases(f) {
		f.Add(c.Token)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err == nil && tok != good {
			t.Fatalf("accepted %q, which is not the valid token", tok)
		}
		if err != nil && c != nil {
			t.Fatalf("claims %+v returned with error %v", c, err)
		}
	})
}

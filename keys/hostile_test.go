package keys_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/hostile"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// countingServer serves body (nil: 404) and counts the requests.
func countingServer(t *testing.T, body func() ([]byte, error)) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if body == nil {
			http.NotFound(w, r)
			return
		}
		b, err := body()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// TestKEY_HostileTable runs the shared hostile table against verifiers
// over a Ring and over a Remote that caches the Ring's JWKS. The ring's
// first key was removed with retire --now, its private part kept to sign
// the KEY-02 case. Both refuse every case as invalid (not as a key set
// that can't answer); the URL the jku and x5u cases name is never
// fetched, and the Remote fetched its own URL once for the whole table,
// unknown kids and all, the clock standing still (KEY-03).
func TestKEY_HostileTable(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ring, err := keys.NewRing(ctx, keys.NewMemoryStorage(), keys.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	removedKID, removedAlg, removedKey, err := ring.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ring.Retire(ctx, removedKID, true); err != nil {
		t.Fatal(err)
	}
	kid, alg, key, err := ring.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jwks, fetches := countingServer(t, func() ([]byte, error) { return ring.JWKS(ctx) })
	attacker, attacked := countingServer(t, nil)
	remote, err := keys.NewRemote(keys.RemoteConfig{URL: jwks.URL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	valid := hostile.Valid{
		Issuer: "https://auth.example.com", Audience: "https://api.example.com", ClientID: "svc",
		Key: hostile.Key{KID: kid, Alg: alg, Signer: key}, Now: clk.Now(),
		Removed: &hostile.Key{KID: removedKID, Alg: removedAlg, Signer: removedKey},
		KeyURL:  attacker.URL + "/jwks.json",
	}
	for _, ks := range []struct {
		name string
		keys token.KeySet
	}{{"ring", ring}, {"remote", remote}} {
		t.Run(ks.name, func(t *testing.T) {
			v, err := token.NewVerifier(token.VerifierConfig{
				Issuer: valid.Issuer, Audience: valid.Audience, Keys: ks.keys,
				Algorithms: []string{token.EdDSA, token.ES256}, Now: clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, valid.Token(t)); err != nil {
				t.Fatalf("the valid token: %v", err)
			}
			for _, c := range valid.Cases(t) {
				if c.Where != hostile.Bearer {
					continue // the token's place, which token's own test covers
				}
				t.Run(c.String(), func(t *testing.T) {
					if got, err := v.Verify(ctx, c.Token); got != nil || !errors.Is(err, token.ErrInvalid) {
						t.Errorf("got %+v, %v; want ErrInvalid", got, err)
					}
				})
			}
		})
	}
	if n := attacked.Load(); n != 0 {
		t.Errorf("the URL the tokens name was fetched %d times, want never", n)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("the remote JWKS was fetched %d times, want once in one MinInterval", n)
	}
}

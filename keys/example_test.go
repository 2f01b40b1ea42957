package keys_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// The token package's interfaces, which Ring and Remote implement.
var (
	_ token.KeySet = (*keys.Remote)(nil)
	_ token.KeySet = (*keys.Ring)(nil)
	_ token.Signer = (*keys.Ring)(nil)
)

// An issuer's ring publishes its JWKS; a resource server's Remote fetches
// it and verifies what the ring signed.
func Example() {
	ctx := context.Background()
	ring, err := keys.NewRing(ctx, keys.NewMemoryStorage(), keys.Config{})
	if err != nil {
		panic(err)
	}
	if err := ring.Maintain(ctx); err != nil { // a new ring: its first key
		panic(err)
	}

	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwks, err := ring.JWKS(r.Context())
		if err != nil {
			http.Error(w, "no key set", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(int(ring.MaxAge().Seconds())))
		w.Write(jwks)
	}))
	defer issuer.Close()

	kid, alg, signer, _ := ring.SigningKey(ctx)
	sig := ed25519.Sign(signer.(ed25519.PrivateKey), []byte("payload"))

	remote, err := keys.NewRemote(keys.RemoteConfig{URL: issuer.URL})
	if err != nil {
		panic(err)
	}
	gotAlg, pub, err := remote.PublicKey(ctx, kid)
	fmt.Println(alg, gotAlg, err, ed25519.Verify(pub.(ed25519.PublicKey), []byte("payload"), sig))

	// A rotation publishes the next key now; it signs a cache lifetime later.
	if _, err := ring.Rotate(ctx); err != nil {
		panic(err)
	}
	infos, _ := ring.List(ctx)
	for _, i := range infos {
		fmt.Println(i.State)
	}
	// Output:
	// EdDSA EdDSA <nil> true
	// signing
	// pending
}

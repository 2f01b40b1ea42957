package token

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
)

// FuzzVerify: the verifier never panics, and never accepts a token its key
// set did not sign: whatever it accepts must be one of the seeds signed
// with the key, byte for byte (strict base64 and Ed25519 leave a signed
// token one text).
func FuzzVerify(f *testing.F) {
	signed := map[string]bool{}
	for _, c := range []string{
		claimsJSON(nil),
		claimsJSON(map[string]any{"aud": []string{"a", testAud}, "nbf": t0.Unix(), "gen": 3}),
		claimsJSON(map[string]any{"sub": "user:alice", "acr": "mfa"}),
	} {
		tok := good(c)
		signed[tok] = true
		f.Add(tok)
	}
	for _, s := range []string{
		forge(goodHead, claimsJSON(nil), EdDSA, edOther),
		forge(`{"alg":"none","typ":"at+jwt","kid":"k1"}`, claimsJSON(nil), EdDSA, edPriv),
		forge(`{"alg":"EdDSA","typ":"at+jwt","kid":"k1","kid":"k1"}`, claimsJSON(nil), EdDSA, edPriv),
		good(claimsJSON(nil)[:20]),
		good(`{"exp":1,"EXP":2}`),
		"a.b.c", "..", "",
	} {
		f.Add(s)
	}
	v, _ := newVerifier(f, func(c *VerifierConfig) { c.Revocations = NewMemoryRevocations(nil) })
	pub := edPriv.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			if c != nil {
				t.Fatalf("claims %+v returned with error %v", c, err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		sig, _ := b64.DecodeString(parts[2])
		if !signed[tok] || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted %q, which the key set did not sign", tok)
		}
	})
}

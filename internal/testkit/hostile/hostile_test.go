package hostile

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// valid is a Valid of alg with every option set.
func valid(t *testing.T, alg string) Valid {
	return Valid{
		Issuer: "https://auth.example.com", Audience: "https://api.example.com", ClientID: "svc",
		Key: Key{KID: "k1", Alg: alg, Signer: NewKey(t, alg)}, Now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Removed: &Key{KID: "k0", Alg: alg, Signer: NewKey(t, alg)}, RevokedJTI: "revoked", Leeway: time.Minute,
	}
}

// verifies reports whether tok's signature is key's: the valid token must
// be one a verifier can accept.
func verifies(tok string, key Key) bool {
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		return false
	}
	sig, err := b64.Strict().DecodeString(p[2])
	if err != nil {
		return false
	}
	in := []byte(p[0] + "." + p[1])
	switch pub := key.Signer.Public().(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(pub, in, sig)
	case *ecdsa.PublicKey:
		h := sha256.Sum256(in)
		return len(sig) == 64 && ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	return false
}

// TestCases: every rule a token can exercise has cases, each named once;
// the valid token is signed by the valid key; a case carried in a bearer
// header differs from the valid token, and one carried in the URL query
// is the valid token (the place is what is wrong).
func TestCases(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		t.Run(alg, func(t *testing.T) {
			v := valid(t, alg)
			good := v.Token(t)
			head := good[:strings.LastIndexByte(good, '.')+1]
			if !verifies(good, v.Key) {
				t.Fatalf("the valid token %q is not signed by the valid key", good)
			}
			rules := map[string]int{}
			names := map[string]bool{}
			for _, c := range v.Cases(t) {
				rules[c.Rule]++
				if names[c.String()] {
					t.Errorf("%s: named twice", c)
				}
				names[c.String()] = true
				// ES256 signatures are randomized: the valid token is
				// the valid header and claims under any of the key's
				// signatures.
				if valid := strings.HasPrefix(c.Token, head) && verifies(c.Token, v.Key); valid != (c.Where != Bearer) {
					t.Errorf("%s: Where %d, and the token is the valid one: %v", c, c.Where, valid)
				}
			}
			for i := 1; i <= 12; i++ {
				if r := fmt.Sprintf("JWT-%02d", i); rules[r] == 0 {
					t.Errorf("%s: no case", r)
				}
			}
			for _, r := range []string{"KEY-01", "KEY-02", "KEY-03"} {
				if rules[r] == 0 {
					t.Errorf("%s: no case", r)
				}
			}
			if len(rules) != 15 {
				t.Errorf("rules %v: want JWT-01..12 and KEY-01..03", rules)
			}
		})
	}
}

// TestOptionalRules: without a removed key or a revoked jti, the table
// has no KEY-02 or JWT-09 case (it could not make an honest one).
func TestOptionalRules(t *testing.T) {
	v := valid(t, EdDSA)
	v.Removed, v.RevokedJTI = nil, ""
	for _, c := range v.Cases(t) {
		if c.Rule == "KEY-02" || c.Rule == "JWT-09" {
			t.Errorf("%s: a case without what it needs", c)
		}
	}
}

// TestValidClaims: the valid token carries what a verifier requires,
// with the defaults filled in.
func TestValidClaims(t *testing.T) {
	v := valid(t, EdDSA)
	v.ClientID = ""
	got := v.defaults(t).claims(nil).text(t)
	now := v.Now.Unix()
	want := fmt.Sprintf(`{"aud":"https://api.example.com","client_id":"hostile","exp":%d,"iat":%d,"iss":"https://auth.example.com","jti":"hostile-valid-jti","scope":"read","sub":"client:hostile"}`, now+300, now)
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestAuthorize(t *testing.T) {
	for _, c := range []struct {
		where       Where
		query, auth string
	}{
		{Bearer, "", "Bearer tok"},
		{Query, "access_token=tok", ""},
		{QueryAndBearer, "access_token=tok", "Bearer tok"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		Case{Token: "tok", Where: c.where}.Authorize(r)
		if r.URL.RawQuery != c.query || r.Header.Get("Authorization") != c.auth {
			t.Errorf("Where %d: got %q %q, want %q %q", c.where, r.URL.RawQuery, r.Header.Get("Authorization"), c.query, c.auth)
		}
	}
}

// TestEncodings: the helpers that break base64url's canonical form or
// flip a bit do what the cases say they do.
func TestEncodings(t *testing.T) {
	sig := b64.EncodeToString(make([]byte, 64))
	nc := nonCanonical(sig)
	if nc == sig {
		t.Fatal("nonCanonical changed nothing")
	}
	if _, err := b64.Strict().DecodeString(nc); err == nil {
		t.Error("nonCanonical's text decodes strictly")
	}
	if a, err := b64.DecodeString(nc); err != nil || string(a) != string(make([]byte, 64)) {
		t.Errorf("nonCanonical's text decodes leniently to %x, %v; want the same bytes", a, err)
	}
	if f, err := b64.Strict().DecodeString(flipFirst(sig)); err != nil || f[0] != 4 {
		t.Errorf("flipFirst: %x, %v; want the first byte 04", f, err)
	}
}

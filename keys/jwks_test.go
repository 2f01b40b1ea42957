package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// publicMembers are the only members a JWK of tether's may have (KEY-01).
var publicMembers = []string{"kty", "crv", "x", "y", "kid", "alg", "use"}

func TestKEY01_JWKSHasPublicMembersOnly(t *testing.T) {
	// What is written has public members only, each kid once, use sig
	// and alg. (A private key is refused: TestKEY01_MarshalJWKSRefuses.)
	// And what is written has each kid once, use sig and alg.
	var set []JWK
	for _, alg := range []string{EdDSA, ES256, EdDSA} {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		set = append(set, JWK{Kid: k.Kid(), Alg: k.Alg(), Key: k.Public()})
	}
	out, err := MarshalJWKS(set)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != len(set) {
		t.Fatalf("got %d keys, want %d", len(doc.Keys), len(set))
	}
	kids := map[any]bool{}
	for _, m := range doc.Keys {
		for name := range m {
			if !slices.Contains(publicMembers, name) {
				t.Errorf("member %q in %s", name, out)
			}
		}
		if m["use"] != "sig" || m["alg"] == nil || m["kid"] == nil || kids[m["kid"]] {
			t.Errorf("key %v: want use sig, an alg and a unique kid", m)
		}
		kids[m["kid"]] = true
	}
}

func TestKEY01_MarshalJWKSRefuses(t *testing.T) {
	k, _ := Generate(EdDSA)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pub := JWK{Kid: k.Kid(), Alg: EdDSA, Key: k.Public()}
	for _, c := range []struct {
		name string
		set  []JWK
	}{
		{"ed25519 private key", []JWK{{Kid: "a", Alg: EdDSA, Key: edPriv}}},
		{"ecdsa private key", []JWK{{Kid: "a", Alg: ES256, Key: ecPriv}}},
		{"p384", []JWK{{Kid: "a", Alg: ES256, Key: &p384.PublicKey}}},
		{"wrong alg", []JWK{{Kid: "a", Alg: ES256, Key: k.Public()}}},
		{"empty kid", []JWK{{Alg: EdDSA, Key: k.Public()}}},
		{"duplicate kid", []JWK{pub, pub}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if out, err := MarshalJWKS(c.set); err == nil {
				t.Errorf("got %s, want an error", out)
			}
		})
	}
}

// Fixed keys for the table: RFC 8037 A.2's Ed25519 x and RFC 7517 A.1's
// P-256 point.
const (
	edX  = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	ecX  = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
	ecY  = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
	edOK = `{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"ed","alg":"EdDSA","use":"sig"}`
	ecOK = `{"kty":"EC","crv":"P-256","x":"` + ecX + `","y":"` + ecY + `","kid":"ec","alg":"ES256"}`
)

var jwksCases = []struct {
	name    string
	in      string
	kids    []string // taken, in order
	skipped int
	err     error // the whole set refused
}{
	{"ed25519 and p256", `{"keys":[` + edOK + `,` + ecOK + `]}`, []string{"ed", "ec"}, 0, nil},
	{"no alg: bound to the curve's", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a"}]}`, []string{"a"}, 0, nil},
	{"unknown members ignored", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","key_ops":["verify"],"ext":true}],"other":1}`, []string{"a"}, 0, nil},
	{"malformed x5t (go-jose checks it)", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","x5t":"zz"}]}`, nil, 1, nil},
	{"x5c of another key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","x5c":["MIIB"]}]}`, nil, 1, nil},
	{"low-order ed25519 point", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"a"}]}`, nil, 1, nil},
	{"x with stray bits", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp","kid":"a"}]}`, nil, 1, nil},
	{"private priv (AKP)", `{"keys":[{"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA","priv":"AAAA","kid":"a"}]}`, nil, 1, nil},
	{"AKP public key", `{"keys":[{"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA","kid":"a"}]}`, nil, 1, nil},
	{"empty set", `{"keys":[]}`, nil, 0, nil},
	{"alg of another curve", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","alg":"ES256"}]}`, nil, 1, nil},
	{"alg none", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","alg":"none"}]}`, nil, 1, nil},
	{"alg HS256", `{"keys":[{"kty":"EC","crv":"P-256","x":"` + ecX + `","y":"` + ecY + `","kid":"a","alg":"HS256"}]}`, nil, 1, nil},
	{"encryption key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","use":"enc"}]}`, nil, 1, nil},
	{"private d", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`, nil, 1, nil},
	{"private d null", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","d":null}]}`, nil, 1, nil},
	{"symmetric k", `{"keys":[{"kty":"oct","k":"AAAA","kid":"a"}]}`, nil, 1, nil},
	{"rsa", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"},` + edOK + `]}`, []string{"ed"}, 1, nil},
	{"x25519", `{"keys":[{"kty":"OKP","crv":"X25519","x":"` + edX + `","kid":"a"}]}`, nil, 1, nil},
	{"p384", `{"keys":[{"kty":"EC","crv":"P-384","x":"` + ecX + `","y":"` + ecY + `","kid":"a"}]}`, nil, 1, nil},
	{"kty case variant", `{"keys":[{"kty":"okp","crv":"Ed25519","x":"` + edX + `","kid":"a"}]}`, nil, 1, nil},
	{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"a"}]}`, nil, 1, nil},
	{"padded x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `=","kid":"a"}]}`, nil, 1, nil},
	{"std base64 x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}`, nil, 1, nil},
	{"ed25519 with y", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","y":"` + ecY + `","kid":"a"}]}`, nil, 1, nil},
	{"off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"` + ecX + `","y":"` + edX + `","kid":"a"}]}`, nil, 1, nil},
	{"no y", `{"keys":[{"kty":"EC","crv":"P-256","x":"` + ecX + `","kid":"a"}]}`, nil, 1, nil},
	{"no kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `"}]}`, nil, 1, nil},
	{"kid a number", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":7}]}`, nil, 1, nil},
	{"kid too long", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"` + strings.Repeat("k", 257) + `"}]}`, nil, 1, nil},
	{"x a number", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":1,"kid":"a"}]}`, nil, 1, nil},
	{"entry not an object", `{"keys":[1,"a",null,` + edOK + `]}`, []string{"ed"}, 3, nil},
	{"duplicate kid", `{"keys":[` + edOK + `,` + strings.Replace(ecOK, `"ec"`, `"ed"`, 1) + `]}`, nil, 0, ErrJWKSInvalid},
	{"duplicate kid of a skipped key", `{"keys":[` + edOK + `,{"kty":"RSA","kid":"ed"}]}`, nil, 0, ErrJWKSInvalid},
	{"duplicate member in a key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `","kid":"a","kid":"b"}]}`, nil, 0, ErrJWKSInvalid},
	{"duplicate keys member", `{"keys":[],"keys":[` + edOK + `]}`, nil, 0, ErrJWKSInvalid},
	{"keys case variant", `{"Keys":[` + edOK + `]}`, nil, 0, ErrJWKSInvalid},
	{"keys null", `{"keys":null}`, nil, 0, ErrJWKSInvalid},
	{"keys an object", `{"keys":{}}`, nil, 0, ErrJWKSInvalid},
	{"not an object", `[` + edOK + `]`, nil, 0, ErrJWKSInvalid},
	{"trailing data", `{"keys":[]} {}`, nil, 0, ErrJWKSInvalid},
	{"invalid utf-8", "{\"keys\":[],\"a\":\"\xff\"}", nil, 0, ErrJWKSInvalid},
	{"empty", ``, nil, 0, ErrJWKSInvalid},
	{"too large", `{"keys":[],"pad":"` + strings.Repeat("a", MaxJWKSSize) + `"}`, nil, 0, ErrJWKSTooLarge},
	{"too many keys", `{"keys":[` + strings.Repeat(`{},`, MaxJWKSKeys) + `{}]}`, nil, 0, ErrJWKSTooLarge},
}

func TestParseJWKS(t *testing.T) {
	for _, c := range jwksCases {
		t.Run(c.name, func(t *testing.T) {
			keys, skipped, err := ParseJWKS([]byte(c.in))
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.Kid)
			}
			if !slices.Equal(kids, c.kids) || len(skipped) != c.skipped {
				t.Errorf("got %v and %d skipped %v, want %v and %d", kids, len(skipped), skipped, c.kids, c.skipped)
			}
			for _, s := range skipped {
				if s.Reason == "" {
					t.Errorf("skipped %v without a reason", s)
				}
			}
		})
	}
}

func TestParseJWKSRoundTrip(t *testing.T) {
	var set []JWK
	for _, alg := range []string{EdDSA, ES256} {
		k, _ := Generate(alg)
		set = append(set, JWK{Kid: k.Kid(), Alg: alg, Key: k.Public()})
	}
	out, err := MarshalJWKS(set)
	if err != nil {
		t.Fatal(err)
	}
	got, skipped, err := ParseJWKS(out)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("got %v, %v", skipped, err)
	}
	for i := range set {
		if got[i].Kid != set[i].Kid || got[i].Alg != set[i].Alg ||
			!got[i].Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(set[i].Key) {
			t.Errorf("key %d: got %v, want %v", i, got[i], set[i])
		}
	}
}

func FuzzParseJWKS(f *testing.F) {
	for _, c := range jwksCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		keys, skipped, err := ParseJWKS(in)
		if err != nil {
			if keys != nil || skipped != nil {
				t.Fatal("an error with keys")
			}
			return
		}
		// What it takes, MarshalJWKS writes, and the result reads back the
		// same: unique kids, one known algorithm each.
		out, err := MarshalJWKS(keys)
		if err != nil {
			t.Fatalf("took keys it can't write: %v", err)
		}
		again, skippedAgain, err := ParseJWKS(out)
		if err != nil || len(again) != len(keys) || len(skippedAgain) != 0 {
			t.Fatalf("%s read back as %d keys, %v, %v", out, len(again), skippedAgain, err)
		}
	})
}

package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// thumbprint is RFC 7638's, written out here as the oracle of the kids
// that go-jose computes: the SHA-256 of the JSON object of the key's
// required members, given as name, value pairs in lexicographic order of
// the names, with no whitespace (every value is base64url or a fixed
// name, so none needs escaping).
func thumbprint(members ...string) string {
	buf := []byte{'{'}
	for i := 0; i < len(members); i += 2 {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = fmt.Appendf(buf, "%q:%q", members[i], members[i+1])
	}
	sum := sha256.Sum256(append(buf, '}'))
	return b64.EncodeToString(sum[:])
}

// jwksEntry is k's entry of the JWKS MarshalJWKS writes, and the kid its
// public members give by thumbprint.
func jwksEntry(t testing.TB, k *Key) (entry map[string]string, kid string) {
	t.Helper()
	out, err := MarshalJWKS([]JWK{{Kid: k.Kid(), Alg: k.Alg(), Key: k.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []map[string]string }
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("%s: %v", out, err)
	}
	e := doc.Keys[0]
	if e["kty"] == "EC" {
		return e, thumbprint("crv", e["crv"], "kty", e["kty"], "x", e["x"], "y", e["y"])
	}
	return e, thumbprint("crv", e["crv"], "kty", e["kty"], "x", e["x"])
}

// RFC 7638 §3.1's example: an RSA key's thumbprint. tether has no RSA
// keys, but this is the canonical form and hash every thumbprint uses,
// which proves the oracle.
func TestThumbprintRFC7638Example(t *testing.T) {
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	if got, want := thumbprint("e", "AQAB", "kty", "RSA", "n", n), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// RFC 8037 Appendix A: the Ed25519 key, its public x and its thumbprint.
func TestThumbprintRFC8037Example(t *testing.T) {
	seed, _ := b64.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	k, err := keyOf(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b64.EncodeToString(k.Public().(ed25519.PublicKey)), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"; got != want {
		t.Errorf("x: got %s, want %s", got, want)
	}
	if got, want := k.Kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("kid: got %s, want %s", got, want)
	}
	if k.Alg() != EdDSA {
		t.Errorf("alg: got %s, want EdDSA", k.Alg())
	}
}

// A P-256 coordinate with leading zero bytes is still 32 bytes in the JWK
// and the thumbprint (RFC 7518 §6.2.1.2).
func TestThumbprintP256PadsCoordinates(t *testing.T) {
	for range 5000 {
		k, err := Generate(ES256)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := k.Public().(*ecdsa.PublicKey).Bytes()
		if b[1] != 0 && b[33] != 0 {
			continue
		}
		j, want := jwksEntry(t, k)
		x, _ := b64.DecodeString(j["x"])
		y, _ := b64.DecodeString(j["y"])
		if len(x) != 32 || len(y) != 32 || !bytes.Equal(append(append([]byte{4}, x...), y...), b) {
			t.Fatalf("x %d bytes, y %d bytes: not the point", len(x), len(y))
		}
		if k.Kid() != want {
			t.Fatalf("kid %s, want %s", k.Kid(), want)
		}
		return
	}
	t.Fatal("no key with a leading zero coordinate in 5000: impossible odds")
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// pemCases are the inputs of TestParsePEM, and FuzzParsePEM's seeds.
func pemCases(t testing.TB) []struct {
	name string
	in   []byte
	alg  string // "" when refused
	err  string
} {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	sec1P384, _ := x509.MarshalECPrivateKey(p384)
	params := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	return []struct {
		name string
		in   []byte
		alg  string
		err  string
	}{
		{"ed25519 pkcs8", pemOf("PRIVATE KEY", pkcs8(t, ed)), EdDSA, ""},
		{"p256 pkcs8", pemOf("PRIVATE KEY", pkcs8(t, p256)), ES256, ""},
		{"p256 sec1", pemOf("EC PRIVATE KEY", sec1), ES256, ""},
		{"p256 sec1 with parameters", append(params, pemOf("EC PRIVATE KEY", sec1)...), ES256, ""},
		{"p384", pemOf("PRIVATE KEY", pkcs8(t, p384)), "", "only P-256"},
		{"p384 sec1", pemOf("EC PRIVATE KEY", sec1P384), "", "only P-256"},
		{"rsa pkcs8", pemOf("PRIVATE KEY", pkcs8(t, rsaKey)), "", "not supported"},
		{"rsa pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "", "not supported"},
		{"encrypted", pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "", "decrypt it first"},
		{"certificate", pemOf("CERTIFICATE", []byte{1, 2, 3}), "", "not supported"},
		{"public key", pemOf("PUBLIC KEY", []byte{1, 2, 3}), "", "not supported"},
		{"two keys", append(pemOf("PRIVATE KEY", pkcs8(t, ed)), pemOf("PRIVATE KEY", pkcs8(t, ed))...), "", "more than one"},
		{"garbage der", pemOf("PRIVATE KEY", []byte("not der")), "", "read the PRIVATE KEY block"},
		{"no pem", []byte("hello"), "", "no PEM private key"},
		{"empty", nil, "", "no PEM private key"},
	}
}

func TestParsePEM(t *testing.T) {
	for _, c := range pemCases(t) {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParsePEM(c.in)
			if c.alg == "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg() != c.alg {
				t.Errorf("got %s, want %s", k.Alg(), c.alg)
			}
			if _, want := jwksEntry(t, k); want != k.Kid() {
				t.Errorf("kid %s is not the thumbprint %s", k.Kid(), want)
			}
		})
	}
}

func FuzzParsePEM(f *testing.F) {
	for _, c := range pemCases(f) {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParsePEM(in)
		if err != nil {
			return
		}
		if k.Alg() != EdDSA && k.Alg() != ES256 {
			t.Fatalf("alg %q", k.Alg())
		}
	})
}

// TestKEY04_PrivateKeyNeverPrinted prints and logs a Key and its Record
// every way a careless caller might, and looks for the private key.
func TestKEY04_PrivateKeyNeverPrinted(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := k.marshal()
		secret := [][]byte{der}
		switch p := k.Signer().(type) {
		case ed25519.PrivateKey:
			secret = append(secret, p.Seed())
		case *ecdsa.PrivateKey:
			d, _ := p.Bytes()
			secret = append(secret, d)
		}
		rec := Record{Kid: k.Kid(), Alg: alg, Private: der, Created: time.Unix(1, 0)}
		var out bytes.Buffer
		for _, v := range []any{k, rec, &rec, rec.Private} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
				fmt.Fprintf(&out, verb+"\n", v)
			}
			slog.New(slog.NewTextHandler(&out, nil)).Info("x", "v", v)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "v", v)
		}
		if !strings.Contains(out.String(), k.Kid()) {
			t.Fatalf("the kid was not printed either: %s", out.String())
		}
		for _, s := range secret {
			for _, enc := range []string{hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s),
				b64.EncodeToString(s), fmt.Sprint([]byte(s)), string(s)} {
				if strings.Contains(out.String(), enc[:min(len(enc), 24)]) {
					t.Fatalf("%s: the private key was printed: %s", alg, out.String())
				}
			}
		}
	}
}

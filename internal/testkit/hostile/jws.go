package hostile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

// The algorithms of tether's keys, as a JOSE header names them.
const (
	EdDSA = "EdDSA"
	ES256 = "ES256"
)

// b64 is base64url without padding (RFC 7515 §2).
var b64 = base64.RawURLEncoding

// members is a JSON object to build: a member set to nil is left out.
// encoding/json writes its names in order, so one set of members is one
// text.
type members map[string]any

// with returns a copy of m with the members of mods set (nil: removed).
func (m members) with(mods members) members {
	out := make(members, len(m)+len(mods))
	for _, set := range []members{m, mods} {
		for k, v := range set {
			if v == nil {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// text is m as JSON.
func (m members) text(t testing.TB) string {
	t.Helper()
	b, err := json.Marshal(map[string]any(m))
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	return string(b)
}

// appendMember adds member, raw JSON text such as `"exp":1`, at the end
// of obj, the JSON text of an object: the way to write what encoding/json
// won't (a duplicate name, a name in another case, invalid UTF-8).
func appendMember(obj, member string) string {
	return strings.TrimSuffix(obj, "}") + "," + member + "}"
}

// jws is the compact serialization of header and claims, raw JSON texts,
// signed with key the way its type signs (Ed25519, or ECDSA P-256 with
// SHA-256 as R || S): the header's alg is not consulted, so that a case
// can lie about it.
func jws(t testing.TB, header, claims string, key crypto.Signer) string {
	t.Helper()
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	sig, err := signature(key, in)
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	return in + "." + b64.EncodeToString(sig)
}

// signature is key's JWS signature of input.
func signature(key crypto.Signer, input string) ([]byte, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, []byte(input)), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	}
	return nil, fmt.Errorf("hostile: can't sign with a %T (an ed25519.PrivateKey or an *ecdsa.PrivateKey)", key)
}

// derSigned is header and claims signed with an ECDSA key, its signature
// in ASN.1 DER (as crypto.Signer gives it) rather than JWS's R || S.
func derSigned(t testing.TB, header, claims string, key *ecdsa.PrivateKey) string {
	t.Helper()
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	h := sha256.Sum256([]byte(in))
	der, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	return in + "." + b64.EncodeToString(der)
}

// hs256 is header and claims MACed with HMAC-SHA256 under secret: the
// algorithm confusion of a verifier that takes the header's alg and uses
// the public key it holds as the HMAC secret.
func hs256(header, claims string, secret []byte) string {
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

// publicForms are the texts an HS256 forger may use as a public key's
// secret: its raw bytes (Ed25519's 32, P-256's uncompressed point) and
// its PKIX PEM, as a verifier loaded it from a file.
func publicForms(t testing.TB, pub crypto.PublicKey) (raw, pemText []byte) {
	t.Helper()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		raw = k
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			t.Fatalf("hostile: %v", err)
		}
		raw = e.Bytes()
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	return raw, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// jwkOf is pub as a JWK (RFC 8037, RFC 7518 §6.2), for a header that
// embeds it.
func jwkOf(t testing.TB, pub crypto.PublicKey) members {
	t.Helper()
	raw, _ := publicForms(t, pub)
	if _, ok := pub.(ed25519.PublicKey); ok {
		return members{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(raw)}
	}
	return members{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:])}
}

// NewKey is a new private key of alg (EdDSA or ES256), from crypto/rand:
// the cases' strangers, and a test's own keys.
func NewKey(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	if alg == ES256 {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatalf("hostile: %v", err)
	}
	return key
}

// nonCanonical re-encodes the last character of seg, the base64url of a
// 64-byte signature (86 characters, whose last leaves 4 bits unused),
// with one of those bits set: a lenient decoder
// reads the same bytes, so the token would have two texts (JWT-07).
func nonCanonical(seg string) string {
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}

// flipFirst is seg, base64url, with the lowest bit of its first
// character's 6 changed: still base64url, of other bytes.
func flipFirst(seg string) string {
	first := strings.IndexByte(alphabet, seg[0])
	return string(alphabet[first^1]) + seg[1:]
}

// alphabet is base64url's, in the order of the values it encodes.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Limits on a JWKS that ParseJWKS reads: a key set is a few keys, so
// anything larger is refused before it costs more.
const (
	MaxJWKSSize = 64 << 10 // bytes
	MaxJWKSKeys = 100      // entries of "keys", usable or not
	maxKidLen   = 256      // bytes
)

// JWK is a public verification key as a JWKS carries it.
type JWK struct {
	Kid string
	Alg string           // EdDSA or ES256: the only algorithm the key verifies
	Key crypto.PublicKey // ed25519.PublicKey or *ecdsa.PublicKey on P-256
}

// algOf is the one algorithm pub may be used with: EdDSA for an Ed25519
// public key, ES256 for a P-256 one. Anything else, a private key
// included, is refused, so that no private member is ever written (KEY-01).
func algOf(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) == ed25519.PublicKeySize {
			return EdDSA, nil
		}
	case *ecdsa.PublicKey:
		if p.Curve == elliptic.P256() {
			return ES256, nil
		}
	}
	return "", fmt.Errorf("keys: a %T public key is not supported: only Ed25519 and P-256", pub)
}

// publicJWK is pub as go-jose's JSONWebKey, bound to its algorithm, use
// "sig", and not named yet.
func publicJWK(pub crypto.PublicKey) (jose.JSONWebKey, error) {
	alg, err := algOf(pub)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}, nil
}

// jwkOf is publicJWK named by its RFC 7638 thumbprint (go-jose's, with
// SHA-256): how a kid is made.
func jwkOf(pub crypto.PublicKey) (jose.JSONWebKey, error) {
	j, err := publicJWK(pub)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	sum, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: thumbprint: %w", err)
	}
	j.KeyID = b64.EncodeToString(sum)
	return j, nil
}

// MarshalJWKS writes keys as an RFC 7517 key set, go-jose's
// JSONWebKeySet: kty, crv, x, y, kid, alg and use "sig" for each, never a
// private member, since only public key types are taken (KEY-01). It
// refuses two keys with one kid.
func MarshalJWKS(keys []JWK) ([]byte, error) {
	out := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		j, err := publicJWK(k.Key) // named k.Kid below: no thumbprint per request
		if err != nil {
			return nil, err
		}
		if j.Algorithm != k.Alg {
			return nil, fmt.Errorf("keys: key %s is bound to %s, but its type takes %s", k.Kid, k.Alg, j.Algorithm)
		}
		if k.Kid == "" || seen[k.Kid] {
			return nil, fmt.Errorf("keys: kid %q is empty or not unique", k.Kid)
		}
		seen[k.Kid] = true
		j.KeyID = k.Kid
		out.Keys = append(out.Keys, j)
	}
	return json.Marshal(out)
}

// Skipped is a key of a JWKS that ParseJWKS did not take, and why.
type Skipped struct {
	Index  int    // position in "keys"
	Kid    string // empty when it had none
	Reason string
}

func (s Skipped) String() string { return fmt.Sprintf("key %d (kid %q): %s", s.Index, s.Kid, s.Reason) }

// Errors of ParseJWKS: the whole document is refused.
var (
	ErrJWKSTooLarge = fmt.Errorf("keys: JWKS larger than %d bytes or %d keys", MaxJWKSSize, MaxJWKSKeys)
	ErrJWKSInvalid  = errors.New("keys: invalid JWKS")
)

// privateMembers are the JWK members that carry private key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2; RFC 9964's "priv").
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// ParseJWKS reads a key set from an untrusted source, such as another
// issuer's JWKS URL. The document must be at most MaxJWKSSize bytes of
// valid UTF-8 JSON: an object whose "keys" member is an array of at most
// MaxJWKSKeys entries, with no duplicate member names anywhere (member
// names are matched exactly, case included; members it does not know are
// ignored, as RFC 7517 says). Two entries with one kid refuse the whole
// set: a kid must name one key (JWT-03).
//
// Each entry is read by go-jose's JSONWebKey, one at a time rather than
// as its JSONWebKeySet, which refuses a whole set for one key it can't
// read where RFC 7517 §5 says to ignore that key, and with these checks
// around it. An entry is taken only if it is an Ed25519 (kty OKP) or
// P-256 (kty EC) public key with a kid, "use" absent or "sig", "alg"
// absent or the one algorithm its type allows (EdDSA, ES256), and x (and
// y) in strict base64url. A key without "alg" is bound to that algorithm,
// which is safe because each supported key type has only one. Every other
// entry is skipped, with the reason: another key type or curve, a
// malformed, off-curve or low-order point, an encryption key, an
// algorithm the key type doesn't allow, and a key that carries private
// members (its private key is public: nothing it signs can be trusted),
// which is checked before go-jose reads the entry.
func ParseJWKS(data []byte) ([]JWK, []Skipped, error) {
	if len(data) > MaxJWKSSize {
		return nil, nil, ErrJWKSTooLarge
	}
	var doc struct {
		Keys []jsontext.Value `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrJWKSInvalid, err)
	}
	if doc.Keys == nil {
		return nil, nil, fmt.Errorf(`%w: no "keys" array`, ErrJWKSInvalid)
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, nil, ErrJWKSTooLarge
	}
	var keys []JWK
	var skipped []Skipped
	kids := make(map[string]bool, len(doc.Keys))
	for i, raw := range doc.Keys {
		var members map[string]jsontext.Value
		if err := json.Unmarshal(raw, &members); err != nil {
			skipped = append(skipped, Skipped{Index: i, Reason: "not a JSON object"})
			continue
		}
		kid, _ := member(members, "kid")
		if kid != "" {
			if kids[kid] {
				return nil, nil, fmt.Errorf("%w: kid %q names two keys", ErrJWKSInvalid, kid)
			}
			kids[kid] = true
		}
		k, reason := parseJWK(raw, members, kid)
		if reason != "" {
			skipped = append(skipped, Skipped{Index: i, Kid: kid, Reason: reason})
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// parseJWK takes one entry of a key set, raw and as its members, or says
// why not.
func parseJWK(raw jsontext.Value, m map[string]jsontext.Value, kid string) (JWK, string) {
	for _, name := range privateMembers {
		if _, ok := m[name]; ok {
			return JWK{}, fmt.Sprintf("carries the private member %q: its key is public, so nothing it signs is trusted", name)
		}
	}
	if kid == "" {
		return JWK{}, "no kid (a non-empty string)"
	}
	if len(kid) > maxKidLen {
		return JWK{}, fmt.Sprintf("kid longer than %d bytes", maxKidLen)
	}
	fields := map[string]string{}
	for _, name := range []string{"kty", "crv", "x", "y", "alg", "use"} {
		v, err := member(m, name)
		if err != nil {
			return JWK{}, err.Error()
		}
		fields[name] = v
	}
	if u := fields["use"]; u != "" && u != "sig" {
		return JWK{}, fmt.Sprintf("use %q: not a signing key", u)
	}
	if fields["kty"] == "OKP" && fields["y"] != "" {
		return JWK{}, "an OKP key has no y"
	}
	for _, c := range []string{"x", "y"} {
		if _, err := b64.DecodeString(fields[c]); err != nil {
			return JWK{}, c + " is not strict base64url (no padding, no stray bits)"
		}
	}
	var j jose.JSONWebKey
	if err := j.UnmarshalJSON(raw); err != nil {
		return JWK{}, fmt.Sprintf("kty %q crv %q: not a key that can be read (only OKP Ed25519 and EC P-256): %v", fields["kty"], fields["crv"], err)
	}
	alg, err := algOf(j.Key)
	if err != nil {
		return JWK{}, fmt.Sprintf("kty %q crv %q is not supported: only OKP Ed25519 and EC P-256", fields["kty"], fields["crv"])
	}
	if a := fields["alg"]; a != "" && a != alg {
		return JWK{}, fmt.Sprintf("alg %q does not go with a %s key", a, fields["crv"])
	}
	return JWK{Kid: kid, Alg: alg, Key: j.Key}, ""
}

// member is the string member name of m: "" when absent, an error when it
// is not a string.
func member(m map[string]jsontext.Value, name string) (string, error) {
	raw, ok := m[name]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"

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

// jwkJSON is a JWK's JSON form. It has public members only (KEY-01): a
// private key can't be marshalled through it, whatever it is given.
type jwkJSON struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

type jwksJSON struct {
	Keys []jwkJSON `json:"keys"`
}

// publicJWK is the JSON form of pub, with its thumbprint as kid.
func publicJWK(pub crypto.PublicKey) (jwkJSON, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		x := b64.EncodeToString(p)
		return jwkJSON{Kty: "OKP", Crv: "Ed25519", X: x, Alg: EdDSA, Use: "sig",
			Kid: thumbprint("crv", "Ed25519", "kty", "OKP", "x", x)}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			break
		}
		b, err := p.Bytes() // 0x04 || x || y, each 32 bytes
		if err != nil {
			return jwkJSON{}, fmt.Errorf("keys: encode a P-256 key: %w", err)
		}
		x, y := b64.EncodeToString(b[1:33]), b64.EncodeToString(b[33:])
		return jwkJSON{Kty: "EC", Crv: "P-256", X: x, Y: y, Alg: ES256, Use: "sig",
			Kid: thumbprint("crv", "P-256", "kty", "EC", "x", x, "y", y)}, nil
	}
	return jwkJSON{}, fmt.Errorf("keys: a %T public key is not supported: only Ed25519 and P-256", pub)
}

// MarshalJWKS writes keys as an RFC 7517 key set: kty, crv, x, y, kid, alg
// and use "sig" for each, never a private member (KEY-01). It refuses two
// keys with one kid.
func MarshalJWKS(keys []JWK) ([]byte, error) {
	out := jwksJSON{Keys: make([]jwkJSON, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		j, err := publicJWK(k.Key)
		if err != nil {
			return nil, err
		}
		if j.Alg != k.Alg {
			return nil, fmt.Errorf("keys: key %s is bound to %s, but its type takes %s", k.Kid, k.Alg, j.Alg)
		}
		if k.Kid == "" || seen[k.Kid] {
			return nil, fmt.Errorf("keys: kid %q is empty or not unique", k.Kid)
		}
		seen[k.Kid] = true
		j.Kid = k.Kid
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
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseJWKS reads a key set from an untrusted source, such as another
// issuer's JWKS URL. The document must be at most MaxJWKSSize bytes of
// valid UTF-8 JSON: an object whose "keys" member is an array of at most
// MaxJWKSKeys entries, with no duplicate member names anywhere (member
// names are matched exactly, case included; members it does not know are
// ignored, as RFC 7517 says). Two entries with one kid refuse the whole
// set: a kid must name one key (JWT-03).
//
// An entry is taken only if it is an Ed25519 (kty OKP) or P-256 (kty EC)
// public key with a kid, "use" absent or "sig", and "alg" absent or the
// one algorithm its type allows (EdDSA, ES256). A key without "alg" is
// bound to that algorithm, which is safe because each supported key type
// has only one. Every other entry is skipped, with the reason: another key
// type or curve, a malformed or off-curve point, an encryption key, an
// algorithm the key type doesn't allow, and a key that carries private
// members (its private key is public: nothing it signs can be trusted).
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
		k, reason := parseJWK(members, kid)
		if reason != "" {
			skipped = append(skipped, Skipped{Index: i, Kid: kid, Reason: reason})
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// parseJWK takes one entry of a key set, or says why not.
func parseJWK(m map[string]jsontext.Value, kid string) (JWK, string) {
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
	var key crypto.PublicKey
	var alg string
	switch kty, crv := fields["kty"], fields["crv"]; {
	case kty == "OKP" && crv == "Ed25519":
		alg = EdDSA
		x, err := b64.DecodeString(fields["x"])
		if err != nil || len(x) != ed25519.PublicKeySize || fields["y"] != "" {
			return JWK{}, "x is not a base64url Ed25519 public key (32 bytes)"
		}
		key = ed25519.PublicKey(x)
	case kty == "EC" && crv == "P-256":
		alg = ES256
		x, errX := b64.DecodeString(fields["x"])
		y, errY := b64.DecodeString(fields["y"])
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return JWK{}, "x and y are not base64url P-256 coordinates (32 bytes each)"
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return JWK{}, "x, y is not a point of P-256"
		}
		key = pub
	default:
		return JWK{}, fmt.Sprintf("kty %q crv %q is not supported: only OKP Ed25519 and EC P-256", kty, crv)
	}
	if a := fields["alg"]; a != "" && a != alg {
		return JWK{}, fmt.Sprintf("alg %q does not go with a %s key", a, fields["crv"])
	}
	return JWK{Kid: kid, Alg: alg, Key: key}, ""
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

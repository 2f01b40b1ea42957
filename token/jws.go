package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
)

// MaxSize is the largest token the verifier decodes (JWT-07).
const MaxSize = 8 << 10

// b64 is base64url without padding, strict: non-zero trailing bits are
// refused, so that a token has exactly one text (JWT-07).
var b64 = base64.RawURLEncoding.Strict()

// header is the whole of a JOSE header tether accepts: any other member
// (jku, x5u, jwk, x5c, crit, b64, zip, case variants...) is refused
// (JWT-03, JWT-08).
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// wireClaims is the JSON form of Claims. Members it doesn't name land in
// Extra (nil when there are none, the usual case), where verify looks for
// case variants of the registered names (JWT-08).
type wireClaims struct {
	Iss      string                    `json:"iss"`
	Sub      string                    `json:"sub"`
	Aud      audience                  `json:"aud"`
	Exp      int64                     `json:"exp"`
	Iat      int64                     `json:"iat"`
	Nbf      int64                     `json:"nbf"`
	Jti      string                    `json:"jti"`
	ClientID string                    `json:"client_id"`
	Scope    string                    `json:"scope"`
	Gen      uint64                    `json:"gen"`
	Extra    map[string]jsontext.Value `json:",unknown"`
}

// claimNames are the members wireClaims names, for the case-variant check.
var claimNames = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "gen"}

// audience is aud: one string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// compact splits a token in compact serialization after checking its size
// and alphabet (JWT-07); it decodes nothing.
func compact(tok string) (head, payload, sig string, ok bool) {
	if len(tok) > MaxSize {
		return "", "", "", false
	}
	d1, d2 := -1, -1
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.' && d1 < 0:
			d1 = i
		case c == '.' && d2 < 0:
			d2 = i
		default:
			return "", "", "", false
		}
	}
	if d1 <= 0 || d2 <= d1+1 || d2 == len(tok)-1 {
		return "", "", "", false
	}
	return tok[:d1], tok[d1+1 : d2], tok[d2+1:], true
}

// decode appends the base64url decoding of s to buf.
func decode(buf []byte, s string) ([]byte, []byte, error) {
	n := len(buf)
	buf, err := b64.AppendDecode(buf, []byte(s))
	return buf, buf[n:], err
}

// method is the golang-jwt signing method of alg once key is one it may
// use, so that a key is used only with its own algorithm, whatever a
// header says (JWT-02). golang-jwt's methods are taken by name, never
// from its global registry.
func method(alg string, key crypto.PublicKey) (jwt.SigningMethod, error) {
	switch alg {
	case EdDSA:
		if k, ok := key.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return jwt.SigningMethodEdDSA, nil
		}
	case ES256:
		if k, ok := key.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
			return jwt.SigningMethodES256, nil
		}
	default:
		return nil, fmt.Errorf("algorithm %q is not supported (EdDSA or ES256)", alg)
	}
	return nil, fmt.Errorf("a %T can't be used with %s", key, alg)
}

// signingMethod is method for a signer: golang-jwt signs EdDSA with any
// crypto.Signer of an Ed25519 key (a KMS's too), ES256 only with an
// *ecdsa.PrivateKey.
func signingMethod(alg string, key crypto.Signer) (jwt.SigningMethod, error) {
	m, err := method(alg, key.Public())
	if err != nil {
		return nil, err
	}
	if _, ok := key.(*ecdsa.PrivateKey); alg == ES256 && !ok {
		return nil, fmt.Errorf("an ES256 signer must be an *ecdsa.PrivateKey, not a %T", key)
	}
	return m, nil
}

// isAtJWT compares typ with "at+jwt" as a media type (RFC 9068 §2.1, RFC
// 7515 §4.1.9): case-insensitive, "application/" optional, no parameters.
func isAtJWT(typ string) bool {
	const app = "application/"
	if len(typ) > len(app) && strings.EqualFold(typ[:len(app)], app) {
		typ = typ[len(app):]
	}
	return strings.EqualFold(typ, "at+jwt")
}

// validScope reports whether s is a scope of RFC 6749 §3.3: scope tokens
// of %x21 / %x23-5B / %x5D-7E, separated by single spaces.
func validScope(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if s[i-1] == ' ' {
				return false
			}
		case c == 0x21, 0x23 <= c && c <= 0x5B, 0x5D <= c && c <= 0x7E:
		default:
			return false
		}
	}
	return true
}

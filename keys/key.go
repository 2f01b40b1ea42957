package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
)

// The JWS algorithms a key may be bound to (JWT-02): one per key type.
const (
	EdDSA = "EdDSA" // Ed25519, the default
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
)

// Key is a private signing key bound to one algorithm and named by its
// RFC 7638 thumbprint. Printing or logging a Key shows its kid and
// algorithm only, never the private part (KEY-04).
type Key struct {
	kid  string
	alg  string
	priv crypto.Signer // ed25519.PrivateKey or *ecdsa.PrivateKey on P-256
}

// Generate makes a new key for alg (EdDSA or ES256) from crypto/rand.
func Generate(alg string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("keys: algorithm %q is not supported: use %s or %s", alg, EdDSA, ES256)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate a %s key: %w", alg, err)
	}
	return newKey(priv)
}

// ParsePEM reads an existing private key, for an operator who brings the
// key of another issuer: an Ed25519 or P-256 key in a PKCS#8 "PRIVATE KEY"
// block, or a P-256 key in a SEC 1 "EC PRIVATE KEY" block (an "EC
// PARAMETERS" block beside it, as openssl writes one, is ignored). Anything
// else (RSA, other curves, encrypted keys, certificates, several keys) is
// refused with an error that says so.
func ParsePEM(data []byte) (*Key, error) {
	var found *pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY", "EC PRIVATE KEY":
			if found != nil {
				return nil, errors.New("keys: the PEM holds more than one private key: give one key per file")
			}
			found = b
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("keys: the PEM key is encrypted: decrypt it first (openssl pkcs8 -in KEY -out PLAIN.pem)")
		default:
			return nil, fmt.Errorf("keys: a PEM %q block is not supported: give an Ed25519 or P-256 private key (PKCS#8 \"PRIVATE KEY\" or \"EC PRIVATE KEY\")", b.Type)
		}
	}
	if found == nil {
		return nil, errors.New("keys: no PEM private key found: give an Ed25519 or P-256 private key (PKCS#8 \"PRIVATE KEY\" or \"EC PRIVATE KEY\")")
	}
	var parsed any
	var err error
	if found.Type == "EC PRIVATE KEY" {
		parsed, err = x509.ParseECPrivateKey(found.Bytes)
	} else {
		parsed, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: read the %s block: %w", found.Type, err)
	}
	return keyOf(parsed)
}

// keyOf takes a parsed private key of a supported type.
func keyOf(parsed any) (*Key, error) {
	switch k := parsed.(type) {
	case ed25519.PrivateKey:
		return newKey(k)
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("keys: an ECDSA key on %s is not supported: only P-256 (ES256)", k.Curve.Params().Name)
		}
		return newKey(k)
	default:
		return nil, fmt.Errorf("keys: a %T private key is not supported: give an Ed25519 or P-256 key", parsed)
	}
}

func newKey(priv crypto.Signer) (*Key, error) {
	j, err := jwkOf(priv.Public())
	if err != nil {
		return nil, err
	}
	return &Key{kid: j.KeyID, alg: j.Algorithm, priv: priv}, nil
}

// Kid is the key's id: its RFC 7638 thumbprint.
func (k *Key) Kid() string { return k.kid }

// Alg is the one JWS algorithm the key signs and verifies with.
func (k *Key) Alg() string { return k.alg }

// Signer is the private key: an ed25519.PrivateKey or an *ecdsa.PrivateKey.
func (k *Key) Signer() crypto.Signer { return k.priv }

// Public is the public key: an ed25519.PublicKey or an *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.priv.Public() }

// Format prints the kid and algorithm only, whatever the verb (KEY-04).
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "keys.Key{kid: %s, alg: %s}", k.kid, k.alg) }

// LogValue logs the kid and algorithm only (KEY-04).
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.kid), slog.String("alg", k.alg))
}

// marshal is the key's private part as PKCS#8 DER, for Storage.
func (k *Key) marshal() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k.priv) }

// parsePKCS8 is marshal's inverse; it checks that the key is still the one
// named kid, so that a row whose kid and key disagree is never used.
func parsePKCS8(der []byte, kid string) (*Key, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: read the private key of %s: %w", kid, err)
	}
	k, err := keyOf(parsed)
	if err != nil {
		return nil, err
	}
	if k.kid != kid {
		return nil, fmt.Errorf("keys: the stored private key of %s is the key %s: the record was changed outside tether", kid, k.kid)
	}
	return k, nil
}

var b64 = base64.RawURLEncoding.Strict()

package token

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"time"
)

// The verifier's errors. Every refusal of a token wraps ErrInvalid, and the
// more specific sentinel below when there is one, so that errors.Is(err,
// ErrInvalid) answers "401" for every cause (JWT-10) and the specific one
// serves logs and metrics. Messages name the rule that failed, never the
// bytes or the key that would help a forger.
var (
	// ErrInvalid: the token is not acceptable (malformed, bad signature,
	// wrong algorithm, typ, issuer, claims, ...).
	ErrInvalid = errors.New("token: invalid access token")
	// ErrExpired: exp has passed (beyond the leeway).
	ErrExpired = errors.New("token: expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token: not yet valid")
	// ErrAudience: aud is missing or does not contain the verifier's audience.
	ErrAudience = errors.New("token: audience not accepted")
	// ErrUnknownKey: kid names no key of the key set.
	ErrUnknownKey = errors.New("token: unknown signing key")
	// ErrRevoked: the token's jti is on the denylist, or its subject's
	// generation has moved past the token's. Revocations.Check returns it.
	ErrRevoked = errors.New("token: revoked")
	// ErrRevocationsStale: a RevocationStream has not heard from its
	// server within its staleness bound, so it can't tell whether a token
	// was revoked; the verifier refuses the token (fail closed), and
	// WriteError answers 503, not 401.
	ErrRevocationsStale = errors.New("token: revocation stream not heard within its staleness bound")
	// ErrNoToken: the request carries no bearer token.
	ErrNoToken = errors.New("token: no bearer token in the request")
	// ErrInsufficientScope: the token is valid but lacks a required scope.
	ErrInsufficientScope = errors.New("token: insufficient scope")
)

// The JWS algorithms tether signs and verifies with (JWT-02).
const (
	EdDSA = "EdDSA" // Ed25519, the default
	ES256 = "ES256" // ECDSA P-256 with SHA-256, optional
)

// The subject namespaces (JWT-12): a machine client's tokens carry
// "client:" + its client_id, a person's "user:" + the user's id, so that a
// client can never be taken for a user of the same name.
const (
	ClientPrefix = "client:"
	UserPrefix   = "user:"
)

// KeySet gives the verification key named kid and the one JWS algorithm it
// may be used with (EdDSA or ES256); the key is an ed25519.PublicKey or an
// *ecdsa.PublicKey on P-256. For a kid it doesn't hold it returns a nil key
// and a nil error; an error means it could not answer (a store or a fetch
// failed), and the verifier refuses the token without calling it invalid.
// It must be safe for concurrent use.
type KeySet interface {
	PublicKey(ctx context.Context, kid string) (alg string, key crypto.PublicKey, err error)
}

// Signer gives the key to sign with now: its kid, its algorithm (EdDSA or
// ES256) and the signer: for EdDSA an ed25519.PrivateKey or any
// crypto.Signer whose Public is an ed25519.PublicKey (e.g. a KMS); for
// ES256 an *ecdsa.PrivateKey on P-256, the only signer golang-jwt's
// ES256 takes (see "JOSE libraries" in the package doc). It must be safe
// for concurrent use.
type Signer interface {
	SigningKey(ctx context.Context) (kid, alg string, key crypto.Signer, err error)
}

// Revocations is the revocation view a Verifier consults after the
// signature and the claims passed (DESIGN "Revocation"). Check returns an
// error wrapping ErrRevoked when the token's jti is on the denylist or when
// subject's current generation is greater than generation (the one the
// token carries); nil when the token is live; any other error when it can't
// tell (then the verifier refuses the token: fail closed). Revocation is by
// jti, never by a hash of the token's text (JWT-09). It must be safe for
// concurrent use, and fast: it runs on every verification.
type Revocations interface {
	Check(ctx context.Context, subject string, generation uint64, jti string) error
}

// Claims are the verified claims of an access token (RFC 9068 §2.2) and
// tether's generation claim.
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub: "client:..." or "user:..." (JWT-12)
	Audience  []string  // aud
	Expiry    time.Time // exp
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf; zero when absent
	ID        string    // jti
	ClientID  string    // client_id
	Scope     string    // scope, space-separated; "" when absent
	// Generation is the "gen" claim: the subject's revocation generation
	// current when the token was issued. Revoking everything of a subject
	// is one write that raises its generation, which kills every token
	// carrying an older one, including one issued in the same second
	// (CHG-03). Absent means 0.
	Generation uint64
	KeyID      string // kid of the key that signed the token
}

// HasScope reports whether the token's scope contains s.
func (c *Claims) HasScope(s string) bool {
	rest := c.Scope
	for rest != "" {
		var one string
		one, rest, _ = strings.Cut(rest, " ")
		if one == s {
			return true
		}
	}
	return false
}

// ClientSubject is the subject of client id's tokens.
func ClientSubject(id string) string { return ClientPrefix + id }

// UserSubject is the subject of user id's tokens.
func UserSubject(id string) string { return UserPrefix + id }

// StaticKeys is a KeySet and a Signer of one fixed key, for tests and
// examples; a server uses the key ring of package keys.
type StaticKeys struct {
	KID string
	Alg string // EdDSA or ES256
	Key crypto.Signer
}

// PublicKey implements KeySet.
func (s StaticKeys) PublicKey(_ context.Context, kid string) (string, crypto.PublicKey, error) {
	if kid != s.KID {
		return "", nil, nil
	}
	return s.Alg, s.Key.Public(), nil
}

// SigningKey implements Signer.
func (s StaticKeys) SigningKey(context.Context) (string, string, crypto.Signer, error) {
	return s.KID, s.Alg, s.Key, nil
}

var (
	_ KeySet = StaticKeys{}
	_ Signer = StaticKeys{}
)

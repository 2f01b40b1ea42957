package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
)

// MaxLeeway is the most clock skew a Verifier may allow (JWT-04).
const MaxLeeway = 60 * time.Second

// maxKid bounds the kid a KeySet is asked about: tether's are RFC 7638
// thumbprints (43 characters), and a remote key set may fetch on an
// unknown one.
const maxKid = 128

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer is the exact iss to accept (JWT-05). Required.
	Issuer string
	// Audience is this resource server's identifier; aud must contain it
	// (JWT-05). Required.
	Audience string
	// Keys gives the verification keys (JWT-03). Required.
	Keys KeySet
	// Revocations, when set, is consulted after the signature and the
	// claims passed. nil: no revocation check (only for tests and for
	// verifiers that accept that a revoked token lives until its exp).
	Revocations Revocations
	// Algorithms is the allowlist (JWT-02). Default: EdDSA only; add ES256
	// to accept ES256 keys.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 0;
	// at most MaxLeeway (JWT-04).
	Leeway time.Duration
	// MaxLifetime refuses tokens whose exp is further than this after
	// their iat (JWT-04). Default 24 h.
	MaxLifetime time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig
}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("Issuer is required"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("Audience is required"))
	}
	if cfg.Keys == nil {
		errs = append(errs, errors.New("Keys is required"))
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("Leeway %v: must be between 0 and %v", cfg.Leeway, MaxLeeway))
	}
	if cfg.MaxLifetime < 0 {
		errs = append(errs, fmt.Errorf("MaxLifetime %v: must not be negative", cfg.MaxLifetime))
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = 24 * time.Hour
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{EdDSA}
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	for _, a := range cfg.Algorithms {
		if a != EdDSA && a != ES256 {
			errs = append(errs, fmt.Errorf("Algorithms: %q is not supported (EdDSA or ES256)", a))
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("token.NewVerifier: %w", err)
	}
	return &Verifier{cfg: cfg}, nil
}

// refusal is the error of a refused token: its message is why, and it
// wraps ErrInvalid and its kind.
type refusal struct {
	kind error // nil, or the specific sentinel
	why  string
}

func (r *refusal) Error() string { return "token: invalid access token: " + r.why }

func (r *refusal) Unwrap() []error {
	if r.kind == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, r.kind}
}

// invalid is a refusal because of why; kind is nil or a specific sentinel.
func invalid(kind error, why string) error { return &refusal{kind, why} }

// Verify checks tok, an access token in compact form, and returns its
// claims. A refusal wraps ErrInvalid (and ErrExpired, ErrNotYetValid,
// ErrAudience, ErrUnknownKey or ErrRevoked when one of those is the
// cause); any other error means the key set or the revocation view could
// not answer, and the token must be refused all the same.
//
// The order is the security: size and alphabet before any decoding
// (JWT-07); the header, which must be exactly alg, typ and kid; the key
// named by kid and its own algorithm, which the header must match
// (JWT-02, JWT-03); the signature; only then the claims (JWT-01).
func (v *Verifier) Verify(ctx context.Context, tok string) (*Claims, error) {
	h64, p64, s64, ok := compact(tok)
	if !ok {
		return nil, invalid(nil, "not a compact JWS of at most 8 KiB")
	}
	buf := make([]byte, 0, b64.DecodedLen(len(tok)))
	buf, hb, err := decode(buf, h64)
	if err != nil {
		return nil, invalid(nil, "header is not base64url")
	}
	var h header
	if err := json.Unmarshal(hb, &h, json.RejectUnknownMembers(true)); err != nil {
		return nil, invalid(nil, "header is not a JSON object of alg, typ and kid")
	}
	if !isAtJWT(h.Typ) {
		return nil, invalid(nil, "typ is not at+jwt")
	}
	if !slices.Contains(v.cfg.Algorithms, h.Alg) {
		return nil, invalid(nil, "algorithm not allowed")
	}
	if h.Kid == "" || len(h.Kid) > maxKid {
		return nil, invalid(ErrUnknownKey, "no kid, or one too long")
	}
	alg, key, err := v.cfg.Keys.PublicKey(ctx, h.Kid)
	if err != nil {
		return nil, fmt.Errorf("token: key set: %w", err)
	}
	if key == nil {
		return nil, invalid(ErrUnknownKey, "kid names no key")
	}
	m, err := method(alg, key)
	if err != nil || alg != h.Alg {
		return nil, invalid(nil, "algorithm does not match the key")
	}
	buf, sig, err := decode(buf, s64)
	if err != nil || m.Verify(tok[:len(h64)+1+len(p64)], sig, key) != nil {
		return nil, invalid(nil, "bad signature")
	}
	_, pb, err := decode(buf, p64)
	if err != nil {
		return nil, invalid(nil, "claims are not base64url")
	}
	var w wireClaims
	if err := json.Unmarshal(pb, &w); err != nil {
		return nil, invalid(nil, "claims are not a well-formed JSON object of the right types")
	}
	c, err := v.claims(&w)
	if err != nil {
		return nil, err
	}
	c.KeyID = h.Kid
	if v.cfg.Revocations != nil {
		if err := v.cfg.Revocations.Check(ctx, c.Subject, c.Generation, c.ID); errors.Is(err, ErrRevoked) {
			return nil, invalid(ErrRevoked, "jti or subject revoked")
		} else if err != nil {
			return nil, fmt.Errorf("token: revocation check: %w", err)
		}
	}
	return c, nil
}

// claims checks the signed claims (JWT-04, JWT-05, JWT-06, JWT-08,
// JWT-12) and returns them typed.
func (v *Verifier) claims(w *wireClaims) (*Claims, error) {
	for name := range w.Extra {
		for _, known := range claimNames {
			if strings.EqualFold(name, known) {
				return nil, invalid(nil, "a claim name differs from a registered one only by case")
			}
		}
	}
	switch {
	case w.Iss == "" || w.Sub == "" || w.Jti == "" || w.ClientID == "" || w.Exp == 0 || w.Iat == 0:
		return nil, invalid(nil, "a required claim is missing (iss, sub, aud, exp, iat, jti, client_id)")
	case w.Iss != v.cfg.Issuer:
		return nil, invalid(nil, "iss is not this verifier's issuer")
	case len(w.Aud) == 0:
		return nil, invalid(ErrAudience, "aud is missing")
	case !slices.Contains(w.Aud, v.cfg.Audience):
		return nil, invalid(ErrAudience, "aud does not name this resource server")
	case w.Scope != "" && !validScope(w.Scope):
		return nil, invalid(nil, "scope is not space-separated scope tokens")
	case !validSubject(w.Sub, w.ClientID):
		return nil, invalid(nil, `sub is neither "user:ID" nor "client:" + client_id`)
	case w.Exp <= w.Iat || w.Exp-w.Iat > int64(v.cfg.MaxLifetime/time.Second):
		return nil, invalid(nil, "lifetime (exp - iat) is not positive or exceeds the maximum")
	}
	now := v.cfg.Now()
	exp := time.Unix(w.Exp, 0).UTC()
	iat := time.Unix(w.Iat, 0).UTC()
	var nbf time.Time
	if w.Nbf != 0 {
		nbf = time.Unix(w.Nbf, 0).UTC()
	}
	switch skewed := now.Add(v.cfg.Leeway); {
	case !now.Add(-v.cfg.Leeway).Before(exp):
		return nil, invalid(ErrExpired, "exp has passed")
	case skewed.Before(iat):
		return nil, invalid(ErrNotYetValid, "iat is in the future")
	case skewed.Before(nbf):
		return nil, invalid(ErrNotYetValid, "nbf is in the future")
	}
	return &Claims{
		Issuer:     w.Iss,
		Subject:    w.Sub,
		Audience:   w.Aud,
		Expiry:     exp,
		IssuedAt:   iat,
		NotBefore:  nbf,
		ID:         w.Jti,
		ClientID:   w.ClientID,
		Scope:      w.Scope,
		Generation: w.Gen,
	}, nil
}

// validSubject enforces the subject namespaces (JWT-12): "user:" and a
// non-empty id, or "client:" and the token's own client_id.
func validSubject(sub, clientID string) bool {
	if id, ok := strings.CutPrefix(sub, UserPrefix); ok {
		return id != ""
	}
	id, ok := strings.CutPrefix(sub, ClientPrefix)
	return ok && id == clientID
}

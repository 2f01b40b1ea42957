package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// errNotActive is verifyFor's answer for a token the caller is shown as
// not active (INT-01) and may not revoke (REV-01).
var errNotActive = errors.New("server: token not active for this client")

// errNoToken refuses a revocation or introspection without a token.
var errNoToken = oauthProblem(codeInvalidRequest, "The token parameter is missing.")

// verifyFor verifies tok, an access token, for caller: it is active for
// caller when it is valid (signature, claims, not revoked: package token)
// and its aud names one of caller's audiences. A token of another issuer
// or audience, malformed, expired, revoked or signed by a key not in the
// ring is errNotActive; any other error means the key ring or the
// revocation state could not answer, within the store timeout. A
// personal access token (account.PATPrefix) goes to Tokens.PATs: it has
// no audience, and is active for every client that authenticates (an
// enabled one), since the resource servers that accept personal access
// tokens are registered clients that introspect them.
func (s *server) verifyFor(ctx context.Context, caller *account.Client, tok string) (*token.Claims, error) {
	ctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	defer cancel()
	if strings.HasPrefix(tok, account.PATPrefix) {
		if s.oauth.pats == nil {
			return nil, errNotActive
		}
		c, err := s.oauth.pats.CheckPAT(ctx, tok)
		return c, notActive(err)
	}
	for _, aud := range caller.Audiences {
		c, err := s.oauth.verify(ctx, tok, aud)
		if errors.Is(err, token.ErrAudience) {
			continue // valid, but perhaps for another of caller's audiences
		}
		return c, notActive(err)
	}
	return nil, errNotActive
}

// verify verifies tok, an access token, for audience: signed by the
// ring, of tether's issuer, not revoked.
func (o *oauth) verify(ctx context.Context, tok, audience string) (*token.Claims, error) {
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer:      o.issuerURL,
		Audience:    audience,
		Keys:        o.keys,
		Revocations: o.revs,
		Algorithms:  []string{token.EdDSA, token.ES256}, // each key is bound to its own (JWT-02)
		Now:         o.now,
	})
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, tok)
}

// notActive turns the errors that refuse a token into errNotActive.
func notActive(err error) error {
	if errors.Is(err, token.ErrInvalid) {
		return errNotActive
	}
	return err
}

// handleRevoke is POST /oauth2/revoke (RFC 7009, REV-01): an
// authenticated client revokes one of its own access tokens, which goes
// on the denylist by its jti until its exp, and token.MaxLeeway after
// (JWT-09). The answer is 200
// with an empty body whether or not anything was revoked: for another
// client's token, an unknown, invalid or expired one, or a personal
// access token, which are not a client's to revoke. It is an error only
// when the client fails to authenticate or the revocation can't be
// written (503: nothing is reported revoked that isn't).
func handleRevoke(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.revokeToken(r); err != nil {
			s.failOAuth(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

func (s *server) revokeToken(r *http.Request) error {
	const event = "token-revoke"
	c, tok, err := s.tokenRequest(r, event)
	if err != nil {
		return err
	}
	ctx := r.Context()
	claims, err := s.verifyFor(ctx, c, tok)
	switch {
	case errors.Is(err, errNotActive):
		s.audit(r, event, "", "client_id", c.ID, "outcome", "nothing revoked", "reason", "not an active token of the client's audiences")
		return nil
	case err != nil:
		s.audit(r, event, "", "client_id", c.ID, "outcome", "failure", "reason", "store error")
		return fmt.Errorf("revoke token: %w", err)
	case claims.ClientID != c.ID:
		s.audit(r, event, "", "client_id", c.ID, "outcome", "nothing revoked", "reason", "another client's token", "jti", claims.ID)
		return nil
	}
	err = boundedErr(ctx, s.storeTimeout, func(ctx context.Context) error {
		// Kept past exp by the most leeway a verifier may allow, which
		// accepts the token that much longer (JWT-04).
		return s.oauth.revs.RevokeToken(ctx, session.Revocation{JTI: claims.ID, Exp: claims.Expiry.Add(token.MaxLeeway)})
	})
	if err != nil {
		s.audit(r, event, "", "client_id", c.ID, "outcome", "failure", "reason", "store error", "jti", claims.ID)
		return fmt.Errorf("revoke token: %w", err)
	}
	s.audit(r, event, "", "client_id", c.ID, "outcome", "success", "jti", claims.ID, "exp", claims.Expiry.Unix())
	return nil
}

// tokenRequest reads a revocation's or an introspection's request: the
// form, the authenticated client and the token parameter. Failures are
// audited as event. token_type_hint is ignored, as RFC 7009 §2.1 allows:
// tether tells its tokens apart by their form.
func (s *server) tokenRequest(r *http.Request, event string) (*account.Client, string, error) {
	f, creds, err := oauthRequest(r)
	if err != nil {
		s.audit(r, event, "", "client_id", printable(creds.id), "outcome", "failure", "reason", refusal(err))
		return nil, "", err
	}
	c, err := s.authenticate(r, creds, event, nil)
	if err != nil {
		return nil, "", err
	}
	tok := f.get("token")
	if tok == "" {
		s.audit(r, event, "", "client_id", c.ID, "outcome", "failure", "reason", "no token")
		return nil, "", errNoToken
	}
	return c, tok, nil
}

// introspection is an introspection's answer (RFC 7662 §2.2). Every
// member but active is left out of an inactive one, which is exactly
// {"active":false} (INT-01).
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Username  string `json:"username,omitempty"`
	Audience  any    `json:"aud,omitempty"` // a string, or an array of several
	Issuer    string `json:"iss,omitempty"`
	Expiry    int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	ID        string `json:"jti,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

// introspect answers POST /oauth2/introspect (RFC 7662, INT-01): an
// authenticated client asks whether a token is active, and gets its
// claims when it is one the client may see (verifyFor). A personal
// access token's answer has scope, sub, username (its owner's name now),
// exp, iat and token_type: it has no client, audience or issuer claim,
// and its id is the person's to see, not the resource server's.
func (s *server) introspect(r *http.Request) (*introspection, error) {
	c, tok, err := s.tokenRequest(r, "token-introspect")
	if err != nil {
		return nil, err
	}
	claims, err := s.verifyFor(r.Context(), c, tok)
	switch {
	case errors.Is(err, errNotActive):
		return &introspection{}, nil
	case err != nil:
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if strings.HasPrefix(tok, account.PATPrefix) {
		return s.introspectPAT(r.Context(), claims)
	}
	if live, err := s.clientLive(r.Context(), c, claims.ClientID); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	} else if !live {
		return &introspection{}, nil
	}
	res := &introspection{
		Active:    true,
		Scope:     claims.Scope,
		ClientID:  claims.ClientID,
		Subject:   claims.Subject,
		Audience:  claims.Audience,
		Issuer:    claims.Issuer,
		Expiry:    claims.Expiry.Unix(),
		IssuedAt:  claims.IssuedAt.Unix(),
		ID:        claims.ID,
		TokenType: "Bearer",
	}
	if len(claims.Audience) == 1 {
		res.Audience = claims.Audience[0]
	}
	return res, nil
}

// clientLive reports whether the client id a token was issued to still
// exists and is enabled (caller is the introspecting client, read
// already). Disabling or deleting a client ends its tokens by their
// subject's generation; this check holds that on the server's own
// verifiers even if the session store lost what it kept (its data
// wiped): the account store, where the client is, is the durable one.
func (s *server) clientLive(ctx context.Context, caller *account.Client, id string) (bool, error) {
	c := caller
	if c.ID != id {
		var err error
		c, err = bounded(ctx, s.storeTimeout, func(ctx context.Context) (*account.Client, error) { return s.oauth.clients.Client(ctx, id) })
		if errors.Is(err, account.ErrClientNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return !c.Disabled, nil
}

// introspectPAT is introspect's answer for a live personal access token
// of claims; not active when its owner is gone or disabled.
func (s *server) introspectPAT(ctx context.Context, claims *token.Claims) (*introspection, error) {
	u, err := s.users.get(ctx, strings.TrimPrefix(claims.Subject, token.UserPrefix))
	switch {
	case errors.Is(err, account.ErrNotFound):
		return &introspection{}, nil
	case err != nil:
		return nil, fmt.Errorf("introspect: %w", err)
	case u.Disabled:
		return &introspection{}, nil
	}
	return &introspection{
		Active:    true,
		Scope:     claims.Scope,
		Subject:   claims.Subject,
		Username:  u.Name,
		Expiry:    claims.Expiry.Unix(),
		IssuedAt:  claims.IssuedAt.Unix(),
		TokenType: "Bearer",
	}, nil
}

// handleJWKS is GET /.well-known/jwks.json: the ring's public keys
// (KEY-01), which verifiers may cache for the ring's MaxAge: the ring
// publishes a key at least that long before it signs (KEY-02).
func handleJWKS(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, err := s.oauth.keys.JWKS(r.Context())
		if err != nil {
			s.failOAuth(w, r, fmt.Errorf("jwks: %w", err))
			return
		}
		serveDocument(w, "application/jwk-set+json", s.oauth.keys.MaxAge(), set)
	})
}

// serveDocument answers a public document that caches may keep for
// maxAge.
func serveDocument(w http.ResponseWriter, contentType string, maxAge time.Duration, doc []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(maxAge/time.Second), 10))
	w.Write(doc) // an error here means the client went away
}

// metadataMaxAge is how long clients may cache the server's metadata,
// which changes only with its configuration.
const metadataMaxAge = time.Hour

// handleMetadata is GET /.well-known/oauth-authorization-server (RFC
// 8414).
func handleMetadata(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveDocument(w, "application/json", metadataMaxAge, s.oauth.metadata)
	})
}

// metadataDocument is the server's metadata (RFC 8414 §2). It lists no
// scopes_supported: the scopes are the clients', and a client learns its
// own from its token responses. response_types_supported, required, is
// empty: tether has no authorization endpoint.
func metadataDocument(issuer string) ([]byte, error) {
	at := func(path string) string { return strings.TrimSuffix(issuer, "/") + path }
	authMethods := []string{"client_secret_basic", "client_secret_post"}
	return json.Marshal(struct {
		Issuer                   string   `json:"issuer"`
		TokenEndpoint            string   `json:"token_endpoint"`
		JWKSURI                  string   `json:"jwks_uri"`
		RevocationEndpoint       string   `json:"revocation_endpoint"`
		IntrospectionEndpoint    string   `json:"introspection_endpoint"`
		GrantTypes               []string `json:"grant_types_supported"`
		ResponseTypes            []string `json:"response_types_supported"`
		TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
		RevocationAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
		IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	}{
		Issuer:                   issuer,
		TokenEndpoint:            at(tokenPath),
		JWKSURI:                  at(jwksPath),
		RevocationEndpoint:       at(revokePath),
		IntrospectionEndpoint:    at(introspectPath),
		GrantTypes:               []string{"client_credentials"},
		ResponseTypes:            []string{},
		TokenAuthMethods:         authMethods,
		RevocationAuthMethods:    authMethods,
		IntrospectionAuthMethods: authMethods,
	})
}

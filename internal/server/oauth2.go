package server

// OAuth 2.0 for machines (issue 11): the token endpoint (client
// credentials, RFC 6749 §4.4), revocation (RFC 7009), introspection (RFC
// 7662), the JWKS and the server's metadata (RFC 8414). They are served
// only when Config.Tokens is set.
//
// Decisions:
//
//   - Every answer of /oauth2/ is JSON: errors are RFC 6749 §5.2's
//     {"error", "error_description"}, also those of the layers in front
//     (a foreign Host, plain HTTP, a panic, a store that is down), so that
//     an OAuth client never has a page of text to parse. A store that
//     fails or is too slow, and a throttled client, answer
//     temporarily_unavailable (503, or 429) with Retry-After.
//   - A client authenticates on every request, by HTTP Basic or by form
//     fields, never both (clientAuth). Its attempts count under the
//     sign-in throttle before its secret is checked, per client id and
//     per client address (PW-06), and are given back when the secret is
//     right: a burst of guesses gets no more tries than a sequence.
//   - invalid_grant is never answered: in the client credentials grant
//     the grant is the client's authentication, whose failures are
//     invalid_client. unauthorized_client answers a client that may get
//     no token at all (it has no audience).
//   - A client sees, at introspection and revocation, only the tokens
//     whose aud names one of its own audiences: its own tokens are among
//     them, and so are those a resource server registered as a client
//     with that audience is shown. Anything else is "not active"
//     (INT-01) and is not revoked (REV-01).
//   - The token carries its subject's generation read before the client
//     is checked (CHG-03, as SES-12 for sessions): a disable or a
//     revocation racing the request kills the token it issues.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/revocation"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/localdev"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// Tokens configures the OAuth 2.0 endpoints (Config.Tokens). Fields
// without a default are required.
type Tokens struct {
	// Issuer is tether's public URL, such as "https://auth.example.com":
	// the iss of every token, and the base of the endpoints' URLs in the
	// metadata. https, or http on a loopback host; no query or fragment.
	Issuer string
	// Keys signs the tokens and publishes the JWKS: a *keys.Ring, whose
	// MaxTokenTTL must be at least MaxTTL.
	Keys KeyRing
	// Clients holds the OAuth clients.
	Clients account.Clients
	// Revocations is the revocation state of tokens: the denylist and the
	// subjects' generations (a *session.Manager).
	Revocations TokenRevocations
	// PATs checks personal access tokens at introspection (a
	// *PATCheck); nil: a personal access token is never active. Every
	// client that authenticates may introspect them.
	PATs PATChecker
	// Feed is the node's revocation view, which GET /oauth2/revocations
	// streams to remote verifiers (any enabled client may follow it,
	// authenticated as at the token endpoint by HTTP Basic); nil: no
	// stream.
	Feed *revocation.View
	// TTL is the lifetime of a token, cut to the client's MaxTTL when it
	// has one; at most MaxTTL. Default DefaultTokenTTL, or MaxTTL when
	// that is shorter (JWT-04).
	TTL time.Duration
	// MaxTTL caps every token's lifetime (--token-max-ttl). Default
	// DefaultTokenMaxTTL.
	MaxTTL time.Duration
}

// The lifetimes of tokens: Tokens.TTL's and Tokens.MaxTTL's defaults.
const (
	DefaultTokenTTL    = 10 * time.Minute
	DefaultTokenMaxTTL = time.Hour
)

// KeyRing is what the endpoints need of the signing keys: the key to sign
// with, the keys to verify with, and the JWKS to publish with the
// max-age verifiers may cache it for. *keys.Ring implements it.
type KeyRing interface {
	token.Signer
	token.KeySet
	// JWKS returns the key set to publish now, public members only.
	JWKS(ctx context.Context) ([]byte, error)
	// MaxAge is how long a verifier may cache the JWKS.
	MaxAge() time.Duration
}

var _ KeyRing = (*keys.Ring)(nil)

// TokenRevocations is the revocation state of access tokens (DESIGN
// "Revocation"). Check is the view the server's verifier consults
// (token.Revocations); RevokeToken puts a token's jti on the denylist
// until r.Exp, acknowledged only once durable (SES-15), and an error
// means it is not revoked; SubjectGeneration returns a subject's current
// generation ("client:ID"), 0 for one never revoked, which the token
// endpoint reads before it checks the client (CHG-03).
type TokenRevocations interface {
	token.Revocations
	RevokeToken(ctx context.Context, r session.Revocation) error
	SubjectGeneration(ctx context.Context, subject string) (uint64, error)
}

// PATChecker checks a personal access token (account.PATPrefix...) for
// introspection. CheckPAT returns the token's claims when it is live:
// Subject token.UserSubject(owner), Scope, IssuedAt (its creation),
// Expiry, ID (its public id) and Generation; the caller must not change
// them. A token that is not live (malformed, unknown, expired, revoked)
// is an error wrapping token.ErrInvalid; any other error means it could
// not tell, and introspection answers 503. PATCheck implements it.
type PATChecker interface {
	CheckPAT(ctx context.Context, tok string) (*token.Claims, error)
}

// oauth is what the OAuth endpoints need, built by newOAuth.
type oauth struct {
	issuerURL string
	issuer    *token.Issuer
	keys      KeyRing
	clients   account.Clients
	revs      TokenRevocations
	pats      PATChecker
	feed      *revocation.View
	stream    http.Handler // GET /oauth2/revocations, when feed is set
	ttl       time.Duration
	metadata  []byte // the RFC 8414 document
	now       func() time.Time
}

// newOAuth checks t and builds the endpoints' state; nil t: none.
func newOAuth(t *Tokens, now func() time.Time) (*oauth, error) {
	if t == nil {
		return nil, nil
	}
	var problems []error
	if t.Issuer == "" {
		problems = append(problems, errors.New("Tokens.Issuer is required"))
	} else if err := CheckIssuer(t.Issuer); err != nil {
		problems = append(problems, fmt.Errorf("Tokens.Issuer %q: %w", t.Issuer, err))
	}
	for _, name := range unsetFields(
		field{"Keys", t.Keys == nil},
		field{"Clients", t.Clients == nil},
		field{"Revocations", t.Revocations == nil},
	) {
		problems = append(problems, fmt.Errorf("Tokens.%s is required", name))
	}
	ttl, maxTTL := t.TTL, t.MaxTTL
	if maxTTL == 0 {
		maxTTL = DefaultTokenMaxTTL
	}
	if ttl == 0 {
		ttl = min(DefaultTokenTTL, maxTTL)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	issuer, err := token.NewIssuer(token.IssuerConfig{Issuer: t.Issuer, Keys: t.Keys, DefaultTTL: ttl, MaxTTL: maxTTL, Now: now})
	if err != nil {
		return nil, fmt.Errorf("Tokens: %w", err)
	}
	o := &oauth{
		issuerURL: t.Issuer,
		issuer:    issuer,
		keys:      t.Keys,
		clients:   t.Clients,
		revs:      t.Revocations,
		pats:      t.PATs,
		feed:      t.Feed,
		ttl:       ttl,
		now:       now,
	}
	if o.metadata, err = metadataDocument(t.Issuer); err != nil {
		return nil, err
	}
	return o, nil
}

// CheckIssuer refuses an issuer identifier that RFC 8414 §2 doesn't
// allow: it must be an https URL (http on a loopback host, for
// development) with a host and no query, fragment or user.
func CheckIssuer(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(s, "#"):
		return errors.New("must be an https URL with a host and no user, query or fragment, such as https://auth.example.com")
	case u.Scheme == "https", u.Scheme == "http" && localdev.Host(u.Host):
		return nil
	}
	return errors.New("must be https (http only on a loopback host)")
}

// The OAuth endpoints' paths.
const (
	tokenPath      = "/oauth2/token"
	revokePath     = "/oauth2/revoke"
	introspectPath = "/oauth2/introspect"
	jwksPath       = "/.well-known/jwks.json"
	metadataPath   = "/.well-known/oauth-authorization-server"
	streamPath     = "/oauth2/revocations"
)

// isOAuthPath reports whether the errors of path are answered in RFC 6749
// §5.2's shape: the OAuth endpoints and the documents under /.well-known/.
func isOAuthPath(path string) bool {
	return strings.HasPrefix(path, "/oauth2/") || strings.HasPrefix(path, "/.well-known/")
}

// errNoOAuthEndpoint answers a path under /oauth2/ that names no
// endpoint.
var errNoOAuthEndpoint = &problem{status: http.StatusNotFound, code: codeInvalidRequest,
	message: "There is no such OAuth endpoint: GET " + metadataPath + " lists them."}

// oauthErrorBody is an error answer of RFC 6749 §5.2.
type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// The error codes of RFC 6749 §5.2, RFC 8707 (invalid_target) and the
// IANA registry (temporarily_unavailable, server_error) that the
// endpoints answer.
const (
	codeInvalidRequest       = "invalid_request"
	codeInvalidClient        = "invalid_client"
	codeUnauthorizedClient   = "unauthorized_client"
	codeUnsupportedGrantType = "unsupported_grant_type"
	codeInvalidScope         = "invalid_scope"
	codeInvalidTarget        = "invalid_target"
	codeUnavailable          = "temporarily_unavailable"
	codeServerError          = "server_error"
)

// oauthCode is the RFC 6749 error code of p: its own when it is one of
// the endpoints' (oauthProblem), else one by its status, for the problems
// the layers in front share with the API.
func oauthCode(p *problem) string {
	switch p.code {
	case codeInvalidRequest, codeInvalidClient, codeUnauthorizedClient, codeUnsupportedGrantType,
		codeInvalidScope, codeInvalidTarget, codeUnavailable, codeServerError:
		return p.code
	}
	switch {
	case p.status == http.StatusTooManyRequests || p.status == http.StatusServiceUnavailable:
		return codeUnavailable
	case p.status >= 500:
		return codeServerError
	}
	return codeInvalidRequest
}

// oauthProblem is an error of the OAuth endpoints: 401 for
// invalid_client, 400 for the others. message is ASCII without " or \
// (RFC 6749 §5.2's error_description).
func oauthProblem(code, message string) *problem {
	status := http.StatusBadRequest
	if code == codeInvalidClient {
		status = http.StatusUnauthorized
	}
	return &problem{status: status, code: code, message: message}
}

// basicChallenge is the WWW-Authenticate of an invalid_client answer: RFC
// 6749 §5.2 requires one when the client used Basic, and RFC 9110 §11.6.1
// with every 401, so every invalid_client has it.
const basicChallenge = `Basic realm="tether", charset="UTF-8"`

// failOAuth answers err in RFC 6749 §5.2's shape (see oauthCode), with
// Retry-After when there is one to wait, and the Basic challenge with
// invalid_client. Like every answer of the server, it is not cached
// (Cache-Control: no-store, as §5.2 asks).
func (s *server) failOAuth(w http.ResponseWriter, r *http.Request, err error) {
	p := s.problemFor(r, err)
	code := oauthCode(p)
	h := w.Header()
	setRetryAfter(h, p.retryAfter)
	if code == codeInvalidClient {
		h.Set("WWW-Authenticate", basicChallenge)
	}
	h.Set("Pragma", "no-cache")
	encode(w, p.status, oauthErrorBody{Error: code, Description: p.message})
}

// dummySecretHash is compared with the secret of an unknown client, so
// that an unknown client costs what a wrong secret costs.
var dummySecretHash = account.SecretHash(sha256.Sum256([]byte("tether: no such client")))

package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/throttle"
	"github.com/tetherauth/tether/token"
)

// oauthRequest reads what every OAuth POST endpoint takes: the form
// (parseOAuthForm) and the client's credentials (clientAuth). Parameters
// in the URL's query are refused: a client secret or a token there ends
// up in logs.
func oauthRequest(r *http.Request) (oauthForm, clientCreds, error) {
	if r.URL.RawQuery != "" {
		return nil, clientCreds{}, oauthProblem(codeInvalidRequest, "Send the parameters in the body, not in the URL.")
	}
	f, err := parseOAuthForm(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		return nil, clientCreds{}, err
	}
	creds, err := clientAuth(r.Header.Values("Authorization"), f)
	return f, creds, err
}

// errClientAuth is the one answer for an unknown client, a wrong secret
// and a disabled client.
var errClientAuth = oauthProblem(codeInvalidClient, "Client authentication failed: the client is unknown or disabled, or its secret is wrong.")

// authenticate checks a client's credentials and returns the client.
// Unknown, wrong and disabled all answer errClientAuth after the same
// work (a SHA-256 and a constant-time comparison; SecretHash), and count
// as a failed attempt under the client's id and the caller's address
// (PW-06; clientKeys). The secret is checked only once the throttle has
// read that neither key must wait, and a right one counts nothing, so it
// costs a read and no write; a burst of parallel wrong guesses may all
// be checked before the first is counted, which is harmless against a
// 256-bit secret (package throttle, "Checking first"). A failure the
// throttle doesn't count gets no verdict: 503 when it fails, 429 when it
// refuses. With gen set, it reads the generation of the client's subject
// into *gen before it reads the client (CHG-03): a revocation that comes
// after the check then kills the token the generation goes into. event
// names the audit event of a failure.
func (s *server) authenticate(r *http.Request, creds clientCreds, event string, gen *uint64) (*account.Client, error) {
	ctx := r.Context()
	failed := func(reason string, err error) (*account.Client, error) {
		s.audit(r, event, "", "client_id", printable(creds.id), "outcome", "failure", "reason", reason)
		return nil, err
	}
	if !possibleClient(creds) {
		return failed("malformed credentials", errClientAuth)
	}
	keys := s.clientKeys(r, creds.id)
	// refused is the reason and the answer when the throttle's wait or
	// err refuses the request; a nil error otherwise.
	refused := func(wait time.Duration, err error) (string, error) {
		switch {
		case err != nil:
			return "throttle unavailable", fmt.Errorf("client authentication: throttle: %w", err)
		case wait > 0:
			return "throttled", throttled(wait)
		}
		return "", nil
	}
	if reason, err := refused(s.throttle.Wait(ctx, keys...)); err != nil {
		return failed(reason, err)
	}
	countFailure := func(reason string) (*account.Client, error) {
		if why, err := refused(s.throttle.Attempt(ctx, keys...)); err != nil {
			return failed(reason+", not counted: "+why, err)
		}
		return failed(reason, errClientAuth)
	}
	if gen != nil {
		g, err := bounded(ctx, s.storeTimeout, func(ctx context.Context) (uint64, error) {
			return s.oauth.revs.SubjectGeneration(ctx, token.ClientSubject(creds.id))
		})
		if err != nil {
			return failed("store error", fmt.Errorf("client authentication: generation: %w", err))
		}
		*gen = g
	}
	c, err := bounded(ctx, s.storeTimeout, func(ctx context.Context) (*account.Client, error) { return s.oauth.clients.Client(ctx, creds.id) })
	if err != nil && !errors.Is(err, account.ErrClientNotFound) {
		return failed("store error", fmt.Errorf("client authentication: %w", err))
	}
	want := dummySecretHash
	if c != nil {
		want = c.SecretHash
	}
	got := sha256.Sum256([]byte(creds.secret))
	switch {
	case subtle.ConstantTimeCompare(got[:], want[:]) != 1 || c == nil:
		if c == nil {
			return countFailure("unknown client")
		}
		return countFailure("wrong secret")
	case c.Disabled:
		return countFailure("disabled client")
	}
	return c, nil
}

// authorizeFollower authenticates a client that follows the revocation
// stream (GET /oauth2/revocations): any enabled client, by HTTP Basic (a
// GET has no form), throttled like every client authentication. A
// refusal is answered as at the token endpoint: 401 invalid_client, 429
// throttled, 503 when a store can't tell.
func (s *server) authorizeFollower(w http.ResponseWriter, r *http.Request) bool {
	creds, err := clientAuth(r.Header.Values("Authorization"), nil)
	if err == nil {
		_, err = s.authenticate(r, creds, "revocations-follow", nil)
	}
	if err != nil {
		s.failOAuth(w, r, err)
		return false
	}
	return true
}

// clientKeys are the throttle keys of a client's authentication: its
// caller's address (shared with sign-ins, and as lenient, since one
// address may run many clients) and the client id, which gets the same
// allowance, so that strangers' guesses delay the client itself only
// after as many failures as an office's address allows.
func (s *server) clientKeys(r *http.Request, id string) []throttle.Key {
	address := s.address
	address.Name = ipThrottleKey(clientIP(r, s.proxies))
	client := s.address
	client.Name = "client:" + id
	return []throttle.Key{address, client}
}

// tokenResponse is a token endpoint's answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// handleOAuth answers an OAuth request with what answer returns: JSON
// and 200, or the error (failOAuth). Neither is cached: Cache-Control:
// no-store, as every answer of the server, and Pragma: no-cache, as RFC
// 6749 §5.1 asks of a token's.
func handleOAuth[T any](s *server, answer func(*http.Request) (T, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := answer(r)
		if err != nil {
			s.failOAuth(w, r, err)
			return
		}
		w.Header().Set("Pragma", "no-cache")
		encode(w, http.StatusOK, res)
	})
}

// issueToken answers POST /oauth2/token, the client credentials grant
// (RFC 6749 §4.4): it checks the request and issues its token: the scope
// asked for, a subset of the client's (all of them when none is asked
// for); the audiences asked for by resource (RFC 8707) or audience, among
// the client's (its first when none is asked for); the lifetime of
// Tokens.TTL cut to the client's MaxTTL. What the request alone shows to
// be wrong is refused before the client is authenticated, and counts no
// attempt.
func (s *server) issueToken(r *http.Request) (*tokenResponse, error) {
	const event = "token-issue"
	f, creds, err := oauthRequest(r)
	if err != nil {
		s.audit(r, event, "", "client_id", printable(creds.id), "outcome", "failure", "reason", refusal(err))
		return nil, err
	}
	failed := func(reason string, err error) (*tokenResponse, error) {
		s.audit(r, event, "", "client_id", printable(creds.id), "outcome", "failure", "reason", reason)
		return nil, err
	}
	switch gt := f.get("grant_type"); gt {
	case "":
		return failed("no grant_type", oauthProblem(codeInvalidRequest, "The grant_type is missing: tether grants client_credentials."))
	case "client_credentials":
	default:
		return failed("unsupported grant_type", oauthProblem(codeUnsupportedGrantType, "Grant type "+printable(gt)+" is not supported: tether grants client_credentials."))
	}
	scopes, err := parseScope(f.get("scope"))
	if err != nil {
		return failed("malformed scope", err)
	}
	resources, audience := f["resource"], f.get("audience")
	if len(resources) > 0 && audience != "" {
		return failed("resource and audience", oauthProblem(codeInvalidRequest, "Name the audience by resource or by audience, not both."))
	}
	if audience != "" {
		resources = []string{audience}
	}
	var gen uint64
	c, err := s.authenticate(r, creds, event, &gen)
	if err != nil {
		return nil, err // audited
	}
	if len(scopes) == 0 {
		scopes = c.Scopes
	}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) {
			return failed("scope not allowed", oauthProblem(codeInvalidScope, "Scope "+printable(sc)+" is not among the client's scopes."))
		}
	}
	if len(c.Audiences) == 0 {
		return failed("no audience", oauthProblem(codeUnauthorizedClient, "The client has no audience to get a token for: an operator must give it one."))
	}
	if len(resources) == 0 {
		resources = c.Audiences[:1]
	}
	for _, aud := range resources {
		if !slices.Contains(c.Audiences, aud) {
			return failed("audience not allowed", oauthProblem(codeInvalidTarget, "Audience "+printable(aud)+" is not among the client's audiences."))
		}
	}
	ttl := s.oauth.ttl
	if c.MaxTTL > 0 {
		ttl = min(ttl, c.MaxTTL)
	}
	scope := strings.Join(scopes, " ")
	tok, claims, err := s.oauth.issuer.Issue(r.Context(), token.Grant{
		Subject:    token.ClientSubject(c.ID),
		ClientID:   c.ID,
		Audience:   slices.Compact(slices.Sorted(slices.Values(resources))),
		Scope:      scope,
		Generation: gen,
		TTL:        ttl,
	})
	if err != nil {
		return failed("signing failed", fmt.Errorf("issue token: %w", err))
	}
	s.audit(r, event, "", "client_id", c.ID, "outcome", "success", "jti", claims.ID,
		"aud", strings.Join(claims.Audience, " "), "scope", scope, "exp", claims.Expiry.Unix())
	return &tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(claims.Expiry.Sub(claims.IssuedAt) / time.Second), Scope: scope}, nil
}

// parseScope splits a scope parameter (RFC 6749 §3.3): scope tokens of
// the characters %x21 / %x23-5B / %x5D-7E, separated by single spaces.
// It returns them sorted, each once; none for an empty scope.
func parseScope(scope string) ([]string, error) {
	if scope == "" {
		return nil, nil
	}
	bad := oauthProblem(codeInvalidScope, "The scope is malformed: scope tokens of printable ASCII but double quote and backslash, separated by single spaces.")
	var out []string
	for sc := range strings.SplitSeq(scope, " ") {
		if !isScopeToken(sc) {
			return nil, bad
		}
		out = append(out, sc)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// isScopeToken reports whether s is a scope token of RFC 6749 §3.3: one
// or more of the characters %x21 / %x23-5B / %x5D-7E.
func isScopeToken(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

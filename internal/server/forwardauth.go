package server

// Forward-auth (issue 12): /auth/verify, the check a reverse proxy asks
// before it passes a request on to a backend (nginx auth_request, Caddy
// forward_auth, Traefik ForwardAuth).
//
// Decisions:
//
//   - Any method gets the same decision (GW-03): proxies send the
//     original request's method (Traefik) or GET (nginx, Caddy). Nothing
//     on this path changes state, so it needs no CSRF check, and the
//     plain-HTTP check of the pages (transport.go) lets it through: its
//     answer doesn't depend on the transport, and a Secure cookie only
//     travels over HTTPS anyway.
//   - The credential is the Authorization header when there is one, else
//     the session cookie: a request that carries both is decided by its
//     token, and a bad token is never rescued by a cookie. More than one
//     Authorization header, a scheme other than Bearer, or access_token in
//     the query (JWT-11) is a refusal.
//   - A bearer token that starts with tether_pat_ is a personal access
//     token (PATCheck); any other is a JWT access token, which is checked
//     only against the audience ?audience= names: a JWT is valid only for
//     an audience (JWT-05), and tether can't guess the upstream's. Without
//     ?audience= a JWT is refused (401).
//   - ?scope= (repeatable; each a scope, or several separated by spaces)
//     requires every scope named: a token without one of them gets 403. A
//     session carries no scopes: a route that people reach with their
//     browser should not ask for one. ?audience= binds JWTs only: sessions
//     and personal access tokens have no audience (introspection shows a
//     personal access token to every client, too) and pass it.
//   - 200 carries the identity headers; every answer carries all of them,
//     empty when there is nothing to say, so that a proxy that copies them
//     overwrites whatever the client sent (GW-02). There is never a body.
//   - A store that can't answer (the session store, the revocation state,
//     the personal access tokens, the account store on a miss) gives 503
//     with Retry-After: never a 200 (SES-11, MISC-05).
//   - X-Tether-User is the user's name, read through the server's user
//     cache (userCache, Config.UserCacheTTL): with the session or the
//     personal access token in its near-cache and the user in the user
//     cache, the check reads no store at all; each node reads an active
//     user at most once per UserCacheTTL. A user disabled or deleted in
//     the account store alone is refused once that copy is gone, as at
//     introspection (INT-01); through tether, a disable or delete ends
//     the user's sessions and tokens at once (credential). For a client's
//     token, X-Tether-User and X-Tether-User-Id are the client's id, read
//     from the token. The client an access token was issued to is read
//     through a cache of the same TTL: a client disabled or deleted in
//     the account store alone is refused once that copy is gone, as at
//     introspection (INT-01); through tether, a disable or delete ends
//     its tokens at once (their subject's generation).
//   - ?assertion=AUDIENCE, for an audience of Config.Assertions
//     (any other is a 400: the proxy's configuration is wrong), adds
//     X-Tether-Assertion to a 200: an access token of AssertionTTL, signed
//     by the key ring like the token endpoint's, for that audience alone,
//     with the identity's subject (user: or client:), scopes and
//     generation, so that the upstream can check who it serves offline
//     with token.Verifier, revocations included. Its client_id is the
//     client's for a client's token, else assertionClientID. Each costs a
//     signature, and for a session a read of the user's token generation
//     and then of the user's sessions in the session store, so that a
//     revocation racing the check never leaves a live assertion (CHG-03).
//   - A JWT signed by tether but for another audience than ?audience=
//     is a 403, as the issue asks, not JWT-10's 401 (even when it has
//     also expired or been revoked, which the verifier checks after the
//     audience): the audience is checked only after the signature
//     (JWT-01), so the answer tells nothing to a forger, only to a holder
//     of a real token.
//   - For a browser (Accept names text/html), the 401 carries Location:
//     tether's sign-in page (Tokens.Issuer + /login, or the request's own
//     host) with return= the original URL, when a trusted proxy said what
//     it was (X-Original-URL, or X-Forwarded-Proto, -Host and -Uri; GW-02)
//     and the return-address check allows it (returnto.go, GW-01); with
//     ?redirect=1 the answer is a 302 to it instead, for proxies that pass
//     the check's answer on as it is (Caddy).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/localdev"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// verifyPath is the forward-auth endpoint.
const verifyPath = "/auth/verify"

// The identity headers of a forward-auth answer.
const (
	HeaderUser        = "X-Tether-User"
	HeaderUserID      = "X-Tether-User-Id"
	HeaderSessionID   = "X-Tether-Session-Id"
	HeaderScopes      = "X-Tether-Scopes"
	HeaderSubjectType = "X-Tether-Subject-Type"
	HeaderAssertion   = "X-Tether-Assertion"
)

// AssertionTTL is the lifetime of an X-Tether-Assertion.
const AssertionTTL = time.Minute

// assertionClientID is the client_id of an assertion for a person (their
// session or personal access token): forward-auth itself. An assertion
// for a client's token keeps that client's.
const assertionClientID = "tether-forward-auth"

// The refusals of /auth/verify, which answers with their status only.
var (
	errForwardUnauthenticated = &problem{status: http.StatusUnauthorized, code: "unauthenticated"}
	errForwardInvalidToken    = &problem{status: http.StatusUnauthorized, code: "invalid_token"}
	errForwardScope           = &problem{status: http.StatusForbidden, code: "insufficient_scope"}
	errForwardBadRequest      = &problem{status: http.StatusBadRequest, code: "bad_request"}
)

// identity is who a forward-auth check found.
type identity struct {
	name, id, sessionID, scopes, kind string
	assertion                         string // X-Tether-Assertion, when asked for
	// The grant an assertion carries: the client it names ("" for a
	// person's) and the subject's generation (read when signing, for a
	// session).
	clientID string
	gen      uint64
}

// handleForwardAuth is /auth/verify, any method.
func handleForwardAuth(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.forwardCheck(r)
		if err != nil {
			s.failForward(w, r, err)
			return
		}
		setIdentity(w.Header(), id)
		w.WriteHeader(http.StatusOK)
	})
}

// setIdentity sets every identity header to id's, "" for the zero one.
// The values share one array, each its own capped slice of it (as
// http.Header.Clone does), so that setting them costs one allocation,
// not six; the names are in canonical form already.
func setIdentity(h http.Header, id identity) {
	v := []string{id.name, id.id, id.sessionID, id.scopes, id.kind, id.assertion}
	h[HeaderUser] = v[0:1:1]
	h[HeaderUserID] = v[1:2:2]
	h[HeaderSessionID] = v[2:3:3]
	h[HeaderScopes] = v[3:4:4]
	h[HeaderSubjectType] = v[4:5:5]
	h[HeaderAssertion] = v[5:6:6]
}

// forwardCheck decides a forward-auth request.
func (s *server) forwardCheck(r *http.Request) (identity, error) {
	var required []string
	audience, assertFor := "", ""
	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil || len(q["audience"]) > 1 || len(q["assertion"]) > 1 {
			return identity{}, errForwardBadRequest
		}
		if assertFor = q.Get("assertion"); q.Has("assertion") && !slices.Contains(s.asserted, assertFor) {
			return identity{}, errForwardBadRequest // a proxy's configuration error, not the client's
		}
		if q.Has("access_token") { // JWT-11
			return identity{}, errForwardInvalidToken
		}
		for _, v := range q["scope"] {
			required = append(required, strings.Fields(v)...)
		}
		audience = q.Get("audience")
	}
	var id identity
	var err error
	if auth := r.Header.Values("Authorization"); len(auth) > 0 {
		id, err = s.forwardToken(r.Context(), auth, audience)
		s.metrics.TokenVerified(verifiedOutcome(err))
	} else {
		id, err = s.forwardSession(r)
	}
	if err != nil {
		return identity{}, err
	}
	for _, want := range required {
		if !(&token.Claims{Scope: id.scopes}).HasScope(want) {
			return identity{}, errForwardScope
		}
	}
	if assertFor != "" {
		if id.assertion, err = s.assert(r.Context(), id, assertFor); err != nil {
			return identity{}, err
		}
	}
	return id, nil
}

// verifiedOutcome is the metrics' outcome of a token check that returned
// err: "active", "inactive" (refused: 4xx) or "error" (a store failed).
func verifiedOutcome(err error) string {
	var p *problem
	switch {
	case err == nil:
		return "active"
	case errors.As(err, &p) && p.status < http.StatusInternalServerError:
		return "inactive"
	}
	return "error"
}

// assert signs id's assertion for audience: an access token of
// AssertionTTL (at+jwt, by the key ring, as the token endpoint's) with
// id's subject, client and scopes, and the subject's generation, which
// for a session is read from the revocation state (a store read) before
// the session is checked again in the session store.
func (s *server) assert(ctx context.Context, id identity, audience string) (string, error) {
	subject, clientID := token.UserSubject(id.id), cmp.Or(id.clientID, assertionClientID)
	if id.kind == "client" {
		subject = token.ClientSubject(id.id)
	}
	ctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	defer cancel()
	gen := id.gen
	if id.sessionID != "" {
		// The generation first, then the session in the store, not the
		// near-cache (SES-12's order, as createPAT): a revocation that
		// ends the session after this read raises the generation after
		// it too, and so ends this assertion (CHG-03); one that raised it
		// before has ended the session, which the check finds.
		var err error
		if gen, err = s.oauth.revs.SubjectGeneration(ctx, subject); err != nil {
			return "", fmt.Errorf("forward-auth: assertion: %w", err)
		}
		switch live, err := s.sessionLive(ctx, id.id, id.sessionID); {
		case err != nil:
			return "", fmt.Errorf("forward-auth: assertion: %w", err)
		case !live:
			return "", errForwardUnauthenticated
		}
	}
	tok, _, err := s.oauth.issuer.Issue(ctx, token.Grant{
		Subject: subject, ClientID: clientID, Audience: []string{audience},
		Scope: id.scopes, Generation: gen, TTL: AssertionTTL,
	})
	if err != nil {
		return "", fmt.Errorf("forward-auth: assertion: %w", err)
	}
	return tok, nil
}

// forwardSession is the identity of the request's session.
func (s *server) forwardSession(r *http.Request) (identity, error) {
	if storeDown(r.Context()) {
		return identity{}, errUnavailable
	}
	sess := session.FromContext(r.Context())
	if sess == nil {
		return identity{}, errForwardUnauthenticated
	}
	id, err := s.forwardUser(r.Context(), sess.UserID(), errForwardUnauthenticated)
	id.sessionID = sess.ID()
	return id, err
}

// forwardUser is the identity of the user with that id, or refused when
// the user is gone or disabled.
func (s *server) forwardUser(ctx context.Context, userID string, refused error) (identity, error) {
	u, err := s.users.get(ctx, userID)
	switch {
	case errors.Is(err, account.ErrNotFound):
		return identity{}, refused
	case err != nil:
		return identity{}, fmt.Errorf("forward-auth: load user: %w", err)
	case u.Disabled:
		return identity{}, refused
	}
	return identity{name: u.Name, id: u.ID, kind: "user"}, nil
}

// forwardToken is the identity of the bearer token of auth, the request's
// Authorization headers.
func (s *server) forwardToken(ctx context.Context, auth []string, audience string) (identity, error) {
	if len(auth) > 1 {
		return identity{}, errForwardInvalidToken
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || s.oauth == nil {
		return identity{}, errForwardInvalidToken
	}
	ctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	defer cancel()
	var c *token.Claims
	var err error
	switch {
	case strings.HasPrefix(tok, account.PATPrefix):
		if s.oauth.pats == nil {
			return identity{}, errForwardInvalidToken
		}
		c, err = s.oauth.pats.CheckPAT(ctx, tok)
	case audience == "":
		return identity{}, errForwardInvalidToken
	default:
		c, err = s.oauth.verify(ctx, tok, audience)
	}
	switch {
	case errors.Is(err, token.ErrAudience):
		return identity{}, errForwardScope
	case errors.Is(err, token.ErrInvalid):
		return identity{}, errForwardInvalidToken
	case err != nil:
		return identity{}, fmt.Errorf("forward-auth: check token: %w", err)
	}
	if !strings.HasPrefix(tok, account.PATPrefix) {
		switch live, err := s.clientLiveCached(ctx, c.ClientID); {
		case err != nil:
			return identity{}, fmt.Errorf("forward-auth: load client: %w", err)
		case !live:
			return identity{}, errForwardInvalidToken
		}
	}
	var id identity
	if userID, ok := strings.CutPrefix(c.Subject, token.UserPrefix); ok {
		if id, err = s.forwardUser(ctx, userID, errForwardInvalidToken); err != nil {
			return identity{}, err
		}
	} else {
		id = identity{name: c.ClientID, id: c.ClientID, kind: "client", clientID: c.ClientID}
	}
	id.scopes, id.gen = c.Scope, c.Generation
	return id, nil
}

// clientLiveCached reports whether the client with that id, the one an
// access token was issued to, still exists and is enabled, as clientLive
// at introspection (INT-01), read through the client cache (s.clients).
func (s *server) clientLiveCached(ctx context.Context, id string) (bool, error) {
	c, err := s.clients.get(ctx, id)
	switch {
	case errors.Is(err, account.ErrClientNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return !c.Disabled, nil
}

// failForward answers a refused or failed forward-auth check: its status,
// the identity headers empty, no body; a store's failure is 503 with
// Retry-After (problemFor). A 401 names the Bearer scheme, and tells a
// browser where to sign in (see the decisions above).
func (s *server) failForward(w http.ResponseWriter, r *http.Request, err error) {
	p := s.problemFor(r, err)
	h := w.Header()
	setIdentity(h, identity{})
	setRetryAfter(h, p.retryAfter)
	status := p.status
	switch p {
	case errForwardUnauthenticated: // no credential: the scheme to use (RFC 6750 §3)
		h.Set("WWW-Authenticate", "Bearer")
	case errForwardInvalidToken:
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case errForwardScope:
		h.Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	}
	if status == http.StatusUnauthorized && wantsHTML(r) {
		h.Set("Location", s.signInURL(r))
		if r.URL.Query().Get("redirect") == "1" {
			status = http.StatusFound
		}
	}
	w.WriteHeader(status)
}

// wantsHTML reports whether r comes from a browser navigating: its Accept
// names text/html.
func wantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// signInURL is where a browser refused by forward-auth signs in: the
// sign-in page, with the original URL to return to when a trusted proxy
// named it and the return-address check allows it (GW-01, GW-02).
func (s *server) signInURL(r *http.Request) string {
	login := s.publicURL(r) + "/login"
	if to, ok := s.returnTo(forwardedURL(r, s.proxies)); ok {
		login += "?return=" + url.QueryEscape(to)
	}
	return login
}

// publicURL is tether's own address: Tokens.Issuer, else the scheme and
// Host of r, which checkHost found to be one of tether's.
func (s *server) publicURL(r *http.Request) string {
	if s.oauth != nil {
		return s.oauth.issuerURL
	}
	scheme := "https://"
	if r.TLS == nil && localdev.Host(r.Host) {
		scheme = "http://"
	}
	return scheme + r.Host
}

// forwardedURL is the URL the client asked the proxy for, as a trusted
// proxy says it (GW-02): X-Original-URL (nginx), else X-Forwarded-Proto
// (default https), X-Forwarded-Host and X-Forwarded-Uri (Caddy, Traefik).
// "" when the peer is not a trusted proxy, or it said nothing usable.
func forwardedURL(r *http.Request, trusted []netip.Prefix) string {
	if !fromTrustedProxy(r, trusted) {
		return ""
	}
	if u := r.Header.Values("X-Original-URL"); len(u) == 1 {
		return u[0]
	}
	host, uri := single(r.Header, "X-Forwarded-Host"), single(r.Header, "X-Forwarded-Uri")
	if host == "" || !strings.HasPrefix(uri, "/") {
		return ""
	}
	proto := strings.ToLower(strings.TrimSpace(single(r.Header, "X-Forwarded-Proto")))
	if proto == "" {
		proto = "https"
	}
	return proto + "://" + host + uri
}

// single is the one value of header name in h: "" when there is none or
// more than one.
func single(h http.Header, name string) string {
	if v := h.Values(name); len(v) == 1 {
		return v[0]
	}
	return ""
}

// fromTrustedProxy reports whether r's peer is one of trusted (PW-06).
func fromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && isTrusted(peer.Addr().Unmap(), trusted)
}

package token

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// VerifyRequest verifies the bearer token of r's Authorization header
// (RFC 6750 §2.1). A request that also carries access_token in its URL
// query is refused, whatever its header says: a token in a URL ends up in
// logs and Referer headers (JWT-11). ErrNoToken (which is not ErrInvalid)
// means there is no token at all.
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	if r.URL.Query().Has("access_token") {
		return nil, invalid(nil, "access token in the URL query")
	}
	auth := r.Header.Values("Authorization")
	if len(auth) == 0 {
		return nil, ErrNoToken
	}
	if len(auth) > 1 {
		return nil, invalid(nil, "more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, invalid(nil, "authorization is not a Bearer token")
	}
	return v.Verify(r.Context(), tok)
}

// WriteError answers a request whose token VerifyRequest refused, or which
// lacks a scope (ErrInsufficientScope), the way RFC 6750 §3 says: 401 with
// exactly `Bearer error="invalid_token"` for every cause of refusal, so the
// answer tells a forger nothing (JWT-10); 401 with a bare `Bearer` when
// there was no token; 403 `insufficient_scope`; and for a verifier that
// could not decide (the key set or the revocation view failed), 503 with
// Retry-After, never a pass.
func WriteError(w http.ResponseWriter, err error) {
	h := w.Header()
	switch {
	case errors.Is(err, ErrNoToken):
		h.Set("WWW-Authenticate", "Bearer")
		http.Error(w, "authentication required", http.StatusUnauthorized)
	case errors.Is(err, ErrInsufficientScope):
		h.Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		http.Error(w, "insufficient scope", http.StatusForbidden)
	case errors.Is(err, ErrInvalid):
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
	default:
		h.Set("Retry-After", "1")
		http.Error(w, "token verification unavailable", http.StatusServiceUnavailable)
	}
}

// Middleware verifies each request's bearer token and requires scope (none
// when ""), answering refusals with WriteError; next finds the claims with
// FromContext.
func (v *Verifier) Middleware(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.VerifyRequest(r)
		if err == nil && scope != "" && !c.HasScope(scope) {
			err = ErrInsufficientScope
		}
		if err != nil {
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

type claimsKey struct{}

// FromContext returns the claims Middleware put in ctx, or nil.
func FromContext(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}

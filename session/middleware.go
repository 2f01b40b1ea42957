package session

import (
	"context"
	"errors"
	"net/http"
)

// LoadRequest is the session check of Middleware on its own, for a server
// that answers its own errors (as http.CrossOriginProtection's Check is to
// its Handler). It returns:
//
//   - nil and no error when r has no session cookie, or one whose token is
//     malformed, unknown, expired or revoked: exactly as if there were no
//     cookie (SES-04);
//   - ErrDuplicateCookie when r carries the cookie twice (SES-06; Go's
//     r.Cookie would silently take the first, which lets a sibling domain
//     toss a cookie in ahead of ours);
//   - a store error when the session can't be checked; the caller must not
//     serve the request as signed in (SES-11);
//   - else the live session, its idle deadline written back if
//     TouchInterval has passed (SES-07).
func (m *Manager) LoadRequest(r *http.Request) (*Session, error) {
	cookies := r.CookiesNamed(m.CookieName(r))
	switch len(cookies) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, ErrDuplicateCookie
	}
	ctx := r.Context()
	s, res, err := m.load(ctx, cookies[0].Value)
	if err == nil {
		// What the request gets is what OnLoad is told: a session the
		// touch found gone is refused, a touch the store failed fails
		// the request (SES-11).
		if s, err = m.Touch(ctx, s); errors.Is(err, ErrNoSession) {
			res.Outcome = LoadRevoked
		} else if err != nil {
			res.Outcome = LoadStoreError
		}
	}
	m.loaded(res)
	if errors.Is(err, ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		m.logStoreError(ctx, err)
		return nil, err
	}
	return s, nil
}

// Middleware loads the session named by the request's cookie into the
// request's context (see FromContext) with LoadRequest, and calls next:
// without a session when there is none (SES-04), with it when there is one,
// the response then carrying Cache-Control: no-store (SES-09). A duplicated
// cookie (SES-06) or a store error (SES-11) goes to Config.ErrorHandler
// instead, and next does not run. Every response gets Vary: Cookie, since
// it may depend on the cookie.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		s, err := m.LoadRequest(r)
		switch {
		case err != nil:
			m.cfg.ErrorHandler(w, r, err)
		case s == nil:
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r.WithContext(WithSession(r.Context(), s)))
		}
	})
}

// CookieName is the name of the session cookie of r: Config.CookieName
// (with its __Secure- prefix when Config.CookieDomain is set), or without
// its prefix for a local development request (see
// Config.InsecureLocalhostHTTP).
func (m *Manager) CookieName(r *http.Request) string {
	name, _ := m.dev.Cookie(r, m.cfg.CookieName)
	return name
}

// SetCookie sends token as the session cookie for s in the response to r:
// __Host- prefix, Secure, HttpOnly, Path=/, no Domain, SameSite as
// configured, expiring at the session's absolute deadline (SES-05); with
// Config.CookieDomain, __Secure- and that Domain instead. Only
// Config.InsecureLocalhostHTTP drops the prefix, Secure and Domain, and
// only for a local development request.
func (m *Manager) SetCookie(w http.ResponseWriter, r *http.Request, token string, s *Session) {
	c := m.cookie(r)
	c.Value, c.Expires = token, s.abs
	http.SetCookie(w, c)
}

// ClearCookie tells the client of r to drop the session cookie: the one
// SetCookie sent, with the same name, Domain and Path, since a browser
// expires only the cookie they all match (SES-08).
func (m *Manager) ClearCookie(w http.ResponseWriter, r *http.Request) {
	c := m.cookie(r)
	c.MaxAge = -1
	http.SetCookie(w, c)
}

// cookie returns the session cookie for the response to r, without its
// value and lifetime.
func (m *Manager) cookie(r *http.Request) *http.Cookie {
	name, secure := m.dev.Cookie(r, m.cfg.CookieName)
	c := &http.Cookie{Name: name, Path: "/", Secure: secure, HttpOnly: true, SameSite: m.cfg.SameSite}
	if secure {
		c.Domain = m.cfg.CookieDomain
	}
	return c
}

// logStoreError logs a store error of LoadRequest, at most once a
// second with the count of those it left out: while the store is down,
// every request fails, and one line per request would drown the log.
func (m *Manager) logStoreError(ctx context.Context, err error) {
	if held, ok := m.storeLog.Let(); ok {
		m.log.ErrorContext(ctx, "loading session", "err", err, "similar_errors_not_logged", held)
	}
}

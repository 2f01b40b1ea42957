package session

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Middleware loads the session named by the request's cookie into the
// request's context (see FromContext) and calls next.
//
//   - No cookie, or one whose token is malformed, unknown, expired or
//     revoked: next runs without a session, exactly as if there were no
//     cookie (SES-04). The cookie is left alone, so the two cases can't be
//     told apart from the response either.
//   - The cookie twice: Config.ErrorHandler gets ErrDuplicateCookie and next
//     does not run (SES-06; Go's r.Cookie would silently take the first,
//     which lets a sibling domain toss a cookie in ahead of ours).
//   - A store error: Config.ErrorHandler gets it and next does not run
//     (SES-11).
//   - A live session: its idle deadline is written back if TouchInterval
//     has passed (SES-07), the response gets Cache-Control: no-store
//     (SES-09), and next runs with the session.
//
// Every response gets Vary: Cookie, since it may depend on the cookie.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		cookies := r.CookiesNamed(m.cfg.CookieName)
		if len(cookies) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if len(cookies) > 1 {
			m.cfg.ErrorHandler(w, r, ErrDuplicateCookie)
			return
		}
		ctx := r.Context()
		s, err := m.Load(ctx, cookies[0].Value)
		if err == nil {
			s, err = m.Touch(ctx, s)
		}
		switch {
		case errors.Is(err, ErrNoSession):
			next.ServeHTTP(w, r)
		case err != nil:
			m.logStoreError(ctx, err)
			m.cfg.ErrorHandler(w, r, err)
		default:
			w.Header().Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r.WithContext(WithSession(ctx, s)))
		}
	})
}

// CookieName is the name of the session cookie.
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// SetCookie sends token as the session cookie for s: __Host- prefix, Secure,
// HttpOnly, Path=/, no Domain, SameSite as configured, expiring at the
// session's absolute deadline (SES-05).
func (m *Manager) SetCookie(w http.ResponseWriter, token string, s *Session) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.cfg.CookieName,
		Value:    token,
		Path:     "/",
		Expires:  s.abs,
		Secure:   true,
		HttpOnly: true,
		SameSite: m.cfg.SameSite,
	})
}

// ClearCookie tells the client to drop the session cookie.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.cfg.CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Secure:   true,
		HttpOnly: true,
		SameSite: m.cfg.SameSite,
	})
}

// logStoreError logs a store error of the middleware, at most once a
// second with the count of those it left out: while the store is down,
// every request fails, and one line per request would drown the log.
func (m *Manager) logStoreError(ctx context.Context, err error) {
	now := m.cfg.Now().UnixNano()
	last := m.lastStoreLog.Load()
	if now-last < int64(time.Second) || !m.lastStoreLog.CompareAndSwap(last, now) {
		m.storeErrsUnlogged.Add(1)
		return
	}
	m.log.ErrorContext(ctx, "loading session", "err", err, "similar_errors_not_logged", m.storeErrsUnlogged.Swap(0))
}

package session

import (
	"errors"
	"fmt"
	"net"
	"net/http"
)

// SignIn signs r's client in as userID if check approves: Begin, then
// check, then Create, then Establish. check reads and verifies the
// credential (the password hash, the disabled flag) and returns nil to
// let the sign-in proceed; it runs after Begin has read the user's
// generation, so that if the credential changes while it runs (a password
// change, a disabled account, "sign out everywhere", on any node) the
// sign-in fails with an error wrapping ErrRevoked instead of leaving a
// live session behind (SES-12). An error of check is returned as it is.
//
// The session's Meta is the request's user agent and the host of
// r.RemoteAddr: behind a proxy, call Begin, Create and Establish yourself
// with the client's address.
func (m *Manager) SignIn(w http.ResponseWriter, r *http.Request, userID string, check func() error) (*Session, error) {
	t, err := m.Begin(r.Context(), userID)
	if err != nil {
		return nil, err
	}
	if err := check(); err != nil {
		return nil, err
	}
	meta := Meta{UserAgent: r.UserAgent()}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		meta.IP = host
	}
	token, s, err := m.Create(r.Context(), t, meta)
	if err != nil {
		return nil, err
	}
	return s, m.Establish(w, r, token, s)
}

// Establish makes s, just created with token, the session of r's client:
// it ends the session r came with, if any, and sends token as the
// cookie. So a session is never promoted and the token the client had is
// dead (SES-03). If the old session can't be ended, neither can be used:
// s is revoked too, and the error returned.
func (m *Manager) Establish(w http.ResponseWriter, r *http.Request, token string, s *Session) error {
	if old := FromContext(r.Context()); old != nil {
		if err := m.Revoke(r.Context(), old); err != nil {
			return errors.Join(err, m.Revoke(r.Context(), s))
		}
	}
	m.SetCookie(w, r, token, s)
	return nil
}

// SignOut ends the session of r's cookie and tells the client to drop the
// cookie, and to forget what it cached and stored of this origin:
// Clear-Site-Data "cache", "storage", never "cookies", which would clear
// every cookie of the registrable domain, sibling apps' sessions included
// (SES-08). Call it from a POST handler behind CSRF protection.
//
// While the store can't be reached the cookie is still cleared, and the
// session ends once the store answers (see RevokeLater): SignOut then
// returns an error wrapping ErrPending, for the caller to say so. Any other
// error means nothing was done.
func (m *Manager) SignOut(w http.ResponseWriter, r *http.Request) error {
	var pending error
	if cs := r.CookiesNamed(m.CookieName(r)); len(cs) == 1 {
		err := m.RevokeLater(r.Context(), cs[0].Value)
		switch {
		case errors.Is(err, ErrPending):
			pending = err
		case err != nil && !errors.Is(err, ErrNoSession):
			return fmt.Errorf("session: sign out: %w", err)
		}
	}
	m.ClearCookie(w, r)
	w.Header().Set("Clear-Site-Data", `"cache", "storage"`)
	return pending
}

// CSRFBinding returns what the CSRF tokens of r's session are bound to:
// its public ID, new with every session, so that its tokens die with it.
// Pass it to csrf.Protector.Handler as the binding, and embed
// Protector.Token(session.CSRFBinding(r)) in the session's pages. Without a
// session it is nil, which Handler refuses.
func CSRFBinding(r *http.Request) []byte {
	if s := FromContext(r.Context()); s != nil {
		return []byte(s.ID())
	}
	return nil
}

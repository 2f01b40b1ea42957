package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
)

// The actions: one function each, shared by the JSON API and the pages.
// They return problems (see errors.go) or wrapped store errors, and set or
// clear cookies themselves, so both front ends behave the same.

// signIn checks a user name and password and, when they are right, starts a
// new session and sets its cookie (SES-03). Unknown users, wrong passwords
// and disabled users all get errInvalidCredentials after the same hashing
// work (PW-05). Attempts are throttled per account and per client IP
// (PW-06), and every outcome is an audit event (PW-07).
func (s *server) signIn(w http.ResponseWriter, r *http.Request, name, pw string) (*account.User, *session.Session, error) {
	ctx := r.Context()
	if len(pw) > password.MaxBytes { // PW-04: before any hashing
		return nil, nil, errPasswordTooLong
	}
	// A name that can't be canonicalised can't be an account: it is
	// throttled by IP only, and fails like an unknown user.
	canon, nameErr := account.CanonicalName(name)
	keys := []string{ipThrottleKey(clientIP(r, s.proxies))}
	if nameErr == nil {
		keys = append(keys, accountThrottleKey(canon))
	}
	if err := s.wait(r, "sign-in", canon, keys); err != nil {
		return nil, nil, err
	}
	var u *account.User
	if nameErr == nil {
		var err error
		u, err = s.accounts.ByName(ctx, canon)
		if errors.Is(err, account.ErrNotFound) {
			u = nil
		} else if err != nil {
			return nil, nil, fmt.Errorf("sign in: %w", err)
		}
	}
	ok, rehash, err := s.verify(ctx, u, pw)
	if err != nil {
		return nil, nil, fmt.Errorf("sign in: %w", err)
	}
	var reason string
	switch {
	case u == nil:
		reason = "unknown user"
	case !ok:
		reason = "wrong password"
	case u.Disabled:
		reason = "disabled user"
	}
	if reason != "" {
		if err := s.throttle.Fail(ctx, keys...); err != nil {
			return nil, nil, fmt.Errorf("sign in: %w", err)
		}
		s.audit(r, "sign-in", canon, "outcome", "failure", "reason", reason)
		return nil, nil, errInvalidCredentials
	}
	// Only the account's count is reset: resetting the IP's would let one
	// known password clear the way for guessing others from that address.
	if err := s.throttle.Reset(ctx, accountThrottleKey(canon)); err != nil {
		s.log.ErrorContext(ctx, "resetting the sign-in throttle", "err", err)
	}
	if rehash { // PW-03
		s.rehash(ctx, u, pw)
	}
	sess, err := s.startSession(w, r, u)
	if err != nil {
		return nil, nil, fmt.Errorf("sign in: %w", err)
	}
	s.audit(r, "sign-in", canon, "outcome", "success", "user_id", u.ID, "session_id", sess.ID)
	return u, sess, nil
}

// wait returns a throttled problem (429) when keys must wait, after logging
// the refusal as a failed attempt of event (PW-06, PW-07).
func (s *server) wait(r *http.Request, event, user string, keys []string) error {
	d, err := s.throttle.Wait(r.Context(), keys...)
	if err != nil {
		return fmt.Errorf("%s: throttle: %w", event, err)
	}
	if d > 0 {
		s.audit(r, event, user, "outcome", "failure", "reason", "throttled")
		return throttled(d)
	}
	return nil
}

// verify checks pw against u's hash, or against a dummy one when u is nil,
// at the same cost (PW-05). A malformed stored hash counts as a wrong
// password; what it returns as an error is ErrBusy (PW-04) or the context's.
func (s *server) verify(ctx context.Context, u *account.User, pw string) (ok, rehash bool, err error) {
	if u == nil {
		return false, false, s.hasher.VerifyDummy(ctx, pw)
	}
	ok, rehash, err = s.hasher.Verify(ctx, pw, u.PasswordHash)
	if errors.Is(err, password.ErrMalformedHash) {
		s.log.ErrorContext(ctx, "stored password hash is malformed", "user_id", u.ID)
		return false, false, nil
	}
	return ok, rehash, err
}

// rehash stores a new hash of u's password made with the current parameters
// (PW-03). A failure is logged: the old hash still works.
func (s *server) rehash(ctx context.Context, u *account.User, pw string) {
	h, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = s.setPassword(ctx, u.ID, h)
	}
	if err != nil {
		s.log.WarnContext(ctx, "rehashing a password", "user_id", u.ID, "err", err)
	}
}

// setPassword stores the password hash of the user with that id and drops
// the user from the cache.
func (s *server) setPassword(ctx context.Context, id, hash string) error {
	defer s.users.forget(id)
	return s.accounts.SetPassword(ctx, id, hash)
}

// startSession ends the request's session, if any, and starts a new one for
// u with a new token: a session is never promoted (SES-03). It sets the
// session cookie and drops the pre-session.
func (s *server) startSession(w http.ResponseWriter, r *http.Request, u *account.User) (*session.Session, error) {
	ctx := r.Context()
	if old := session.FromContext(ctx); old != nil {
		if err := s.sessions.Revoke(ctx, old); err != nil {
			return nil, err
		}
	}
	token, sess, err := s.sessions.Create(ctx, u.ID, s.meta(r))
	if err != nil {
		return nil, err
	}
	s.sessions.SetCookie(w, token, sess)
	clearPreSession(w)
	return sess, nil
}

// meta describes the client of r for its new session (SES-10).
func (s *server) meta(r *http.Request) session.Meta {
	ip := clientIP(r, s.proxies)
	m := session.Meta{UserAgent: r.UserAgent()}
	if ip.IsValid() {
		m.IP = ip.String()
	}
	return m
}

// whoami returns the request's session and its user, or errSignedOut when
// there is no session or its user is gone or disabled. The user may come
// from the cache (see userCache), without its password hash: checking a
// password takes whoamiFresh's.
func (s *server) whoami(r *http.Request) (*session.Session, *account.User, error) {
	return s.signedIn(r, s.users.get)
}

// whoamiFresh is whoami reading the user from the account store.
func (s *server) whoamiFresh(r *http.Request) (*session.Session, *account.User, error) {
	return s.signedIn(r, s.accounts.ByID)
}

func (s *server) signedIn(r *http.Request, byID func(ctx context.Context, id string) (*account.User, error)) (*session.Session, *account.User, error) {
	sess := session.FromContext(r.Context())
	if sess == nil {
		return nil, nil, errSignedOut
	}
	u, err := byID(r.Context(), sess.UserID)
	switch {
	case errors.Is(err, account.ErrNotFound):
		return nil, nil, errSignedOut
	case err != nil:
		return nil, nil, fmt.Errorf("load user: %w", err)
	case u.Disabled:
		return nil, nil, errSignedOut
	}
	return sess, u, nil
}

// sessionsOf returns the request's session, its user and all of that user's
// live sessions, oldest first (SES-10).
func (s *server) sessionsOf(r *http.Request) (*session.Session, *account.User, []*session.Session, error) {
	sess, u, err := s.whoami(r)
	if err != nil {
		return nil, nil, nil, err
	}
	list, err := s.sessions.List(r.Context(), u.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	return sess, u, list, nil
}

// signOut ends the request's session in the store, expires its cookie and
// asks the browser to forget everything of this site (SES-08).
func (s *server) signOut(w http.ResponseWriter, r *http.Request) error {
	if sess := session.FromContext(r.Context()); sess != nil {
		if err := s.sessions.Revoke(r.Context(), sess); err != nil {
			return fmt.Errorf("sign out: %w", err)
		}
		s.audit(r, "sign-out", "", "user_id", sess.UserID, "session_id", sess.ID)
	}
	s.sessions.ClearCookie(w)
	w.Header().Set("Clear-Site-Data", `"cache", "cookies", "storage"`)
	return nil
}

// revokeSession ends the user's session with public id id (SES-10) and
// reports whether it was the request's own, whose cookie it then clears.
func (s *server) revokeSession(w http.ResponseWriter, r *http.Request, id string) (own bool, err error) {
	sess, u, err := s.whoami(r)
	if err != nil {
		return false, err
	}
	err = s.sessions.RevokeID(r.Context(), u.ID, id)
	if errors.Is(err, session.ErrNoSession) {
		return false, errNoSuchSession
	} else if err != nil {
		return false, fmt.Errorf("revoke session: %w", err)
	}
	s.audit(r, "revoke-session", u.Name, "user_id", u.ID, "session_id", id)
	if id == sess.ID {
		s.sessions.ClearCookie(w)
		return true, nil
	}
	return false, nil
}

// revokeOthers ends every session of the user but the request's (SES-10).
func (s *server) revokeOthers(r *http.Request) error {
	sess, u, err := s.whoami(r)
	if err != nil {
		return err
	}
	if err := s.sessions.RevokeUser(r.Context(), u.ID, sess); err != nil {
		return fmt.Errorf("revoke other sessions: %w", err)
	}
	s.audit(r, "revoke-others", u.Name, "user_id", u.ID, "session_id", sess.ID)
	return nil
}

// changePassword changes the signed-in user's password. It needs the
// current password, whose failures count towards the throttle (CHG-01).
// A fresh session is issued to the caller and every other session of the
// user, the caller's old one included, ends at once (CHG-02); only then is
// the new hash stored, so if the sessions can't be revoked the password is
// not changed (CHG-04). It returns the fresh session, whose cookie it sets.
func (s *server) changePassword(w http.ResponseWriter, r *http.Request, current, next string) (*session.Session, error) {
	ctx := r.Context()
	_, u, err := s.whoamiFresh(r)
	if err != nil {
		return nil, err
	}
	if len(current) > password.MaxBytes || len(next) > password.MaxBytes { // PW-04
		return nil, errPasswordTooLong
	}
	keys := []string{ipThrottleKey(clientIP(r, s.proxies)), accountThrottleKey(u.Name)}
	if err := s.wait(r, "password-change", u.Name, keys); err != nil {
		return nil, err
	}
	ok, _, err := s.verify(ctx, u, current)
	if err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	if !ok {
		if err := s.throttle.Fail(ctx, keys...); err != nil {
			return nil, fmt.Errorf("change password: %w", err)
		}
		s.audit(r, "password-change", u.Name, "outcome", "failure", "reason", "wrong password")
		return nil, errWrongPassword
	}
	if err := s.throttle.Reset(ctx, accountThrottleKey(u.Name)); err != nil {
		s.log.ErrorContext(ctx, "resetting the sign-in throttle", "err", err)
	}
	if err := s.policy.Check(next, u.Name); err != nil {
		return nil, policyProblem(err)
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	token, fresh, err := s.sessions.Create(ctx, u.ID, s.meta(r))
	if err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	if err := s.sessions.RevokeUser(ctx, u.ID, fresh); err != nil {
		// CHG-04: the password stays as it was; the caller keeps the old
		// session if it survived, and the fresh one goes.
		err = errors.Join(err, s.sessions.Revoke(ctx, fresh))
		return nil, fmt.Errorf("change password: revoke sessions: %w", err)
	}
	// The caller's old session is dead now: the fresh cookie goes out even
	// if storing the hash fails below.
	s.sessions.SetCookie(w, token, fresh)
	if err := s.setPassword(ctx, u.ID, hash); err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	s.audit(r, "password-change", u.Name, "outcome", "success", "user_id", u.ID, "session_id", fresh.ID)
	return fresh, nil
}

// setupAdmin creates the first admin through the one-time setup link (PW-08)
// and signs them in. It is refused once any user exists, also when another
// node's setup link created one a moment ago: the store's CreateFirst
// checks and creates at once for every node (s.setup only serialises the
// uses of this node's link).
func (s *server) setupAdmin(w http.ResponseWriter, r *http.Request, token, name, pw string) (*account.User, *session.Session, error) {
	ctx := r.Context()
	if len(pw) > password.MaxBytes { // PW-04
		return nil, nil, errPasswordTooLong
	}
	canon, err := account.CanonicalName(name)
	if err != nil {
		return nil, nil, badRequest("invalid_name", "User names are 1 to 64 of the characters a-z 0-9 . _ @ + -.")
	}
	if err := s.policy.Check(pw, canon); err != nil {
		return nil, nil, policyProblem(err)
	}
	u := &account.User{Name: canon, Admin: true}
	err = s.setup.use(token, func() error {
		// Saves hashing when a user exists; CreateFirst decides.
		n, err := s.accounts.Count(ctx)
		switch {
		case err != nil:
			return err
		case n > 0:
			return errSetupInvalid
		}
		if u.PasswordHash, err = s.hasher.Hash(ctx, pw); err != nil {
			return err
		}
		err = s.accounts.CreateFirst(ctx, u)
		if errors.Is(err, account.ErrNotFirst) { // a user was created since Count
			return errSetupInvalid
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	s.audit(r, "setup", u.Name, "user_id", u.ID)
	sess, err := s.startSession(w, r, u)
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	s.audit(r, "sign-in", u.Name, "outcome", "success", "user_id", u.ID, "session_id", sess.ID)
	return u, sess, nil
}

// setupOpen reports whether token opens the setup form now: it is the
// setup's token, unused and unexpired, and no user exists yet.
func (s *server) setupOpen(ctx context.Context, token string) (bool, error) {
	if !s.setup.valid(token) {
		return false, nil
	}
	n, err := s.accounts.Count(ctx)
	if err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	return n == 0, nil
}

// policyProblem says which password rule a new password breaks (PW-01,
// PW-02); the policy's errors are written to be shown as they are.
func policyProblem(err error) error {
	code := "password_rejected"
	switch {
	case errors.Is(err, password.ErrTooShort):
		code = "password_too_short"
	case errors.Is(err, password.ErrTooLong):
		code = "password_too_long"
	case errors.Is(err, password.ErrCommon):
		code = "password_too_common"
	case errors.Is(err, password.ErrMatchesUsername):
		code = "password_matches_username"
	}
	return badRequest(code, err.Error())
}

// accountThrottleKey is the throttle key of a canonical account name.
func accountThrottleKey(canon string) string { return "user:" + canon }

// audit logs an audit event (PW-07): what happened, to whom, from where and
// with what user agent; the log record carries when. Never a password, a
// token or a cookie.
func (s *server) audit(r *http.Request, event, user string, attrs ...any) {
	ip := clientIP(r, s.proxies)
	base := []any{"event", event, "user", user, "ip", ip.String(), "user_agent", r.UserAgent()}
	s.log.InfoContext(r.Context(), "audit", append(base, attrs...)...)
}

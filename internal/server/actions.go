package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/credential"
	"github.com/tetherauth/tether/internal/throttle"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
)

// The actions: one function each, shared by the JSON API and the pages.
// They return problems (see errors.go) or wrapped store errors, and set or
// clear cookies themselves, so both front ends behave the same.

// signIn checks a user name and password and, when they are right, starts a
// new session and sets its cookie (SES-03), through the credential
// service, which orders it against password changes and disables racing it
// (SES-12). Unknown users, wrong passwords and disabled users all get
// errInvalidCredentials after the same hashing work (PW-05). Every attempt
// is throttled before its password is checked (PW-06; see signInThrottle),
// and a throttled one gets that answer too, in about the same time,
// without its password being checked (pace.go),
// waits for the hasher at its priority (see priority.go), and every
// outcome, refusals before any check included, is an audit event (PW-07).
func (s *server) signIn(w http.ResponseWriter, r *http.Request, name, pw string) (*account.User, *session.Session, error) {
	canon, _ := account.CanonicalName(name)       // "" when it can't be a name
	if err := checkSignIn(name, pw); err != nil { // before the throttle counts it
		s.audit(r, "sign-in", canon, "outcome", "failure", "reason", refusal(err))
		return nil, nil, err
	}
	t := s.signInThrottle(r, canon)
	ctx, end, busy := s.prioritize(r.Context(), canon, t.device != "")
	defer end()
	priority := password.PriorityOf(ctx).String()
	failed := func(reason string, err error) (*account.User, *session.Session, error) {
		s.audit(r, "sign-in", canon, "outcome", "failure", "reason", reason, "priority", priority)
		return nil, nil, err
	}
	if err := busy; err != nil {
		return failed("busy", fmt.Errorf("sign in: %w", err))
	}
	if wait, err := s.throttle.Attempt(ctx, t.keys...); err != nil {
		return failed("throttle unavailable", fmt.Errorf("sign in: throttle: %w", err))
	} else if wait > 0 { // answered as a wrong password, in as long, unchecked (PW-05, pace.go)
		s.likeACheck(ctx, pw)
		return failed("throttled", errInvalidCredentials)
	}
	began := time.Now() // real time, whatever s.now says: what the client waits (pace.go)
	u, token, sess, err := s.creds.SignIn(ctx, name, pw, s.meta(r))
	if reason, ok := signInFailure(err); ok {
		s.checks.observe(time.Since(began))
		return failed(reason, errInvalidCredentials) // the attempt stays counted
	}
	if err != nil { // the password was never checked: give the attempt back
		s.logThrottleError(ctx, s.throttle.Refund(ctx, keyNames(t.keys)...))
		return failed(refusal(err), fmt.Errorf("sign in: %w", err))
	}
	// Only the account's (or the device's) count is reset; the address's
	// gets this attempt back, and no more: else one known password would
	// clear the way for guessing others from that address.
	s.logThrottleError(ctx, s.throttle.Reset(ctx, t.reset))
	s.logThrottleError(ctx, s.throttle.Refund(ctx, t.refund...))
	if err := s.establish(w, r, token, sess); err != nil {
		return failed("store error", fmt.Errorf("sign in: %w", err))
	}
	device := t.device
	if device == "" {
		device = s.devices.issue(u.Name)
	}
	setDeviceCookie(w, device)
	s.audit(r, "sign-in", canon, "outcome", "success", "user_id", u.ID, "session_id", sess.ID(), "device", t.device != "", "priority", priority)
	return u, sess, nil
}

// signInFailure returns the audit reason of a sign-in whose credentials
// were checked and refused, and false for any other error.
func signInFailure(err error) (string, bool) {
	switch {
	case errors.Is(err, credential.ErrUnknownUser):
		return "unknown user", true
	case errors.Is(err, credential.ErrWrongPassword):
		return "wrong password", true
	case errors.Is(err, credential.ErrDisabled):
		return "disabled user", true
	case errors.Is(err, credential.ErrChangedMeanwhile):
		return "the account changed during the sign-in", true
	}
	return "", false
}

// checkSignIn refuses a sign-in that no account could accept, from what
// was typed alone: before the throttle counts an attempt (PW-06; a typo
// is not a guess) and before any hashing. A missing or impossible name,
// a missing, oversized (PW-04) or non-UTF-8 (PW-09) password: none of it
// depends on which accounts exist (PW-05).
func checkSignIn(name, pw string) error {
	switch {
	case !utf8.ValidString(name):
		return errInvalidUTF8Name
	case strings.TrimSpace(name) == "":
		return missing("username", "The username")
	}
	if _, err := account.CanonicalName(name); err != nil {
		return errInvalidName
	}
	return checkPassword(pw, "password", "The password")
}

// checkPassword refuses a password that no check could accept, from the
// field of that name, which what describes: an empty one, one longer than
// password.MaxBytes (PW-04) or one that isn't UTF-8 (PW-09).
func checkPassword(pw, field, what string) error {
	switch {
	case pw == "":
		return missing(field, what)
	case len(pw) > password.MaxBytes:
		return errPasswordTooLong.about(field)
	case !utf8.ValidString(pw):
		return errInvalidUTF8.about(field)
	}
	return nil
}

// refusal names, for the audit log, why a request was refused without its
// password being checked.
func refusal(err error) string {
	var p *problem
	switch {
	case errors.As(err, &p): // "password too long", "missing field", ...
		return strings.ReplaceAll(p.code, "_", " ")
	case errors.Is(err, password.ErrBusy):
		return "busy"
	case errors.Is(err, password.ErrInvalidUTF8):
		return "password not UTF-8"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	}
	return "store error"
}

// Throttling of sign-ins (PW-06). A browser with a device cookie of the
// account counts on its own key only. Any other client counts on two: the
// account's key for clients it doesn't know (strangers' guesses delay
// strangers), and its address's, which allows more attempts and drains
// at a steady rate (Config.AddressFree), since everyone behind one NAT
// shares it.
//
// signInKeys are the throttle keys of one sign-in, what a success resets
// and refunds, and the device cookie value when r carries one of canon's.
type signInKeys struct {
	keys   []throttle.Key
	reset  string
	refund []string
	device string
}

func (s *server) signInThrottle(r *http.Request, canon string) signInKeys {
	if value, nonce, ok := s.devices.check(r, canon); ok {
		k := "device:" + nonce
		return signInKeys{keys: []throttle.Key{{Name: k}}, reset: k, device: value}
	}
	address := s.address
	address.Name = ipThrottleKey(clientIP(r, s.proxies))
	account := accountThrottleKey(canon)
	return signInKeys{
		keys:   []throttle.Key{address, {Name: account}},
		reset:  account,
		refund: []string{address.Name},
	}
}

// keyNames returns the names of keys.
func keyNames(keys []throttle.Key) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return names
}

// logThrottleError logs a failed Reset or Refund: the answer stands, the
// count is only less exact.
func (s *server) logThrottleError(ctx context.Context, err error) {
	if err != nil {
		s.log.ErrorContext(ctx, "updating the sign-in throttle", "err", err)
	}
}

// establish makes sess, just created with token, the session of r's
// client (session.Manager.Establish: never a promoted session, SES-03)
// and drops the pre-session.
func (s *server) establish(w http.ResponseWriter, r *http.Request, token string, sess *session.Session) error {
	if err := s.sessions.Establish(w, r, token, sess); err != nil {
		return err
	}
	s.csrf.ClearPreSession(w, r) // the pre-session has done its job (CSRF-05)
	return nil
}

// startSession starts a new session for u, just created, and sets its
// cookie (see establish).
func (s *server) startSession(w http.ResponseWriter, r *http.Request, u *account.User) (*session.Session, error) {
	t, err := s.sessions.Begin(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	token, sess, err := s.sessions.Create(r.Context(), t, s.meta(r))
	if err != nil {
		return nil, err
	}
	return sess, s.establish(w, r, token, sess)
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
	u, err := byID(r.Context(), sess.UserID())
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

// signOut ends the request's session, expires its cookie and asks the
// browser to forget what this origin stored (SES-08). The cookie is
// cleared even when the session store can't be reached; the session's
// end is then pending: this node makes it once the store answers
// (session.Manager.RevokeLater), and pending reports so.
func (s *server) signOut(w http.ResponseWriter, r *http.Request) (pending bool, err error) {
	sid, user := "", ""
	if sess := session.FromContext(r.Context()); sess != nil {
		sid, user = sess.ID(), sess.UserID()
	}
	err = s.sessions.SignOut(w, r) // the cookie, and Clear-Site-Data without "cookies"
	pending = errors.Is(err, session.ErrPending)
	if err != nil && !pending {
		return false, err
	}
	s.audit(r, "sign-out", "", "outcome", "success", "user_id", user, "session_id", sid, "pending", pending)
	return pending, nil
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
	s.audit(r, "revoke-session", u.Name, "outcome", "success", "user_id", u.ID, "session_id", id)
	if id == sess.ID() {
		s.sessions.ClearCookie(w, r)
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
	s.audit(r, "revoke-others", u.Name, "outcome", "success", "user_id", u.ID, "session_id", sess.ID())
	return nil
}

// changePassword changes the signed-in user's password through the
// credential service, which checks the current one (CHG-01), issues a
// fresh session to the caller and ends every other session of the user at
// once, the caller's old one included (CHG-02), and changes nothing if the
// sessions can't be ended (CHG-04). Attempts are throttled per session
// (PW-06): a stranger's guesses at the sign-in form never stop the owner,
// and a stolen session can't guess freely; they hash at High priority, one
// at a time per account (see priority.go). It returns the fresh session,
// whose cookie it sets.
func (s *server) changePassword(w http.ResponseWriter, r *http.Request, current, next string) (*session.Session, error) {
	ctx := r.Context()
	sess, u, err := s.whoamiFresh(r)
	if err != nil {
		return nil, err
	}
	failed := func(reason string, err error) (*session.Session, error) {
		s.audit(r, "password-change", u.Name, "outcome", "failure", "reason", reason, "user_id", u.ID)
		return nil, err
	}
	// Before the throttle counts an attempt, and before any hashing.
	if err := cmp.Or(checkPassword(current, "current", "The current password"), checkPassword(next, "new", "The new password")); err != nil {
		return failed(refusal(err), err)
	}
	ctx, end, err := s.prioritize(ctx, u.Name, true)
	defer end()
	if err != nil {
		return failed("busy", fmt.Errorf("change password: %w", err))
	}
	key := "session:" + sess.ID()
	if wait, err := s.throttle.Attempt(ctx, throttle.Key{Name: key}); err != nil {
		return failed("throttle unavailable", fmt.Errorf("change password: throttle: %w", err))
	} else if wait > 0 {
		return failed("throttled", throttled(wait))
	}
	token, fresh, err := s.creds.ChangePassword(ctx, u.ID, current, next, s.meta(r))
	switch {
	case errors.Is(err, credential.ErrWrongPassword):
		return failed("wrong password", errWrongPassword) // the attempt stays counted
	case err != nil:
		if p := policyProblem(err); p != nil { // the current password was right
			s.logThrottleError(ctx, s.throttle.Reset(ctx, key))
			return failed("password refused", p.about("new"))
		}
		s.logThrottleError(ctx, s.throttle.Refund(ctx, key)) // never checked
		return failed(refusal(err), fmt.Errorf("change password: %w", err))
	}
	s.logThrottleError(ctx, s.throttle.Reset(ctx, key))
	// The caller's old session is dead now.
	s.sessions.SetCookie(w, r, token, fresh)
	s.audit(r, "password-change", u.Name, "outcome", "success", "user_id", u.ID, "session_id", fresh.ID())
	return fresh, nil
}

// setupAdmin creates the first admin through a one-time setup link (PW-08),
// printed by this node or another on the same account store, and signs
// them in. It is refused once any user exists, also when another setup
// created one a moment ago: the store's CreateFirst checks the link and
// that no user exists, creates the admin and spends every link, in one
// step for every node.
func (s *server) setupAdmin(w http.ResponseWriter, r *http.Request, token, name, pw string) (*account.User, *session.Session, error) {
	ctx := r.Context()
	if len(pw) > password.MaxBytes { // PW-04
		return nil, nil, errPasswordTooLong.about("password")
	}
	canon, err := account.CanonicalName(name)
	if err != nil {
		return nil, nil, errInvalidName
	}
	if err := s.policy.Check(pw, canon); err != nil {
		if p := policyProblem(err); p != nil {
			return nil, nil, p.about("password")
		}
		return nil, nil, badRequest("password_rejected", sentence(err.Error())).about("password")
	}
	// Saves hashing for a wrong link, or once a user exists; CreateFirst
	// decides.
	open, err := s.setupOpen(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if !open {
		return nil, nil, errSetupInvalid
	}
	u := &account.User{Name: canon, Admin: true}
	if u.PasswordHash, err = s.hasher.Hash(ctx, pw); err != nil {
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	err = s.accounts.CreateFirst(ctx, u, setupHash(token), s.now())
	if errors.Is(err, account.ErrNotFirst) || errors.Is(err, account.ErrNoSetup) { // spent since setupOpen
		err = errSetupInvalid
	}
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	s.audit(r, "setup", u.Name, "outcome", "success", "user_id", u.ID)
	sess, err := s.startSession(w, r, u)
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	s.audit(r, "sign-in", u.Name, "outcome", "success", "user_id", u.ID, "session_id", sess.ID())
	return u, sess, nil
}

// setupOpen reports whether token opens the setup form now: the account
// store keeps its link, unspent and unexpired, and no user exists yet.
func (s *server) setupOpen(ctx context.Context, token string) (bool, error) {
	valid, err := s.accounts.SetupValid(ctx, setupHash(token), s.now())
	if err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	if !valid {
		return false, nil
	}
	n, err := s.accounts.Count(ctx)
	if err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	return n == 0, nil
}

// policyProblem says which password rule a new password breaks (PW-01,
// PW-02, PW-09), or that it is the current one, or returns nil when err is
// none of these. The policy's errors say what to do, and are shown as
// sentences.
func policyProblem(err error) *problem {
	if errors.Is(err, credential.ErrUnchanged) {
		return errPasswordUnchanged
	}
	for _, rule := range []struct {
		err  error
		code string
	}{
		{password.ErrTooShort, "password_too_short"},
		{password.ErrTooLong, "password_too_long"},
		{password.ErrCommon, "password_too_common"},
		{password.ErrMatchesUsername, "password_matches_username"},
		{password.ErrBlank, "password_blank"},
		{password.ErrRepeated, "password_repeated"},
	} {
		if errors.Is(err, rule.err) {
			return badRequest(rule.code, sentence(err.Error()))
		}
	}
	return nil
}

// sentence returns s with a capital first letter and a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// accountThrottleKey is the throttle key of a canonical account name.
func accountThrottleKey(canon string) string { return "user:" + canon }

// audit logs an audit event (PW-07): what happened, to whom, from where
// (the client's address as --trusted-proxies decide it) and with what user
// agent; the log record carries when. Never a password, a token or a
// cookie. A record the audit log fails to take is an error in the main
// log: the request it records is done. The metrics count the event by its
// outcome and reason attributes.
func (s *server) audit(r *http.Request, event, user string, attrs ...any) {
	ip := clientIP(r, s.proxies)
	if err := s.auditLog.Write(r.Context(), event, user, append([]any{"ip", ip.String(), "user_agent", r.UserAgent()}, attrs...)...); err != nil {
		s.log.ErrorContext(r.Context(), "audit event lost", "event", event, "err", err)
	}
	if s.metrics != nil {
		s.metrics.Audit(event, attr(attrs, "outcome"), attr(attrs, "reason"))
	}
}

// attr returns the string value of key in attrs, key-value pairs as
// slog takes them, or "".
func attr(attrs []any, key string) string {
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == key {
			v, _ := attrs[i+1].(string)
			return v
		}
	}
	return ""
}

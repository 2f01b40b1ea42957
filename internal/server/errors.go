package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/password"
)

// problem is an error both front ends can show: an HTTP status, a stable code
// for programs and a message for people. It never carries the cause, which is
// logged instead (MISC-02).
type problem struct {
	status  int
	code    string
	message string
	// field names the input the problem is about, as the form and the JSON
	// body both name it ("username", "current", ...); "" when it is about
	// the request as a whole. A page marks that field and focuses it.
	field      string
	retryAfter time.Duration // sent as Retry-After when positive
}

func (p *problem) Error() string { return p.code + ": " + p.message }

// about returns p as a problem about field.
func (p *problem) about(field string) *problem {
	q := *p
	q.field = field
	return &q
}

// The errors of the package: errConfig wraps every complaint of New about
// its Config; the rest are problems the actions return as they are.
var (
	errConfig = errors.New("server: invalid config")

	// errSignedOut is the one answer for no session cookie and for one that
	// names no live session: the token is unknown, expired, signed out, or
	// ended by a password change (SES-04). The store can't tell these apart
	// (RevokeUser deletes the records), and a separate answer for a token
	// that once existed would be an oracle; so the message names every
	// reason, the password change among them, for the client that missed
	// the new cookie its change was answered with.
	errSignedOut = &problem{status: http.StatusUnauthorized, code: "unauthenticated",
		message: "No live session: sign in. A session ends when it expires, when it is signed out, and when the account's password is changed; " +
			"the change's answer carries the new session cookie."}
	// errInvalidCredentials is the one answer for an unknown user, a wrong
	// password, a disabled account and a throttled sign-in (PW-05), so its
	// message names the throttle too, for the person it refused.
	errInvalidCredentials = &problem{status: http.StatusForbidden, code: "invalid_credentials", message: "The username or password is wrong. After too many failed attempts every sign-in is refused like this for a while, even with the right password: wait, then try again.", field: "password"}
	errWrongPassword      = &problem{status: http.StatusForbidden, code: "invalid_credentials", message: "The current password is wrong.", field: "current"}
	errPasswordTooLong    = &problem{status: http.StatusBadRequest, code: "password_too_long", message: "Passwords are at most " + strconv.Itoa(password.MaxBytes) + " bytes."}
	errPasswordUnchanged  = &problem{status: http.StatusBadRequest, code: "password_unchanged", message: "The new password is the current one: choose a different one.", field: "new"}
	errPasswordsDiffer    = &problem{status: http.StatusBadRequest, code: "passwords_differ", message: "The two new passwords differ; type the same one twice."}
	errNoSuchSession      = &problem{status: http.StatusNotFound, code: "not_found", message: "You have no such session; it may have ended already."}
	errSetupInvalid       = &problem{status: http.StatusNotFound, code: "setup_invalid", message: "This setup link is invalid, expired or already used."}
	errCrossOrigin        = &problem{status: http.StatusForbidden, code: "cross_origin", message: "Requests from other sites are refused."}
	errCSRFMissing        = &problem{status: http.StatusForbidden, code: "csrf_token_missing", message: "The CSRF token is missing: send the csrf_token you were given in the X-CSRF-Token header, or reload the form."}
	errCSRFInvalid        = &problem{status: http.StatusForbidden, code: "csrf_token_invalid", message: "The CSRF token is invalid or belongs to another session: fetch a fresh one, or reload the form."}
	errBusy               = &problem{status: http.StatusServiceUnavailable, code: "busy", message: "The server is busy; try again in a moment.", retryAfter: time.Second}
	errDuplicateCookie    = &problem{status: http.StatusBadRequest, code: "duplicate_cookie", message: "The request carries the session cookie twice; clear this site's cookies and sign in again."}
	errInvalidUTF8        = &problem{status: http.StatusBadRequest, code: "invalid_utf8", message: "The password is not valid UTF-8 text: set the client to UTF-8 and type it again."}
	errInvalidUTF8Name    = &problem{status: http.StatusBadRequest, code: "invalid_utf8", message: "The user name is not valid UTF-8 text: set the client to UTF-8 and type it again.", field: "username"}
	errInvalidName        = &problem{status: http.StatusBadRequest, code: "invalid_name", message: "User names are 1 to 64 of the characters a-z 0-9 . _ @ + -.", field: "username"}
	errUnavailable        = &problem{status: http.StatusServiceUnavailable, code: "unavailable", message: "The service is temporarily unavailable; try again shortly.", retryAfter: time.Second}
)

// badRequest is a 400 with a message saying what to fix.
func badRequest(code, message string) *problem {
	return &problem{status: http.StatusBadRequest, code: code, message: message}
}

// missing is a 400 saying that the input field, which what describes,
// was empty or left out.
func missing(field, what string) *problem {
	return &problem{status: http.StatusBadRequest, code: "missing_field", message: what + " is missing.", field: field}
}

// throttled is a 429 telling the caller how long to wait (PW-06): at a
// password change and a client's authentication; a throttled sign-in is
// errInvalidCredentials (PW-05).
func throttled(wait time.Duration) *problem {
	return &problem{
		status:     http.StatusTooManyRequests,
		code:       "throttled",
		message:    "Too many failed attempts; wait before trying again.",
		retryAfter: wait,
	}
}

// problemFor maps err to what the caller is told. Errors that aren't
// problems are failures of a store (or bugs): they are answered 503 with
// Retry-After, so a failure never looks like success (SES-11), and logged
// at most once a second with the count of those left out (MISC-05).
func (s *server) problemFor(r *http.Request, err error) *problem {
	var p *problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, password.ErrBusy): // PW-04
		return errBusy
	case errors.Is(err, password.ErrInvalidUTF8): // PW-09, as the JSON decoder answers
		return errInvalidUTF8
	case errors.Is(err, csrf.ErrCrossOrigin):
		return errCrossOrigin
	case errors.Is(err, csrf.ErrMissingToken):
		return errCSRFMissing
	case errors.Is(err, csrf.ErrInvalidToken):
		return errCSRFInvalid
	}
	if held, ok := s.failures.Let(); ok { // a store that is down fails every request: one line a second
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err,
			"unlogged_since_last", held)
	}
	return errUnavailable
}

// setRetryAfter sets Retry-After in whole seconds, rounded up.
func setRetryAfter(h http.Header, d time.Duration) {
	if d > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
}

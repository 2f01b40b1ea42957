package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/session"
)

// failer answers a request that failed with err, as JSON or as a page.
type failer func(w http.ResponseWriter, r *http.Request, err error)

// signedIn lets only requests with a session through; the others get
// errSignedOut (401, or a redirect to the sign-in page), or errUnavailable
// (503) when the session store couldn't say (SES-11).
func signedIn(fail failer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case storeDown(r.Context()):
			fail(w, r, errUnavailable)
		case session.FromContext(r.Context()) == nil:
			fail(w, r, errSignedOut)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// signOutGuard protects sign-out: with its session known, as every
// session route (signedIn, and the csrf token bound to the session);
// while the session store is down, with the origin check only, since the
// session its token is bound to can't be read (see routes.go).
func signOutGuard(fail failer, p *csrf.Protector, next http.Handler) http.Handler {
	known := signedIn(fail, p.Handler(sessionBinding, next))
	unknown := p.OriginOnlyHandler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if storeDown(r.Context()) {
			unknown.ServeHTTP(w, r)
			return
		}
		known.ServeHTTP(w, r)
	})
}

// storeDownKey marks a request whose session the store couldn't check.
type storeDownKey struct{}

// storeDown reports whether the session store failed to check the
// request's session cookie: the request is neither signed in nor known to
// be signed out.
func storeDown(ctx context.Context) bool {
	down, _ := ctx.Value(storeDownKey{}).(bool)
	return down
}

// loadSession runs the session check of every request
// (session.Manager.LoadRequest) and puts its answer in the request's
// context: the session (session.FromContext), or the store's failure
// (storeDown), which only the routes that need a session answer with 503:
// the sign-in page, health checks and static files work on while the
// session store is down. A duplicated session cookie is refused outright
// (SES-06). Every response gets Vary: Cookie. A forward-auth check with
// an Authorization header is decided by its token alone (forwardauth.go),
// so its session is neither loaded nor touched: no store round trip, no
// wait on a stuck session store, no idle deadline extended for a refused
// token.
func (s *server) loadSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		if r.URL.Path == verifyPath && len(r.Header.Values("Authorization")) > 0 &&
			len(r.CookiesNamed(s.sessions.CookieName(r))) < 2 { // a duplicated cookie is refused all the same (GW-03)
			next.ServeHTTP(w, r)
			return
		}
		sess, err := s.sessions.LoadRequest(r)
		switch {
		case errors.Is(err, session.ErrDuplicateCookie):
			s.failFor(r)(w, r, errDuplicateCookie)
			return
		case err != nil:
			r = r.WithContext(context.WithValue(r.Context(), storeDownKey{}, true))
		case sess != nil:
			r = r.WithContext(session.WithSession(r.Context(), sess))
		}
		next.ServeHTTP(w, r)
	})
}

// failFor is how a request's path answers errors: JSON under /api/, RFC
// 6749's JSON at the OAuth endpoints, pages elsewhere.
func (s *server) failFor(r *http.Request) failer {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		return s.failJSON
	case isOAuthPath(r.URL.Path):
		return s.failOAuth
	case r.URL.Path == verifyPath:
		return s.failForward
	}
	return s.failPage
}

// sessionBinding is the csrf binding of the request's session (CSRF-02).
// Without a session it is nil, and the Protector's Handler refuses the
// request (csrf.ErrNoBinding).
var sessionBinding = session.CSRFBinding

// csrfBinding is what the csrf tokens of sess are bound to: its public id,
// new with every session, so tokens die with the session (SES-03).
func csrfBinding(sess *session.Session) []byte { return []byte(sess.ID()) }

// csrfFailer answers the requests a csrf check refuses with fail, and
// counts them (csrfReason). No session or no pre-session cookie to bind
// the token to is answered as a missing token: either way, the client
// must fetch a token first (sign in, or load the form).
func (s *server) csrfFailer(fail failer) failer {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		s.metrics.CSRFRefused(csrfReason(err))
		if errors.Is(err, csrf.ErrNoBinding) || errors.Is(err, csrf.ErrNoPreSession) {
			err = errCSRFMissing
		}
		fail(w, r, err)
	}
}

// csrfReason names, as a metric label, why a csrf check refused a
// request.
func csrfReason(err error) string {
	switch {
	case errors.Is(err, csrf.ErrCrossOrigin):
		return "cross_origin"
	case errors.Is(err, csrf.ErrNoBinding), errors.Is(err, csrf.ErrNoPreSession):
		return "no_binding"
	case errors.Is(err, csrf.ErrMissingToken):
		return "missing_token"
	case errors.Is(err, csrf.ErrInvalidToken):
		return "invalid_token"
	}
	return "other"
}

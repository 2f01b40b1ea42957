package server

import (
	"errors"
	"net/http"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/session"
)

// failer answers a request that failed with err, as JSON or as a page.
type failer func(w http.ResponseWriter, r *http.Request, err error)

// signedIn lets only requests with a session through; the others get
// errSignedOut (401, or a redirect to the sign-in page).
func signedIn(fail failer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if session.FromContext(r.Context()) == nil {
			fail(w, r, errSignedOut)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sessionBinding is the csrf binding of the request's session: its ID
// (CSRF-02), as in tokenFor. Without a session it is nil, and the
// Protector's Handler refuses the request (csrf.ErrNoBinding).
func sessionBinding(r *http.Request) []byte {
	sess := session.FromContext(r.Context())
	if sess == nil {
		return nil
	}
	return []byte(sess.ID)
}

// csrfFailer answers the requests a csrf check refuses with fail. No
// session or no pre-session cookie to bind the token to is answered as a
// missing token: either way, the client must fetch a token first (sign in,
// or load the form).
func csrfFailer(fail failer) failer {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, csrf.ErrNoBinding) || errors.Is(err, csrf.ErrNoPreSession) {
			err = errCSRFMissing
		}
		fail(w, r, err)
	}
}

// startPreSession keeps the request's pre-session, or starts one, and
// returns a csrf token for the sign-in and setup forms (CSRF-05).
func (s *server) startPreSession(w http.ResponseWriter, r *http.Request) string {
	return s.csrf.PreSessionToken(w, r)
}

// clearPreSession expires the pre-session cookie: it has done its job at
// sign-in.
func clearPreSession(w http.ResponseWriter) { csrf.ClearPreSession(w) }

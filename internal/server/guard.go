package server

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"

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

// sessionToken refuses cross-origin unsafe requests (CSRF-01) and those
// without the csrf token bound to the request's session (CSRF-02). A request
// without a session is refused too, so the token check can't be skipped.
func (s *server) sessionToken(fail failer, next http.Handler) http.Handler {
	return s.guard(fail, next, func(r *http.Request) ([]byte, bool) {
		sess := session.FromContext(r.Context())
		if sess == nil {
			return nil, false
		}
		return []byte(sess.ID), true
	})
}

// preSessionToken refuses cross-origin unsafe requests (CSRF-01) and those
// without the csrf token bound to the pre-session cookie (CSRF-05): the
// sign-in and setup forms, sent before there is a session.
func (s *server) preSessionToken(fail failer, next http.Handler) http.Handler {
	return s.guard(fail, next, preSessionBinding)
}

// sameOrigin only refuses cross-origin unsafe requests (CSRF-01). It is for
// the exemptions in routes.go, each of which says why a token isn't needed.
func (s *server) sameOrigin(fail failer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.csrf.CheckOriginOnly(r); err != nil {
			fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guard runs csrf.Check with the binding bind finds; csrf.Check refuses a
// request for which it finds none, answered as a missing token.
func (s *server) guard(fail failer, next http.Handler, bind func(*http.Request) ([]byte, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		binding, _ := bind(r)
		err := s.csrf.Check(r, binding)
		if errors.Is(err, csrf.ErrNoBinding) {
			err = errCSRFMissing
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// The pre-session (CSRF-05): before sign-in there is no session to bind a
// csrf token to, so the sign-in and setup pages set a short-lived cookie of
// 32 random bytes and bind their form's token to it. It is kept nowhere on
// the server, grants nothing, and is never promoted to a session (SES-03).
const (
	preCookie = "__Host-tether-pre"
	preTTL    = time.Hour
)

// preSessionValue returns the request's pre-session cookie if there is
// exactly one and it is well formed.
func preSessionValue(r *http.Request) (string, bool) {
	cs := r.CookiesNamed(preCookie)
	if len(cs) != 1 {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(cs[0].Value)
	if err != nil || len(raw) != tokenBytes {
		return "", false
	}
	return cs[0].Value, true
}

// preSessionBinding is the csrf binding of the request's pre-session.
func preSessionBinding(r *http.Request) ([]byte, bool) {
	v, ok := preSessionValue(r)
	if !ok {
		return nil, false
	}
	return preBinding(v), true
}

// preBinding is the csrf binding of the pre-session v, kept apart from
// session IDs by its prefix.
func preBinding(v string) []byte { return []byte("pre-session:" + v) }

// startPreSession keeps the request's pre-session, or starts one, sets its
// cookie for another hour and returns a csrf token for its forms.
func (s *server) startPreSession(w http.ResponseWriter, r *http.Request) string {
	v, ok := preSessionValue(r)
	if !ok {
		v = randomToken()
	}
	setPreCookie(w, v, int(preTTL/time.Second))
	return s.csrf.Token(preBinding(v))
}

// clearPreSession expires the pre-session cookie: it has done its job at
// sign-in.
func clearPreSession(w http.ResponseWriter) {
	setPreCookie(w, "", -1)
}

func setPreCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     preCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

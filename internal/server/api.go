package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
)

// The JSON API: thin front ends over the actions. Errors are
// {"error":"code","message":"..."} (see failJSON).

// loginRequest is the body of POST /api/v1/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Return is where the client means to go next (GW-01): the answer's
	// return_to when it is to be followed (returnto.go).
	Return string `json:"return,omitempty"`
}

// passwordRequest is the body of POST /api/v1/password.
type passwordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// userView is a user as the API shows it: never the password hash.
type userView struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Admin   bool      `json:"admin"`
	Created time.Time `json:"created"`
}

func viewUser(u *account.User) userView {
	return userView{ID: u.ID, Name: u.Name, Admin: u.Admin, Created: u.Created}
}

// sessionView is a session as the API and the account page show it: its
// public id, never its token or hash (SES-02, SES-10); the device named
// from its user agent, as the page names it; and when it ends unless used
// again, and at the latest, however busy (SES-07).
type sessionView struct {
	ID             string    `json:"id"`
	Created        time.Time `json:"created"`
	LastSeen       time.Time `json:"last_seen"`
	IdleExpiry     time.Time `json:"idle_expiry"`
	AbsoluteExpiry time.Time `json:"absolute_expiry"`
	Device         string    `json:"device"`
	UserAgent      string    `json:"user_agent"`
	IP             string    `json:"ip"`
	Current        bool      `json:"current"`
}

func viewSession(s, current *session.Session) sessionView {
	return sessionView{
		ID:             s.ID(),
		Created:        s.Created(),
		LastSeen:       s.LastSeen(),
		IdleExpiry:     s.IdleDeadline(),
		AbsoluteExpiry: s.AbsDeadline(),
		Device:         deviceName(s.UserAgent()),
		UserAgent:      s.UserAgent(),
		IP:             s.IP(),
		Current:        s.ID() == current.ID(),
	}
}

func viewSessions(list []*session.Session, current *session.Session) []sessionView {
	out := make([]sessionView, len(list))
	for i, s := range list {
		out[i] = viewSession(s, current)
	}
	return out
}

// csrfResponse carries a fresh csrf token for the session.
type csrfResponse struct {
	CSRFToken string `json:"csrf_token"`
}

// signedInResponse answers sign-in and GET /api/v1/me.
type signedInResponse struct {
	User      userView     `json:"user"`
	Session   *sessionView `json:"session,omitempty"`
	CSRFToken string       `json:"csrf_token"`
	// ReturnTo is the sign-in's return address, when it is one to follow.
	ReturnTo string `json:"return_to,omitempty"`
}

// tokenFor returns a fresh csrf token bound to sess (CSRF-02).
func (s *server) tokenFor(sess *session.Session) string {
	return s.csrf.Token(csrfBinding(sess))
}

func handleAPILogin(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[loginRequest](w, r)
		if err != nil {
			s.audit(r, "sign-in", "", "outcome", "failure", "reason", "malformed request") // PW-07
			s.failJSON(w, r, err)
			return
		}
		u, sess, err := s.signIn(w, r, req.Username, req.Password)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		back, _ := s.returnTo(req.Return)
		encode(w, http.StatusOK, signedInResponse{User: viewUser(u), CSRFToken: s.tokenFor(sess), ReturnTo: back})
	})
}

// handleAPILogout answers 204 once the session has ended, and 202 with
// {"status":"pending","message":...} when the session store could not be
// reached: the cookie is gone and this node ends the session once the
// store answers.
func handleAPILogout(s *server) http.Handler {
	type response struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pending, err := s.signOut(w, r)
		switch {
		case err != nil:
			s.failJSON(w, r, err)
		case pending:
			encode(w, http.StatusAccepted, response{Status: "pending", Message: notices["signedout-pending"]})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
}

func handleAPIMe(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, u, err := s.whoami(r)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		this := viewSession(sess, sess)
		encode(w, http.StatusOK, signedInResponse{User: viewUser(u), Session: &this, CSRFToken: s.tokenFor(sess)})
	})
}

func handleAPISessions(s *server) http.Handler {
	type response struct {
		Sessions []sessionView `json:"sessions"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _, list, err := s.sessionsOf(r)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		encode(w, http.StatusOK, response{Sessions: viewSessions(list, sess)})
	})
}

func handleAPIRevokeSession(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.revokeSession(w, r, r.PathValue("id")); err != nil {
			s.failJSON(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleAPIRevokeOthers(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.revokeOthers(r); err != nil {
			s.failJSON(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleAPIPassword(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[passwordRequest](w, r)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		fresh, err := s.changePassword(w, r, req.Current, req.New)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		encode(w, http.StatusOK, csrfResponse{CSRFToken: s.tokenFor(fresh)})
	})
}

// handleNoRoute answers the requests under a prefix (/api/, /oauth2/)
// that no route of mux takes, with fail, the prefix's answer to errors:
// 405 with the Allow header when a route takes the path with another
// method, else notFound. It finds the methods by asking mux which pattern
// each would reach, so that routes.go stays the one list of routes.
func handleNoRoute(mux *http.ServeMux, fail failer, notFound *problem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		probe := *r // mux.Handler reads the method, host and path only
		for _, m := range allMethods {
			probe.Method = m
			if _, pattern := mux.Handler(&probe); pattern != r.Pattern {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			fail(w, r, notFound)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		fail(w, r, &problem{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: "This endpoint takes only " + strings.Join(allow, ", ") + "."})
	})
}

// errNoEndpoint answers a path under /api/ that names no endpoint.
var errNoEndpoint = &problem{status: http.StatusNotFound, code: "not_found", message: "There is no such API endpoint: the README's JSON API section lists them."}

// allMethods are the methods handleNoRoute looks for, in the order
// Allow lists them.
var allMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace,
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers whether the stores answer, within the server's
// ReadyTimeout: 503 with Retry-After when one fails or is too slow
// (MISC-05), logged at most once a second.
func handleReadyz(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := boundedErr(r.Context(), s.readyFor, s.ready); err != nil {
			if held, ok := s.unready.Let(); ok {
				s.log.ErrorContext(r.Context(), "not ready", "err", err, "unlogged_since_last", held)
			}
			setRetryAfter(w.Header(), time.Second)
			encode(w, http.StatusServiceUnavailable, errorBody{Error: "not_ready", Message: "The server can't reach its store."})
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

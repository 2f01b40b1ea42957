package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tetherauth/tether/session"
)

// SessionErrors answers the requests the session middleware can't serve —
// the cookie twice (SES-06) or a store that fails (SES-11) — the way the
// rest of the server answers: JSON {"error","message"} under /api/, plain
// text elsewhere, never as signed in. Pass it as
// session.Config.ErrorHandler.
func SessionErrors(w http.ResponseWriter, r *http.Request, err error) {
	p := errUnavailable
	if errors.Is(err, session.ErrDuplicateCookie) {
		p = errDuplicateCookie
	}
	setRetryAfter(w.Header(), p.retryAfter)
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		encode(w, p.status, errorBody{Error: p.code, Message: p.message})
		return
	}
	http.Error(w, p.message, p.status)
}

// Command library is a small app on tether's library: a sign-in form with
// a password check, a signed-in page, sign-out; sessions from package
// session, CSRF tokens in both forms from package csrf (the sign-in
// form's bound to a pre-session, CSRF-05), passwords from package
// password. Its test walks through it; the same app on scs v2 is measured
// against it in the README ("The library").
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"html/template"
	"log"
	"net/http"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
)

var page = template.Must(template.New("").Parse(`<!doctype html><title>app</title>
{{if .User}}<p>Signed in as {{.User}}.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button>Sign out</button></form>
{{else}}<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input name="username" required> <input name="password" type="password" required> <button>Sign in</button>
</form>{{end}}`))

func main() {
	h, err := newApp(context.Background(), memory.New()) // or sqlite, redis, postgres
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServeTLS("127.0.0.1:8443", "cert.pem", "key.pem", h))
}

// newApp returns the app on store, with one user, alice, until ctx ends.
func newApp(ctx context.Context, store session.Store) (http.Handler, error) {
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return nil, err
	}
	hash, err := hasher.Hash(ctx, "correct horse battery staple")
	if err != nil {
		return nil, err
	}
	users := map[string]string{"user:alice": hash} // user ID -> password hash
	sessions, err := session.NewManager(store, session.Config{})
	if err != nil {
		return nil, err
	}
	go sessions.Run(ctx) // follow the store's invalidations: turns the near-cache on
	secret := make([]byte, 32)
	rand.Read(secret) // several nodes: one secret, stored, the same on each
	protect, err := csrf.New(secret)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if s := session.FromContext(r.Context()); s != nil {
			page.Execute(w, map[string]string{"User": s.UserID(), "CSRF": protect.Token(session.CSRFBinding(r))})
			return
		}
		page.Execute(w, map[string]string{"CSRF": protect.PreSessionToken(w, r)})
	})
	mux.Handle("POST /login", protect.PreSessionHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, pw := "user:"+r.PostFormValue("username"), r.PostFormValue("password")
		_, err := sessions.SignIn(w, r, id, func() error { // after SignIn read the user's generation (SES-12)
			return hasher.Check(r.Context(), pw, users[id]) // no such user: "", as slow as a wrong password
		})
		switch {
		case errors.Is(err, password.ErrMismatch), errors.Is(err, session.ErrRevoked):
			http.Error(w, password.ErrMismatch.Error(), http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		default:
			protect.ClearPreSession(w, r)
			http.Redirect(w, r, "/", http.StatusSeeOther)
		}
	})))
	mux.Handle("POST /logout", protect.Handler(session.CSRFBinding, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.SignOut(w, r); err != nil && !errors.Is(err, session.ErrPending) {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})))
	return sessions.Middleware(mux), nil
}

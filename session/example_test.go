package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
)

// A minimal app: POST /login signs in, GET /me answers who is signed in.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	store := memory.New()
	defer store.Close()
	m, err := session.NewManager(store, session.Config{})
	if err != nil {
		panic(err)
	}
	go m.Run(ctx) // follow the store's invalidations: turns the near-cache on

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Begin before reading the credential: a password change or a
		// revocation that lands while it is checked makes Create fail
		// (SES-12).
		t, err := m.Begin(r.Context(), "user:alice")
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		// ... read the user's password hash and check the password ...
		token, s, err := m.Create(r.Context(), t, session.Meta{UserAgent: r.UserAgent()})
		if errors.Is(err, session.ErrRevoked) {
			http.Error(w, "the password changed meanwhile: sign in again", http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		m.SetCookie(w, r, token, s)
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s := session.FromContext(r.Context())
		if s == nil {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, s.UserID())
	})
	h := m.Middleware(mux)

	login := httptest.NewRecorder()
	h.ServeHTTP(login, httptest.NewRequest("POST", "https://app.example/login", nil))
	cookie := login.Result().Cookies()[0]

	me := httptest.NewRequest("GET", "https://app.example/me", nil)
	me.AddCookie(cookie)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, me)
	fmt.Println(cookie.Name, cookie.HttpOnly, cookie.Secure, w.Body)
	// Output: __Host-session true true user:alice
}

// Revoking everything of a user (a password change, "sign out everywhere")
// is one write, and keeps the session the caller is given.
func ExampleManager_RevokeUser() {
	ctx := context.Background()
	store := memory.New()
	m, _ := session.NewManager(store, session.Config{})

	signIn := func(device string) (string, *session.Session) {
		t, err := m.Begin(ctx, "user:alice")
		if err != nil {
			panic(err)
		}
		token, s, err := m.Create(ctx, t, session.Meta{UserAgent: device})
		if err != nil {
			panic(err)
		}
		return token, s
	}
	laptop, _ := signIn("laptop")
	_, phone := signIn("phone")

	if err := m.RevokeUser(ctx, "user:alice", phone); err != nil {
		panic(err)
	}
	_, err := m.Load(ctx, laptop)
	fmt.Println(err)
	list, _ := m.List(ctx, "user:alice")
	fmt.Println(len(list), list[0].UserAgent())
	// Output:
	// session: no valid session
	// 1 phone
}

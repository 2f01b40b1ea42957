package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
)

// Sign-in and sign-out in a handler each: SignIn reads the user's
// generation before the check runs (SES-12), and SignOut ends the session
// and clears its cookie. In a real app both routes sit behind CSRF
// protection (see examples/library).
func ExampleManager_SignIn() {
	store := memory.New()
	defer store.Close()
	m, err := session.NewManager(store, session.Config{})
	if err != nil {
		panic(err)
	}
	wrong := errors.New("wrong username or password")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_, err := m.SignIn(w, r, "user:alice", func() error {
			if r.PostFormValue("password") != "correct horse battery staple" { // a real app: password.Hasher.Check
				return wrong
			}
			return nil
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.SignOut(w, r); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		}
	})
	h := m.Middleware(mux)

	post := func(path, form string, cookies ...*http.Cookie) *http.Response {
		r := httptest.NewRequest("POST", "https://app.example"+path, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	fmt.Println(post("/login", "password=guess").StatusCode)
	signedIn := post("/login", "password=correct+horse+battery+staple").Cookies()[0]
	list, _ := m.List(context.Background(), "user:alice")
	fmt.Println(len(list), signedIn.HttpOnly, signedIn.Secure)
	signedOut := post("/logout", "", signedIn)
	list, _ = m.List(context.Background(), "user:alice")
	fmt.Println(len(list), signedOut.Cookies()[0].MaxAge, signedOut.Header.Get("Clear-Site-Data"))
	// Output:
	// 401
	// 1 true true
	// 0 -1 "cache", "storage"
}

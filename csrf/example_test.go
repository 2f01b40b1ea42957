package csrf_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/tetherauth/tether/csrf"
)

func ExampleProtector() {
	secret := make([]byte, 32)
	rand.Read(secret) // in a server: a secret kept in its store, the same on every node
	p, err := csrf.New(secret)
	if err != nil {
		log.Fatal(err)
	}

	// The binding is the session's ID; a real app takes the session from
	// its session middleware. No session: nil, and Handler refuses the
	// request (ErrNoBinding) rather than check the origin alone.
	sessions := map[string]string{"cookie-value": "session-1"}
	bind := func(r *http.Request) []byte {
		if c, err := r.Cookie("sid"); err == nil && sessions[c.Value] != "" {
			return []byte(sessions[c.Value])
		}
		return nil
	}
	save := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "saved", r.PostFormValue("name"))
	})
	h := p.Handler(bind, save)

	// Rendered into the form when the page was served.
	token := p.Token([]byte("session-1"))

	post := func(form url.Values, secFetchSite, cookie string) {
		r := httptest.NewRequest("POST", "/settings", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", secFetchSite)
		r.AddCookie(&http.Cookie{Name: "sid", Value: cookie})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body)
	}
	post(url.Values{"name": {"ada"}, csrf.FormField: {token}}, "same-origin", "cookie-value")
	post(url.Values{"name": {"ada"}}, "same-origin", "cookie-value")
	post(url.Values{"name": {"ada"}, csrf.FormField: {token}}, "cross-site", "cookie-value")
	post(url.Values{"name": {"ada"}, csrf.FormField: {token}}, "same-origin", "signed-out")
	// Output:
	// 200 saved ada
	// 403 forbidden: csrf: missing token: send it in the X-CSRF-Token header or the csrf_token form field
	// 403 forbidden: csrf: cross-origin request: cross-origin request detected from Sec-Fetch-Site header
	// 403 forbidden: csrf: no session to bind the token to: sign in first
}

// A sign-in form has no session to bind its token to: it is bound to a
// short-lived pre-session cookie instead (login CSRF, CSRF-05).
func ExampleProtector_PreSessionToken() {
	secret := make([]byte, 32)
	rand.Read(secret)
	p, err := csrf.New(secret)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		token := p.PreSessionToken(w, r) // sets the pre-session cookie
		fmt.Fprintf(w, `<input type="hidden" name="csrf_token" value="%s">`, token)
	})
	mux.Handle("POST /login", p.PreSessionHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ... check the password, start a new session, set its cookie ...
		p.ClearPreSession(w, r)
		fmt.Fprintln(w, "signed in as", r.PostFormValue("username"))
	})))

	page := httptest.NewRecorder()
	mux.ServeHTTP(page, httptest.NewRequest("GET", "/login", nil))
	pre := page.Result().Cookies()[0]
	_, token, _ := strings.Cut(page.Body.String(), `value="`)
	token = strings.TrimSuffix(token, `">`)

	post := func(withCookie bool) {
		form := url.Values{"username": {"ada"}, csrf.FormField: {token}}
		r := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withCookie {
			r.AddCookie(pre)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body)
	}
	fmt.Println(pre.Name, pre.MaxAge, pre.Secure, pre.HttpOnly)
	post(true)
	post(false) // the token alone, as a cross-site form would send it
	// Output:
	// __Host-pre-session 3600 true true
	// 200 signed in as ada
	// 403 forbidden: csrf: no pre-session cookie to bind the token to: reload the form, with cookies allowed
}

// A route that no cookie authenticates needs no token, but that is a choice
// to make by name, with the reason next to it.
func ExampleProtector_OriginOnlyHandler() {
	secret := make([]byte, 32)
	rand.Read(secret)
	p, err := csrf.New(secret)
	if err != nil {
		log.Fatal(err)
	}
	// JSON sign-in for scripts: no session yet, and a cross-site page can't
	// send application/json without a CORS preflight.
	h := p.OriginOnlyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "signed in")
	}))
	for _, site := range []string{"same-origin", "cross-site"} {
		r := httptest.NewRequest("POST", "/api/login", strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Sec-Fetch-Site", site)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body)
	}
	// Output:
	// 200 signed in
	// 403 forbidden: csrf: cross-origin request: cross-origin request detected from Sec-Fetch-Site header
}

// An app with an API and pages answers refusals as JSON on one and as pages
// on the other, with one secret.
func ExampleProtector_WithErrorHandler() {
	secret := make([]byte, 32)
	rand.Read(secret)
	p, err := csrf.New(secret)
	if err != nil {
		log.Fatal(err)
	}
	api := p.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		code := "csrf"
		if errors.Is(err, csrf.ErrCrossOrigin) {
			code = "cross_origin"
		}
		fmt.Fprintf(w, "{\"error\":%q}\n", code)
	})
	bind := func(r *http.Request) []byte { return []byte("session-1") }
	h := api.Handler(bind, http.NotFoundHandler())

	r := httptest.NewRequest("DELETE", "/api/sessions/s_123", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output:
	// 403 {"error":"cross_origin"}
}

func ExampleProtector_Check() {
	secret := make([]byte, 32)
	rand.Read(secret)
	p, err := csrf.New(secret)
	if err != nil {
		log.Fatal(err)
	}
	binding := []byte("session-1")

	// A script sends the token in the header, for instance from a <meta> tag.
	r := httptest.NewRequest("DELETE", "/sessions/s_123", nil)
	r.Header.Set(csrf.HeaderName, p.Token(binding))
	fmt.Println(p.Check(r, binding))

	// A token from another session is refused.
	r.Header.Set(csrf.HeaderName, p.Token([]byte("session-2")))
	fmt.Println(errors.Is(p.Check(r, binding), csrf.ErrInvalidToken))
	// Output:
	// <nil>
	// true
}

func ExampleProtector_AddTrustedOrigin() {
	secret := make([]byte, 32)
	rand.Read(secret)
	p, err := csrf.New(secret)
	if err != nil {
		log.Fatal(err)
	}
	// Exactly this scheme, host and port; the token is still required.
	fmt.Println(p.AddTrustedOrigin("https://admin.example.com"))
	fmt.Println(p.AddTrustedOrigin("https://admin.example.com/") != nil)
	// Output:
	// <nil>
	// true
}

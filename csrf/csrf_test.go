package csrf

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const formType = "application/x-www-form-urlencoded"

// request builds a request to Host example.com; header holds key, value pairs.
func request(method, target, contentType, body string, header ...string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// multipartForm returns the content type and body of a multipart form.
func multipartForm(t *testing.T, key, value string) (string, string) {
	t.Helper()
	var b strings.Builder
	w := multipart.NewWriter(&b)
	if err := w.WriteField(key, value); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.String()
}

// otherFirst returns tok with another first character: "A"+tok[1:] is
// tok itself once in 64 tokens.
func otherFirst(tok string) string {
	if tok[0] == 'A' {
		return "B" + tok[1:]
	}
	return "A" + tok[1:]
}

type checkCase struct {
	name    string
	r       *http.Request
	binding []byte
	want    error // nil, or what errors.Is must find
}

// runCheck runs check (p.Check, or originOnly(p)) on each case.
func runCheck(t *testing.T, check func(*http.Request, []byte) error, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := check(c.r, c.binding)
			if c.want == nil && got != nil || c.want != nil && !errors.Is(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// originOnly is p.CheckOriginOnly in the shape runCheck takes; its cases
// have no binding.
func originOnly(p *Protector) func(*http.Request, []byte) error {
	return func(r *http.Request, _ []byte) error { return p.CheckOriginOnly(r) }
}

func TestCSRF01_CrossOrigin(t *testing.T) {
	p := newProtector(t, testSecret)
	runCheck(t, originOnly(p), []checkCase{
		{"cross-site POST refused", request("POST", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
		{"same-site POST refused", request("POST", "/", "", "", "Sec-Fetch-Site", "same-site"), nil, ErrCrossOrigin},
		{"same-origin POST allowed", request("POST", "/", "", "", "Sec-Fetch-Site", "same-origin"), nil, nil},
		{"user-initiated POST allowed", request("POST", "/", "", "", "Sec-Fetch-Site", "none"), nil, nil},
		{"Sec-Fetch-Site first", request("POST", "/", "", "", "Sec-Fetch-Site", "same-origin", "Origin", "https://evil.test"), nil, nil},
		{"no Sec-Fetch-Site, Origin mismatch refused", request("POST", "/", "", "", "Origin", "https://evil.test"), nil, ErrCrossOrigin},
		{"no Sec-Fetch-Site, Origin null refused", request("POST", "/", "", "", "Origin", "null"), nil, ErrCrossOrigin},
		{"no Sec-Fetch-Site, Origin matches Host", request("POST", "/", "", "", "Origin", "https://example.com"), nil, nil},
		{"neither header: not a browser", request("POST", "/", "", ""), nil, nil},
		{"cross-site PUT refused", request("PUT", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
		{"cross-site PATCH refused", request("PATCH", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
		{"cross-site DELETE refused", request("DELETE", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
		{"cross-site unknown method refused", request("PURGE", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
		{"cross-site lower-case get refused", request("get", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
		{"cross-site GET allowed", request("GET", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, nil},
		{"cross-site HEAD allowed", request("HEAD", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, nil},
		{"cross-site OPTIONS allowed", request("OPTIONS", "/", "", "", "Sec-Fetch-Site", "cross-site"), nil, nil},
	})
}

// decision is one of the Protector's checks, or one of its handlers, with
// what a request needs to pass it but for its origin.
type decision struct {
	name  string
	creds func(*http.Request)       // adds a valid token, and cookie if needed
	check func(*http.Request) error // the decision's answer
}

// decisions lists every check and handler of p: each must enforce CSRF-01,
// whatever else it checks.
func decisions(p *Protector) []decision {
	sessionCreds := func(r *http.Request) { r.Header.Set(HeaderName, p.Token(alice)) }
	preCookie, preToken := preSession(p)
	preCreds := func(r *http.Request) {
		r.AddCookie(preCookie)
		r.Header.Set(HeaderName, preToken)
	}
	// handled runs h, with an ErrorHandler that returns the error.
	handled := func(h func(*Protector, http.Handler) http.Handler) func(*http.Request) error {
		return func(r *http.Request) error {
			var got error
			q := p.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) { got = err })
			reached := false
			h(q, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true })).ServeHTTP(httptest.NewRecorder(), r)
			if reached == (got != nil) {
				return fmt.Errorf("handler reached %v, refused with %v", reached, got)
			}
			return got
		}
	}
	bindAlice := func(*http.Request) []byte { return alice }
	return []decision{
		{"CheckOriginOnly", func(*http.Request) {}, p.CheckOriginOnly},
		{"Check", sessionCreds, func(r *http.Request) error { return p.Check(r, alice) }},
		{"CheckPreSession", preCreds, p.CheckPreSession},
		{"OriginOnlyHandler", func(*http.Request) {}, handled((*Protector).OriginOnlyHandler)},
		{"Handler", sessionCreds, handled(func(q *Protector, h http.Handler) http.Handler { return q.Handler(bindAlice, h) })},
		{"PreSessionHandler", preCreds, handled((*Protector).PreSessionHandler)},
	}
}

// CSRF-01: every check and handler refuses cross-origin unsafe requests,
// however good the token, and lets the same request through from the same
// origin.
func TestCSRF01_EveryDecision(t *testing.T) {
	p := newProtector(t, testSecret)
	for _, d := range decisions(p) {
		for _, c := range []struct {
			name   string
			method string
			header []string
			want   error
		}{
			{"cross-site POST", "POST", []string{"Sec-Fetch-Site", "cross-site"}, ErrCrossOrigin},
			{"same-site DELETE", "DELETE", []string{"Sec-Fetch-Site", "same-site"}, ErrCrossOrigin},
			{"Origin mismatch PUT", "PUT", []string{"Origin", "https://evil.test"}, ErrCrossOrigin},
			{"same-origin POST", "POST", []string{"Sec-Fetch-Site", "same-origin"}, nil},
			{"Origin matches Host PATCH", "PATCH", []string{"Origin", "https://example.com"}, nil},
			{"cross-site GET", "GET", []string{"Sec-Fetch-Site", "cross-site"}, nil},
		} {
			t.Run(d.name+"/"+c.name, func(t *testing.T) {
				r := request(c.method, "/", "", "", c.header...)
				d.creds(r)
				got := d.check(r)
				if c.want == nil && got != nil || c.want != nil && !errors.Is(got, c.want) {
					t.Errorf("got %v, want %v", got, c.want)
				}
			})
		}
	}
}

// CSRF-01: the tokens are checked only once the origin is; a valid token
// never excuses a cross-site request.
func TestCSRF01_OriginFirst(t *testing.T) {
	p := newProtector(t, testSecret)
	cross := []string{"Sec-Fetch-Site", "cross-site"}
	runCheck(t, p.Check, []checkCase{
		{"valid token does not excuse cross-site", request("POST", "/", "", "", append(cross, HeaderName, p.Token(alice))...), alice, ErrCrossOrigin},
		{"cross-site without a token", request("POST", "/", "", "", cross...), alice, ErrCrossOrigin},
		{"cross-site without a session", request("POST", "/", "", "", cross...), nil, ErrCrossOrigin},
	})
}

func TestCSRF02_Check(t *testing.T) {
	p := newProtector(t, testSecret)
	tok := p.Token(alice)
	form := func(v string) string { return FormField + "=" + v }
	mpType, mpBody := multipartForm(t, FormField, tok)
	withCookie := request("POST", "/", "", "")
	withCookie.AddCookie(&http.Cookie{Name: FormField, Value: tok})
	withCookie.AddCookie(&http.Cookie{Name: HeaderName, Value: tok})
	runCheck(t, p.Check, []checkCase{
		{"header accepted", request("POST", "/", "", "", HeaderName, tok), alice, nil},
		{"urlencoded form field accepted", request("POST", "/", formType, form(tok)), alice, nil},
		{"urlencoded with charset accepted", request("POST", "/", formType+"; charset=utf-8", form(tok)), alice, nil},
		{"multipart form field accepted", request("POST", "/", mpType, mpBody), alice, nil},
		{"PUT with header accepted", request("PUT", "/", "", "", HeaderName, tok), alice, nil},
		{"DELETE with header accepted", request("DELETE", "/", "", "", HeaderName, tok), alice, nil},
		{"nil binding refused", request("POST", "/", "", ""), nil, ErrNoBinding},
		{"nil binding refused with a token", request("POST", "/", "", "", HeaderName, tok), nil, ErrNoBinding},
		{"nil binding refused with a form token", request("POST", "/", formType, form(tok)), nil, ErrNoBinding},
		{"empty binding refused", request("POST", "/", "", "", HeaderName, p.Token([]byte{})), []byte{}, ErrNoBinding},
		{"nil binding, GET allowed", request("GET", "/", "", ""), nil, nil},
		{"missing refused", request("POST", "/", "", ""), alice, ErrMissingToken},
		{"empty header refused", request("POST", "/", "", "", HeaderName, ""), alice, ErrMissingToken},
		{"query refused", request("POST", "/?"+form(tok), "", ""), alice, ErrMissingToken},
		{"query refused next to a form body", request("POST", "/?"+form(tok), formType, "name=x"), alice, ErrMissingToken},
		{"cookie refused", withCookie, alice, ErrMissingToken},
		{"text/plain body refused", request("POST", "/", "text/plain", form(tok)), alice, ErrMissingToken},
		{"JSON body refused", request("POST", "/", "application/json", `{"csrf_token":"`+tok+`"}`), alice, ErrMissingToken},
		{"other binding refused", request("POST", "/", "", "", HeaderName, tok), bob, ErrInvalidToken},
		{"tampered refused", request("POST", "/", "", "", HeaderName, otherFirst(tok)), alice, ErrInvalidToken},
		{"wrong length refused", request("POST", "/", "", "", HeaderName, tok[:len(tok)-1]), alice, ErrInvalidToken},
		{"header first: bad header, good form", request("POST", "/", formType, form(tok), HeaderName, "x"), alice, ErrInvalidToken},
		{"header first: good header, bad form", request("POST", "/", formType, form("x"), HeaderName, tok), alice, nil},
	})
}

// CSRF-02: Check parses the form, and the handler still sees it.
func TestCSRF02_FormStillReadable(t *testing.T) {
	p := newProtector(t, testSecret)
	mpType, mpBody := multipartForm(t, FormField, p.Token(alice))
	for _, c := range []struct {
		name string
		r    *http.Request
	}{
		{"urlencoded", request("POST", "/", formType, FormField+"="+p.Token(alice))},
		{"multipart", request("POST", "/", mpType, mpBody)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := p.Check(c.r, alice); err != nil {
				t.Fatalf("Check: got %v, want nil", err)
			}
			if got := c.r.PostFormValue(FormField); !p.Valid(alice, got) {
				t.Errorf("form field after Check got %q, want the token", got)
			}
		})
	}
}

func TestCSRF03_NoMethodOverride(t *testing.T) {
	p := newProtector(t, testSecret)
	runCheck(t, p.Check, []checkCase{
		{"X-HTTP-Method-Override ignored", request("POST", "/", "", "", "X-HTTP-Method-Override", "GET"), alice, ErrMissingToken},
		{"X-HTTP-Method ignored", request("POST", "/", "", "", "X-HTTP-Method", "GET"), alice, ErrMissingToken},
		{"X-Method-Override ignored", request("POST", "/", "", "", "X-Method-Override", "GET"), alice, ErrMissingToken},
		{"_method in query ignored", request("POST", "/?_method=GET", "", ""), alice, ErrMissingToken},
		{"_method in form ignored", request("POST", "/", formType, "_method=GET"), alice, ErrMissingToken},
		{"override does not skip the origin check", request("POST", "/", "", "", "Sec-Fetch-Site", "cross-site", "X-HTTP-Method-Override", "GET"), alice, ErrCrossOrigin},
		{"lower-case get is not GET", request("get", "/", "", ""), alice, ErrMissingToken},
		{"unknown method is unsafe", request("PURGE", "/", "", ""), alice, ErrMissingToken},
	})
}

func TestCSRF06_TrustedOrigins(t *testing.T) {
	p := newProtector(t, testSecret)
	if err := p.AddTrustedOrigin("https://example.com"); err != nil {
		t.Fatalf("AddTrustedOrigin: %v", err)
	}
	tok := p.Token(alice)
	// To Host tether.test, so that the Origin-vs-Host fallback never matches.
	post := func(origin string, header ...string) *http.Request {
		return request("POST", "http://tether.test/", "", "", append(header, "Origin", origin)...)
	}
	cross := []string{"Sec-Fetch-Site", "cross-site"}
	runCheck(t, originOnly(p), []checkCase{
		{"exact origin allowed", post("https://example.com", cross...), nil, nil},
		{"exact origin, no Sec-Fetch-Site, allowed", post("https://example.com"), nil, nil},
		{"other port refused", post("https://example.com:8443", cross...), nil, ErrCrossOrigin},
		{"other port, no Sec-Fetch-Site, refused", post("https://example.com:8443"), nil, ErrCrossOrigin},
		{"http refused", post("http://example.com", cross...), nil, ErrCrossOrigin},
		{"http, no Sec-Fetch-Site, refused", post("http://example.com"), nil, ErrCrossOrigin},
		{"subdomain refused", post("https://www.example.com", cross...), nil, ErrCrossOrigin},
		{"suffix refused", post("https://example.com.evil.test", cross...), nil, ErrCrossOrigin},
		{"trailing slash refused", post("https://example.com/", cross...), nil, ErrCrossOrigin},
		{"upper case refused", post("HTTPS://EXAMPLE.COM", cross...), nil, ErrCrossOrigin},
	})
	runCheck(t, p.Check, []checkCase{
		{"trusted origin still needs the token", post("https://example.com", cross...), alice, ErrMissingToken},
		{"trusted origin with token", post("https://example.com", append(cross, HeaderName, tok)...), alice, nil},
	})
}

func TestCSRF06_AddTrustedOriginRefuses(t *testing.T) {
	p := newProtector(t, testSecret)
	for _, origin := range []string{
		"", "null", "*", "example.com", "//example.com", "https://", "https://example.com/",
		"https://example.com/path", "https://example.com?q=1", "https://example.com#f",
		"https://user@example.com", "HTTPS://example.com", "https://Example.com",
		"https://example.com:443", "http://example.com:80", "https://exa mple.com",
	} {
		t.Run(origin, func(t *testing.T) {
			if err := p.AddTrustedOrigin(origin); err == nil {
				t.Errorf("got %v, want an error", err)
			}
		})
	}
	for _, origin := range []string{"https://example.com", "https://example.com:8443", "http://localhost:8080", "http://[::1]:8080"} {
		t.Run(origin, func(t *testing.T) {
			if err := p.AddTrustedOrigin(origin); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	p := newProtector(t, testSecret)
	tok := p.Token(alice)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	bindAlice := func(*http.Request) []byte { return alice }
	const crossSite = "forbidden: csrf: cross-origin request: cross-origin request detected from Sec-Fetch-Site header\n"
	for _, c := range []struct {
		name     string
		h        http.Handler
		r        *http.Request
		wantCode int
		wantBody string
	}{
		{"token accepted", p.Handler(bindAlice, ok), request("POST", "/", "", "", HeaderName, tok), 200, "ok"},
		{"safe method", p.Handler(bindAlice, ok), request("GET", "/", "", ""), 200, "ok"},
		{"missing token", p.Handler(bindAlice, ok), request("POST", "/", "", ""), 403, "forbidden: " + ErrMissingToken.Error() + "\n"},
		{"invalid token", p.Handler(bindAlice, ok), request("POST", "/", "", "", HeaderName, "x"), 403, "forbidden: " + ErrInvalidToken.Error() + "\n"},
		{"cross-origin", p.Handler(bindAlice, ok), request("POST", "/", "", "", "Sec-Fetch-Site", "cross-site"), 403, crossSite},
		{"origin only: no token needed", p.OriginOnlyHandler(ok), request("POST", "/", "", ""), 200, "ok"},
		{"origin only: cross-origin", p.OriginOnlyHandler(ok), request("POST", "/", "", "", "Sec-Fetch-Site", "cross-site"), 403, crossSite},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, c.r)
			if w.Code != c.wantCode || w.Body.String() != c.wantBody {
				t.Errorf("got %v %q, want %v %q", w.Code, w.Body, c.wantCode, c.wantBody)
			}
			if got, want := w.Header().Get("Content-Type"), "text/plain; charset=utf-8"; w.Code == 403 && got != want {
				t.Errorf("Content-Type got %v, want %v", got, want)
			}
		})
	}
}

// CSRF-02: a Handler whose bind finds no session refuses every unsafe
// request, token or not, instead of checking only the origin; so does Check
// with no binding. Safe methods still pass.
func TestCSRF02_HandlerRefusesWithoutBinding(t *testing.T) {
	p := newProtector(t, testSecret)
	tok := p.Token(alice)
	for _, bind := range []struct {
		name string
		f    func(*http.Request) []byte
	}{
		{"nil binding", func(*http.Request) []byte { return nil }},
		{"empty binding", func(*http.Request) []byte { return []byte{} }},
	} {
		for _, c := range []struct {
			name, method string
			header       []string
			want         error // nil: let through
		}{
			{"POST", "POST", nil, ErrNoBinding},
			{"POST, same-origin", "POST", []string{"Sec-Fetch-Site", "same-origin"}, ErrNoBinding},
			{"POST with a token", "POST", []string{HeaderName, tok}, ErrNoBinding},
			{"POST with the empty binding's token", "POST", []string{HeaderName, p.Token(nil)}, ErrNoBinding},
			{"PUT", "PUT", []string{HeaderName, tok}, ErrNoBinding},
			{"PATCH", "PATCH", []string{HeaderName, tok}, ErrNoBinding},
			{"DELETE", "DELETE", []string{HeaderName, tok}, ErrNoBinding},
			{"unknown method", "PURGE", []string{HeaderName, tok}, ErrNoBinding},
			{"cross-site POST: the origin first", "POST", []string{"Sec-Fetch-Site", "cross-site"}, ErrCrossOrigin},
			{"GET", "GET", nil, nil},
			{"HEAD", "HEAD", nil, nil},
			{"OPTIONS", "OPTIONS", nil, nil},
		} {
			t.Run(bind.name+"/"+c.name, func(t *testing.T) {
				if got := p.Check(request(c.method, "/", "", "", c.header...), bind.f(nil)); c.want == nil && got != nil || c.want != nil && !errors.Is(got, c.want) {
					t.Errorf("Check: got %v, want %v", got, c.want)
				}
				var got error
				reached := false
				q := newProtector(t, testSecret)
				q.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
					got = err
					w.WriteHeader(http.StatusForbidden)
				}
				h := q.Handler(bind.f, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
				h.ServeHTTP(httptest.NewRecorder(), request(c.method, "/", "", "", c.header...))
				if c.want == nil && (got != nil || !reached) || c.want != nil && (!errors.Is(got, c.want) || reached) {
					t.Errorf("Handler: got %v (reached %v), want %v", got, reached, c.want)
				}
			})
		}
	}
	t.Run("default answer", func(t *testing.T) {
		w := httptest.NewRecorder()
		p.Handler(func(*http.Request) []byte { return nil }, http.NotFoundHandler()).ServeHTTP(w, request("POST", "/", "", "", HeaderName, tok))
		if want := "forbidden: " + ErrNoBinding.Error() + "\n"; w.Code != 403 || w.Body.String() != want {
			t.Errorf("got %v %q, want %v %q", w.Code, w.Body, 403, want)
		}
	})
}

// A nil bind is a mistake at setup, not an origin-only Handler.
func TestHandlerNilBindPanics(t *testing.T) {
	p := newProtector(t, testSecret)
	defer func() {
		if got := recover(); got == nil || !strings.Contains(fmt.Sprint(got), "OriginOnlyHandler") {
			t.Errorf("got panic %v, want one naming OriginOnlyHandler", got)
		}
	}()
	p.Handler(nil, http.NotFoundHandler())
}

func TestHandlerErrorHandler(t *testing.T) {
	p := newProtector(t, testSecret)
	var got error
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}
	h := p.Handler(func(*http.Request) []byte { return alice }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("refused request reached the handler")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request("POST", "/", "", ""))
	if w.Code != http.StatusTeapot || !errors.Is(got, ErrMissingToken) {
		t.Errorf("got %v %v, want %v %v", w.Code, got, http.StatusTeapot, ErrMissingToken)
	}
}

// WithErrorHandler: the derived Protector answers refusals its own way and
// shares the secret and trusted origins with the original, both ways.
func TestWithErrorHandler(t *testing.T) {
	p := newProtector(t, testSecret)
	teapot := func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusTeapot) }
	q := p.WithErrorHandler(teapot)
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusConflict) }
	bindAlice := func(*http.Request) []byte { return alice }
	for _, c := range []struct {
		name     string
		h        http.Handler
		wantCode int
	}{
		{"derived", q.Handler(bindAlice, http.NotFoundHandler()), http.StatusTeapot},
		{"original", p.Handler(bindAlice, http.NotFoundHandler()), http.StatusConflict},
		{"derived with nil", p.WithErrorHandler(nil).Handler(bindAlice, http.NotFoundHandler()), http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, request("POST", "/", "", ""))
			if w.Code != c.wantCode {
				t.Errorf("got %v, want %v", w.Code, c.wantCode)
			}
		})
	}
	if err := q.AddTrustedOrigin("https://q.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := p.AddTrustedOrigin("https://p.example.com"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		check  *Protector
		token  string
		origin string
	}{
		{"p's token, q's origin, checked by p", p, p.Token(alice), "https://q.example.com"},
		{"q's token, p's origin, checked by p", p, q.Token(alice), "https://p.example.com"},
		{"p's token, q's origin, checked by q", q, p.Token(alice), "https://q.example.com"},
		{"q's token, p's origin, checked by q", q, q.Token(alice), "https://p.example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := request("POST", "http://tether.test/", "", "", "Sec-Fetch-Site", "cross-site", "Origin", c.origin, HeaderName, c.token)
			if err := c.check.Check(r, alice); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
}

// AddTrustedOrigin is documented as safe while requests are served; -race
// checks it.
func TestAddTrustedOriginConcurrent(t *testing.T) {
	p := newProtector(t, testSecret)
	tok := p.Token(alice)
	h := p.Handler(func(*http.Request) []byte { return alice }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := p.AddTrustedOrigin(fmt.Sprintf("https://app%d.example.com", i)); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			r := request("POST", "http://tether.test/", "", "", "Origin", "https://app0.example.com", HeaderName, tok)
			h.ServeHTTP(httptest.NewRecorder(), r)
		})
	}
	wg.Wait()
	r := request("POST", "http://tether.test/", "", "", "Sec-Fetch-Site", "cross-site", "Origin", "https://app7.example.com", HeaderName, tok)
	if err := p.Check(r, alice); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

// checkSeeds are requests for FuzzCheck: method, target, content type,
// body, Sec-Fetch-Site, Origin and X-CSRF-Token, where TOKEN stands for a
// fresh token for alice.
var checkSeeds = [][7]string{
	{"POST", "/", "", "", "", "", "TOKEN"},
	{"POST", "/", "", "", "same-origin", "", "TOKEN"},
	{"POST", "/", "", "", "cross-site", "", "TOKEN"},
	{"POST", "/", "", "", "", "https://evil.example", "TOKEN"},
	{"POST", "/", "", "", "", "http://example.com", "TOKEN"},
	{"PUT", "/", formType, FormField + "=TOKEN", "", "", ""},
	{"POST", "/", formType + "; charset=utf-8", "a=1&" + FormField + "=TOKEN", "same-origin", "", ""},
	{"POST", "/?" + FormField + "=TOKEN", formType, "name=x", "", "", ""},
	{"POST", "/", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"" + FormField + "\"\r\n\r\nTOKEN\r\n--b--\r\n", "", "", ""},
	{"POST", "/", formType, FormField + "=x", "", "", "TOKEN"},
	{"POST", "/", formType, FormField + "=TOKEN", "", "", "x"},
	{"POST", "/", "application/json", `{"csrf_token":"TOKEN"}`, "", "", ""},
	{"GET", "/", "", "", "cross-site", "", ""},
	{"get", "/", "", "", "", "", ""},
	{"DELETE", "/x", "", "", "none", "", "TOKEN"},
}

// FuzzCheck: whatever the request, Check never panics, returns nil or one
// of its errors, lets every safe method through, and lets an unsafe one
// through only when http.CrossOriginProtection does and the X-CSRF-Token
// header, or when it is empty a form field of the body, holds a valid
// token for the binding: never a token from the query, nor for another
// session (CSRF-01, CSRF-02, CSRF-03).
func FuzzCheck(f *testing.F) {
	p := newProtector(f, testSecret)
	for _, s := range checkSeeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6])
	}
	f.Fuzz(func(t *testing.T, method, target, contentType, body, fetchSite, origin, header string) {
		tok := p.Token(alice)
		build := func() *http.Request {
			r, err := http.NewRequest(method, "http://example.com"+strings.ReplaceAll(target, "TOKEN", tok), strings.NewReader(strings.ReplaceAll(body, "TOKEN", tok)))
			if err != nil {
				return nil
			}
			for k, v := range map[string]string{"Content-Type": contentType, "Sec-Fetch-Site": fetchSite, "Origin": origin,
				HeaderName: strings.ReplaceAll(header, "TOKEN", tok)} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			return r
		}
		r := build()
		if r == nil {
			return
		}
		err := p.Check(r, alice)
		if err != nil && !errors.Is(err, ErrCrossOrigin) && !errors.Is(err, ErrMissingToken) && !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Check: got %v, want nil or one of its errors", err)
		}
		if safe(r.Method) { // NewRequest makes "" GET
			if err != nil {
				t.Fatalf("Check of a %s: got %v, want nil", r.Method, err)
			}
			return
		}
		if err != nil {
			return
		}
		if err := http.NewCrossOriginProtection().Check(build()); err != nil {
			t.Fatalf("Check let a request through that CrossOriginProtection refuses: %v", err)
		}
		r = build()
		token := r.Header.Get(HeaderName)
		if token == "" && isForm(r) {
			token = r.PostFormValue(FormField)
		}
		if !p.Valid(alice, token) || p.Valid(bob, token) {
			t.Fatalf("Check let %s %q through with token %q", method, target, token)
		}
		if p.Check(build(), bob) == nil {
			t.Fatalf("Check let %s %q through for alice and for bob", method, target)
		}
	})
}

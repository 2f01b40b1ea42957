package csrf

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// preSession renders a form as a server would, and returns the pre-session
// cookie it set and the form's token.
func preSession(p *Protector) (*http.Cookie, string) {
	w := httptest.NewRecorder()
	token := p.PreSessionToken(w, httptest.NewRequest("GET", "/login", nil))
	return w.Result().Cookies()[0], token
}

// withCookies adds a Cookie header line to r.
func withCookies(r *http.Request, line string) *http.Request {
	r.Header.Add("Cookie", line)
	return r
}

// CSRF-05: the sign-in form's token is bound to the pre-session cookie; it
// is good with that cookie only, and nothing else stands in for either.
func TestCSRF05_CheckPreSession(t *testing.T) {
	p := newProtector(t, testSecret)
	cookie, tok := preSession(p)
	other, otherTok := preSession(p)
	v := cookie.Value
	post := func(cookies string, header ...string) *http.Request {
		r := request("POST", "/login", "", "", header...)
		if cookies != "" {
			withCookies(r, cookies)
		}
		return r
	}
	one := DefaultPreSessionCookie + "=" + v
	runCheck(t, func(r *http.Request, _ []byte) error { return p.CheckPreSession(r) }, []checkCase{
		{"cookie and its token", post(one, HeaderName, tok), nil, nil},
		{"cookie and its token in the form", withCookies(request("POST", "/login", formType, FormField+"="+tok), one), nil, nil},
		{"another token for the same cookie", post(one, HeaderName, p.Token(preSessionBinding(v))), nil, nil},
		{"among other cookies", post("a=1; "+one+"; b=2", HeaderName, tok), nil, nil},
		{"GET needs nothing", request("GET", "/login", "", ""), nil, nil},
		{"no token", post(one), nil, ErrMissingToken},
		{"token in the query", withCookies(request("POST", "/login?"+FormField+"="+tok, formType, "username=ada"), one), nil, ErrMissingToken},
		{"another pre-session's token", post(one, HeaderName, otherTok), nil, ErrInvalidToken},
		{"its token with another pre-session's cookie", post(DefaultPreSessionCookie+"="+other.Value, HeaderName, tok), nil, ErrInvalidToken},
		{"a session's token", post(one, HeaderName, p.Token(alice)), nil, ErrInvalidToken},
		{"a session's token whose binding is the cookie", post(one, HeaderName, p.Token([]byte(v))), nil, ErrInvalidToken},
		{"forged token", post(one, HeaderName, strings.Repeat("A", tokenLen)), nil, ErrInvalidToken},
		{"another secret's token", post(one, HeaderName, newProtector(t, otherSecret).Token(preSessionBinding(v))), nil, ErrInvalidToken},
		{"no cookie", post("", HeaderName, tok), nil, ErrNoPreSession},
		{"no cookie, no token", post(""), nil, ErrNoPreSession},
		{"the token in the cookie", post(DefaultPreSessionCookie+"="+tok, HeaderName, tok), nil, ErrNoPreSession},
		{"cookie twice", post(one+"; "+one, HeaderName, tok), nil, ErrNoPreSession},
		{"cookie twice, in two lines", withCookies(post(one, HeaderName, tok), one), nil, ErrNoPreSession},
		{"cookie twice, two values", post(one+"; "+DefaultPreSessionCookie+"="+other.Value, HeaderName, tok), nil, ErrNoPreSession},
		{"cookie under another case", post("__host-pre-session="+v, HeaderName, tok), nil, ErrNoPreSession},
		{"cross-site", post(one, "Sec-Fetch-Site", "cross-site", HeaderName, tok), nil, ErrCrossOrigin},
		{"cross-site without a cookie", post("", "Sec-Fetch-Site", "cross-site"), nil, ErrCrossOrigin},
	})
	for _, c := range malformedPreSessions(v) {
		t.Run("malformed: "+c.name, func(t *testing.T) {
			got := p.CheckPreSession(post(DefaultPreSessionCookie+"="+c.value, HeaderName, p.Token(preSessionBinding(c.value))))
			if !errors.Is(got, ErrNoPreSession) {
				t.Errorf("got %v, want %v", got, ErrNoPreSession)
			}
		})
	}
}

type preSessionCase struct{ name, value string }

// malformedPreSessions are cookie values near v that must be refused;
// FuzzPreSessionCookie starts from them too.
func malformedPreSessions(v string) []preSessionCase {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, v[len(v)-1])
	return []preSessionCase{
		{"empty", ""},
		{"one char short", v[:len(v)-1]},
		{"one char long", v + "A"},
		{"padded", v + "="},
		{"standard alphabet +", "+" + v[1:]},
		{"standard alphabet /", v[:20] + "/" + v[21:]},
		{"non-zero trailing bits", v[:len(v)-1] + string(alphabet[last|1])},
		{"space inside", v[:20] + " " + v[21:]},
		{"24 bytes", v[:32]},
		{"48 bytes", v + v[:21]},
		{"a csrf token", strings.Repeat("A", tokenLen)},
		{"hex", strings.Repeat("ab", 32)},
	}
}

// CSRF-05: rendering the form keeps a good pre-session, renewing its
// cookie, and replaces a missing or bad one with 32 new random bytes.
func TestCSRF05_PreSessionToken(t *testing.T) {
	p := newProtector(t, testSecret)
	first, _ := preSession(p)
	if raw, err := base64.RawURLEncoding.DecodeString(first.Value); err != nil || len(raw) != 32 {
		t.Fatalf("pre-session %q: %d bytes, %v; want 32 in base64url", first.Value, len(raw), err)
	}
	for _, c := range []struct {
		name    string
		cookies string
		keep    bool
	}{
		{"none", "", false},
		{"good", DefaultPreSessionCookie + "=" + first.Value, true},
		{"malformed", DefaultPreSessionCookie + "=" + first.Value[1:], false},
		{"twice", DefaultPreSessionCookie + "=" + first.Value + "; " + DefaultPreSessionCookie + "=" + first.Value, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/login", nil)
			if c.cookies != "" {
				withCookies(r, c.cookies)
			}
			w := httptest.NewRecorder()
			tok := p.PreSessionToken(w, r)
			cs := w.Result().Cookies()
			if len(cs) != 1 || cs[0].Name != DefaultPreSessionCookie {
				t.Fatalf("Set-Cookie got %v, want one %s", cs, DefaultPreSessionCookie)
			}
			if got := cs[0].Value == first.Value; got != c.keep {
				t.Errorf("kept the pre-session got %v, want %v", got, c.keep)
			}
			if _, ok := p.preSessionValue(withCookies(httptest.NewRequest("POST", "/", nil), DefaultPreSessionCookie+"="+cs[0].Value)); !ok {
				t.Errorf("new pre-session %q is not well formed", cs[0].Value)
			}
			if !p.Valid(preSessionBinding(cs[0].Value), tok) {
				t.Errorf("token not bound to the cookie set")
			}
		})
	}
	seen := map[string]bool{}
	for range 100 {
		c, _ := preSession(p)
		if seen[c.Value] {
			t.Fatalf("pre-session %q issued twice", c.Value)
		}
		seen[c.Value] = true
	}
}

// CSRF-05, SES-05: the pre-session cookie has the session cookie's
// attributes and lives an hour; ClearPreSession expires it with the same
// attributes, without which a browser would refuse the __Host- cookie.
func TestCSRF05_PreSessionCookieAttributes(t *testing.T) {
	p := newProtector(t, testSecret)
	set := httptest.NewRecorder()
	p.PreSessionToken(set, httptest.NewRequest("GET", "/login", nil))
	clear := httptest.NewRecorder()
	p.ClearPreSession(clear, httptest.NewRequest("POST", "/login", nil))
	for _, c := range []struct {
		name   string
		w      *httptest.ResponseRecorder
		maxAge string
	}{
		{"PreSessionToken", set, "Max-Age=3600"},
		{"ClearPreSession", clear, "Max-Age=0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := c.w.Header().Values("Set-Cookie")
			if len(lines) != 1 {
				t.Fatalf("Set-Cookie got %q, want one line", lines)
			}
			line := lines[0]
			ck, err := http.ParseSetCookie(line)
			if err != nil {
				t.Fatalf("Set-Cookie %q: %v", line, err)
			}
			if got, want := ck.Name, "__Host-pre-session"; got != want || !strings.HasPrefix(got, "__Host-") {
				t.Errorf("name got %v, want %v", got, want)
			}
			if !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("Set-Cookie %q: want Secure, HttpOnly, Path=/, SameSite=Lax, no Domain", line)
			}
			if !strings.Contains(line, "; "+c.maxAge) || strings.Count(line, "Max-Age") != 1 {
				t.Errorf("Set-Cookie %q: want %s", line, c.maxAge)
			}
		})
	}
	if got, want := PreSessionMaxAge.Seconds(), 3600.0; got != want {
		t.Errorf("PreSessionMaxAge got %vs, want %vs", got, want)
	}
}

// CSRF-05: PreSessionHandler lets through only what CheckPreSession
// accepts, and answers the rest with the ErrorHandler.
func TestCSRF05_PreSessionHandler(t *testing.T) {
	p := newProtector(t, testSecret)
	cookie, tok := preSession(p)
	h := p.PreSessionHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "signed in as "+r.PostFormValue("username"))
	}))
	for _, c := range []struct {
		name     string
		cookie   bool
		token    string
		wantCode int
		wantBody string
	}{
		{"cookie and token", true, tok, 200, "signed in as ada"},
		{"no cookie", false, tok, 403, "forbidden: " + ErrNoPreSession.Error() + "\n"},
		{"no token", true, "", 403, "forbidden: " + ErrMissingToken.Error() + "\n"},
		{"a session's token", true, p.Token(alice), 403, "forbidden: " + ErrInvalidToken.Error() + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := "username=ada"
			if c.token != "" {
				body += "&" + FormField + "=" + c.token
			}
			r := request("POST", "/login", formType, body)
			if c.cookie {
				r.AddCookie(cookie)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.wantCode || w.Body.String() != c.wantBody {
				t.Errorf("got %v %q, want %v %q", w.Code, w.Body, c.wantCode, c.wantBody)
			}
		})
	}
}

// FuzzPreSessionCookie feeds the pre-session cookie parser arbitrary Cookie
// headers: it accepts exactly one cookie of the name, 32 bytes in canonical
// base64url, and CheckPreSession agrees with it.
func FuzzPreSessionCookie(f *testing.F) {
	p := newProtector(f, testSecret)
	cookie, _ := preSession(p)
	v := cookie.Value
	f.Add(DefaultPreSessionCookie + "=" + v)
	f.Add("a=1; " + DefaultPreSessionCookie + "=" + v + "; b=2")
	f.Add(DefaultPreSessionCookie + "=" + v + "; " + DefaultPreSessionCookie + "=" + v)
	f.Add(DefaultPreSessionCookie + `="` + v + `"`)
	f.Add("__host-pre-session=" + v)
	for _, c := range malformedPreSessions(v) {
		f.Add(DefaultPreSessionCookie + "=" + c.value)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r := withCookies(httptest.NewRequest("POST", "/login", nil), line)
		got, ok := p.preSessionValue(r)
		if ok {
			cs := r.CookiesNamed(DefaultPreSessionCookie)
			if len(cs) != 1 || cs[0].Value != got {
				t.Fatalf("accepted %q from %q, which has %d cookies of the name", got, line, len(cs))
			}
			raw, err := base64.RawURLEncoding.DecodeString(got)
			if err != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != got {
				t.Fatalf("accepted %q, which is not 32 bytes in canonical base64url", got)
			}
		}
		// A token for the value the parser found, or for the cookie's
		// raw value when it found none: good only if the parser accepted.
		value := got
		if !ok {
			if cs := r.CookiesNamed(DefaultPreSessionCookie); len(cs) > 0 {
				value = cs[0].Value
			}
		}
		r.Header.Set(HeaderName, p.Token(preSessionBinding(value)))
		switch err := p.CheckPreSession(r); {
		case ok && err != nil:
			t.Fatalf("cookie %q accepted by the parser, refused by CheckPreSession: %v", line, err)
		case !ok && !errors.Is(err, ErrNoPreSession):
			t.Fatalf("cookie %q refused by the parser: CheckPreSession got %v, want %v", line, err, ErrNoPreSession)
		}
	})
}

// SES-05, CSRF-05: WithInsecureLocalhostHTTP drops __Host- and Secure
// from the pre-session cookie only for a plain HTTP request from this
// machine for a loopback host; for any other request the cookie set,
// read and cleared is the __Host- Secure one, and a cookie under the
// development name binds no form.
func TestSES05_PreSessionInsecureLocalhostHTTPNeverWeakensOtherHosts(t *testing.T) {
	var logs strings.Builder
	p, err := New(testSecret, WithPreSessionCookie("__Host-app-pre"),
		WithInsecureLocalhostHTTP(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	local := func(method string, change func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(method, "http://localhost:3000/login", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		if change != nil {
			change(r)
		}
		return r
	}
	for _, tt := range []struct {
		name         string
		change       func(r *http.Request)
		cookie       string
		secure, kept bool
	}{
		{"local", nil, "app-pre", false, true},
		{"public host", func(r *http.Request) { r.Host = "auth.example.com" }, "__Host-app-pre", true, false},
		{"over TLS", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, "__Host-app-pre", true, false},
		{"peer elsewhere", func(r *http.Request) { r.RemoteAddr = "192.0.2.7:4000" }, "__Host-app-pre", true, false},
		{"through a proxy", func(r *http.Request) { r.Header.Set("X-Forwarded-For", "192.0.2.7") }, "__Host-app-pre", true, false},
		{"https Origin", func(r *http.Request) { r.Header.Set("Origin", "https://auth.example.com") }, "__Host-app-pre", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tok := p.PreSessionToken(w, local("GET", tt.change))
			p.ClearPreSession(w, local("POST", tt.change))
			cs := w.Result().Cookies()
			for _, c := range cs {
				if c.Name != tt.cookie || c.Secure != tt.secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
					t.Errorf("Set-Cookie %v: want %s, Secure %v, HttpOnly, Path=/, no Domain", c, tt.cookie, tt.secure)
				}
			}
			// The value under the development name, with its token.
			post := local("POST", tt.change)
			post.Header.Set(HeaderName, tok)
			post.AddCookie(&http.Cookie{Name: "app-pre", Value: cs[0].Value})
			if err := p.CheckPreSession(post); (err == nil) != tt.kept {
				t.Errorf("a pre-session cookie named app-pre: got %v, want accepted %v", err, tt.kept)
			}
		})
	}
	if n := strings.Count(logs.String(), "WithInsecureLocalhostHTTP"); n != 1 {
		t.Errorf("the mode's misuse logged %d times, want once a minute:\n%s", n, &logs)
	}
}

func TestWithPreSessionCookie(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"__Host-app-pre", true},
		{"__Host-", false},
		{"app-pre", false},
		{"__Secure-app-pre", false},
		{"__host-app-pre", false},
		{"__Host-app pre", false},
		{"__Host-app;pre", false},
		{"", false},
	} {
		p, err := New(testSecret, WithPreSessionCookie(tt.name))
		if (err == nil) != tt.ok {
			t.Errorf("WithPreSessionCookie(%q): got %v, want ok %v", tt.name, err, tt.ok)
			continue
		}
		if err != nil {
			continue
		}
		w := httptest.NewRecorder()
		p.PreSessionToken(w, httptest.NewRequest("GET", "/login", nil))
		if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != tt.name {
			t.Errorf("WithPreSessionCookie(%q): Set-Cookie %v", tt.name, c)
		}
	}
}

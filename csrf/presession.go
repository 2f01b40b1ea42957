package csrf

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tetherauth/tether/localdev"
)

// The pre-session (CSRF-05). A sign-in or registration form is sent before
// there is a session to bind its token to, yet it needs one: without it, a
// cross-site page could sign the victim in to the attacker's account (login
// CSRF). So the page that renders the form sets a pre-session cookie of 32
// random bytes, and binds the form's token to it. The cookie is kept nowhere
// on the server, grants nothing, and is never promoted to a session: sign-in
// creates a new session with a new token, and clears the pre-session
// (SES-03).
const (
	// DefaultPreSessionCookie is the name of the pre-session cookie unless
	// WithPreSessionCookie names it. Its attributes are those of a
	// session cookie (SES-05): the __Host- prefix, Secure, HttpOnly,
	// Path=/, no Domain, SameSite=Lax. (tether's own server names it
	// __Host-tether-pre.)
	DefaultPreSessionCookie = "__Host-pre-session"
	// PreSessionMaxAge is the lifetime of the pre-session cookie, renewed
	// each time a form is rendered: a form left open longer must be loaded
	// again.
	PreSessionMaxAge = time.Hour
)

const (
	preSessionBytes = 32
	// preSessionLen is b64.EncodedLen(preSessionBytes).
	preSessionLen = (preSessionBytes*8 + 5) / 6
	// preSessionPrefix keeps pre-session bindings apart from sessions'.
	preSessionPrefix = "pre-session:"
)

// PreSessionToken returns the token for a sign-in or registration form,
// bound to the request's pre-session: the pre-session cookie it carries if
// there is exactly one, well formed, else a new one of 32 random bytes. It
// sets the cookie on w, for another PreSessionMaxAge, so call it before
// writing the response's header. Like Token, every call gives a different
// token; the page must not be cached by shared caches.
func (p *Protector) PreSessionToken(w http.ResponseWriter, r *http.Request) string {
	v, ok := p.preSessionValue(r)
	if !ok {
		var raw [preSessionBytes]byte
		rand.Read(raw[:]) // never fails: crypto/rand crashes the program instead
		v = b64.EncodeToString(raw[:])
	}
	p.setPreSessionCookie(w, r, v, int(PreSessionMaxAge/time.Second))
	return p.Token(preSessionBinding(v))
}

// CheckPreSession decides whether r, the submission of a sign-in or
// registration form, may proceed: like Check, but the token must be bound to
// the request's pre-session cookie (CSRF-05). A request without exactly one
// well-formed pre-session cookie is refused with ErrNoPreSession; a token of
// another pre-session or of a session with ErrInvalidToken.
func (p *Protector) CheckPreSession(r *http.Request) error {
	if safe(r.Method) {
		return nil
	}
	if err := p.checkOrigin(r); err != nil {
		return err
	}
	var binding []byte
	if v, ok := p.preSessionValue(r); ok {
		binding = preSessionBinding(v)
	}
	return p.checkToken(r, binding, ErrNoPreSession)
}

// PreSessionHandler returns a handler that runs CheckPreSession on each
// request before h: for the routes that receive sign-in and registration
// forms. A refused request goes to the ErrorHandler and never reaches h.
func (p *Protector) PreSessionHandler(h http.Handler) http.Handler {
	return p.guard(h, p.CheckPreSession)
}

// ClearPreSession expires the pre-session cookie in the response to r.
// Call it when sign-in succeeds, next to setting the new session's cookie:
// the pre-session has done its job, and its tokens die with it.
func (p *Protector) ClearPreSession(w http.ResponseWriter, r *http.Request) {
	p.setPreSessionCookie(w, r, "", -1)
}

// preSessionValue returns the value of the request's pre-session cookie if
// there is exactly one and it is 32 bytes in canonical base64url. Two
// cookies of that name are refused, as a session cookie's would be (SES-06).
func (p *Protector) preSessionValue(r *http.Request) (string, bool) {
	name, _ := p.pre.dev.Cookie(r, p.pre.name)
	cs := r.CookiesNamed(name)
	if len(cs) != 1 || len(cs[0].Value) != preSessionLen {
		return "", false
	}
	var raw [preSessionBytes]byte
	// The decoder skips '\r' and '\n', so a full count is checked too.
	if n, err := b64.Decode(raw[:], []byte(cs[0].Value)); err != nil || n != preSessionBytes {
		return "", false
	}
	return cs[0].Value, true
}

// preSessionBinding is the binding of the pre-session v, kept apart from
// sessions' bindings by its prefix.
func preSessionBinding(v string) []byte { return []byte(preSessionPrefix + v) }

// setPreSessionCookie sets the pre-session cookie of r, as secure as a
// session cookie, unless WithInsecureLocalhostHTTP and a local
// development request say otherwise.
func (p *Protector) setPreSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	name, secure := p.pre.dev.Cookie(r, p.pre.name)
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// preCookie is how a Protector names the pre-session cookie.
type preCookie struct {
	name string
	dev  *localdev.Mode // nil unless WithInsecureLocalhostHTTP
}

// An Option changes a Protector from New's defaults.
type Option func(*preCookie) error

// WithPreSessionCookie names the pre-session cookie, instead of
// DefaultPreSessionCookie: a name of your app's, so that two apps on one
// host name (cookies are not kept apart by port) don't replace each
// other's. It must start with "__Host-" (SES-05).
func WithPreSessionCookie(name string) Option {
	return func(ps *preCookie) error {
		if rest, ok := strings.CutPrefix(name, localdev.HostPrefix); !ok || rest == "" || (&http.Cookie{Name: name, Value: "x"}).Valid() != nil {
			return fmt.Errorf("csrf: pre-session cookie name %q must be a valid name: %s and more (SES-05)", name, localdev.HostPrefix)
		}
		ps.name = name
		return nil
	}
}

// WithInsecureLocalhostHTTP is a development mode, the pre-session's
// counterpart of session.Config.InsecureLocalhostHTTP, for a sign-in
// form served over plain http://localhost to a browser that keeps no
// Secure cookie there (Safari). A request that comes over plain HTTP,
// straight from this machine, for localhost, 127.0.0.1 or [::1]
// (localdev.Local) gets its pre-session cookie named without "__Host-"
// and without Secure. Every other request keeps the __Host- Secure
// cookie, and the first of them in a minute is logged to log (nil:
// slog.Default()) as an error: use it only in development.
func WithInsecureLocalhostHTTP(log *slog.Logger) Option {
	return func(ps *preCookie) error {
		if log == nil {
			log = slog.Default()
		}
		ps.dev = localdev.New(log.With("component", "csrf"), "csrf.WithInsecureLocalhostHTTP", nil)
		return nil
	}
}

package csrf

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Where Check looks for the token, in this order.
const (
	HeaderName = "X-CSRF-Token"
	FormField  = "csrf_token"
)

// Errors the checks return; the handlers pass them to the ErrorHandler.
var (
	// ErrCrossOrigin: an unsafe request from another origin (CSRF-01). It
	// wraps the reason http.CrossOriginProtection gave.
	ErrCrossOrigin = errors.New("csrf: cross-origin request")
	// ErrNoBinding: an unsafe request that needs a token bound to a session
	// has no session (the binding is empty), so no token can be valid for it.
	// Check and Handler never fall back to the origin check alone.
	ErrNoBinding = errors.New("csrf: no session to bind the token to: sign in first")
	// ErrNoPreSession: an unsafe request to a sign-in or registration form
	// has no pre-session cookie (or two, or a malformed one) to bind the
	// token to (CSRF-05).
	ErrNoPreSession = errors.New("csrf: no pre-session cookie to bind the token to: reload the form, with cookies allowed")
	// ErrMissingToken: an unsafe request that needs a token carries none.
	ErrMissingToken = errors.New("csrf: missing token: send it in the " + HeaderName + " header or the " + FormField + " form field")
	// ErrInvalidToken: the token is malformed, forged, or bound to another
	// session (for instance one from before sign-in).
	ErrInvalidToken = errors.New("csrf: invalid token: reload the page to get a fresh one")
)

const (
	minSecretSize = 32
	maskSize      = sha256.Size
	rawSize       = maskSize + sha256.Size // mask || (mask XOR mac)
	// domain separates these MACs from anything else the secret might key.
	domain = "tether-csrf-v1\x00"
)

// domainBytes is domain as the MAC is fed it, converted once rather than
// on every token: it is only ever read.
var domainBytes = []byte(domain)

// b64 is the only encoding tokens are accepted in: base64url, no padding,
// zero trailing bits, so each token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// tokenLen is the length of every token Token returns: b64.EncodedLen of
// rawSize, 86 characters (a constant, for an array on the stack).
const tokenLen = (rawSize*8 + 5) / 6

// Protector issues and checks CSRF tokens and refuses cross-origin unsafe
// requests. Its methods are safe for concurrent use; AddTrustedOrigin may be
// called while requests are being served.
type Protector struct {
	// ErrorHandler answers the requests the handlers (Handler,
	// PreSessionHandler, OriginOnlyHandler) refuse, with the error the
	// matching check returned: one of the errors above, possibly wrapped.
	// Nil, the default, answers 403 with the plain text "forbidden: " and
	// the error. Set it before serving: it is read on every request, and
	// changing it while requests are served is a data race. To answer some
	// routes differently (JSON for an API, pages for a site), see
	// WithErrorHandler.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Shared with the Protectors WithErrorHandler returns.
	cop *http.CrossOriginProtection
	// macs holds HMAC-SHA256 states keyed with the secret. The secret lives
	// only inside them, so printing a Protector shows no key material.
	macs *sync.Pool
	pre  *preCookie // the pre-session cookie's name and mode
}

// New returns a Protector whose tokens are keyed with secret, which must be at
// least 32 bytes from a cryptographically secure source and the same on every
// node that checks tokens. New keeps its own copy of secret. The options
// name the pre-session cookie and turn on its development mode.
func New(secret []byte, opts ...Option) (*Protector, error) {
	if len(secret) < minSecretSize {
		return nil, fmt.Errorf("csrf: secret is %d bytes, need at least %d random bytes", len(secret), minSecretSize)
	}
	pre := &preCookie{name: DefaultPreSessionCookie}
	for _, o := range opts {
		if err := o(pre); err != nil {
			return nil, err
		}
	}
	key := append([]byte(nil), secret...)
	macs := &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	return &Protector{cop: http.NewCrossOriginProtection(), macs: macs, pre: pre}, nil
}

// WithErrorHandler returns a Protector whose handlers answer the requests
// they refuse with f (nil: the default 403), for routes that answer
// differently from the others, such as an API's JSON next to a site's
// pages. It shares everything else with p: the secret, so tokens of one
// verify on the other, and the trusted origins, so AddTrustedOrigin on
// either applies to both. It is safe to call concurrently with requests.
func (p *Protector) WithErrorHandler(f func(w http.ResponseWriter, r *http.Request, err error)) *Protector {
	return &Protector{ErrorHandler: f, cop: p.cop, macs: p.macs, pre: p.pre}
}

// mac appends HMAC-SHA256(secret, domain || binding) to dst.
func (p *Protector) mac(dst, binding []byte) []byte {
	m := p.macs.Get().(hash.Hash)
	defer p.macs.Put(m)
	m.Reset()
	m.Write(domainBytes)
	m.Write(binding)
	return m.Sum(dst)
}

// Token returns a token for binding, a value unique to the session such as
// its ID. The binding need not be secret, since the server secret keys the
// MAC, but a new session must have a new binding, so that tokens from before
// sign-in die with that session (SES-03). An empty binding never validates.
// Bindings that begin with "pre-session:" are PreSessionToken's: a
// session's binding must not.
//
// Each call masks the MAC with fresh random bytes, so no two tokens are alike
// and a compressed response can't leak one byte by byte (BREACH); every one
// of them verifies (CSRF-02). Render it into the page for the next unsafe
// request; the response must not be cached by shared caches.
func (p *Protector) Token(binding []byte) string {
	var raw [rawSize]byte
	mask, masked := raw[:maskSize], raw[maskSize:]
	rand.Read(mask) // never fails: crypto/rand crashes the program instead
	p.mac(masked[:0], binding)
	subtle.XORBytes(masked, masked, mask)
	var token [tokenLen]byte
	b64.Encode(token[:], raw[:])
	return string(token[:])
}

// Valid reports whether token was issued by Token for binding, under this
// Protector's secret. Anything but the exact form Token produces is refused.
// The MAC is compared in constant time.
func (p *Protector) Valid(binding []byte, token string) bool {
	if len(binding) == 0 || len(token) != tokenLen {
		return false
	}
	var raw [rawSize]byte
	// The decoder skips '\r' and '\n', so a full count is checked too.
	if n, err := b64.Decode(raw[:], []byte(token)); err != nil || n != rawSize {
		return false
	}
	mask, masked := raw[:maskSize], raw[maskSize:]
	subtle.XORBytes(masked, masked, mask)
	var want [sha256.Size]byte
	return hmac.Equal(masked, p.mac(want[:0], binding))
}

// AddTrustedOrigin lets unsafe requests whose Origin header is exactly origin
// ("scheme://host[:port]") through the cross-origin check; scheme, host and
// port must all match (CSRF-06). The token is still required. An origin no
// browser would send (upper case, user info, a default port) is an error.
//
// AddTrustedOrigin can be called concurrently with other methods or request
// handling, and applies to future requests.
func (p *Protector) AddTrustedOrigin(origin string) error {
	if err := checkOrigin(origin); err != nil {
		return fmt.Errorf("csrf: trusted origin: %w", err)
	}
	if err := p.cop.AddTrustedOrigin(origin); err != nil {
		return fmt.Errorf("csrf: trusted origin: %w", err)
	}
	return nil
}

// checkOrigin refuses origins in a form browsers never serialise, which the
// exact comparison would silently never match.
func checkOrigin(origin string) error {
	u, err := url.Parse(origin)
	switch {
	case err != nil:
		return err
	case u.User != nil, origin != strings.ToLower(origin),
		u.Scheme == "https" && u.Port() == "443", u.Scheme == "http" && u.Port() == "80":
		return fmt.Errorf("%q would never match: write it as browsers send Origin (lower case, no user info, no default port)", origin)
	}
	return nil
}

// Check decides whether r, a request made with the session that binding
// identifies, may proceed. Safe methods (GET, HEAD, OPTIONS) always may. Any
// other method, compared exactly and never overridden by a header or form
// field (CSRF-03), must pass the cross-origin check (CSRF-01) or Check
// returns ErrCrossOrigin; then it must carry a token for binding (CSRF-02)
// or Check returns ErrMissingToken or ErrInvalidToken. An empty (or nil)
// binding, a request without a session, is refused with ErrNoBinding: Check
// never skips the token. The sign-in and registration forms, which have no
// session yet, use CheckPreSession; a route that deliberately needs no token
// uses CheckOriginOnly.
//
// The token is taken from the X-CSRF-Token header or, when the header is
// absent, from the csrf_token field of an application/x-www-form-urlencoded or
// multipart/form-data body, as r.PostFormValue reads it (net/http reads
// urlencoded bodies only for POST, PUT and PATCH). Reading the field consumes
// the body: cap it first with http.MaxBytesReader. The parsed form stays in
// r.PostForm, so the handler can still read it. The URL query and cookies are
// never consulted.
func (p *Protector) Check(r *http.Request, binding []byte) error {
	if safe(r.Method) {
		return nil
	}
	if err := p.checkOrigin(r); err != nil {
		return err
	}
	return p.checkToken(r, binding, ErrNoBinding)
}

// CheckOriginOnly is the cross-origin check alone (CSRF-01), with no token:
// it returns ErrCrossOrigin for an unsafe request from another origin, and
// nil otherwise. Use it only where a forged request can do no harm without
// a token, and say why where it is used: a request that no cookie
// authenticates, such as a JSON sign-in, which a cross-site page can't send
// without a CORS preflight. Everything else needs Check or CheckPreSession.
func (p *Protector) CheckOriginOnly(r *http.Request) error {
	if safe(r.Method) {
		return nil
	}
	return p.checkOrigin(r)
}

// safe reports whether method is one Check never checks. The comparison is
// exact: "get" is not GET.
func safe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

func (p *Protector) checkOrigin(r *http.Request) error {
	if err := p.cop.Check(r); err != nil {
		return fmt.Errorf("%w: %w", ErrCrossOrigin, err)
	}
	return nil
}

// checkToken checks that r carries a token for binding; an empty binding
// is refused with noBinding, whatever r carries.
func (p *Protector) checkToken(r *http.Request, binding []byte, noBinding error) error {
	if len(binding) == 0 {
		return noBinding
	}
	token := r.Header.Get(HeaderName)
	if token == "" && isForm(r) {
		token = r.PostFormValue(FormField)
	}
	switch {
	case token == "":
		return ErrMissingToken
	case !p.Valid(binding, token):
		return ErrInvalidToken
	}
	return nil
}

// isForm reports whether r's body is an HTML form encoding. net/http would
// find no field in other bodies anyway; checking first keeps Check from
// parsing anything else, whatever net/http does.
func isForm(r *http.Request) bool {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data")
}

// Handler returns a handler that runs Check on each request, with the binding
// bind returns for it, before h. A refused request goes to the ErrorHandler
// and never reaches h. When bind returns nil (no session), an unsafe request
// is refused with ErrNoBinding, never let through on the origin check alone.
// Handler panics if bind is nil: for a route that deliberately needs no
// token, use OriginOnlyHandler.
func (p *Protector) Handler(bind func(*http.Request) []byte, h http.Handler) http.Handler {
	if bind == nil {
		panic("csrf: Handler with a nil bind; a route that needs no token uses OriginOnlyHandler")
	}
	return p.guard(h, func(r *http.Request) error {
		if safe(r.Method) { // bind need not run
			return nil
		}
		return p.Check(r, bind(r))
	})
}

// OriginOnlyHandler returns a handler that runs CheckOriginOnly on each
// request before h: the cross-origin check with no token, for the
// exemptions CheckOriginOnly describes. A refused request goes to the
// ErrorHandler and never reaches h.
func (p *Protector) OriginOnlyHandler(h http.Handler) http.Handler {
	return p.guard(h, p.CheckOriginOnly)
}

// guard returns a handler that runs h for the requests check lets through
// and answers the others with the ErrorHandler.
func (p *Protector) guard(h http.Handler, check func(*http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			deny := p.ErrorHandler
			if deny == nil {
				deny = forbidden
			}
			deny(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// forbidden is the default ErrorHandler.
func forbidden(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
}

package server

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tetherauth/tether/internal/account"
)

// The parsers of what an OAuth client sends: the form of its request and
// its credentials. Both are strict: what they refuse, a lenient parser
// elsewhere (a proxy, a WAF, another library) might read differently.

// maxOAuthBody caps an OAuth request's body: the longest parameter is a
// token at introspection or revocation, at most token.MaxSize (8 KiB).
const maxOAuthBody = 16 << 10

// maxSecret caps a client secret: tether's are 256-bit random values, a
// few dozen characters in any encoding.
const maxSecret = 512

// oauthForm is the parameters of an OAuth request, each given once (RFC
// 6749 §3.2), except resource, which RFC 8707 §2 lets repeat. A parameter
// sent with an empty value is left out, as §3.2 says to treat it.
type oauthForm map[string][]string

// get returns the value of name, "" when it is absent.
func (f oauthForm) get(name string) string {
	if v := f[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseOAuthForm reads the body of an OAuth request: Content-Type
// application/x-www-form-urlencoded (charset, if given, UTF-8), at most
// maxOAuthBody bytes, valid percent-encoding and UTF-8 throughout, no
// ';' separator, and no parameter twice but resource. Its errors are
// invalid_request problems saying what was wrong.
func parseOAuthForm(contentType string, body io.Reader) (oauthForm, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthProblem(codeInvalidRequest, "Send the parameters in the body as Content-Type: application/x-www-form-urlencoded.")
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return nil, oauthProblem(codeInvalidRequest, "The body must be form-urlencoded UTF-8: no parameter of its Content-Type but charset=utf-8.")
		}
	}
	b, err := io.ReadAll(io.LimitReader(body, maxOAuthBody+1))
	var tooBig *http.MaxBytesError
	switch {
	case len(b) > maxOAuthBody || errors.As(err, &tooBig):
		return nil, oauthProblem(codeInvalidRequest, "The body is larger than "+strconv.Itoa(maxOAuthBody>>10)+" KiB.")
	case err != nil:
		return nil, err
	}
	values, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, oauthProblem(codeInvalidRequest, "The body is not valid form-urlencoded data: parameters are name=value pairs joined by &, percent-encoded.")
	}
	f := make(oauthForm, len(values))
	for name, vs := range values {
		if len(vs) > 1 && name != "resource" {
			return nil, oauthProblem(codeInvalidRequest, "Parameter "+printable(name)+" is given more than once; send each parameter once.")
		}
		if !utf8.ValidString(name) {
			return nil, oauthProblem(codeInvalidRequest, "A parameter name is not valid UTF-8.")
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, oauthProblem(codeInvalidRequest, "Parameter "+printable(name)+" is not valid UTF-8.")
			}
			if v != "" {
				f[name] = append(f[name], v)
			}
		}
	}
	return f, nil
}

// printable is a parameter name as an error_description may show it
// (RFC 6749 §5.2: printable ASCII but " and \): cut to 40 characters,
// anything else as '?'.
func printable(s string) string {
	const most = 40
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < most; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// clientCreds are the credentials a client authenticated with.
type clientCreds struct {
	id, secret string
	basic      bool // sent by HTTP Basic, else in the form
}

// The refusals of clientAuth.
var (
	errNoClientAuth   = oauthProblem(codeInvalidClient, "Client authentication is required: send the client_id and client_secret by HTTP Basic or as form parameters.")
	errBadBasic       = oauthProblem(codeInvalidClient, "The Authorization header is not HTTP Basic credentials of a client: base64 of the form-urlencoded client_id, a colon and the form-urlencoded client_secret.")
	errTwoAuthMethods = oauthProblem(codeInvalidRequest, "The client authenticated by HTTP Basic and by form parameters: use exactly one method.")
	errTwoAuthHeaders = oauthProblem(codeInvalidRequest, "The request has more than one Authorization header.")
	errNoSecret       = oauthProblem(codeInvalidClient, "The client_secret is missing: tether's clients authenticate with their secret.")
	errNoClientID     = oauthProblem(codeInvalidRequest, "A client_secret without a client_id: send both.")
)

// clientAuth finds the client's credentials: in the Authorization
// header (client_secret_basic: RFC 6749 §2.3.1's Basic credentials, the
// id and the secret each form-urlencoded before they are joined by a
// colon and base64-encoded) or in the form's client_id and client_secret
// (client_secret_post), exactly one of the two. With Basic, the form may
// repeat the same client_id (RFC 6749 §3.2.1), nothing more. It checks
// the syntax only, not the client.
func clientAuth(authorization []string, f oauthForm) (clientCreds, error) {
	formID, formSecret := f.get("client_id"), f.get("client_secret")
	switch len(authorization) {
	case 0:
		switch {
		case formID == "" && formSecret == "":
			return clientCreds{}, errNoClientAuth
		case formID == "":
			return clientCreds{}, errNoClientID
		case formSecret == "":
			return clientCreds{}, errNoSecret
		}
		return clientCreds{id: formID, secret: formSecret}, nil
	case 1:
	default:
		return clientCreds{}, errTwoAuthHeaders
	}
	scheme, b64, ok := strings.Cut(authorization[0], " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return clientCreds{}, errBadBasic
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return clientCreds{}, errBadBasic
	}
	encID, encSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return clientCreds{}, errBadBasic
	}
	id, err1 := url.QueryUnescape(encID)
	secret, err2 := url.QueryUnescape(encSecret)
	switch {
	case err1 != nil || err2 != nil || !utf8.ValidString(id) || !utf8.ValidString(secret):
		return clientCreds{}, errBadBasic
	case formSecret != "" || formID != "" && formID != id:
		return clientCreds{}, errTwoAuthMethods
	case id == "":
		return clientCreds{}, errBadBasic
	case secret == "":
		return clientCreds{}, errNoSecret
	}
	return clientCreds{id: id, secret: secret, basic: true}, nil
}

// possibleClient reports whether c could be any client's credentials:
// an id in the store's canonical form (account.CanonicalClientID),
// compared exactly, as RFC 6749 compares client ids, and a secret of at
// most maxSecret bytes. Checked before the throttle counts an attempt: a
// malformed request is not a guess.
func possibleClient(c clientCreds) bool {
	id, err := account.CanonicalClientID(c.id)
	return err == nil && id == c.id && len(c.secret) <= maxSecret
}

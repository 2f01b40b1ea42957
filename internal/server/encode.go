package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxBody caps every request body (PW-04, MISC-03).
const maxBody = 64 << 10

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// bodies holds the buffers encode writes into: a signed-in request's
// answer is encoded on every request, and a buffer that stays saves
// allocating and growing one each time.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds what goes back to bodies, so that one big answer
// doesn't keep its memory for good.
const maxPooledBody = 64 << 10

// encode writes v as the JSON body of a response with status.
func encode(w http.ResponseWriter, status int, v any) {
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodies.Put(buf)
		}
	}()
	if a, ok := v.(jsonAppender); ok {
		buf.Write(append(a.appendJSON(buf.AvailableBuffer()), '\n'))
	} else if err := json.NewEncoder(buf).Encode(v); err != nil { // with the newline after the value
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) // an error here means the client went away
}

// failJSON answers err as {"error":"code","message":"..."}.
func (s *server) failJSON(w http.ResponseWriter, r *http.Request, err error) {
	p := s.problemFor(r, err)
	setRetryAfter(w.Header(), p.retryAfter)
	encode(w, p.status, errorBody{Error: p.code, Message: p.message})
}

// decode reads a request body that must be exactly one JSON value of type T:
// Content-Type application/json (else 415, CSRF-04), at most 64 KiB, no
// unknown fields, nothing after the value. Its errors are problems with a
// message saying what was wrong.
//
// It is strict where encoding/json is lenient, so that the JSON API reads
// the same bytes as the HTML form (PW-09): a member name must match a
// field's exactly (encoding/json matches "Username" to username), a name may
// not appear twice (encoding/json keeps the last one), and the body must
// be valid UTF-8, \u escapes of lone surrogates included (encoding/json
// turns both into U+FFFD: the API read "pw\xff" and "pw\xfe" as one
// password, and not as the form reads either).
func decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	if !isJSON(r.Header.Get("Content-Type")) {
		return v, &problem{
			status:  http.StatusUnsupportedMediaType,
			code:    "unsupported_media_type",
			message: "Send the body as Content-Type: application/json.",
		}
	}
	dec := jsontext.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody), decodeOptions)
	if err := jsonv2.UnmarshalDecode(dec, &v); err != nil {
		var syntax *jsontext.SyntacticError
		if errors.As(err, &syntax) && isInvalidUTF8(syntax.Err) { // as the form's password is refused (PW-09)
			return v, badRequest(errInvalidUTF8.code, decodeMessage(err))
		}
		return v, badRequest("bad_request", decodeMessage(err))
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return v, badRequest("bad_request", decodeMessage(err))
		}
		return v, badRequest("bad_request", "The body must hold a single JSON object and nothing after it.")
	}
	return v, nil
}

// decodeOptions are decode's. JSON v2 already refuses duplicate names and
// invalid UTF-8, and matches names case-sensitively, by default: they are
// spelt out so that no change of default can undo them.
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// isJSON reports whether a Content-Type header names a JSON body in UTF-8.
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// decodeMessage says in plain words why a JSON body was refused.
func decodeMessage(err error) string {
	var (
		tooBig   *http.MaxBytesError
		syntax   *jsontext.SyntacticError
		semantic *jsonv2.SemanticError
	)
	switch {
	case errors.As(err, &tooBig):
		return fmt.Sprintf("The body is larger than %d KiB.", maxBody>>10)
	case errors.Is(err, io.EOF):
		return "The body is empty; send a JSON object."
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The body is not valid JSON: it ends too early."
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syntax):
		return fmt.Sprintf("Field %s appears more than once; send each field once.", quoteName(syntax.JSONPointer.LastToken()))
	case errors.As(err, &syntax) && isInvalidUTF8(syntax.Err):
		return fmt.Sprintf("The body is not valid UTF-8 (at byte %d): send text in UTF-8, and \\u escapes only of whole characters.", syntax.ByteOffset+1)
	case errors.As(err, &syntax):
		return fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.ByteOffset+1)
	case errors.Is(err, jsonv2.ErrUnknownName) && errors.As(err, &semantic):
		name := semantic.JSONPointer.LastToken()
		if field, ok := fieldNamed(semantic.GoType, name); ok {
			return fmt.Sprintf("Unknown field %s: field names are lower case; write %q.", quoteName(name), field)
		}
		return fmt.Sprintf("Unknown field %s; remove it.", quoteName(name))
	case errors.As(err, &semantic) && semantic.JSONPointer != "":
		return fmt.Sprintf("Field %s must be a JSON %s.", quoteName(semantic.JSONPointer.LastToken()), jsonKind(semantic.GoType))
	case errors.As(err, &semantic):
		return "The body must be a JSON object."
	}
	return "The body is not valid JSON."
}

// isInvalidUTF8 reports whether err, the cause of a syntax error, is
// invalid UTF-8: a byte sequence, or a \u escape of half a surrogate pair.
// The json module keeps these errors internal, so their text is all there
// is to go by; TestPW09_JSONRefusesInvalidUTF8 holds it to that.
func isInvalidUTF8(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "invalid UTF-8") || strings.HasPrefix(msg, "invalid surrogate pair")
}

// fieldNamed returns the JSON name of the field of struct type t that name
// differs from only in case.
func fieldNamed(t reflect.Type, name string) (string, bool) {
	if t == nil || t.Kind() != reflect.Struct {
		return "", false
	}
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && tag != "" && tag != "-" && strings.EqualFold(tag, name) {
			return tag, true
		}
	}
	return "", false
}

// jsonKind names the kind of JSON value that Go type t takes.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

// quoteName quotes a member name of the body for a message, cut to 40
// characters: the name is the client's, and may be long.
func quoteName(name string) string {
	const maxRunes = 40
	n := 0
	for i := range name {
		if n == maxRunes {
			return strconv.Quote(name[:i]) + "…"
		}
		n++
	}
	return strconv.Quote(name)
}

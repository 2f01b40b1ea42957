package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
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
func decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	if !isJSON(r.Header.Get("Content-Type")) {
		return v, &problem{
			status:  http.StatusUnsupportedMediaType,
			code:    "unsupported_media_type",
			message: "Send the body as Content-Type: application/json.",
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, badRequest("bad_request", decodeMessage(err))
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return v, badRequest("bad_request", decodeMessage(err))
		}
		return v, badRequest("bad_request", "The body must hold a single JSON object and nothing after it.")
	}
	return v, nil
}

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
		tooBig *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return fmt.Sprintf("The body is larger than %d KiB.", maxBody>>10)
	case errors.Is(err, io.EOF):
		return "The body is empty; send a JSON object."
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The body is not valid JSON: it ends too early."
	case errors.As(err, &syntax):
		return fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("Field %q must be a JSON %s.", typ.Field, typ.Type)
	case errors.As(err, &typ):
		return "The body must be a JSON object."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "Unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "; remove it."
	}
	return "The body is not valid JSON."
}

package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// A decodeCase is a login body with what decode answers: status 0 for
// accepted, else the status, the code and the whole message. The tables
// also seed the fuzz targets.
type decodeCase struct {
	name, contentType, body string
	status                  int
	code, message           string
}

const (
	ctJSON  = "application/json"
	http415 = http.StatusUnsupportedMediaType
	http400 = http.StatusBadRequest

	msgJSONOnly  = "Send the body as Content-Type: application/json."
	msgSingle    = "The body must hold a single JSON object and nothing after it."
	msgTooBig    = "The body is larger than 64 KiB."
	msgEmpty     = "The body is empty; send a JSON object."
	msgBadUTF8   = "The body is not valid UTF-8 (at byte %d): send text in UTF-8, and \\u escapes only of whole characters."
	msgLowerCase = "Unknown field %q: field names are lower case; write %q."
	msgDuplicate = "Field %q appears more than once; send each field once."
)

var decodeCases = []decodeCase{
	{"login", ctJSON, `{"username":"alice","password":"pw"}`, 0, "", ""},
	{"charset", "application/json; charset=UTF-8", `{"username":"a"}`, 0, "", ""},
	{"whitespace around", ctJSON, " \n{\"username\":\"a\"}\n ", 0, "", ""},
	{"empty object", ctJSON, `{}`, 0, "", ""},
	{"null", ctJSON, `null`, 0, "", ""},
	{"null field", ctJSON, `{"username":null}`, 0, "", ""},
	{"text/plain", "text/plain", `{}`, http415, "unsupported_media_type", msgJSONOnly},
	{"form", "application/x-www-form-urlencoded", `a=b`, http415, "unsupported_media_type", msgJSONOnly},
	{"no content type", "", `{}`, http415, "unsupported_media_type", msgJSONOnly},
	{"json lookalike", "application/jsonx", `{}`, http415, "unsupported_media_type", msgJSONOnly},
	{"other charset", "application/json; charset=latin1", `{}`, http415, "unsupported_media_type", msgJSONOnly},
	{"empty", ctJSON, ``, http400, "bad_request", msgEmpty},
	{"only white space", ctJSON, " \n\t", http400, "bad_request", msgEmpty},
	{"truncated", ctJSON, `{"username":"a`, http400, "bad_request", "The body is not valid JSON: it ends too early."},
	{"syntax", ctJSON, `{"username" "a"}`, http400, "bad_request", "The body is not valid JSON (at byte 13)."},
	{"control character", ctJSON, "{\"username\":\"a\x01\"}", http400, "bad_request", "The body is not valid JSON (at byte 15)."},
	{"wrong type", ctJSON, `{"username":1}`, http400, "bad_request", `Field "username" must be a JSON string.`},
	{"not an object", ctJSON, `["a"]`, http400, "bad_request", "The body must be a JSON object."},
	{"a string", ctJSON, `"alice"`, http400, "bad_request", "The body must be a JSON object."},
	{"unknown field", ctJSON, `{"username":"a","admin":true}`, http400, "bad_request", `Unknown field "admin"; remove it.`},
	{"long unknown field", ctJSON, `{"` + strings.Repeat("é", 50) + `":1}`, http400, "bad_request", `Unknown field "` + strings.Repeat("é", 40) + `"…; remove it.`},
	{"two values", ctJSON, `{} {}`, http400, "bad_request", msgSingle},
	{"trailing garbage", ctJSON, `{}x`, http400, "bad_request", msgSingle},
	{"too big", ctJSON, `{"username":"` + strings.Repeat("a", maxBody) + `"}`, http400, "bad_request", msgTooBig},
	{"too big after the value", ctJSON, `{}` + strings.Repeat(" ", maxBody), http400, "bad_request", msgTooBig},
}

// strictNameCases: member names match exactly once, as written.
var strictNameCases = []decodeCase{
	{"duplicate", ctJSON, `{"username":"a","username":"b"}`, http400, "bad_request", fmt.Sprintf(msgDuplicate, "username")},
	{"duplicate password", ctJSON, `{"username":"a","password":"x","password":"y"}`, http400, "bad_request", fmt.Sprintf(msgDuplicate, "password")},
	{"duplicate spelt with an escape", ctJSON, `{"username":"a","user\u006eame":"b"}`, http400, "bad_request", fmt.Sprintf(msgDuplicate, "username")},
	{"duplicate, same value", ctJSON, `{"username":"a","username":"a"}`, http400, "bad_request", fmt.Sprintf(msgDuplicate, "username")},
	{"capitalised", ctJSON, `{"Username":"a"}`, http400, "bad_request", fmt.Sprintf(msgLowerCase, "Username", "username")},
	{"upper case", ctJSON, `{"username":"a","PASSWORD":"x"}`, http400, "bad_request", fmt.Sprintf(msgLowerCase, "PASSWORD", "password")},
	{"both spellings", ctJSON, `{"username":"a","Username":"b"}`, http400, "bad_request", fmt.Sprintf(msgLowerCase, "Username", "username")},
	{"Unicode case folding", ctJSON, `{"u\u017fername":"a"}`, http400, "bad_request", fmt.Sprintf(msgLowerCase, "uſername", "username")},
}

// invalidUTF8Cases: invalid UTF-8, raw or escaped, is refused, never
// turned into U+FFFD.
var invalidUTF8Cases = []decodeCase{
	{"invalid byte in a password", ctJSON, "{\"username\":\"a\",\"password\":\"pw\xff\"}", http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 31)},
	{"invalid byte in a name", ctJSON, "{\"username\":\"a\xe9\"}", http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 15)},
	{"invalid byte in a member name", ctJSON, "{\"pass\xffword\":\"x\"}", http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 7)},
	{"overlong encoding", ctJSON, "{\"password\":\"\xc0\xaf\"}", http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 14)},
	{"surrogate encoded in UTF-8", ctJSON, "{\"password\":\"\xed\xa0\x80\"}", http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 14)},
	{"lone high surrogate escape", ctJSON, `{"password":"\ud800"}`, http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 14)},
	{"lone low surrogate escape", ctJSON, `{"password":"pw\udc00"}`, http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 16)},
	{"surrogates reversed", ctJSON, `{"password":"\udc00\ud800"}`, http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 14)},
	{"high surrogate, then a letter escape", ctJSON, `{"password":"\ud800\u0041"}`, http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 14)},
	{"high surrogate, then text", ctJSON, `{"password":"\ud800xxxxxx"}`, http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 14)},
	{"lone surrogate in a member name", ctJSON, `{"\udc00":"x"}`, http400, "invalid_utf8", fmt.Sprintf(msgBadUTF8, 3)},
	{"a surrogate pair", ctJSON, `{"password":"\ud83d\ude00"}`, 0, "", ""},
	{"UTF-8", ctJSON, `{"password":"pâté 😀"}`, 0, "", ""},
}

// checkDecode runs decode[loginRequest] on each case.
func checkDecode(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			_, err := decode[loginRequest](httptest.NewRecorder(), r)
			var status int
			var code, message string
			if p, ok := err.(*problem); ok {
				status, code, message = p.status, p.code, p.message
			} else if err != nil {
				t.Fatalf("got error %v, want a problem", err)
			}
			if status != tc.status || code != tc.code || message != tc.message {
				t.Errorf("got %d %s %q, want %d %s %q", status, code, message, tc.status, tc.code, tc.message)
			}
		})
	}
}

// CSRF-04 (the 415s) and the 400s of the JSON API.
func TestDecode(t *testing.T) { checkDecode(t, decodeCases) }

// encoding/json matched "Username" to the username field and kept the last
// of two "username" members; decode refuses both, saying why.
func TestDecode_RejectsDuplicateAndCaseFoldedKeys(t *testing.T) { checkDecode(t, strictNameCases) }

// PW-09: invalid UTF-8 in a JSON body, as raw bytes or as \u escapes of
// lone surrogates, is refused, as the form refuses it, instead of being
// turned into U+FFFD (which would make "pw\xff" and "pw\xfe" one password);
// through the API as well.
func TestPW09_JSONRefusesInvalidUTF8(t *testing.T) {
	checkDecode(t, invalidUTF8Cases)
	t.Run("API", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		c := h.client()
		for _, body := range []string{
			"{\"username\":\"alice\",\"password\":\"pw\xff\"}",
			`{"username":"alice","password":"pw\udfff"}`,
		} {
			res := c.do(http.MethodPost, "/api/v1/login", strings.NewReader(body), "Content-Type", ctJSON)
			var e errorBody
			res.decodeJSON(t, &e)
			if res.status != http.StatusBadRequest || e.Error != "invalid_utf8" || !strings.Contains(e.Message, "not valid UTF-8") {
				t.Errorf("POST /api/v1/login %q: got %d %+v, want 400 bad_request, not valid UTF-8", body, res.status, e)
			}
		}
	})
}

func TestDecodePassword(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"current":"a","new":"b"}`))
	r.Header.Set("Content-Type", "application/json")
	if got, err := decode[passwordRequest](httptest.NewRecorder(), r); err != nil || got != (passwordRequest{Current: "a", New: "b"}) {
		t.Errorf("got %+v, %v, want {a b}, nil", got, err)
	}
}

// fuzzDecode checks one decoder on arbitrary bodies: it never panics, only
// answers 400 or 415 with a message; what it accepts is at most 64 KiB of
// valid JSON in UTF-8, without duplicate names, whose member names are T's
// fields exactly as spelt, and it encodes back to an equal value that
// decode accepts again. The tables' login bodies seed it, respelt by
// fields (nil for loginRequest) with T's member names, or T would accept
// none of those that name a field.
func fuzzDecode[T comparable](f *testing.F, fields *strings.Replacer) {
	for _, cases := range [][]decodeCase{decodeCases, strictNameCases, invalidUTF8Cases} {
		for _, tc := range cases {
			body := tc.body
			if fields != nil {
				body = fields.Replace(body)
			}
			f.Add(tc.contentType, body)
		}
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		v, err := decodeBody[T](contentType, body)
		if err != nil {
			p, ok := err.(*problem)
			if !ok || p.message == "" ||
				!(p.status == http.StatusBadRequest && (p.code == "bad_request" || p.code == "invalid_utf8") ||
					p.status == http.StatusUnsupportedMediaType && p.code == "unsupported_media_type") {
				t.Fatalf("decode(%q, %q): error %v, want a 400 or 415 problem with a message", contentType, body, err)
			}
			return
		}
		if len(body) > maxBody || !utf8.ValidString(body) || !jsontext.Value(strings.TrimSpace(body)).IsValid() {
			t.Fatalf("decode accepted %d bytes of %q", len(body), body)
		}
		var members map[string]jsontext.Value
		if jsonv2.Unmarshal([]byte(body), &members) == nil {
			for name := range members {
				if field, ok := fieldNamed(reflect.TypeFor[T](), name); !ok || field != name {
					t.Fatalf("decode accepted member %q of %q", name, body)
				}
			}
		}
		b, err := jsonv2.Marshal(v)
		if err != nil {
			t.Fatalf("encode %+v: %v", v, err)
		}
		again, err := decodeBody[T](ctJSON, string(b))
		if err != nil || again != v {
			t.Fatalf("round trip of %+v through %s: got %+v, %v", v, b, again, err)
		}
	})
}

// decodeBody is decode[T] of a request with that body and content type.
func decodeBody[T any](contentType, body string) (T, error) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return decode[T](httptest.NewRecorder(), r)
}

func FuzzDecodeLogin(f *testing.F) { fuzzDecode[loginRequest](f, nil) }

func FuzzDecodePassword(f *testing.F) {
	fuzzDecode[passwordRequest](f, strings.NewReplacer(
		"username", "current", `user\u006eame`, `curre\u006et`, "Username", "Current",
		"password", "new", "PASSWORD", "NEW"))
}

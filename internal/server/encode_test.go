package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// decodeCases are login bodies with the status decode answers (0:
// accepted) and a part of its message. They also seed the fuzz targets.
var decodeCases = []struct {
	name, contentType, body string
	status                  int
	message                 string
}{
	{"login", "application/json", `{"username":"alice","password":"pw"}`, 0, ""},
	{"charset", "application/json; charset=UTF-8", `{"username":"a"}`, 0, ""},
	{"whitespace around", "application/json", " \n{\"username\":\"a\"}\n ", 0, ""},
	{"empty object", "application/json", `{}`, 0, ""},
	{"null", "application/json", `null`, 0, ""},
	{"text/plain", "text/plain", `{}`, http.StatusUnsupportedMediaType, "application/json"},
	{"form", "application/x-www-form-urlencoded", `a=b`, http.StatusUnsupportedMediaType, "application/json"},
	{"no content type", "", `{}`, http.StatusUnsupportedMediaType, "application/json"},
	{"json lookalike", "application/jsonx", `{}`, http.StatusUnsupportedMediaType, "application/json"},
	{"other charset", "application/json; charset=latin1", `{}`, http.StatusUnsupportedMediaType, "application/json"},
	{"empty", "application/json", ``, http.StatusBadRequest, "empty"},
	{"truncated", "application/json", `{"username":"a`, http.StatusBadRequest, "ends too early"},
	{"syntax", "application/json", `{"username" "a"}`, http.StatusBadRequest, "at byte 13"},
	{"wrong type", "application/json", `{"username":1}`, http.StatusBadRequest, `Field "username" must be a JSON string`},
	{"not an object", "application/json", `["a"]`, http.StatusBadRequest, "must be a JSON object"},
	{"unknown field", "application/json", `{"username":"a","admin":true}`, http.StatusBadRequest, `Unknown field "admin"`},
	{"two values", "application/json", `{} {}`, http.StatusBadRequest, "single JSON object"},
	{"trailing garbage", "application/json", `{}x`, http.StatusBadRequest, "single JSON object"},
	{"too big", "application/json", `{"username":"` + strings.Repeat("a", maxBody) + `"}`, http.StatusBadRequest, "64 KiB"},
	{"too big after the value", "application/json", `{}` + strings.Repeat(" ", maxBody), http.StatusBadRequest, "64 KiB"},
}

// CSRF-04 (the 415s) and the 400s of the JSON API.
func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			_, err := decode[loginRequest](httptest.NewRecorder(), r)
			var status int
			var message string
			if p, ok := err.(*problem); ok {
				status, message = p.status, p.message
			} else if err != nil {
				t.Fatalf("got error %v, want a problem", err)
			}
			if status != tc.status || !strings.Contains(message, tc.message) {
				t.Errorf("got %d %q, want %d with %q", status, message, tc.status, tc.message)
			}
		})
	}
}

func TestDecodePassword(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"current":"a","new":"b"}`))
	r.Header.Set("Content-Type", "application/json")
	if got, err := decode[passwordRequest](httptest.NewRecorder(), r); err != nil || got != (passwordRequest{Current: "a", New: "b"}) {
		t.Errorf("got %+v, %v, want {a b}, nil", got, err)
	}
}

// fuzzDecode checks one decoder on arbitrary bodies: it never panics, only
// answers 400 or 415, and what it accepts is at most 64 KiB of JSON that
// encodes back to an equal value.
func fuzzDecode[T comparable](f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.contentType, tc.body)
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		v, err := decode[T](httptest.NewRecorder(), r)
		if err != nil {
			p, ok := err.(*problem)
			if !ok || (p.status != http.StatusBadRequest && p.status != http.StatusUnsupportedMediaType) || p.message == "" {
				t.Fatalf("decode(%q, %q): error %v, want a 400 or 415 problem with a message", contentType, body, err)
			}
			return
		}
		if len(body) > maxBody || !json.Valid([]byte(body)) {
			t.Fatalf("decode accepted %d bytes of %q", len(body), body)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var again T
		if err := json.Unmarshal(b, &again); err != nil || again != v {
			t.Fatalf("round trip of %+v: got %+v, %v", v, again, err)
		}
	})
}

func FuzzDecodeLogin(f *testing.F)    { fuzzDecode[loginRequest](f) }
func FuzzDecodePassword(f *testing.F) { fuzzDecode[passwordRequest](f) }

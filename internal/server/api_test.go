package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// checkErrorShape fails t unless res is an error answer of the JSON API:
// Content-Type application/json and exactly {"error":code,"message":…},
// the message a sentence.
func checkErrorShape(t *testing.T, res *response, code string) {
	t.Helper()
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (body %q)", ct, res.body)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(res.body), &body); err != nil {
		t.Fatalf("body %q is not the error shape: %v", res.body, err)
	}
	if len(body) != 2 || body["error"] != code || !isSentence(body["message"]) {
		t.Errorf("body %q: want {\"error\":%q,\"message\":\"A sentence.\"}", res.body, code)
	}
}

// isSentence reports whether s starts with a capital letter and ends with
// a full stop, as every message people read does.
func isSentence(s string) bool {
	return s != "" && strings.ToUpper(s[:1]) == s[:1] && strings.HasSuffix(s, ".")
}

// Every answer under /api/ has the JSON error shape, the mux's own 404
// and 405 included; 405 keeps its Allow header.
func TestAPINoRouteIsJSON(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.client()
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/api/v1/nowhere", http.StatusNotFound, "not_found", ""},
		{http.MethodPost, "/api/v2/login", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api/", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/api/v1/login", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{http.MethodDelete, "/api/v1/me", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{http.MethodGet, "/api/v1/sessions/abc", http.StatusMethodNotAllowed, "method_not_allowed", "DELETE"},
		{http.MethodPut, "/api/v1/sessions", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res := c.do(tc.method, tc.path, nil)
			if res.status != tc.status {
				t.Fatalf("status %d %q, want %d", res.status, res.body, tc.status)
			}
			checkErrorShape(t, res, tc.code)
			if got := res.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	// The pages keep the mux's answers.
	if res := c.do(http.MethodGet, "/nowhere", nil); res.status != http.StatusNotFound || strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /nowhere: %d %s, want a plain 404", res.status, res.header.Get("Content-Type"))
	}
}

// GET /api/v1/sessions shows each session's device as the account page
// names it, and when it ends: unused (idle) and at the latest (SES-07),
// in RFC 3339 like the other times of the API.
func TestAPISessionsShowDeviceAndExpiry(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.addUser("alice", alicePW, false)
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	c := h.client()
	signedIn := h.clock.Now()
	c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, "", "User-Agent", firefox)
	res := c.do(http.MethodGet, "/api/v1/sessions", nil)
	var got struct {
		Sessions []map[string]any `json:"sessions"`
	}
	res.decodeJSON(t, &got)
	if len(got.Sessions) != 1 {
		t.Fatalf("sessions: %s, want one", res.body)
	}
	s := got.Sessions[0]
	for k, want := range map[string]any{
		"device":          "Firefox on Linux",
		"user_agent":      firefox,
		"created":         signedIn.Format(time.RFC3339),
		"idle_expiry":     signedIn.Add(30 * time.Minute).Format(time.RFC3339), // the session package's defaults
		"absolute_expiry": signedIn.Add(12 * time.Hour).Format(time.RFC3339),
	} {
		if s[k] != want {
			t.Errorf("%s: got %v, want %v", k, s[k], want)
		}
	}
	if page := c.do(http.MethodGet, "/account", nil); !strings.Contains(page.body, ">Firefox on Linux<") {
		t.Errorf("the account page doesn't name the device as the API does:\n%s", page.body)
	}
}

// Every message people read is a sentence: the errors of both front ends,
// the pages' own versions of them and the notices.
func TestMessagesAreSentences(t *testing.T) {
	msgs := []string{misdirected}
	for _, p := range []*problem{errSignedOut, errInvalidCredentials, errWrongPassword, errPasswordTooLong, errPasswordUnchanged,
		errPasswordsDiffer, errNoSuchSession, errSetupInvalid, errCrossOrigin, errCSRFMissing, errCSRFInvalid, errBusy,
		errDuplicateCookie, errInvalidUTF8, errInvalidUTF8Name, errInvalidName, errUnavailable, throttled(0), missing("x", "The x")} {
		msgs = append(msgs, p.message, pageMessage(p))
	}
	for _, m := range notices {
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		if !isSentence(m) || strings.Contains(m, "`") {
			t.Errorf("%q is not a plain sentence", m)
		}
	}
}

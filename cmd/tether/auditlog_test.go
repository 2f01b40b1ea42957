package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/keys"
)

// apiCall is a request of the JSON API (or, with form set, an OAuth
// endpoint) a signed-in test makes: the session cookie, the CSRF token,
// the client's credentials.
type apiCall struct {
	method, path string
	body         string     // JSON
	form         url.Values // instead of body
	cookie       *http.Cookie
	csrf         string
	client       [2]string // id and secret, for HTTP Basic
}

// call makes c of s and returns the response's status, cookies and body
// decoded as JSON (nil for none).
func (s *testServer) call(t *testing.T, c apiCall) (int, []*http.Cookie, map[string]any) {
	t.Helper()
	body, ctype := io.Reader(strings.NewReader(c.body)), "application/json"
	if c.form != nil {
		body, ctype = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, s.url+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "audit-test/1.0")
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if c.csrf != "" {
		req.Header.Set(csrf.HeaderName, c.csrf)
	}
	if c.client[0] != "" {
		req.SetBasicAuth(c.client[0], c.client[1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(data) > 0 && json.Unmarshal(data, &out) != nil {
		t.Fatalf("%s %s: %s, body %q: not JSON", c.method, c.path, res.Status, data)
	}
	return res.StatusCode, res.Cookies(), out
}

// mustCall is call for a request that must answer want; it returns the
// body.
func (s *testServer) mustCall(t *testing.T, want int, c apiCall) map[string]any {
	t.Helper()
	status, _, body := s.call(t, c)
	if status != want {
		t.Fatalf("%s %s: got %d %v, want %d", c.method, c.path, status, body, want)
	}
	return body
}

// sessionCookie returns the session cookie among cookies.
func sessionCookie(t *testing.T, cookies []*http.Cookie) *http.Cookie {
	t.Helper()
	for _, c := range cookies {
		if c.Name == "__Host-tether" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("got cookies %v, want a session cookie", cookies)
	return nil
}

// secretForms returns the ways a secret could be written down: as it is,
// its SHA-256 (of the text, and of the bytes a base64url token stands
// for, as the session store keys it), hex and base64 of each.
func secretForms(secret string) []string {
	raws := [][]byte{[]byte(secret)}
	if b, err := base64.RawURLEncoding.DecodeString(secret); err == nil {
		raws = append(raws, b)
	}
	for _, r := range slices.Clone(raws) {
		h := sha256.Sum256(r)
		raws = append(raws, h[:])
	}
	forms := []string{secret}
	for _, r := range raws {
		forms = append(forms, hex.EncodeToString(r), strings.ToUpper(hex.EncodeToString(r)),
			base64.StdEncoding.EncodeToString(r), base64.RawStdEncoding.EncodeToString(r),
			base64.URLEncoding.EncodeToString(r), base64.RawURLEncoding.EncodeToString(r))
	}
	return forms
}

// PW-07: every kind of audit event — sign-in success and failures,
// sign-out, password change, each revocation (session, a user's others,
// token, personal access token, client), token issuance, client and key
// changes, key rotations by the server's schedule, admin commands — goes
// to the --audit-log file as one JSON line with who, when and from where,
// and no secret (password, session token, CSRF token, setup token,
// personal access token, client secret, JWT) appears in it in any form.
func TestPW07_AuditLogHoldsNoSecret(t *testing.T) {
	dir := t.TempDir()
	data, logFile := filepath.Join(dir, "tether.db"), filepath.Join(dir, "audit.log")
	flags := []string{"--audit-log", logFile}
	mustTether(t, data, "", append([]string{"init"}, flags...)...)
	// The longest store timeout: on a loaded machine, the server's
	// SQLite calls wait their turn behind the commands' writes.
	s := startServe(t, data, append([]string{"--store-timeout", "5s"}, flags...)...)
	var secrets []string
	keep := func(secret string) string {
		if len(secret) < 8 {
			t.Fatalf("%q: too short to be a secret", secret)
		}
		secrets = append(secrets, secret)
		return secret
	}
	cli := func(stdin string, args ...string) string {
		t.Helper()
		out, err := tether(t.Context(), t, data, stdin, append(args, flags...)...)
		if err != nil {
			t.Fatalf("tether %q: %v", args, err)
		}
		return out
	}
	keep(alicePassword)
	keep(newPassword)

	// The first admin, through the setup link.
	m := setupRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("got stdout %q, want a setup link", s.stdout)
	}
	keep(m[3])
	if status := s.setup(t, m[2], "root"); status != http.StatusSeeOther {
		t.Fatalf("setup: got %d", status)
	}

	// Sign-ins that fail, and two that succeed.
	s.mustCall(t, http.StatusForbidden, apiCall{method: "POST", path: "/api/v1/login", body: `{"username":"root","password":"` + keep("wrong password 1") + `"}`})
	s.mustCall(t, http.StatusForbidden, apiCall{method: "POST", path: "/api/v1/login", body: `{"username":"nobody","password":"` + keep("wrong password 2") + `"}`})
	s.mustCall(t, http.StatusBadRequest, apiCall{method: "POST", path: "/api/v1/login", body: `{"username":"root","password":"` + keep("malformed password") + `"`})
	signIn := func() (*http.Cookie, string) {
		status, cookies, body := s.call(t, apiCall{method: "POST", path: "/api/v1/login", body: `{"username":"root","password":"` + alicePassword + `"}`})
		if status != http.StatusOK {
			t.Fatalf("sign in: got %d %v", status, body)
		}
		c := sessionCookie(t, cookies)
		keep(c.Value)
		return c, keep(body["csrf_token"].(string))
	}
	cookie, token := signIn()
	other, otherToken := signIn()

	// A personal access token, made and revoked.
	pat := s.mustCall(t, http.StatusCreated, apiCall{method: "POST", path: "/api/v1/tokens", body: `{"name":"ci","scopes":["read"]}`, cookie: cookie, csrf: token})
	keep(pat["token"].(string))
	s.mustCall(t, http.StatusNoContent, apiCall{method: "DELETE", path: "/api/v1/tokens/" + pat["id"].(string), cookie: cookie, csrf: token})

	// One session revoked by another, then the others, then a password
	// change and a sign-out.
	me := s.mustCall(t, http.StatusOK, apiCall{method: "GET", path: "/api/v1/me", cookie: other, csrf: otherToken})
	s.mustCall(t, http.StatusNoContent, apiCall{method: "DELETE", path: "/api/v1/sessions/" + me["session"].(map[string]any)["id"].(string), cookie: cookie, csrf: token})
	signIn()
	s.mustCall(t, http.StatusNoContent, apiCall{method: "POST", path: "/api/v1/sessions/revoke-others", cookie: cookie, csrf: token})
	status, cookies, body := s.call(t, apiCall{method: "POST", path: "/api/v1/password", body: `{"current":"` + alicePassword + `","new":"` + newPassword + `"}`, cookie: cookie, csrf: token})
	if status != http.StatusOK {
		t.Fatalf("password change: got %d %v", status, body)
	}
	cookie = sessionCookie(t, cookies)
	keep(cookie.Value)
	token = keep(body["csrf_token"].(string))
	// One more token (the password change ended the first), for the CLI.
	pat = s.mustCall(t, http.StatusCreated, apiCall{method: "POST", path: "/api/v1/tokens", body: `{"name":"cli","scopes":["read"]}`, cookie: cookie, csrf: token})
	keep(pat["token"].(string))
	s.mustCall(t, http.StatusNoContent, apiCall{method: "POST", path: "/api/v1/logout", cookie: cookie, csrf: token})

	// Machines: a client, its token issued and revoked, a wrong secret,
	// the client's secret rotated, disabled, enabled, deleted.
	secret := secretLine.FindStringSubmatch(cli("", "client", "add", "ci", "--scopes", "deploy", "--audience", "api://x"))
	keep(secret[1])
	creds := [2]string{"ci", secret[1]}
	issued := s.mustCall(t, http.StatusOK, apiCall{method: "POST", path: "/oauth2/token", form: url.Values{"grant_type": {"client_credentials"}}, client: creds})
	jwt := keep(issued["access_token"].(string))
	for _, part := range strings.Split(jwt, ".")[1:] {
		keep(part)
	}
	s.mustCall(t, http.StatusOK, apiCall{method: "POST", path: "/oauth2/revoke", form: url.Values{"token": {jwt}}, client: creds})
	s.mustCall(t, http.StatusUnauthorized, apiCall{method: "POST", path: "/oauth2/token", form: url.Values{"grant_type": {"client_credentials"}},
		client: [2]string{"ci", keep("tether_cs_wrongsecretwrongsecret")}})
	secret = secretLine.FindStringSubmatch(cli("", "client", "rotate-secret", "ci", "--revoke"))
	keep(secret[1])
	cli("", "client", "disable", "ci")
	cli("", "client", "enable", "ci")
	cli("", "client", "delete", "ci")

	// Keys: rotated by hand, the new key retired at once.
	cli("", "keys", "rotate")
	list := cli("", "keys", "list")
	kid := strings.Fields(strings.Split(strings.TrimSpace(list), "\n")[2])[0]
	// After "--": a kid may start with "-".
	if _, err := tether(t.Context(), t, "", "", "keys", "retire", "--now", "--data", data, "--audit-log", logFile, "--", kid); err != nil {
		t.Fatalf("keys retire %s: %v", kid, err)
	}

	// Users, sessions and tokens by command.
	cli(keep("bobs first password"), "user", "add", "bob", "--password-stdin")
	cli(keep("bobs second password"), "user", "passwd", "bob", "--password-stdin")
	cli("", "user", "disable", "bob")
	cli("", "user", "enable", "bob")
	cli("", "user", "rename", "bob", "robert")
	cli("", "sessions", "revoke", "robert")
	cli("", "tokens", "revoke", "root", pat["id"].(string))
	cli("", "user", "delete", "robert", "--yes")

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets {
		for _, form := range secretForms(secret) {
			if bytes.Contains(log, []byte(form)) {
				t.Errorf("the audit log holds the secret %q as %q", secret, form)
			}
		}
	}
	if strings.Contains(s.stderr.String(), `msg=audit`) {
		t.Errorf("with --audit-log, audit events are in the main log too:\n%s", s.stderr)
	}
	if fi, err := os.Stat(logFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the audit log: %v, %v; want mode 0600", fi.Mode(), err)
	}

	seen := map[string]bool{}
	lines := bufio.NewScanner(bytes.NewReader(log))
	for lines.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			t.Errorf("line %q: %v", lines.Bytes(), err)
			continue
		}
		event, _ := rec["event"].(string)
		actor, _ := rec["actor"].(string)
		seen[event+"/"+actor] = true
		want := []string{"time", "level", "msg", "event", "user", "outcome"}
		switch actor {
		case "":
			want = append(want, "ip", "user_agent") // over HTTP: where from
		case "cli":
			want = append(want, "os_user", "host")
		case "schedule":
			want = append(want, "node", "kid")
		}
		for _, k := range want {
			if _, ok := rec[k]; !ok || rec["msg"] != "audit" {
				t.Errorf("record %v: no %s (or not msg=audit)", rec, k)
			}
		}
		if actor == "" && rec["ip"] != "127.0.0.1" {
			t.Errorf("record %v: ip, want 127.0.0.1", rec)
		}
	}
	for _, event := range []string{
		"init/cli", "keys-rotate/schedule", "setup/", "sign-in/", "pat-create/", "pat-revoke/", "revoke-session/", "revoke-others/",
		"password-change/", "sign-out/", "token-issue/", "token-revoke/", "client-add/cli", "client-rotate-secret/cli",
		"client-disable/cli", "client-enable/cli", "client-delete/cli", "keys-rotate/cli", "keys-retire/cli",
		"user-add/cli", "user-passwd/cli", "user-disable/cli", "user-enable/cli", "user-rename/cli",
		"sessions-revoke/cli", "pat-revoke/cli", "user-delete/cli",
	} {
		if !seen[event] {
			t.Errorf("no %s event (event/actor) in the audit log; got %v", event, seen)
		}
	}
}

// PW-07: an admin command that changes something fails when its audit
// record can't be written: an audit log it can't open stops it before it
// acts; a record the log refuses (a full disk) fails it after. serve does
// not start without its audit log.
func TestPW07_AuditLogFailureFailsCommand(t *testing.T) {
	data := initDB(t)
	missing := filepath.Join(t.TempDir(), "no such dir", "audit.log")
	steps := []struct {
		args []string
		log  string
	}{
		{[]string{"user", "add", "carol", "--password-stdin"}, missing},
		{[]string{"client", "add", "ci", "--scopes", "deploy", "--audience", "api://x"}, missing},
		{[]string{"keys", "rotate"}, missing},
	}
	for _, s := range steps {
		_, err := tether(t.Context(), t, data, alicePassword, append(s.args, "--audit-log", s.log)...)
		if err == nil || !strings.Contains(err.Error(), "audit log") {
			t.Errorf("tether %q --audit-log %s: got %v, want an audit log error", s.args, s.log, err)
		}
	}
	if out := mustTether(t, data, "", "user", "list"); strings.Contains(out, "carol") {
		t.Errorf("user add ran without its audit log:\n%s", out)
	}
	if out := mustTether(t, data, "", "client", "list"); strings.Contains(out, "ci") {
		t.Errorf("client add ran without its audit log:\n%s", out)
	}
	if out := mustTether(t, data, "", "keys", "list"); strings.Count(out, "\n") != 1 {
		t.Errorf("keys rotate ran without its audit log:\n%s", out)
	}
	if err := serveRefuses(t, data, "--audit-log", missing); !strings.Contains(err.Error(), "audit log") {
		t.Errorf("serve without its audit log: got %v, want an audit log error", err)
	}

	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full to stand for a full disk: %v", err)
	}
	_, err := tether(t.Context(), t, data, alicePassword, "user", "add", "carol", "--password-stdin", "--audit-log", "/dev/full")
	if err == nil || !strings.Contains(err.Error(), "could not write the user-add event") {
		t.Errorf("user add with a full audit log: got %v, want the record's error", err)
	}

}

// PW-07, KEY-02: what a run of the key schedule changed is one audit event
// each, with actor=schedule and the node; a record not written is the
// run's error, which maintainRing logs.
func TestPW07_ScheduleEvents(t *testing.T) {
	var buf bytes.Buffer
	m := keys.Maintenance{Added: "new", Destroyed: []string{"old1", "old2"}, Sealed: []string{"plain"}}
	if err := auditSchedule(t.Context(), audit.New(slog.NewJSONHandler(&buf, nil)), m, "node-a"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %s", rec["event"], rec["kid"], rec["outcome"], rec["actor"], rec["node"]))
		if h, _ := rec["host"].(string); h == "" {
			t.Errorf("%s: no host", rec["event"])
		}
	}
	want := []string{
		"keys-rotate new success schedule node-a", "keys-destroy old1 success schedule node-a",
		"keys-destroy old2 success schedule node-a", "keys-seal plain success schedule node-a",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := auditSchedule(t.Context(), audit.New(slog.NewJSONHandler(&buf, nil)), keys.Maintenance{}, "node-a"); err != nil {
		t.Errorf("nothing changed: got %v", err)
	}
	err := auditSchedule(t.Context(), audit.New(slog.NewJSONHandler(testkit.FullWriter{}, nil)), m, "node-a")
	if err == nil || !strings.Contains(err.Error(), "keys-rotate") {
		t.Errorf("a full audit log: got %v, want the lost records' errors", err)
	}
}

package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

const (
	alicePassword = "plum otter quietly 42"
	newPassword   = "seven tired lanterns"
)

// lookUp returns the user called name in the database file data.
func lookUp(t *testing.T, data, name string) *account.User {
	t.Helper()
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.accounts.ByName(t.Context(), name)
	if err != nil {
		t.Fatalf("ByName(%q): %v", name, err)
	}
	return u
}

func checkPassword(t *testing.T, u *account.User, pw string, want bool) {
	t.Helper()
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(t.Context(), pw, u.PasswordHash); err != nil || ok != want {
		t.Errorf("Verify(%q) for %s = %v, %v; want %v, nil", pw, u.Name, ok, err, want)
	}
}

func TestUserCommands(t *testing.T) {
	data := initDB(t)
	steps := []struct {
		name    string
		stdin   string
		args    []string
		want    string // stdout, or a part of the error
		wantErr bool
	}{
		{"add admin", alicePassword + "\n", []string{"user", "add", "Alice", "--admin", "--password-stdin"}, "created admin alice\n", false},
		{"add without a newline", "another fine password", []string{"user", "add", "--password-stdin", "bob"}, "created user bob\n", false},
		{"add with CRLF", "third fine password\r\n", []string{"user", "add", "--password-stdin", "carol"}, "created user carol\n", false},
		{"add existing", alicePassword + "\n", []string{"user", "add", "ALICE", "--password-stdin"}, `user "alice" exists already`, true},
		{"PW-01 too short", "short\n", []string{"user", "add", "dave", "--password-stdin"}, "password refused: password is too short", true},
		{"PW-01 min from flag", "twelve chars\n", []string{"user", "add", "dave", "--password-stdin", "--min-password", "13"}, "use at least 13 characters", true},
		{"PW-01 too long", strings.Repeat("x", password.MaxBytes+1) + "\n", []string{"user", "add", "dave", "--password-stdin"}, "too long", true},
		{"PW-02 the username", "dave.the.builder\n", []string{"user", "add", "Dave.The.Builder", "--password-stdin"}, "same as the username", true},
		{"PW-02 common", "password123\n", []string{"user", "add", "dave", "--password-stdin"}, "too common", true},
		{"no password", "", []string{"user", "add", "dave", "--password-stdin"}, "no password on standard input", true},
		{"not a terminal", "", []string{"user", "add", "dave"}, "--password-stdin", true},
		{"disable", "", []string{"user", "disable", "bob"}, "disabled bob and ended all their sessions and tokens\n", false},
		{"disable unknown", "", []string{"user", "disable", "zed"}, `no user "zed"`, true},
		{"list", "", []string{"user", "list"}, "", false},
		{"enable", "", []string{"user", "enable", "BOB"}, "enabled bob\n", false},
		{"passwd", newPassword + "\n", []string{"user", "passwd", "alice", "--password-stdin"}, "changed the password of alice and ended all their sessions and tokens\n", false},
		{"passwd refused", "alice\n", []string{"user", "passwd", "alice", "--password-stdin"}, "password refused", true},
		{"passwd unknown", newPassword + "\n", []string{"user", "passwd", "zed", "--password-stdin"}, `no user "zed"`, true},
		{"add dave", "fourth fine password", []string{"user", "add", "dave", "--password-stdin"}, "created user dave\n", false},
		{"rename", "", []string{"user", "rename", "Dave", "Eve"}, "renamed dave to eve; their sessions go on\n", false},
		{"rename unknown", "", []string{"user", "rename", "dave", "frank"}, `no user "dave"`, true},
		{"rename to a taken name", "", []string{"user", "rename", "eve", "bob"}, `user "bob" exists already; eve keeps its name`, true},
		{"delete", "", []string{"user", "delete", "EVE", "--yes"}, "deleted eve and ended all their sessions and tokens\n", false},
		{"delete unknown", "", []string{"user", "delete", "eve", "--yes"}, `no user "eve"`, true},
		{"delete the only admin", "", []string{"user", "delete", "alice", "--yes"}, "alice is the only admin who can sign in", true},
	}
	for _, s := range steps {
		out, err := tether(t.Context(), t, data, s.stdin, s.args...)
		switch {
		case s.wantErr && (err == nil || !strings.Contains(err.Error(), s.want)):
			t.Errorf("%s: got %q, %v; want an error containing %q", s.name, out, err, s.want)
		case !s.wantErr && (err != nil || (s.want != "" && out != s.want)):
			t.Errorf("%s: got %q, %v; want %q, nil", s.name, out, err, s.want)
		}
		if s.name == "list" {
			checkList(t, out)
		}
	}
	alice := lookUp(t, data, "alice")
	if !alice.Admin || alice.Disabled {
		t.Errorf("alice: got admin %v, disabled %v; want true, false", alice.Admin, alice.Disabled)
	}
	checkPassword(t, alice, newPassword, true)
	checkPassword(t, alice, alicePassword, false)
	if bob := lookUp(t, data, "bob"); bob.Admin || bob.Disabled {
		t.Errorf("bob: got admin %v, disabled %v; want false, false", bob.Admin, bob.Disabled)
	}
	checkPassword(t, lookUp(t, data, "carol"), "third fine password", true)
}

// checkList checks the output of user list at the "list" step above.
func checkList(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := [][]string{
		{"NAME", "ADMIN", "DISABLED", "CREATED"},
		{"alice", "yes", "no"},
		{"bob", "no", "yes"},
		{"carol", "no", "no"},
	}
	if len(lines) != len(want) {
		t.Fatalf("user list: got %q, want %d lines", out, len(want))
	}
	col := strings.Index(lines[0], "CREATED")
	for i, line := range lines {
		fields := strings.Fields(line)
		if len(fields) != 4 || !equalPrefix(fields, want[i]) || strings.Index(line, fields[3]) != col {
			t.Errorf("user list line %d: got %q, want columns %q aligned", i, line, want[i])
		}
	}
}

func equalPrefix(got, want []string) bool {
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// newManager returns a session manager over the database file data, as a
// server on that file would have.
func newManager(t *testing.T, data string) *session.Manager {
	t.Helper()
	st, err := sqlite.New(t.Context(), sqlitetest.Open(t, data), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := session.NewManager(st, session.Config{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// signIn creates a session of the user called name, and returns its token.
func signIn(t *testing.T, m *session.Manager, data, name string, meta session.Meta) string {
	t.Helper()
	ticket, err := m.Begin(t.Context(), lookUp(t, data, name).ID)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := m.Create(t.Context(), ticket, meta)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func wantSignedOut(t *testing.T, m *session.Manager, token, why string) {
	t.Helper()
	if s, err := m.Load(t.Context(), token); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("%s: Load = %v, %v; want ErrNoSession", why, s, err)
	}
}

// CHG-02: user passwd ends every session of the user; SES-10: so do user
// disable and sessions revoke; other users keep theirs.
func TestCommandsEndSessions(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	mustTether(t, data, "another fine password", "user", "add", "bob", "--password-stdin")
	m := newManager(t, data)
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"CHG-02 user passwd", newPassword, []string{"user", "passwd", "alice", "--password-stdin"}},
		{"SES-10 sessions revoke", "", []string{"sessions", "revoke", "alice"}},
		{"SES-10 user disable", "", []string{"user", "disable", "alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a1 := signIn(t, m, data, "alice", session.Meta{})
			a2 := signIn(t, m, data, "alice", session.Meta{})
			b := signIn(t, m, data, "bob", session.Meta{})
			mustTether(t, data, tt.stdin, tt.args...)
			wantSignedOut(t, m, a1, "alice's first session")
			wantSignedOut(t, m, a2, "alice's second session")
			if _, err := m.Load(t.Context(), b); err != nil {
				t.Errorf("bob's session: got %v, want it alive", err)
			}
		})
	}
}

// SES-10: an admin lists a user's sessions.
func TestSessionsList(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	if out := mustTether(t, data, "", "sessions", "list", "alice"); out != "ID  CREATED  LAST SEEN  USER AGENT  IP\n" {
		t.Errorf("no sessions: got %q, want the header only", out)
	}
	m := newManager(t, data)
	signIn(t, m, data, "alice", session.Meta{UserAgent: "Firefox/140", IP: "192.0.2.1"})
	signIn(t, m, data, "alice", session.Meta{UserAgent: "evil\x1b]0;pwned\x07\tagent\n", IP: "2001:db8::1"})
	list, err := m.List(t.Context(), lookUp(t, data, "alice").ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v; want 2 sessions", list, err)
	}
	out := mustTether(t, data, "", "sessions", "list", "ALICE")
	if old, stderr, err := tetherOutputs(t.Context(), t, data, "", "sessions", "list", "--user", "ALICE"); err != nil || old != out ||
		!strings.Contains(stderr, "--user is deprecated: write tether sessions list NAME") {
		t.Errorf("sessions list --user ALICE: got %q, stderr %q, %v; want what sessions list ALICE printed and a deprecation warning", old, stderr, err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %q, want a header and 2 lines", out)
	}
	for i, want := range []struct{ agent, ip string }{
		{"Firefox/140", "192.0.2.1"},
		{"evil?]0;pwned??agent?", "2001:db8::1"}, // no terminal escapes, tabs or line breaks
	} {
		line := lines[i+1]
		if !strings.HasPrefix(line, list[i].ID()+" ") || !strings.Contains(line, " "+want.agent+" ") || !strings.HasSuffix(line, " "+want.ip) {
			t.Errorf("line %d: got %q, want session %s, user agent %q, IP %s", i+1, line, list[i].ID(), want.agent, want.ip)
		}
	}
	if _, err := tether(t.Context(), t, data, "", "sessions", "list", "zed"); err == nil || !strings.Contains(err.Error(), `no user "zed"`) {
		t.Errorf("unknown user: got %v, want an error naming zed", err)
	}
}

// A cancelled command stops and says why.
func TestCommandCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := tether(ctx, t, initDB(t), "", "user", "list"); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// A rename keeps the user's sessions (it changes what they type, not who
// they are); a delete ends them (SES-10), and leaves other users' alone.
func TestSES10_DeleteEndsSessionsRenameKeepsThem(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin", "--admin")
	mustTether(t, data, "another fine password", "user", "add", "bob", "--password-stdin")
	m := newManager(t, data)
	a := signIn(t, m, data, "alice", session.Meta{})
	b := signIn(t, m, data, "bob", session.Meta{})
	mustTether(t, data, "", "user", "rename", "bob", "robert")
	if _, err := m.Load(t.Context(), b); err != nil {
		t.Errorf("bob's session after the rename: got %v, want it alive", err)
	}
	if u := lookUp(t, data, "robert"); u.Name != "robert" {
		t.Errorf("after the rename: got %+v, want robert", u)
	}
	mustTether(t, data, "", "user", "delete", "robert", "--yes")
	wantSignedOut(t, m, b, "robert's session after the delete")
	if _, err := m.Load(t.Context(), a); err != nil {
		t.Errorf("alice's session after robert's delete: got %v, want it alive", err)
	}
	if out := mustTether(t, data, "", "user", "list"); strings.Contains(out, "robert") {
		t.Errorf("user list after the delete: got %q, want no robert", out)
	}
}

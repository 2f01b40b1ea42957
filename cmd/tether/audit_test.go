package main

import (
	"bufio"
	"encoding/json"
	"os/user"
	"strings"
	"testing"
)

// auditEvents returns the audit records in stderr, JSON lines.
func auditEvents(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var events []map[string]any
	lines := bufio.NewScanner(strings.NewReader(stderr))
	for lines.Scan() {
		var rec map[string]any
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec["msg"] == "audit" {
			events = append(events, rec)
		}
	}
	return events
}

// PW-07: every command that changes a user writes one audit event, in the
// log format asked for, with the fields of the server's (event, user,
// user_id, outcome) and who acted: actor=cli and the operating-system
// user. No password appears in what the commands print.
func TestPW07_CommandsWriteAuditEvents(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skipf("no current operating-system user: %v", err)
	}
	data := initDB(t)
	steps := []struct {
		stdin   string
		args    []string
		event   string
		user    string
		outcome string
	}{
		{alicePassword, []string{"user", "add", "alice", "--admin", "--password-stdin"}, "user-add", "alice", "success"},
		{"another fine password", []string{"user", "add", "bob", "--password-stdin"}, "user-add", "bob", "success"},
		{"short", []string{"user", "add", "carol", "--password-stdin"}, "user-add", "carol", "failure"},
		{newPassword, []string{"user", "passwd", "bob", "--password-stdin"}, "user-passwd", "bob", "success"},
		{"", []string{"user", "disable", "bob"}, "user-disable", "bob", "success"},
		{"", []string{"user", "enable", "bob"}, "user-enable", "bob", "success"},
		{"", []string{"sessions", "revoke", "bob"}, "sessions-revoke", "bob", "success"},
		{"", []string{"user", "rename", "bob", "robert"}, "user-rename", "bob", "success"},
		{"", []string{"user", "delete", "robert", "--yes"}, "user-delete", "robert", "success"},
		{"", []string{"user", "delete", "alice", "--yes"}, "user-delete", "alice", "failure"},
		{newPassword, []string{"user", "passwd", "zed", "--password-stdin"}, "user-passwd", "zed", "failure"},
	}
	ids := map[string]string{}
	for _, s := range steps {
		_, stderr, err := tetherOutputs(t.Context(), t, data, s.stdin, append(s.args, "--log-format", "json")...)
		if (err == nil) != (s.outcome == "success") {
			t.Fatalf("tether %q: got %v, want outcome %s", s.args, err, s.outcome)
		}
		for _, secret := range []string{alicePassword, newPassword, "another fine password"} {
			if strings.Contains(stderr, secret) {
				t.Errorf("tether %q: stderr holds a password: %q", s.args, stderr)
			}
		}
		events := auditEvents(t, stderr)
		if len(events) != 1 {
			t.Fatalf("tether %q: got audit events %v in stderr %q, want one", s.args, events, stderr)
		}
		ev := events[0]
		id, _ := ev["user_id"].(string)
		if s.event == "user-add" && s.outcome == "success" {
			ids[s.user] = id
		}
		want := map[string]any{"level": "INFO", "event": s.event, "user": s.user, "outcome": s.outcome, "actor": "cli", "os_user": me.Username}
		for k, v := range want {
			if ev[k] != v {
				t.Errorf("tether %q: audit event %v has %s %v, want %v", s.args, ev, k, ev[k], v)
			}
		}
		if id != ids[s.user] {
			t.Errorf("tether %q: audit event %v has user_id %q, want the user's id %q", s.args, ev, id, ids[s.user])
		}
		if _, ok := ev["reason"]; ok != (s.outcome == "failure") {
			t.Errorf("tether %q: audit event %v: reason given %v, want it with a failure only", s.args, ev, ok)
		}
		if s.event == "user-rename" {
			if ev["new_name"] != "robert" {
				t.Errorf("tether %q: audit event %v, want new_name robert", s.args, ev)
			}
			ids["robert"] = ids["bob"]
		}
	}

	// Text, the default log format, as the server writes it.
	_, stderr, err := tetherOutputs(t.Context(), t, data, "", "user", "disable", "alice")
	if err != nil || !strings.Contains(stderr, "msg=audit event=user-disable user=alice user_id="+ids["alice"]+" outcome=success actor=cli") {
		t.Errorf("user disable: got %v, stderr %q; want a text audit event", err, stderr)
	}
	// What changes nothing writes no event.
	_, stderr, err = tetherOutputs(t.Context(), t, data, "", "user", "list")
	if err != nil || strings.Contains(stderr, "audit") {
		t.Errorf("user list: got %v, stderr %q; want no audit event", err, stderr)
	}
}

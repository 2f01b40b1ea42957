package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tetherauth/tether/internal/testkit"
)

// decode returns the one JSON record in line.
func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("record %q: %v", line, err)
	}
	if _, ok := got["time"]; !ok {
		t.Errorf("record %v has no time", got)
	}
	delete(got, "time")
	return got
}

// PW-07: an event is one record, with the message and leading attributes
// every writer shares, then the writer's own.
func TestPW07_Write(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.NewJSONHandler(&buf, nil))
	if err := l.Write(t.Context(), "user-delete", "alice", "outcome", "success", "user_id", "u_1"); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "INFO", "msg": "audit", "event": "user-delete", "user": "alice", "outcome": "success", "user_id": "u_1"}
	if got := decode(t, buf.Bytes()); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// MISC-06, PW-07: Open creates the file for its owner only and appends to
// it, whoever wrote before; "-" is standard error; every failure says
// so.
func TestMISC06_Open(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for i := range 2 {
		l, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(t.Context(), "keys-rotate", "", "n", i); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %q, want two lines", data)
	}
	for i, line := range lines {
		if got := decode(t, []byte(line)); got["n"] != float64(i) || got["event"] != "keys-rotate" {
			t.Errorf("line %d: got %v", i, got)
		}
	}

	var stderr bytes.Buffer
	l, err := Open(Stderr, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(t.Context(), "sign-out", "bob"); err != nil || l.Close() != nil {
		t.Fatal(err)
	}
	if got := decode(t, stderr.Bytes()); got["event"] != "sign-out" {
		t.Errorf("stderr: got %v", got)
	}

	for _, bad := range []string{"", filepath.Join(t.TempDir(), "missing", "audit.log"), t.TempDir()} {
		if _, err := Open(bad, nil); err == nil || !strings.HasPrefix(err.Error(), "audit log: ") {
			t.Errorf("Open(%q): got %v, want an audit log error", bad, err)
		}
	}
}

// PW-07: a record that could not be written is an error, which an admin
// command fails with.
func TestPW07_WriteFailure(t *testing.T) {
	l := New(slog.NewJSONHandler(testkit.FullWriter{}, nil))
	err := l.Write(t.Context(), "user-add", "alice")
	if !errors.Is(err, testkit.ErrDiskFull) || !strings.Contains(err.Error(), "user-add") {
		t.Errorf("got %v, want the write's error naming the event", err)
	}
}

// PW-07: an audit event is written whatever level the main log is set
// to: --log-level error does not silence it.
func TestPW07_WriteIgnoresLevel(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := l.Write(t.Context(), "sign-out", "alice"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "msg=audit event=sign-out user=alice") {
		t.Errorf("got %q, want the event", buf.String())
	}
}

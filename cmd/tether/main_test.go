package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tetherauth/tether/internal/testkit"
)

// TestMain runs main instead of the tests when the test binary is started
// by tetherProcess, so that tests can run tether in a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv("TETHER_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// tetherProcess returns a command that runs tether with args in a process
// of its own.
func tetherProcess(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TETHER_TEST_MAIN=1")
	return cmd
}

// tether runs a tether command on the database file data, with stdin as
// standard input and an empty environment, and returns its standard output.
func tether(ctx context.Context, t *testing.T, data, stdin string, args ...string) (string, error) {
	t.Helper()
	stdout, _, err := tetherOutputs(ctx, t, data, stdin, args...)
	return stdout, err
}

// tetherOutputs is tether returning standard error too.
func tetherOutputs(ctx context.Context, t *testing.T, data, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr testkit.Buffer
	args = append([]string{"tether"}, args...)
	if data != "" {
		args = append(args, "--data", data)
	}
	err := run(ctx, args, func(string) string { return "" }, strings.NewReader(stdin), &stdout, &stderr)
	if testing.Verbose() && stderr.String() != "" {
		t.Logf("tether %q: stderr:\n%s", args[1:], stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

// mustTether is tether for a command that must succeed.
func mustTether(t *testing.T, data, stdin string, args ...string) string {
	t.Helper()
	out, err := tether(t.Context(), t, data, stdin, args...)
	if err != nil {
		t.Fatalf("tether %q: %v", args, err)
	}
	return out
}

// dbPath returns the path of a database file that doesn't exist yet.
func dbPath(t *testing.T) string { return filepath.Join(t.TempDir(), "tether.db") }

// initDB runs tether init with flags on a new database file, which admin
// commands then take (ADM-01), and returns its path.
func initDB(t *testing.T, flags ...string) string {
	t.Helper()
	data := dbPath(t)
	mustTether(t, data, "", append([]string{"init"}, flags...)...)
	return data
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantErr   string // in the message printed; "" when nothing is
		wantUsage bool   // the usage is printed
	}{
		{"no command", nil, "", true},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, true},
		{"unknown subcommand", []string{"user", "frobnicate"}, `unknown command "user frobnicate"`, true},
		{"help for an unknown command", []string{"help", "frobnicate"}, `help: unknown command "frobnicate"`, true},
		{"unknown flag", []string{"user", "list", "--nope"}, "", true},
		{"missing name", []string{"user", "add"}, "user add: NAME is required", true},
		{"missing new name", []string{"user", "rename", "alice"}, "user rename: NEW is required", true},
		{"missing names", []string{"user", "rename"}, "user rename: OLD and NEW are required", true},
		{"two names", []string{"user", "disable", "alice", "bob"}, `user disable: too many arguments: ["bob"]; it takes NAME`, true},
		{"arguments to list", []string{"user", "list", "extra"}, "user list: takes no arguments", true},
		{"arguments to version", []string{"version", "extra"}, "version: takes no arguments", true},
		{"missing session user", []string{"sessions", "list"}, "sessions list: NAME is required", true},
		{"session user twice", []string{"sessions", "revoke", "alice", "--user", "bob"}, "too many arguments", true},
		{"invalid name", []string{"user", "enable", "a b"}, `user enable: NAME "a b": account: invalid user name`, false},
		{"invalid new name", []string{"user", "rename", "alice", "a/b"}, `user rename: NEW "a/b": account: invalid user name`, false},
		{"rename to the same name", []string{"user", "rename", "alice", "ALICE"}, "OLD and NEW are both alice", false},
		{"delete without a terminal", []string{"user", "delete", "alice"}, "not a terminal to confirm on: add --yes", false},
		{"bad setting", []string{"serve", "--log-format", "xml"}, "--log-format", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"tether"}, tt.args...)
			err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
			var printed bytes.Buffer
			if code := exitCode(err, &printed); code != 2 {
				t.Fatalf("run(%q) = %v: got exit status %d, want 2", tt.args, err, code)
			}
			if tt.wantErr == "" && printed.Len() > 0 {
				t.Errorf("got %q printed, want nothing more than the usage", printed.String())
			}
			if !strings.Contains(printed.String(), tt.wantErr) {
				t.Errorf("got %q printed, want it to contain %q", printed.String(), tt.wantErr)
			}
			if got := strings.Contains(stderr.String(), "Usage"); got != tt.wantUsage {
				t.Errorf("got stderr %q: usage printed %v, want %v", stderr.String(), got, tt.wantUsage)
			}
			if stdout.Len() > 0 {
				t.Errorf("got stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// Help that was asked for, in any of the usual ways, is shown on standard
// output, and tether exits with status 0.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"help"}, []string{"Usage:", "tether user delete NAME [--yes]", "tether version"}},
		{[]string{"-h"}, []string{"Usage:", "tether serve"}},
		{[]string{"--help"}, []string{"Usage:", "tether sessions revoke NAME"}},
		{[]string{"help", "user", "add"}, []string{"Usage: tether user add NAME", "-admin", "-password-stdin", "-data"}},
		{[]string{"help", "user"}, []string{"tether user rename OLD NEW", "tether user list"}},
		{[]string{"user", "add", "--help"}, []string{"Usage: tether user add NAME", "-admin"}},
		{[]string{"user", "delete", "-h"}, []string{"Usage: tether user delete NAME [--yes]", "-yes", "-log-format"}},
		{[]string{"user", "rename", "alice", "-h"}, []string{"Usage: tether user rename OLD NEW"}},
		{[]string{"sessions", "list", "-help"}, []string{"Usage: tether sessions list NAME", "-user"}},
		{[]string{"serve", "-h"}, []string{"Usage: tether serve", "-addr", "-trusted-proxies"}},
		{[]string{"help", "version"}, []string{"Usage: tether version"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"tether"}, tt.args...), func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
		if code := exitCode(err, &stderr); code != 0 || stderr.Len() > 0 {
			t.Errorf("tether %q: got exit status %d, stderr %q; want 0 and nothing", tt.args, code, stderr.String())
		}
		for _, want := range tt.want {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("tether %q: got stdout %q, want it to contain %q", tt.args, stdout.String(), want)
			}
		}
	}
	var stdout bytes.Buffer
	run(t.Context(), []string{"tether", "help", "user"}, func(string) string { return "" }, strings.NewReader(""), &stdout, io.Discard)
	if strings.Contains(stdout.String(), "tether serve") {
		t.Errorf("tether help user: got %q, want only the user commands", stdout.String())
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err         error
		want        int
		wantPrinted string
	}{
		{nil, 0, ""},
		{errors.New("disk full"), 1, "tether: disk full\n"},
		{usageError{err: errors.New("bad flag")}, 2, "tether: bad flag\n"},
		{usageError{err: flag.ErrHelp, shown: true}, 2, ""},
	}
	for _, tt := range tests {
		var printed bytes.Buffer
		if got := exitCode(tt.err, &printed); got != tt.want || printed.String() != tt.wantPrinted {
			t.Errorf("exitCode(%v) = %d, printed %q; want %d, %q", tt.err, got, printed.String(), tt.want, tt.wantPrinted)
		}
	}
}

// main: exit status 2 for a usage error, 1 for another error, and on
// SIGTERM a graceful shutdown and status 0.
func TestMainProcess(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"frobnicate"}, 2},
		{[]string{"--help"}, 0},
		{[]string{"user", "add", "-h"}, 0},
		{[]string{"version"}, 0},
		{[]string{"user", "list", "--data", filepath.Join(t.TempDir(), "no", "such", "dir.db")}, 1},
		{[]string{"user", "list", "--data", initDB(t)}, 0},
	} {
		err := tetherProcess(t, tt.args...).Run()
		got := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			got = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("tether %q: %v", tt.args, err)
		}
		if got != tt.want {
			t.Errorf("tether %q: got exit status %d, want %d", tt.args, got, tt.want)
		}
	}

	cmd := tetherProcess(t, "serve", "--addr", "127.0.0.1:0", "--data", dbPath(t))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() && !listeningRE.MatchString(lines.Text()) {
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(rest.String(), "shutting down") {
		t.Errorf("tether serve after SIGTERM: got %v, logs:\n%s\nwant exit status 0 after shutting down", err, rest.String())
	}
}

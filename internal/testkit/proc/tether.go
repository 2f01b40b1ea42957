package proc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
)

// ServerRaceEnv, set to 1, builds the tether binary with -race. Off by
// default, as in e2e/browser: argon2id is about twenty times slower under
// the race detector. The server's code runs under -race in its own tests.
const ServerRaceEnv = "TETHER_E2E_SERVER_RACE"

// BuildTether builds cmd/tether from this tree into dir and returns the
// binary's path.
func BuildTether(t testing.TB, dir string) string {
	t.Helper()
	return Build(t, dir, "tether", "github.com/tetherauth/tether/cmd/tether")
}

// Build builds the main package pkg of this module (such as an example
// the tests run as a process) into dir as name, with -race when
// TETHER_E2E_SERVER_RACE=1, and returns the binary's path.
func Build(t testing.TB, dir, name, pkg string) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building %s needs the go command: %v", pkg, err)
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if os.Getenv(ServerRaceEnv) == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command(gocmd, append(args, pkg)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Accounts is a fresh PostgreSQL schema for tether's accounts: URL is the
// --accounts of every node (pgtest.URL).
type Accounts struct {
	URL  string
	pool *pgxpool.Pool
}

// NewAccounts makes the schema (pgtest.Schema: skipped or failed
// without PostgreSQL, dropped when the test ends).
func NewAccounts(t testing.TB) *Accounts {
	t.Helper()
	pool, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	return &Accounts{URL: pgtest.URL(t, pool), pool: pool}
}

// ExpectUsers fails t unless the schema holds exactly n users: the
// commands honoured search_path and wrote nowhere else.
func (a *Accounts) ExpectUsers(t testing.TB, n int) {
	t.Helper()
	var got int
	if err := a.pool.QueryRow(t.Context(), "SELECT count(*) FROM users").Scan(&got); err != nil || got != n {
		t.Fatalf("users in the schema of %s: %d, %v; want %d", a.URL, got, err, n)
	}
}

// LookPath finds a command in PATH, or else at path (nginx is in
// /usr/sbin, which a user's PATH may lack).
func LookPath(name, path string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s is neither in PATH nor at %s (Debian package %s)", name, path, name)
	}
	return path, nil
}

// Tether runs the tether binary bin with args, stdin as its input, and
// returns its standard output; a failure fails t with its standard error.
func Tether(t testing.TB, bin, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = CleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tether %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// AddClient runs `tether client add` with args (the client's id, its
// options and the flags of its stores) and returns the secret the command
// printed, which it shows only then; no secret in its output fails t.
func AddClient(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out := Tether(t, bin, "", append([]string{"client", "add"}, args...)...)
	secret := clientSecret(out)
	if secret == "" {
		t.Fatalf("tether client add %s printed no client_secret=:\n%s", strings.Join(args, " "), out)
	}
	return secret
}

// clientSecret returns the value of the client_secret= line of out, the
// output of tether client add, trimmed; "" when there is none.
func clientSecret(out string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "client_secret="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

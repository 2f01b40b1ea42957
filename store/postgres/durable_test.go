package postgres

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// cluster is a PostgreSQL server the test runs on a data directory of its
// own: the shared one can't be crashed.
type cluster struct {
	dir, port string
	cred      *syscall.Credential // run as postgres when the test runs as root
	cmd       *exec.Cmd
	exited    chan struct{} // closed once cmd has exited
}

// startCluster makes a data directory with initdb and starts postgres on
// it, on a free port of 127.0.0.1, with settings added to its command
// line. It skips the test if initdb and postgres are not installed, and
// under go test -short: a cluster of its own takes seconds to start.
func startCluster(t *testing.T, settings ...string) *cluster {
	t.Helper()
	testkit.SkipShort(t, "starts a PostgreSQL server of its own")
	initdb, err := exec.LookPath("initdb")
	testkit.NeedService(t, "initdb and postgres (PostgreSQL's server binaries on PATH)", err)
	c := &cluster{}
	tmp, err := os.MkdirTemp("", "tether-pg-") // not t.TempDir: its parent is closed to the postgres user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	c.dir = filepath.Join(tmp, "data")
	if os.Geteuid() == 0 { // postgres refuses to run as root
		u, err := user.Lookup("postgres")
		testkit.NeedService(t, "a postgres user to run the server as (the test runs as root)", err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(tmp, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(initdb, "-D", c.dir, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c.port = strconv.Itoa(port)
	args := []string{"-D", c.dir, "-p", c.port, "-k", tmp, "-c", "listen_addresses=127.0.0.1"}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	c.start(t, args)
	t.Cleanup(c.kill)
	return c
}

// start starts postgres, in a process group of its own, and waits until
// it accepts connections. A server that exits at once because the
// processes of the one killed before still hold its shared memory (they
// die a moment after the postmaster) is started again.
func (c *cluster) start(t *testing.T, args []string) {
	t.Helper()
	bin, err := exec.LookPath("postgres")
	testkit.NeedService(t, "postgres (PostgreSQL's server binaries on PATH)", err)
	logFile, err := os.OpenFile(filepath.Join(filepath.Dir(c.dir), "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	var logged int64      // the log's size when the server was last started
	spawn := func() {
		if fi, err := logFile.Stat(); err == nil {
			logged = fi.Size()
		}
		c.cmd = exec.Command(bin, args...)
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
		c.cmd.Stderr = logFile
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("postgres: %v", err)
		}
		c.exited = make(chan struct{})
		go func() {
			c.cmd.Wait()
			close(c.exited)
		}()
	}
	spawn()
	deadline := time.Now().Add(time.Minute) // waits for the server to get ready, times nothing
	for {
		pool := c.pool(t)
		err := pool.Ping(t.Context())
		pool.Close()
		if err == nil {
			return
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(logFile.Name())
			if bytes.Contains(log[min(logged, int64(len(log))):], []byte("pre-existing shared memory block")) && time.Now().Before(deadline) {
				spawn()
				continue
			}
			deadline = time.Now() // it failed to start (the port was taken, say)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("postgres on port %s did not start: %v\n%s", c.port, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill kills postgres and all its processes with SIGKILL, as a crash
// would: what sat in their shared memory, and nowhere else, is gone.
func (c *cluster) kill() {
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
}

// restart crashes postgres and starts it again on the same data: it
// recovers from its WAL.
func (c *cluster) restart(t *testing.T) {
	t.Helper()
	c.kill()
	c.start(t, c.cmd.Args[1:])
}

func (c *cluster) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:"+c.port+"/postgres?connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// SES-15: on a server whose default is synchronous_commit off, a
// revocation commits with it on all the same: a crash of the server
// (every process killed, its WAL buffers lost) undoes none of the
// acknowledged revocations, while a plain write made after them with the
// server's default is lost: the crash is real.
func TestSES15_PostgresRevocationsSurviveCrashWithSynchronousCommitOff(t *testing.T) {
	// The WAL writer waits 10 s between flushes, and writes no partial
	// page meanwhile: only commits that flush the WAL themselves survive,
	// with what came before them.
	c := startCluster(t, "synchronous_commit=off", "wal_writer_delay=10s", "wal_writer_flush_after=1GB")
	const n = 40
	ctx := t.Context()
	pool := c.pool(t)
	store, err := New(ctx, pool, Options{})
	if err != nil {
		pool.Close()
		t.Fatal(err)
	}
	for i := range n {
		if err := store.RevokeUser(ctx, "revoked"+strconv.Itoa(i), nil); err != nil {
			t.Fatalf("RevokeUser: %v", err)
		}
		r := session.Revocation{JTI: "revoked" + strconv.Itoa(i), Exp: time.Now().Add(time.Hour)}
		if err := store.RevokeToken(ctx, r); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO session_generations (user_id, gen) VALUES ('plain', 1)`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	pool.Close()
	c.restart(t)

	pool = c.pool(t)
	defer pool.Close()
	var revocations, tokens, plain int
	err = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE user_id LIKE 'revoked%'), count(*) FILTER (WHERE user_id = 'plain'),
		(SELECT count(*) FROM token_denylist WHERE jti LIKE 'revoked%')
		FROM session_generations`).Scan(&revocations, &plain, &tokens)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the crash: %d of %d user and %d of %d token revocations, %d of 1 plain write (synchronous_commit off)", revocations, n, tokens, n, plain)
	if revocations != n || tokens != n {
		t.Errorf("%d and %d of %d acknowledged user and token revocations survived the crash, want all", revocations, tokens, n)
	}
	if plain != 0 {
		t.Error("the plain write made last survived: the crash lost nothing, so the test proves nothing")
	}
}

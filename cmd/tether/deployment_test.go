package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

const aliceLogin = `{"username":"alice","password":"` + alicePassword + `"}`

// adminCommands are the commands that act on a deployment's users and
// sessions, with the standard input they need.
var adminCommands = []struct {
	stdin string
	args  []string
}{
	{"", []string{"sessions", "revoke", "--user", "alice"}},
	{"", []string{"sessions", "list", "--user", "alice"}},
	{"", []string{"user", "disable", "alice"}},
	{"", []string{"user", "enable", "alice"}},
	{newPassword, []string{"user", "passwd", "alice", "--password-stdin"}},
	{"", []string{"user", "list"}},
	{newPassword, []string{"user", "add", "bob", "--password-stdin"}},
}

// tetherEnv runs a tether command with env as its environment, and
// returns its standard output and error.
func tetherEnv(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr testkit.Buffer
	err := run(t.Context(), append([]string{"tether"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// wantRefused checks that a command failed with exit status 1, printed
// nothing on stdout, and said each of want.
func wantRefused(t *testing.T, what, out string, err error, want ...string) {
	t.Helper()
	if code := exitCode(err, io.Discard); code != 1 || out != "" {
		t.Errorf("%s: got %q, %v (exit status %d); want an error and exit status 1", what, out, err, code)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: got %q, want it to say %q", what, err, w)
		}
	}
}

// ADM-01: with the nodes' sessions in Redis under a prefix, an admin
// command without those settings, or with another prefix, refuses,
// naming the server's; given them (here from the environment, as a
// systemd EnvironmentFile gives them), it acts and the session is dead.
func TestADM01_AdminCommandsRefuseAnotherSessionStore(t *testing.T) {
	prefix, _ := sharedRedisPrefix(t)
	redisURL := "redis://" + sharedRedis + "/0"
	flags := []string{"--sessions", redisURL, "--redis-prefix", prefix}
	data := dbPath(t)
	s := startServe(t, data, flags...)
	mustTether(t, data, alicePassword, append([]string{"user", "add", "alice", "--password-stdin"}, flags...)...)
	cookie := s.signIn(t, aliceLogin)

	recorded := "this deployment keeps sessions in " + redisURL + ` with --redis-prefix "` + prefix + `" (recorded by serve on `
	advice := "run it with --sessions " + redisURL + ` --redis-prefix "` + prefix + `" (TETHER_SESSIONS, TETHER_REDIS_PREFIX)`
	for _, wrong := range []struct{ name, given string }{
		{"", "the --data file"},
		{"--redis-prefix " + prefix + "x:", redisURL + ` with --redis-prefix "` + prefix + `x:"`},
		{"--redis-prefix tether:", redisURL + ` with --redis-prefix "tether:"`},
	} {
		var extra []string
		if wrong.name != "" {
			extra = append([]string{"--sessions", redisURL}, strings.Fields(wrong.name)...)
		}
		for _, c := range adminCommands {
			out, err := tether(t.Context(), t, data, c.stdin, append(c.args, extra...)...)
			wantRefused(t, strings.Join(append(c.args, extra...), " "), out, err, recorded, "this command was given "+wrong.given, advice)
		}
	}
	if res := s.do(t, "GET", "/api/v1/me", "", cookie); res.StatusCode != http.StatusOK {
		t.Errorf("alice after the refused commands: got %s, want 200", res.Status)
	}
	checkPassword(t, lookUp(t, data, "alice"), alicePassword, true)

	env := map[string]string{"TETHER_DATA": data, "TETHER_SESSIONS": redisURL, "TETHER_REDIS_PREFIX": prefix}
	if out, stderr, err := tetherEnv(t, env, "", "sessions", "revoke", "--user", "alice"); err != nil || out != "ended all sessions of alice\n" {
		t.Fatalf("sessions revoke with the server's environment: got %q, %v\n%s", out, err, stderr)
	}
	s.expectSignedOut(t, cookie, time.Second)
}

// ADM-01: only serve, init and user add --create make a database; every
// other command, pointed at a file that isn't there (no --data in another
// directory, a typo), fails with exit status 1, naming the path and what
// to do, and leaves no file behind.
func TestADM01_CommandsCreateNoDatabase(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	typo := filepath.Join(t.TempDir(), "tehter.db")
	for _, c := range adminCommands {
		out, err := tether(t.Context(), t, "", c.stdin, c.args...)
		wantRefused(t, strings.Join(c.args, " ")+" without --data", out, err, "no database at ./tether.db ("+filepath.Join(wd, "tether.db")+"): run tether serve or tether init there first, or pass --data")
		out, err = tether(t.Context(), t, typo, c.stdin, c.args...)
		wantRefused(t, strings.Join(c.args, " ")+" --data "+typo, out, err, "no database at "+typo)
	}
	if left, _ := os.ReadDir(wd); len(left) > 0 {
		t.Errorf("the commands left %v in the working directory", left)
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("the commands made %s: %v", typo, err)
	}

	mustTether(t, "", "", "init")
	if out := mustTether(t, "", alicePassword, "user", "add", "alice", "--password-stdin"); out != "created user alice\n" {
		t.Errorf("user add after init: got %q", out)
	}
	if out := mustTether(t, typo, alicePassword, "user", "add", "alice", "--password-stdin", "--create"); out != "created user alice\n" {
		t.Errorf("user add --create: got %q", out)
	}
	if out := mustTether(t, typo, "", "init"); !strings.HasPrefix(out, "ready: users in "+typo+", sessions in the --data file") {
		t.Errorf("init on a database that exists: got %q", out)
	}
}

// Errors about the --data file say which problem it is: a missing
// directory, a file that isn't tether's, no permission.
func TestADM01_DataFileErrorsSayWhich(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(foreign, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time proves the first created no table
		out, err := tether(t.Context(), t, foreign, "", "user", "list")
		wantRefused(t, "a file that isn't tether's", out, err, foreign+" is not a tether database (it has no users table)")
	}
	for _, args := range [][]string{{"user", "list"}, {"init"}} {
		missing := filepath.Join(dir, "nodir", "tether.db")
		out, err := tether(t.Context(), t, missing, "", args...)
		wantRefused(t, args[0]+" in a missing directory", out, err, "the directory "+filepath.Dir(missing)+" of the database "+missing+" is missing")
	}

	if os.Geteuid() == 0 {
		t.Skip("permissions: root may read and write any file")
	}
	locked := initDB(t)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	out, err := tether(t.Context(), t, locked, "", "user", "list")
	wantRefused(t, "a file without permission", out, err, "no permission to read and write the database "+locked)

	readOnly := t.TempDir()
	if err := os.Chmod(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(readOnly, 0o700) })
	out, err = tether(t.Context(), t, filepath.Join(readOnly, "tether.db"), "", "init")
	wantRefused(t, "init in a read-only directory", out, err, "no permission to create files in "+readOnly)
	closed := filepath.Join(readOnly, "sub")
	if err := os.Chmod(readOnly, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })
	out, err = tether(t.Context(), t, filepath.Join(closed, "tether.db"), "", "user", "list")
	wantRefused(t, "a directory without permission", out, err, "no permission to enter the directory "+closed)
}

// ADM-01: PostgreSQL: an admin command migrates no empty schema, and a
// search_path whose schema doesn't exist is named.
func TestADM01_PostgresSchemaErrors(t *testing.T) {
	pool, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	pgURL := pgtest.URL(t, pool)
	schema := pool.Config().ConnConfig.RuntimeParams["search_path"]
	stores := []string{"--accounts", pgURL, "--sessions", pgURL}
	out, err := tether(t.Context(), t, "", "", append([]string{"user", "list"}, stores...)...)
	wantRefused(t, "user list on an empty schema", out, err, `the schema "`+schema+`" has no users table`, "creates no tables")
	var tables int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("the empty schema has %d tables after user list (%v), want 0", tables, err)
	}

	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	missing := "tethertest_missing_" + strings.ToLower(rand.Text()[:8])
	q := u.Query()
	q.Set("search_path", missing)
	u.RawQuery = q.Encode()
	for _, args := range [][]string{{"user", "list"}, {"init"}} {
		out, err := tether(t.Context(), t, "", "", append(args, "--accounts", u.String())...)
		wantRefused(t, args[0]+" with a missing schema", out, err, "no schema of the search_path "+missing+" exists")
	}

	if out := mustTether(t, "", "", append([]string{"init"}, stores...)...); !strings.Contains(out, "sessions in "+redactURL(pgURL)) {
		t.Errorf("init: got %q", out)
	}
	mustTether(t, "", "", append([]string{"user", "list"}, stores...)...)

	// Accounts in PostgreSQL, sessions in the --data file: the file is
	// the session store's, named by its path.
	other, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	accounts := []string{"--accounts", pgtest.URL(t, other)}
	data := dbPath(t)
	out, err = tether(t.Context(), t, data, "", append([]string{"init"}, accounts...)...)
	if err != nil || !strings.Contains(out, "sessions in the SQLite file "+data) {
		t.Errorf("init with the sessions in the file: got %q, %v", out, err)
	}
	mustTether(t, data, alicePassword, append([]string{"user", "add", "alice", "--password-stdin"}, accounts...)...)
	mustTether(t, data, "", append([]string{"sessions", "revoke", "--user", "alice"}, accounts...)...)
	out, err = tether(t.Context(), t, dbPath(t), "", append([]string{"sessions", "revoke", "--user", "alice"}, accounts...)...)
	wantRefused(t, "sessions revoke on another file", out, err, "this deployment keeps sessions in the SQLite file "+data, "run it with --data "+data+" and no --sessions")
}

// ADM-01: a database without a record (made by an older serve), or with a
// damaged one, is refused until serve or init records one.
func TestADM01_NoRecordRefused(t *testing.T) {
	data := dbPath(t)
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, err := tether(t.Context(), t, data, "", "user", "list")
	wantRefused(t, "user list without a record", out, err, data+" has no record of where this deployment keeps its sessions", "run tether init with the server's settings")
	mustTether(t, data, "", "init")
	mustTether(t, data, "", "user", "list")

	// A damaged record: refused, until init records the settings again.
	st, err = openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, raw, err := readDeployment(t.Context(), st.accounts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.accounts.SwapSetting(t.Context(), deploymentSetting, raw, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	out, err = tether(t.Context(), t, data, "", "user", "list")
	wantRefused(t, "user list with a damaged record", out, err, "the deployment record in the account store is damaged: run tether init with the server's settings")
	mustTether(t, data, "", "init")
	mustTether(t, data, "", "user", "list")
}

// ADM-01: the record moves only when no serve of the old settings runs;
// a serve that finds it moved says so at each mark.
func TestADM01_RecordMovesOnlyWhenNoNodeRuns(t *testing.T) {
	st, err := openStores(t.Context(), config{Data: dbPath(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	inFile := config{Data: "x.db"}
	inRedis := config{Data: "x.db", Sessions: "redis://:hunter2@10.0.0.5:6379/0", RedisPrefix: "app1:"}
	serving := recording{by: "serve on a", serving: true, mayMove: true}
	start := time.Now()
	claim := func(c config, r recording, at time.Duration) (deployment, error) {
		return claimDeployment(t.Context(), st.accounts, c, r, start.Add(at), log)
	}

	first, err := claim(inFile, serving, 0)
	if err != nil || first.Kind != "sqlite" || !first.Served.Equal(start.UTC()) || !strings.HasPrefix(first.ID, "d_") {
		t.Fatalf("first serve: got %+v, %v", first, err)
	}
	_, err = claim(inRedis, recording{by: "serve on b", serving: true, mayMove: true}, recordLive-time.Second)
	if err == nil || !strings.Contains(err.Error(), "another node of this deployment keeps sessions in the --data file, beside the users") {
		t.Fatalf("a second node with other settings while the first runs: got %v, want a refusal", err)
	}
	moved, err := claim(inRedis, recording{by: "init on b", mayMove: true}, recordLive)
	if err != nil || moved.ID != first.ID || moved.Location != "redis://:xxxxx@10.0.0.5:6379/0" || moved.RedisPrefix != "app1:" || !moved.Served.IsZero() {
		t.Fatalf("init after the first node's last mark: got %+v, %v; want the record moved, same id, no password, not served", moved, err)
	}
	if !strings.Contains(logs.String(), "THE SESSIONS MOVED") {
		t.Errorf("the move was not logged loudly:\n%s", logs.String())
	}
	if raw, err := st.accounts.Setting(t.Context(), deploymentSetting); err != nil || bytes.Contains(raw, []byte("hunter2")) {
		t.Errorf("the record: %s, %v; want it without the password", raw, err)
	}
	_, err = claim(inFile, recording{by: "serve on a", serving: true}, recordLive+recordHeartbeat)
	if err == nil || !strings.Contains(err.Error(), "the deployment record now says sessions live in redis://:xxxxx@10.0.0.5:6379/0") {
		t.Errorf("the first node's next mark: got %v, want it told the record moved", err)
	}
	if again, err := claim(inRedis, serving, recordLive+recordHeartbeat); err != nil || !again.Served.Equal(start.Add(recordLive+recordHeartbeat).UTC()) {
		t.Errorf("a serve with the recorded settings: got %+v, %v; want the record marked served", again, err)
	}

	// Another URL of the same kind and prefix while a node runs: most
	// likely the same Redis through a proxy of this node's; it starts,
	// warns, keeps the record and marks it served.
	logs.Reset()
	viaProxy := inRedis
	viaProxy.Sessions = "redis://:hunter2@127.0.0.1:7000/0"
	at := recordLive + 2*recordHeartbeat
	kept, err := claim(viaProxy, serving, at)
	if err != nil || kept.Location != "redis://:xxxxx@10.0.0.5:6379/0" || !kept.Served.Equal(start.Add(at).UTC()) {
		t.Errorf("a node with another URL of the same Redis: got %+v, %v; want the record kept and marked", kept, err)
	}
	if !strings.Contains(logs.String(), "another URL than the one recorded") {
		t.Errorf("no warning about the other URL:\n%s", logs.String())
	}
	otherPrefix := viaProxy
	otherPrefix.RedisPrefix = "app2:"
	otherDB := viaProxy
	otherDB.Sessions = "redis://:hunter2@127.0.0.1:7000/1"
	for _, c := range []config{otherPrefix, otherDB} {
		if _, err := claim(c, serving, at); err == nil {
			t.Errorf("a node with sessions in %s while a node runs: got no error, want a refusal", sessionStoreOf(c))
		}
	}
}

// ADM-01, end to end: a second serve with other settings refuses to start
// while the first runs; once it stopped (and its last mark is old), the
// second moves the record, and admin commands follow it.
func TestADM01_SecondServeWithOtherSettings(t *testing.T) {
	prefix, _ := sharedRedisPrefix(t)
	redisFlags := []string{"--sessions", "redis://" + sharedRedis + "/0", "--redis-prefix", prefix}
	data := dbPath(t)
	first := startServe(t, data, redisFlags...)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr testkit.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tether", "serve", "--addr", "127.0.0.1:0", "--data", data}, func(string) string { return "" }, strings.NewReader(""), io.Discard, &stderr)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "another node of this deployment keeps sessions in redis://") {
				t.Fatalf("second serve: got %v, want a refusal naming the first's store", err)
			}
			waiting = false
		case <-tick.C:
			if listeningRE.MatchString(stderr.String()) {
				cancel()
				t.Fatalf("a second serve with other settings started:\n%s", stderr.String())
			}
		}
	}

	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ageRecord(t, st.accounts, recordLive)
	st.Close()
	second := startServe(t, data)
	if !strings.Contains(second.stderr.String(), "THE SESSIONS MOVED") {
		t.Errorf("the move was not logged:\n%s", second.stderr)
	}
	out, err := tether(t.Context(), t, data, "", append([]string{"user", "list"}, redisFlags...)...)
	wantRefused(t, "user list with the old settings", out, err, "this deployment keeps sessions in the --data file, beside the users", "run it with no --sessions and no --redis-prefix")
	mustTether(t, data, "", "user", "list")
}

// ageRecord makes the record in acc look as if its last serve marked it d
// ago.
func ageRecord(t *testing.T, acc accounts, d time.Duration) {
	t.Helper()
	rec, raw, err := readDeployment(t.Context(), acc)
	if err != nil {
		t.Fatal(err)
	}
	rec.Served = time.Now().Add(-d)
	aged, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.SwapSetting(t.Context(), deploymentSetting, raw, aged); err != nil {
		t.Fatal(err)
	}
}

// forgetfulStore is a session store that acknowledges revocations and
// does nothing.
type forgetfulStore struct{ session.Store }

func (forgetfulStore) RevokeUser(context.Context, string, *session.Hash) error { return nil }

// ADM-01: a command that ended a user's sessions says so only once the
// store lists none: against a store that lost the revocation, it fails.
func TestADM01_RevocationVerified(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	signIn(t, newManager(t, data), data, "alice", session.Meta{})
	st, err := sqlite.New(t.Context(), sqlitetest.Open(t, data), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := session.NewManager(forgetfulStore{st}, session.Config{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, alice := admin{sessions: m}, lookUp(t, data, "alice")
	if err := a.sessions.RevokeUser(t.Context(), alice.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.verifyRevoked(t.Context(), alice); err == nil || !strings.Contains(err.Error(), "still lists live sessions of alice after ending them all (1,") {
		t.Errorf("verifyRevoked after a lost revocation: got %v, want an error saying a session is left", err)
	}
	mustTether(t, data, "", "sessions", "revoke", "--user", "alice")
	if err := a.verifyRevoked(t.Context(), alice); err != nil {
		t.Errorf("verifyRevoked after a real revocation: %v", err)
	}
}

// A running serve keeps marking the record, and logs an error at each
// mark once the record has moved to other settings under it.
func TestADM01_KeepServed(t *testing.T) {
	st, err := openStores(t.Context(), config{Data: dbPath(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs testkit.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c := config{Data: "x.db"}
	first, err := claimDeployment(t.Context(), st.accounts, c, recording{by: "serve", serving: true, mayMove: true}, time.Now(), log)
	if err != nil {
		t.Fatal(err)
	}
	stop := keepServed(t.Context(), st.accounts, c, "serve", time.Millisecond, log)
	defer stop()
	waitFor(t, "a mark", func() bool {
		d, _, err := readDeployment(t.Context(), st.accounts)
		return err == nil && d.Served.After(first.Served)
	})

	// Another node moves it (by hand: the marks keep it live), retrying
	// when a mark gets in between.
	for {
		d, raw, err := readDeployment(t.Context(), st.accounts)
		if err != nil {
			t.Fatal(err)
		}
		d.sessionStore = sessionStoreOf(config{Data: "x.db", Sessions: "redis://10.0.0.5:6379/0"})
		moved, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.accounts.SwapSetting(t.Context(), deploymentSetting, raw, moved); err == nil {
			break
		} else if !errors.Is(err, account.ErrSettingChanged) {
			t.Fatal(err)
		}
	}
	waitFor(t, "the moved record logged", func() bool {
		return strings.Contains(logs.String(), "deployment record not marked served") && strings.Contains(logs.String(), "now says sessions live in redis://10.0.0.5:6379/0")
	})
	stop()
	if d, _, err := readDeployment(t.Context(), st.accounts); err != nil || d.Kind != "redis" {
		t.Errorf("the record after the old node's marks: got %+v, %v; want it left moved", d, err)
	}
}

// racingAccounts runs between once before its first SwapSetting: another
// node's whole claim, between this node's read of the record and its
// write.
type racingAccounts struct {
	accounts
	between func()
}

func (a *racingAccounts) SwapSetting(ctx context.Context, name string, old, value []byte) error {
	if f := a.between; f != nil {
		a.between = nil
		f()
	}
	return a.accounts.SwapSetting(ctx, name, old, value)
}

// ADM-01: two nodes starting at once on an account store with no record
// yet, forced to interleave: the second reads no record, the first claims
// it, then the second writes. With other settings, the second refuses to
// start, and the record names the first's; with the same settings, both
// start and the record has one deployment id.
func TestADM01_ConcurrentClaims(t *testing.T) {
	redisConf := config{Sessions: "redis://127.0.0.1:6379/0", RedisPrefix: "adm01-race:"}
	for _, tc := range []struct {
		name        string
		first, then config
		wantRefused bool
	}{
		{"other settings", redisConf, config{}, true},
		{"same settings", redisConf, redisConf, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := dbPath(t)
			st, err := openStores(t.Context(), config{Data: data}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			log := slog.New(slog.DiscardHandler)
			serving := recording{by: "serve on test", serving: true, mayMove: true}
			now := time.Now()
			var first deployment
			var firstErr error
			racing := &racingAccounts{accounts: st.accounts, between: func() {
				tc.first.Data = data
				first, firstErr = claimDeployment(t.Context(), st.accounts, tc.first, serving, now, log)
			}}
			tc.then.Data = data
			second, err := claimDeployment(t.Context(), racing, tc.then, serving, now, log)
			if firstErr != nil {
				t.Fatalf("the first claim: %v", firstErr)
			}
			if tc.wantRefused {
				if err == nil || !strings.Contains(err.Error(), "another node of this deployment keeps sessions in redis://") {
					t.Fatalf("the second claim, with other settings: got %v, want a refusal naming the first's store", err)
				}
			} else if err != nil || second.ID != first.ID {
				t.Fatalf("the second claim, with the same settings: got %+v, %v; want deployment %s", second, err, first.ID)
			}
			rec, _, err := readDeployment(t.Context(), st.accounts)
			if err != nil || rec.ID != first.ID || rec.sessionStore != sessionStoreOf(tc.first) {
				t.Errorf("the record: got %+v, %v; want the first claim's %+v", rec, err, first)
			}
		})
	}
}

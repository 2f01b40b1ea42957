package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// step is one command of a table test of commands run in order on one
// database: its output must contain want (stdout, or the error's text).
type step struct {
	name    string
	env     map[string]string
	args    []string
	want    string
	wantErr bool
}

// runSteps runs steps on the database file data and returns each one's
// standard output.
func runSteps(t *testing.T, data string, steps []step) []string {
	t.Helper()
	outs := make([]string, len(steps))
	for i, s := range steps {
		out, _, err := tetherEnv(t, s.env, "", append(s.args, "--data", data)...)
		outs[i] = out
		got := out
		if err != nil {
			got = err.Error()
		}
		if (err != nil) != s.wantErr || !strings.Contains(got, s.want) {
			t.Errorf("%s: tether %q = %q, %v; want %q (error: %v)", s.name, s.args, out, err, s.want, s.wantErr)
		}
	}
	return outs
}

// clientGeneration returns the generation of client id's token subject in
// the session store of the database file data.
func clientGeneration(t *testing.T, data, id string) uint64 {
	t.Helper()
	return subjectGeneration(t, data, token.ClientSubject(id))
}

// subjectGeneration returns the generation of a token subject in the
// session store of the database file data.
func subjectGeneration(t *testing.T, data, subject string) uint64 {
	t.Helper()
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := session.NewManager(st.sessions, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.SubjectGeneration(t.Context(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// lookUpClient returns client id of the database file data.
func lookUpClient(t *testing.T, data, id string) (*account.Client, error) {
	t.Helper()
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return st.accounts.Client(t.Context(), id)
}

var secretLine = regexp.MustCompile(`(?m)^client_secret=(tether_cs_[0-9A-Za-z]+)$`)

func TestClientCommands(t *testing.T) {
	data := initDB(t)
	outs := runSteps(t, data, []step{
		{name: "add", args: []string{"client", "add", "Billing", "--scopes", "invoices:read,invoices:write", "--audience", "https://api.example.com,api://ledger"}, want: "created client billing\nclient_id=billing\n"},
		{name: "add existing", args: []string{"client", "add", "billing", "--scopes", "x", "--audience", "api://x"}, want: `client "billing" exists already`, wantErr: true},
		{name: "add without scopes and audience", args: []string{"client", "add", "ci"}, want: "client add: --scopes and --audience required", wantErr: true},
		{name: "every bad entry", args: []string{"client", "add", "ci", "--scopes", `ok,"quoted",back\slash`, "--audience", "x"}, want: `"\"quoted\"" a scope is`, wantErr: true},
		{name: "bad audience", args: []string{"client", "add", "ci", "--scopes", "a", "--audience", "no-scheme"}, want: `"no-scheme" an audience is an absolute URI`, wantErr: true},
		{name: "bad id", args: []string{"client", "add", "ci bot", "--scopes", "a", "--audience", "api://x"}, want: "invalid client id", wantErr: true},
		{name: "max ttl too long", args: []string{"client", "add", "ci", "--scopes", "a", "--audience", "api://x", "--max-ttl", "25h"}, want: "--max-ttl 25h0m0s: must be from 0 to 24h0m0s", wantErr: true},
		{name: "add with max ttl", args: []string{"client", "add", "ci", "--scopes", "deploy", "--audience", "api://x", "--max-ttl", "5m"}, want: "created client ci"},
		{name: "list", args: []string{"client", "list"}, want: "billing    invoices:read,invoices:write  https://api.example.com,api://ledger  -        enabled"},
		{name: "rotate secret", args: []string{"client", "rotate-secret", "billing"}, want: "new secret for client billing: the old one no longer works\n"},
		{name: "rotate secret of none", args: []string{"client", "rotate-secret", "nobody"}, want: `no client "nobody"`, wantErr: true},
		{name: "disable", args: []string{"client", "disable", "ci"}, want: "disabled client ci and ended every token it had\n"},
		{name: "list disabled", args: []string{"client", "list"}, want: "5m0s     disabled"},
		{name: "enable", args: []string{"client", "enable", "ci"}, want: "enabled client ci\n"},
		{name: "delete", args: []string{"client", "delete", "ci"}, want: "deleted client ci and ended every token it had\n"},
		{name: "delete again", args: []string{"client", "delete", "ci"}, want: `no client "ci"`, wantErr: true},
	})
	first, rotated := secretLine.FindStringSubmatch(outs[0]), secretLine.FindStringSubmatch(outs[9])
	if first == nil || rotated == nil || first[1] == rotated[1] {
		t.Fatalf("secrets printed: %q and %q; want two different client_secret= lines", outs[0], outs[9])
	}
	c, err := lookUpClient(t, data, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretHash != account.HashSecret(rotated[1]) {
		t.Error("the store doesn't keep the hash of the rotated secret")
	}
	if c.Audiences[0] != "https://api.example.com" {
		t.Errorf("audiences %q: the first given must stay the default", c.Audiences)
	}
	if g := clientGeneration(t, data, "ci"); g != 2 {
		t.Errorf("generation of ci's tokens after a disable and a delete: %d, want 2", g)
	}
	if g := clientGeneration(t, data, "billing"); g != 0 {
		t.Errorf("generation of billing's tokens after a plain rotate-secret: %d, want 0", g)
	}
	runSteps(t, data, []step{{name: "rotate and revoke", args: []string{"client", "rotate-secret", "billing", "--revoke"}, want: "every token issued before has ended"}})
	if g := clientGeneration(t, data, "billing"); g != 1 {
		t.Errorf("generation of billing's tokens after rotate-secret --revoke: %d, want 1", g)
	}
}

// CHG-03: deleting a client and making one of the same id later brings
// none of the old tokens back: they carry an older generation.
func TestCHG03_RecreatedClientGetsNoOldTokens(t *testing.T) {
	data := initDB(t)
	add := []string{"client", "add", "ci", "--scopes", "deploy", "--audience", "api://x"}
	mustTether(t, data, "", add...)
	before := clientGeneration(t, data, "ci")
	mustTether(t, data, "", "client", "delete", "ci")
	mustTether(t, data, "", add...)
	if g := clientGeneration(t, data, "ci"); g <= before {
		t.Errorf("generation after delete and add: %d, want past %d", g, before)
	}
}

// writeKeyPEM writes a new Ed25519 private key as PKCS#8 PEM and returns
// its file's path.
func writeKeyPEM(t *testing.T) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var addedKey = regexp.MustCompile(`added key (\S+) `)

// KEY-02: rotate publishes a key before it signs; retire keeps a key
// published, retire --now removes it; import brings an existing key.
func TestKEY02_KeysCommands(t *testing.T) {
	data := initDB(t)
	pemFile := writeKeyPEM(t)
	outs := runSteps(t, data, []step{
		{name: "empty list", args: []string{"keys", "list"}, want: "KID"},
		{name: "first key", args: []string{"keys", "rotate"}, want: "added key "},
		{name: "second key", args: []string{"keys", "rotate"}, want: "added key "},
		{name: "a third waits", args: []string{"keys", "rotate"}, want: "already published and waiting to sign", wantErr: true},
		{name: "list", args: []string{"keys", "list"}, want: "EdDSA"},
	})
	kid1, kid2 := addedKey.FindStringSubmatch(outs[1]), addedKey.FindStringSubmatch(outs[2])
	if kid1 == nil || kid2 == nil {
		t.Fatalf("rotate printed %q and %q", outs[1], outs[2])
	}
	if !strings.Contains(outs[4], kid1[1]+"  EdDSA  signing") || !strings.Contains(outs[4], kid2[1]+"  EdDSA  pending") {
		t.Errorf("keys list:\n%s\nwant %s signing and %s pending", outs[4], kid1[1], kid2[1])
	}
	runSteps(t, data, []step{
		{name: "retire the pending key at once", args: []string{"keys", "retire", kid2[1], "--now"}, want: "removed key " + kid2[1]},
		{name: "retire the only signing key", args: []string{"keys", "retire", kid1[1]}, want: "only key that may sign", wantErr: true},
		{name: "retire unknown", args: []string{"keys", "retire", "nope"}, want: "no key in the ring has that kid", wantErr: true},
		{name: "retire an unknown kid that begins with -", args: []string{"keys", "retire", "--now", "-" + strings.Repeat("A", 42)}, want: "no key in the ring has that kid", wantErr: true},
		{name: "retire without a kid", args: []string{"keys", "retire"}, want: "KID is required", wantErr: true},
		{name: "import", args: []string{"keys", "import", pemFile}, want: "imported key "},
		{name: "import again", args: []string{"keys", "import", pemFile}, want: "in the ring already", wantErr: true},
		{name: "import a missing file", args: []string{"keys", "import", pemFile + ".missing"}, want: "no such file", wantErr: true},
		{name: "import no key", args: []string{"keys", "import", data}, want: data, wantErr: true},
		{name: "list", args: []string{"keys", "list"}, want: kid2[1] + "  EdDSA  removed"},
	})
}

// KEY-04: with a master key the ring's private keys are sealed, and a
// command without it, or with another, is refused.
func TestKEY04_SealedRingNeedsTheMasterKey(t *testing.T) {
	data := initDB(t)
	out, _, err := tetherEnv(t, nil, "", "keys", "master-key")
	if err != nil {
		t.Fatal(err)
	}
	mk := strings.TrimSpace(strings.TrimPrefix(out, keys.MasterKeyEnv+"="))
	if _, err := keys.ParseMasterKey(mk); err != nil {
		t.Fatalf("keys master-key printed %q: %v", mk, err)
	}
	withKey := map[string]string{keys.MasterKeyEnv: mk}
	runSteps(t, data, []step{
		{name: "rotate sealed", env: withKey, args: []string{"keys", "rotate"}, want: "added key "},
		{name: "list sealed", env: withKey, args: []string{"keys", "list"}, want: "signing  true"},
		{name: "without the master key", args: []string{"keys", "list"}, want: "set " + keys.MasterKeyEnv, wantErr: true},
		{name: "with another", env: map[string]string{keys.MasterKeyEnv: keys.NewMasterKey()}, args: []string{"keys", "list"}, want: "does not open with this master key", wantErr: true},
		{name: "not a master key", env: map[string]string{keys.MasterKeyEnv: "hunter2"}, args: []string{"keys", "list"}, want: keys.MasterKeyEnv, wantErr: true},
	})
}

// ADM-01: the keys and client commands open only the deployment's stores
// and create none.
func TestADM01_MachineCommandsCreateNothing(t *testing.T) {
	for _, args := range [][]string{{"keys", "list"}, {"keys", "rotate"}, {"client", "list"}, {"client", "disable", "ci"}} {
		data := dbPath(t)
		if _, err := tether(t.Context(), t, data, "", args...); err == nil || !strings.Contains(err.Error(), "no database at") {
			t.Errorf("tether %q on no database: got %v, want it to say there is none", args, err)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("tether %q created %s", args, data)
		}
	}
}

// PW-07: the client and keys commands write audit events naming what they
// acted on, and never a secret.
func TestPW07_MachineCommandsWriteAuditEvents(t *testing.T) {
	data := initDB(t)
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"client", "add", "ci", "--scopes", "deploy", "--audience", "api://x"}, "event=client-add user=\"\" client_id=ci outcome=success actor=cli"},
		{[]string{"client", "rotate-secret", "ci"}, "event=client-rotate-secret user=\"\" client_id=ci outcome=success"},
		{[]string{"client", "disable", "nobody"}, "event=client-disable user=\"\" client_id=nobody outcome=failure"},
		{[]string{"keys", "rotate"}, "event=keys-rotate user=\"\" kid="},
	} {
		out, stderr, _ := tetherEnv(t, nil, "", append(s.args, "--data", data)...)
		if !strings.Contains(stderr, s.want) {
			t.Errorf("tether %q: stderr %q, want %q", s.args, stderr, s.want)
		}
		if m := secretLine.FindStringSubmatch(out); m != nil && strings.Contains(stderr, m[1]) {
			t.Errorf("tether %q: the audit event repeats the secret", s.args)
		}
	}
}

// CHG-03: tether user passwd ends the user's tokens with their sessions,
// unless --keep-tokens-on-password-change.
func TestCHG03_PasswdEndsTokens(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword+"\n", "user", "add", "alice", "--password-stdin")
	subject := token.UserSubject(lookUp(t, data, "alice").ID)
	pat := addPAT(t, data, "alice", "script")
	if out := mustTether(t, data, newPassword+"\n", "user", "passwd", "alice", "--password-stdin"); !strings.Contains(out, "sessions and tokens") {
		t.Errorf("user passwd: %q", out)
	}
	if g := subjectGeneration(t, data, subject); g != 1 {
		t.Errorf("after user passwd: generation %d, want 1", g)
	}
	if out := mustTether(t, data, "", "tokens", "list", "alice"); strings.Contains(out, pat.ID) {
		t.Errorf("tokens list after user passwd still shows %s: %q", pat.ID, out)
	}
	out := mustTether(t, data, alicePassword+"\n", "user", "passwd", "alice", "--password-stdin", "--keep-tokens-on-password-change")
	if !strings.Contains(out, "their tokens go on") {
		t.Errorf("user passwd --keep-tokens-on-password-change: %q", out)
	}
	if g := subjectGeneration(t, data, subject); g != 1 {
		t.Errorf("after user passwd keeping tokens: generation %d, want 1", g)
	}
}

// KEY-04: serve refuses to start on a sealed key ring without the master
// key it was sealed with, and says which variable to set.
func TestServeKEY04_SealedRingNeedsTheMasterKey(t *testing.T) {
	data := initDB(t)
	withKey := map[string]string{keys.MasterKeyEnv: keys.NewMasterKey()}
	runSteps(t, data, []step{{name: "rotate sealed", env: withKey, args: []string{"keys", "rotate"}, want: "added key "}})
	for name, env := range map[string]map[string]string{
		"without": nil,
		"another": {keys.MasterKeyEnv: keys.NewMasterKey()},
	} {
		_, _, err := tetherEnv(t, env, "", "serve", "--data", data, "--addr", "127.0.0.1:0")
		if err == nil || !strings.Contains(err.Error(), keys.MasterKeyEnv) {
			t.Errorf("serve %s the master key: got %v, want a refusal naming %s", name, err, keys.MasterKeyEnv)
		}
	}
}

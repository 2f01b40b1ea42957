package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
)

// addPAT gives the user called name a personal access token named label
// in the database file data, as the account page does, and returns it.
func addPAT(t *testing.T, data, name, label string) *account.PAT {
	t.Helper()
	_, h := account.NewPAT()
	p := &account.PAT{UserID: lookUp(t, data, name).ID, Name: label, Hash: h, Scopes: []string{"b", "a"}, Expires: time.Now().Add(time.Hour)}
	if err := testStores(t, data).accounts.CreatePAT(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// testStores opens the stores of the database file data until the test
// ends.
func testStores(t *testing.T, data string) *stores {
	t.Helper()
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestJWT09_TokensCommands: tokens list shows a user's tokens; tokens
// revoke puts one's id on the denylist and deletes it, and refuses
// another user's.
func TestJWT09_TokensCommands(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	mustTether(t, data, "another fine password", "user", "add", "bob", "--password-stdin")
	p := addPAT(t, data, "alice", "laptop\x1b[2J")
	bobs := addPAT(t, data, "bob", "bob's")
	runSteps(t, data, []step{
		{name: "list", args: []string{"tokens", "list", "Alice"}, want: p.ID + "  laptop?[2J  a,b"},
		{name: "list of nobody", args: []string{"tokens", "list", "nobody"}, want: `no user "nobody"`, wantErr: true},
		{name: "revoke another's", args: []string{"tokens", "revoke", "alice", bobs.ID}, want: `alice has no personal access token "` + bobs.ID + `"`, wantErr: true},
		{name: "revoke", args: []string{"tokens", "revoke", "alice", p.ID}, want: "revoked personal access token " + p.ID + " (laptop?[2J) of alice\n"},
		{name: "revoke again", args: []string{"tokens", "revoke", "alice", p.ID}, want: "alice has no personal access token", wantErr: true},
		{name: "list after", args: []string{"tokens", "list", "alice"}, want: "ID  NAME  SCOPES  CREATED  EXPIRES  LAST USED\n"},
		{name: "no id", args: []string{"tokens", "revoke", "alice"}, want: "ID is required", wantErr: true},
	})
	st := testStores(t, data)
	m, err := session.NewManager(st.sessions, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p       *account.PAT
		revoked bool
	}{{p, true}, {bobs, false}} {
		if got, err := m.TokenRevoked(t.Context(), tc.p.ID); err != nil || got != tc.revoked {
			t.Errorf("%s on the denylist: %v, %v; want %v", tc.p.ID, got, err, tc.revoked)
		}
		if _, err := st.accounts.PATByHash(t.Context(), tc.p.Hash); errors.Is(err, account.ErrPATNotFound) != tc.revoked {
			t.Errorf("%s deleted: %v; want %v", tc.p.ID, err, tc.revoked)
		}
	}
}

// TestPW07_TokensRevokeAudit: tokens revoke writes an audit event naming
// the user and the token, whether it succeeds or fails; tokens list,
// which only reads, writes none and creates no database (ADM-01).
func TestPW07_TokensRevokeAudit(t *testing.T) {
	data := initDB(t)
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	p := addPAT(t, data, "alice", "ci")
	for _, s := range []struct {
		id, want string
	}{
		{p.ID, "event=pat-revoke user=alice user_id="},
		{"pat_nope", "event=pat-revoke user=alice user_id="},
	} {
		_, stderr, _ := tetherEnv(t, nil, "", "tokens", "revoke", "alice", s.id, "--data", data)
		if !strings.Contains(stderr, s.want) || !strings.Contains(stderr, "pat_id="+s.id) {
			t.Errorf("revoke %s: stderr %q, want %q and the token's id", s.id, stderr, s.want)
		}
	}
	_, stderr, _ := tetherEnv(t, nil, "", "tokens", "list", "alice", "--data", data)
	if stderr != "" {
		t.Errorf("tokens list wrote %q", stderr)
	}
	missing := dbPath(t)
	if _, err := tether(t.Context(), t, missing, "", "tokens", "list", "alice"); err == nil {
		t.Error("tokens list on no database succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tokens list created %s", missing)
	}
}

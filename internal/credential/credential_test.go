package credential

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/postgres"
	"github.com/tetherauth/tether/store/sqlite"
	"github.com/tetherauth/tether/token"
	"golang.org/x/text/unicode/norm"
)

const (
	oldPW = "correct horse battery staple"
	newPW = "a brand new passphrase, long enough"
)

// A node is one tether process: its own connections, stores, session
// manager and Service. Nodes of one test share the database.
type node struct {
	accounts *hookedAccounts
	sessions *session.Manager
	svc      *Service
	store    *failingSessions
	pats     *failingPATs
}

// failingPATs is the account store's PATs whose DeletePATs fails while
// fail is set.
type failingPATs struct {
	account.PATs
	fail atomic.Bool
}

func (f *failingPATs) DeletePATs(ctx context.Context, userID string) (int, error) {
	if f.fail.Load() {
		return 0, errors.New("injected DeletePATs failure")
	}
	return f.PATs.DeletePATs(ctx, userID)
}

// hookedAccounts is an account store that can stop once in ByID or in
// SetPassword, so a test can run another node's change at exactly that
// point of a sign-in.
type hookedAccounts struct {
	account.Store
	afterByID   atomic.Pointer[func()]
	beforeSetPW atomic.Pointer[func()]
}

func (h *hookedAccounts) ByID(ctx context.Context, id string) (*account.User, error) {
	u, err := h.Store.ByID(ctx, id)
	if f := h.afterByID.Swap(nil); f != nil {
		(*f)()
	}
	return u, err
}

func (h *hookedAccounts) SetPassword(ctx context.Context, id, old, hash string) error {
	if f := h.beforeSetPW.Swap(nil); f != nil {
		(*f)()
	}
	return h.Store.SetPassword(ctx, id, old, hash)
}

// failingSessions is a session store whose RevokeUser, or its
// RevokeToken, can be made to fail.
type failingSessions struct {
	session.Store
	revokeFails      atomic.Bool
	revokeTokenFails atomic.Bool
}

func (f *failingSessions) RevokeToken(ctx context.Context, r session.Revocation) error {
	if f.revokeTokenFails.Load() {
		return errors.New("store down (test)")
	}
	return f.Store.RevokeToken(ctx, r)
}

func (f *failingSessions) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	if f.revokeFails.Load() {
		return errors.New("store down (test)")
	}
	return f.Store.RevokeUser(ctx, userID, keep)
}

// hasher is shared by the tests' nodes; the OWASP parameters make a hash
// take a while, so tests hash little.
var hasher = sync.OnceValue(func() *password.Hasher {
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		panic(err)
	}
	return h
})

// sqliteNodes returns n nodes on one SQLite file, each with its own
// *sql.DB, as separate processes on one machine would have.
func sqliteNodes(t *testing.T, n int) []*node {
	path := filepath.Join(t.TempDir(), "tether.db")
	var nodes []*node
	for range n {
		db := sqlitetest.Open(t, path)
		accounts, err := account.NewSQLite(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		store, err := sqlite.New(t.Context(), db, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		nodes = append(nodes, newNode(t, accounts, store))
	}
	return nodes
}

// postgresNodes returns n nodes on one PostgreSQL schema, accounts and
// sessions both there, each node with its own connection pool.
func postgresNodes(t *testing.T, n int) []*node {
	newPool := pgtest.Schema(t)
	var nodes []*node
	for range n {
		pool, err := newPool()
		if err != nil {
			t.Fatal(err)
		}
		accounts, err := account.NewPostgres(t.Context(), pool)
		if err != nil {
			t.Fatal(err)
		}
		store, err := postgres.New(t.Context(), pool, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		nodes = append(nodes, newNode(t, accounts, store))
	}
	return nodes
}

// backends runs test once on SQLite nodes and once on PostgreSQL nodes.
func backends(t *testing.T, test func(t *testing.T, nodes func(n int) []*node)) {
	t.Run("sqlite", func(t *testing.T) { test(t, func(n int) []*node { return sqliteNodes(t, n) }) })
	t.Run("postgres", func(t *testing.T) { test(t, func(n int) []*node { return postgresNodes(t, n) }) })
}

func newNode(t *testing.T, accounts account.Store, store session.Store) *node {
	nd := &node{accounts: &hookedAccounts{Store: accounts}, store: &failingSessions{Store: store},
		pats: &failingPATs{PATs: accounts.(account.PATs)}}
	var err error
	if nd.sessions, err = session.NewManager(nd.store, session.Config{}); err != nil {
		t.Fatal(err)
	}
	if nd.svc, err = New(Config{Accounts: nd.accounts, Sessions: nd.sessions, Hasher: hasher(), PATs: nd.pats}); err != nil {
		t.Fatal(err)
	}
	return nd
}

// addUser creates alice with oldPW through nd.
func addUser(t *testing.T, nd *node) *account.User {
	t.Helper()
	h, err := hasher().Hash(t.Context(), oldPW)
	if err != nil {
		t.Fatal(err)
	}
	u := &account.User{Name: "alice", PasswordHash: h}
	if err := nd.accounts.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// live reports whether token is a live session on nd.
func live(t *testing.T, nd *node, token string) bool {
	t.Helper()
	_, err := nd.sessions.Load(t.Context(), token)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Load: %v", err)
	}
	return err == nil
}

// signInDuring signs in as alice with pw on a, and runs change (on another
// node) at the worst moment: after the sign-in read the credential, before
// it checked the password and created its session. It returns what the
// sign-in returned.
func signInDuring(t *testing.T, a *node, pw string, change func()) (string, error) {
	t.Helper()
	hook := change
	a.accounts.afterByID.Store(&hook)
	_, token, _, err := a.svc.SignIn(t.Context(), "alice", pw, session.Meta{})
	if a.accounts.afterByID.Load() != nil {
		t.Fatal("the sign-in never read the user by id: the hook did not run")
	}
	return token, err
}

// SES-12 / CHG-02: an attacker who knows the old password signs in while
// the owner changes it on another node. The sign-in read the old hash, so
// it must not leave a session behind.
func TestSES12_SignInRacingPasswordChange(t *testing.T) {
	backends(t, func(t *testing.T, nodesOf func(n int) []*node) {
		nodes := nodesOf(2)
		a, b := nodes[0], nodes[1]
		u := addUser(t, a)
		_, owner, _, err := b.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		var fresh string
		token, err := signInDuring(t, a, oldPW, func() {
			fresh, _, err = b.svc.ChangePassword(t.Context(), u.ID, oldPW, newPW, session.Meta{})
			if err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
		})
		if !errors.Is(err, ErrChangedMeanwhile) || token != "" {
			t.Fatalf("sign-in with the old password racing a change: got token %q, error %v; want no session, ErrChangedMeanwhile", token, err)
		}
		for _, nd := range nodes {
			if live(t, nd, owner) {
				t.Errorf("the owner's session from before the change is still live")
			}
			if !live(t, nd, fresh) {
				t.Errorf("the fresh session of the change is not live")
			}
			if list, _ := nd.sessions.List(t.Context(), u.ID); len(list) != 1 {
				t.Errorf("sessions after the change: got %d, want only the fresh one", len(list))
			}
		}
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("sign-in with the old password after the change: got %v, want ErrWrongPassword", err)
		}
	})
}

// SES-12: the same with an administrator's reset (tether user passwd).
func TestSES12_SignInRacingPasswordReset(t *testing.T) {
	backends(t, func(t *testing.T, nodesOf func(n int) []*node) {
		nodes := nodesOf(2)
		a, b := nodes[0], nodes[1]
		u := addUser(t, a)
		token, err := signInDuring(t, a, oldPW, func() {
			if err := b.svc.SetPassword(t.Context(), u.ID, newPW); err != nil {
				t.Fatalf("SetPassword: %v", err)
			}
		})
		if !errors.Is(err, ErrChangedMeanwhile) || token != "" {
			t.Fatalf("sign-in racing a reset: got token %q, error %v; want no session, ErrChangedMeanwhile", token, err)
		}
		if list, _ := b.sessions.List(t.Context(), u.ID); len(list) != 0 {
			t.Errorf("sessions after the reset: got %d, want none", len(list))
		}
	})
}

// SES-10 / SES-12: a sign-in in flight when the user is disabled leaves no
// session, and enabling the user again brings none back.
func TestSES10_SignInRacingDisable(t *testing.T) {
	backends(t, func(t *testing.T, nodesOf func(n int) []*node) {
		nodes := nodesOf(2)
		a, b := nodes[0], nodes[1]
		u := addUser(t, a)
		token, err := signInDuring(t, a, oldPW, func() {
			if err := b.svc.Disable(t.Context(), u.ID); err != nil {
				t.Fatalf("Disable: %v", err)
			}
		})
		if err == nil || token != "" {
			t.Fatalf("sign-in racing a disable: got token %q, error %v; want no session", token, err)
		}
		if err := b.svc.Enable(t.Context(), u.ID); err != nil {
			t.Fatal(err)
		}
		if list, _ := a.sessions.List(t.Context(), u.ID); len(list) != 0 {
			t.Errorf("sessions after disable and enable: got %d, want none", len(list))
		}
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); err != nil {
			t.Errorf("sign-in once enabled: %v", err)
		}
	})
}

// SES-10: a disabled user can't sign in, with the same error the caller
// answers like a wrong password (PW-05).
func TestSES10_DisabledCantSignIn(t *testing.T) {
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	_, before, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.svc.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if live(t, nd, before) {
		t.Error("a session from before the disable is live")
	}
	for _, tc := range []struct {
		name, user, pw string
		want           error
	}{
		{"disabled", "alice", oldPW, ErrDisabled},
		{"disabled, wrong password", "alice", "wrong password here", ErrWrongPassword},
		{"unknown", "bob", oldPW, ErrUnknownUser},
	} {
		if _, _, _, err := nd.svc.SignIn(t.Context(), tc.user, tc.pw, session.Meta{}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// PW-03 / SES-12: a sign-in's rehash never overwrites a password changed
// while it ran.
func TestPW03_RehashNeverOverwritesAChange(t *testing.T) {
	backends(t, func(t *testing.T, nodesOf func(n int) []*node) {
		nodes := nodesOf(2)
		a, b := nodes[0], nodes[1]
		weak, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 19 * 1024, Time: 2, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		// The nodes hash with stronger parameters: alice's hash needs a rehash.
		strong, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 19 * 1024, Time: 3, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			if nd.svc, err = New(Config{Accounts: nd.accounts, Sessions: nd.sessions, Hasher: strong}); err != nil {
				t.Fatal(err)
			}
		}
		h, err := weak.Hash(t.Context(), oldPW)
		if err != nil {
			t.Fatal(err)
		}
		u := &account.User{Name: "alice", PasswordHash: h}
		if err := a.accounts.Create(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		change := func() {
			if _, _, err := b.svc.ChangePassword(t.Context(), u.ID, oldPW, newPW, session.Meta{}); err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
		}
		a.accounts.beforeSetPW.Store(&change) // between the sign-in's check and its rehash
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); err != nil {
			t.Fatalf("sign-in: %v", err)
		}
		if a.accounts.beforeSetPW.Load() != nil {
			t.Fatal("the sign-in did not rehash: the hook did not run")
		}
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", newPW, session.Meta{}); err != nil {
			t.Errorf("sign-in with the changed password after the rehash: %v", err)
		}
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("sign-in with the old password after the change: got %v, want ErrWrongPassword", err)
		}
	})
}

// CHG-04: when the sessions can't be revoked, the password is not changed:
// the old one still works, the new one doesn't, the caller's old session
// lives on and no fresh one is left behind.
func TestCHG04_FailedRevocationChangesNothing(t *testing.T) {
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	_, before, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	nd.store.revokeFails.Store(true)
	if _, _, err := nd.svc.ChangePassword(t.Context(), u.ID, oldPW, newPW, session.Meta{}); err == nil {
		t.Fatal("ChangePassword with the revocation failing: got no error")
	}
	if err := nd.svc.SetPassword(t.Context(), u.ID, newPW); err == nil {
		t.Fatal("SetPassword with the revocation failing: got no error")
	}
	nd.store.revokeFails.Store(false)
	if !live(t, nd, before) {
		t.Error("the caller's session died with a change that failed")
	}
	if list, _ := nd.sessions.List(t.Context(), u.ID); len(list) != 1 {
		t.Errorf("sessions after the failed changes: got %d, want the caller's only", len(list))
	}
	if _, _, _, err := nd.svc.SignIn(t.Context(), "alice", newPW, session.Meta{}); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("sign-in with the new password: got %v, want ErrWrongPassword", err)
	}
	if _, _, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); err != nil {
		t.Errorf("sign-in with the old password: %v", err)
	}
}

// CHG-01: the current password is checked; a wrong one changes nothing.
func TestCHG01_ChangeChecksCurrentPassword(t *testing.T) {
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	if _, _, err := nd.svc.ChangePassword(t.Context(), u.ID, "not the password", newPW, session.Meta{}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("change with a wrong current password: got %v, want ErrWrongPassword", err)
	}
	if _, _, err := nd.svc.ChangePassword(t.Context(), u.ID, oldPW, "short", session.Meta{}); !errors.Is(err, password.ErrTooShort) {
		t.Fatalf("change to a too short password: got %v, want ErrTooShort", err)
	}
	if _, _, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); err != nil {
		t.Errorf("sign-in with the unchanged password: %v", err)
	}
}

// A new password that is the current one is refused, by the owner's
// change and an administrator's reset alike, in any spelling that is the
// same password (PW-09), and nothing changes: every session lives on.
func TestChangeToTheSamePasswordIsRefused(t *testing.T) {
	const pw = "Crème brûlée for ever and ever" // è, û, é precomposed (NFC)
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	if err := nd.svc.SetPassword(t.Context(), u.ID, pw); err != nil {
		t.Fatal(err)
	}
	_, token, _, err := nd.svc.SignIn(t.Context(), "alice", pw, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for _, next := range []string{pw, norm.NFD.String(pw)} {
		if _, _, err := nd.svc.ChangePassword(t.Context(), u.ID, pw, next, session.Meta{}); !errors.Is(err, ErrUnchanged) {
			t.Errorf("change to %q: got %v, want ErrUnchanged", next, err)
		}
		if err := nd.svc.SetPassword(t.Context(), u.ID, next); !errors.Is(err, ErrUnchanged) {
			t.Errorf("reset to %q: got %v, want ErrUnchanged", next, err)
		}
	}
	if !live(t, nd, token) {
		t.Errorf("a refused change ended the session")
	}
	if err := nd.svc.SetPassword(t.Context(), u.ID, newPW); err != nil {
		t.Errorf("reset to another password: %v", err)
	}
}

// Two changes from the same current password, on two nodes: one wins, the
// other is told the account changed meanwhile, and only the winner's
// password works.
func TestCHG02_ConcurrentChangesOneWins(t *testing.T) {
	backends(t, func(t *testing.T, nodesOf func(n int) []*node) {
		nodes := nodesOf(2)
		a, b := nodes[0], nodes[1]
		u := addUser(t, a)
		const other = "another new passphrase, also long"
		var errB error
		change := func() { _, _, errB = b.svc.ChangePassword(t.Context(), u.ID, oldPW, other, session.Meta{}) }
		a.accounts.beforeSetPW.Store(&change)
		_, _, errA := a.svc.ChangePassword(t.Context(), u.ID, oldPW, newPW, session.Meta{})
		if errB != nil || !errors.Is(errA, ErrChangedMeanwhile) {
			t.Fatalf("two changes: got %v (first) and %v (second, which landed first); want ErrChangedMeanwhile and nil", errA, errB)
		}
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", other, session.Meta{}); err != nil {
			t.Errorf("sign-in with the winning password: %v", err)
		}
		if list, _ := a.sessions.List(t.Context(), u.ID); len(list) != 2 {
			t.Errorf("sessions: got %d, want the winner's fresh one and the sign-in's", len(list))
		}
	})
}

// SES-10 / SES-12: a sign-in in flight when the user is deleted leaves no
// session; a session from before dies with the account.
func TestSES10_SignInRacingDelete(t *testing.T) {
	backends(t, func(t *testing.T, nodesOf func(n int) []*node) {
		nodes := nodesOf(2)
		a, b := nodes[0], nodes[1]
		u := addUser(t, a)
		_, before, _, err := b.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		token, err := signInDuring(t, a, oldPW, func() {
			if err := b.svc.Delete(t.Context(), u.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		})
		if err == nil || token != "" {
			t.Fatalf("sign-in racing a delete: got token %q, error %v; want no session", token, err)
		}
		if live(t, a, before) {
			t.Error("a session from before the delete is live")
		}
		if _, _, _, err := a.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("sign-in once deleted: got %v, want ErrUnknownUser", err)
		}
	})
}

// Deleting the only admin who can sign in is refused before anything
// changes: their sessions live on. A failed revocation is reported, and
// the account is gone all the same.
func TestDeleteRefusalsAndFailures(t *testing.T) {
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	root := &account.User{Name: "root", Admin: true}
	if err := nd.accounts.Create(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	tb, err := nd.sessions.Begin(t.Context(), root.ID)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := nd.sessions.Create(t.Context(), tb, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.svc.Delete(t.Context(), root.ID); !errors.Is(err, account.ErrLastAdmin) {
		t.Errorf("Delete(root): got %v, want ErrLastAdmin", err)
	}
	if !live(t, nd, token) {
		t.Error("a refused delete ended the admin's session")
	}
	nd.store.revokeFails.Store(true)
	if err := nd.svc.Delete(t.Context(), u.ID); err == nil || !strings.Contains(err.Error(), "deleted, but ending their sessions and tokens failed") {
		t.Errorf("Delete with the revocation failing: got %v, want it to say the user is deleted and the sessions not ended", err)
	}
	if _, err := nd.accounts.ByID(t.Context(), u.ID); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("ByID after the delete: got %v, want ErrNotFound", err)
	}
}

// A rename changes the name a user signs in with, not who they are: their
// sessions go on.
func TestRenameKeepsSessions(t *testing.T) {
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	_, before, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	nd.svc.cfg.Changed = func(id string) { changed = append(changed, id) }
	if err := nd.svc.Rename(t.Context(), u.ID, "Alicia"); err != nil {
		t.Fatal(err)
	}
	if !live(t, nd, before) || !slices.Equal(changed, []string{u.ID}) {
		t.Errorf("after the rename: session live %v, Changed told %q; want true, [%s]", live(t, nd, before), changed, u.ID)
	}
	if _, _, _, err := nd.svc.SignIn(t.Context(), "alicia", oldPW, session.Meta{}); err != nil {
		t.Errorf("sign-in with the new name: %v", err)
	}
	if _, _, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("sign-in with the old name: got %v, want ErrUnknownUser", err)
	}
	if err := nd.svc.Rename(t.Context(), u.ID, "a b"); !errors.Is(err, account.ErrInvalidName) {
		t.Errorf("Rename to an invalid name: got %v, want ErrInvalidName", err)
	}
}

// CHG-03: a password change, a disable and a delete end the user's tokens
// in one write (their token subject's generation, read on another node);
// with KeepTokensOnPasswordChange a password change leaves them.
func TestCHG03_CredentialChangesEndTokens(t *testing.T) {
	backends(t, func(t *testing.T, nodes func(n int) []*node) {
		ns := nodes(2)
		a, b := ns[0], ns[1]
		u := addUser(t, a)
		subject := token.UserSubject(u.ID)
		gen := func() uint64 {
			t.Helper()
			g, err := b.sessions.SubjectGeneration(t.Context(), subject)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		before := gen()
		if err := a.svc.SetPassword(t.Context(), u.ID, newPW); err != nil {
			t.Fatal(err)
		}
		if g := gen(); g <= before {
			t.Errorf("after a password change: generation %d, want past %d", g, before)
		}
		keep := *a.svc
		keep.cfg.KeepTokensOnPasswordChange = true
		before = gen()
		if err := keep.SetPassword(t.Context(), u.ID, "yet another passphrase, long enough"); err != nil {
			t.Fatal(err)
		}
		if g := gen(); g != before {
			t.Errorf("after a password change keeping tokens: generation %d, want %d", g, before)
		}
		for _, change := range []func() error{
			func() error { return a.svc.Disable(t.Context(), u.ID) },
			func() error { return a.svc.Delete(t.Context(), u.ID) },
		} {
			before = gen()
			if err := change(); err != nil {
				t.Fatal(err)
			}
			if g := gen(); g <= before {
				t.Errorf("generation %d, want past %d", g, before)
			}
		}
	})
}

// CHG-03: a password change deletes the user's personal access tokens
// from the account store too (read on another node), so that they stay
// ended if the session store loses the generation that ends them at once;
// with KeepTokensOnPasswordChange they stay. If they can't be deleted,
// the change is undone and reported (CHG-04).
func TestCHG03_PasswordChangeDeletesPATs(t *testing.T) {
	backends(t, func(t *testing.T, nodes func(n int) []*node) {
		ns := nodes(2)
		a, b := ns[0], ns[1]
		u := addUser(t, a)
		newPAT := func() *account.PAT {
			t.Helper()
			_, h := account.NewPAT()
			p := &account.PAT{UserID: u.ID, Name: "script", Hash: h, Expires: time.Now().Add(time.Hour)}
			if err := a.pats.CreatePAT(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		alive := func(p *account.PAT) bool {
			t.Helper()
			_, err := b.pats.PATByHash(t.Context(), p.Hash)
			if err != nil && !errors.Is(err, account.ErrPATNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}

		p := newPAT()
		a.pats.fail.Store(true)
		if err := a.svc.SetPassword(t.Context(), u.ID, newPW); err == nil || !strings.Contains(err.Error(), "personal access tokens") {
			t.Errorf("SetPassword with DeletePATs failing: got %v, want an error about the tokens", err)
		}
		if _, _, _, err := b.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); err != nil {
			t.Errorf("sign-in with the old password after the failed change: %v", err)
		}
		a.pats.fail.Store(false)

		keep := *a.svc
		keep.cfg.KeepTokensOnPasswordChange = true
		if err := keep.SetPassword(t.Context(), u.ID, newPW); err != nil {
			t.Fatal(err)
		}
		if !alive(p) {
			t.Error("a password change keeping tokens deleted a personal access token")
		}
		if err := a.svc.SetPassword(t.Context(), u.ID, "yet another passphrase, long enough"); err != nil {
			t.Fatal(err)
		}
		if alive(p) {
			t.Error("a personal access token outlived a password change in the account store")
		}
		p = newPAT()
		if err := a.svc.Disable(t.Context(), u.ID); err != nil {
			t.Fatal(err)
		}
		if alive(p) {
			t.Error("a personal access token outlived disabling its owner in the account store")
		}
	})
}

// CHG-04: when the tokens can't be ended, the password change is undone
// and reported, like when the sessions can't.
func TestCHG04_FailedTokenRevocationChangesNothing(t *testing.T) {
	nd := sqliteNodes(t, 1)[0]
	u := addUser(t, nd)
	nd.store.revokeTokenFails.Store(true)
	if err := nd.svc.SetPassword(t.Context(), u.ID, newPW); err == nil {
		t.Fatal("SetPassword with the token revocation failing: got no error")
	}
	if err := nd.svc.Disable(t.Context(), u.ID); err == nil || !strings.Contains(err.Error(), "tokens") {
		t.Errorf("Disable with the token revocation failing: got %v, want an error about the tokens", err)
	}
	nd.store.revokeTokenFails.Store(false)
	if err := nd.svc.Enable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := nd.svc.SignIn(t.Context(), "alice", oldPW, session.Meta{}); err != nil {
		t.Errorf("sign-in with the old password after the failed change: %v", err)
	}
}

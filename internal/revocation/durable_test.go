package revocation

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/sqlitetest"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
	"github.com/tetherauth/tether/token"
)

// durableNode is a node whose session store is store and whose journal is
// the account store acc: a Manager running its feed into a View over
// Durable, as tether serve wires them.
func durableNode(t *testing.T, store session.Store, acc *account.SQLite) (Durable, *View) {
	t.Helper()
	var view *View
	m, err := session.NewManager(store, session.Config{Logger: quiet, OnEvent: func(e session.Event) { view.Handle(e) }})
	if err != nil {
		t.Fatal(err)
	}
	d := Durable{Manager: m, Journal: acc}
	if view, err = NewView(d, ViewConfig{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	run(t, m.Run)
	run(t, view.Run)
	testkit.WaitFor(t, "the snapshot to be loaded", func() bool { return view.loaded.Load() && m.Current() })
	return d, view
}

// JWT-09: a token revoked by jti stays refused when the session store's
// data is lost (a new, empty store): the account store's journal brings
// the revocation back into the View's snapshot, and TokenRevoked reads it.
func TestJWT09_DurableSurvivesLostSessionStore(t *testing.T) {
	acc, err := account.NewSQLite(t.Context(), sqlitetest.Open(t, filepath.Join(t.TempDir(), "tether.db")))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	before, _ := durableNode(t, memory.New(), acc)
	if err := before.RevokeToken(t.Context(), session.Revocation{JTI: "j1", Exp: exp}); err != nil {
		t.Fatal(err)
	}

	after, view := durableNode(t, memory.New(), acc) // the session store's data is gone
	if revoked, err := after.TokenRevoked(t.Context(), "j1"); err != nil || !revoked {
		t.Errorf("TokenRevoked(j1) after the loss = %v, %v; want true", revoked, err)
	}
	if err := view.Check(t.Context(), "client:a", 0, "j1"); !errors.Is(err, token.ErrRevoked) {
		t.Errorf("the View's Check of j1 after the loss: %v, want ErrRevoked", err)
	}
	if err := view.Check(t.Context(), "client:a", 0, "j2"); err != nil {
		t.Errorf("the View's Check of j2, never revoked: %v", err)
	}
	found := false
	for _, r := range view.entries() {
		found = found || r.JTI == "j1"
	}
	if !found {
		t.Error("the View's denylist, which its streams send, lacks j1")
	}
}

// A revocation the journal can't record is not made, and is reported:
// the caller tries again.
func TestDurableJournalFailsClosed(t *testing.T) {
	acc, err := account.NewSQLite(t.Context(), sqlitetest.Open(t, filepath.Join(t.TempDir(), "tether.db")))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := durableNode(t, memory.New(), acc)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.RevokeToken(ctx, session.Revocation{JTI: "j1", Exp: time.Now().Add(time.Hour)}); !errors.Is(err, context.Canceled) {
		t.Errorf("RevokeToken with the journal unreachable: %v, want context.Canceled", err)
	}
	if revoked, _ := d.Manager.TokenRevoked(t.Context(), "j1"); revoked {
		t.Error("the session store has j1, which the journal refused")
	}
}

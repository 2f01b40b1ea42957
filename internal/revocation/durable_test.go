package revocation

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
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
func durableNode(t *testing.T, store session.Store, acc Journal) (Durable, *View) {
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

// hookJournal is a Journal with a test's hooks: afterRecord runs when
// RecordRevocation has written and before it answers (the moment between
// Durable's journal write and its session store write), beforeList when
// RecordedRevocations is called and before it reads (the moment between
// the two reads of a snapshot).
type hookJournal struct {
	Journal
	afterRecord atomic.Pointer[func()]
	beforeList  atomic.Pointer[func()]
}

func (j *hookJournal) RecordRevocation(ctx context.Context, jti string, exp time.Time) error {
	err := j.Journal.RecordRevocation(ctx, jti, exp)
	if h := j.afterRecord.Swap(nil); h != nil {
		(*h)()
	}
	return err
}

func (j *hookJournal) RecordedRevocations(ctx context.Context, now time.Time) ([]account.RecordedRevocation, error) {
	if h := j.beforeList.Swap(nil); h != nil {
		(*h)()
	}
	return j.Journal.RecordedRevocations(ctx, now)
}

// refuses reports whether v's Check refuses jti as revoked.
func refuses(t *testing.T, v *View, jti string) bool {
	return errors.Is(v.Check(t.Context(), "client:a", 0, jti), token.ErrRevoked)
}

// JWT-09, across two nodes, stopped between Durable's two writes: the
// journal has the jti and the session store not yet. A node asking the
// stores refuses it, and so does a node whose snapshot is loaded then;
// when the session store write fails there, RevokeToken says so, the
// revocation is kept by the journal for every snapshot to come, and the
// caller's retry reaches every node's View through the feed.
func TestJWT09_DurableBetweenJournalAndStore(t *testing.T) {
	acc, err := account.NewSQLite(t.Context(), sqlitetest.Open(t, filepath.Join(t.TempDir(), "tether.db")))
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New()
	j := &hookJournal{Journal: acc}
	a, _ := durableNode(t, store, j)
	b, viewB := durableNode(t, store, acc)
	r := session.Revocation{JTI: "j1", Exp: time.Now().Add(time.Hour)}

	ctx, cancel := context.WithCancel(t.Context())
	between := func() {
		if revoked, err := b.TokenRevoked(t.Context(), "j1"); err != nil || !revoked {
			t.Errorf("between the writes, node B's TokenRevoked(j1) = %v, %v; want true", revoked, err)
		}
		if _, viewC := durableNode(t, memory.New(), acc); !refuses(t, viewC, "j1") {
			t.Error("between the writes, a snapshot loaded then lacks j1")
		}
		cancel() // the session store write that follows fails
	}
	j.afterRecord.Store(&between)
	if err := a.RevokeToken(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("RevokeToken whose session store write failed: %v, want context.Canceled", err)
	}
	if revoked, _ := a.Manager.TokenRevoked(t.Context(), "j1"); revoked {
		t.Fatal("the session store has j1: the hook did not stop the write")
	}
	if _, viewD := durableNode(t, memory.New(), acc); !refuses(t, viewD, "j1") {
		t.Error("after the failed write, a snapshot lacks j1, which the journal holds")
	}

	if err := a.RevokeToken(t.Context(), r); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	testkit.WaitFor(t, "node B's View to refuse j1", func() bool { return refuses(t, viewB, "j1") })
}

// JWT-09: a revocation made while a node's snapshot has read the session
// store and not yet the journal is in that node's View once it is loaded,
// whichever read it came after.
func TestJWT09_DurableRevokedDuringSnapshot(t *testing.T) {
	acc, err := account.NewSQLite(t.Context(), sqlitetest.Open(t, filepath.Join(t.TempDir(), "tether.db")))
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New()
	a, _ := durableNode(t, store, acc)
	j := &hookJournal{Journal: acc}
	revoke := func() {
		if err := a.RevokeToken(t.Context(), session.Revocation{JTI: "j1", Exp: time.Now().Add(time.Hour)}); err != nil {
			t.Errorf("RevokeToken during the snapshot: %v", err)
		}
	}
	j.beforeList.Store(&revoke)
	_, viewB := durableNode(t, store, j) // returns once its snapshot is loaded
	if j.beforeList.Load() != nil {
		t.Fatal("the snapshot never read the journal")
	}
	if !refuses(t, viewB, "j1") {
		t.Error("a revocation made between the snapshot's two reads is not in the View")
	}
}

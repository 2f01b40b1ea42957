package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// revoke calls RevokeUser and fails the test if it fails.
func revoke(t *testing.T, s session.Store, user string, keep *session.Hash) {
	t.Helper()
	if err := s.RevokeUser(t.Context(), user, keep); err != nil {
		t.Fatalf("RevokeUser(%q): %v", user, err)
	}
}

func testRevokeUserKillsAll(t *testing.T, s session.Store, _ func() error) {
	var alice []*session.Record
	for n := range 3 {
		alice = append(alice, create(t, s, newRecord("alice", n)))
	}
	bob := create(t, s, newRecord("bob", 1))

	revoke(t, s, "alice", nil)
	for _, r := range alice {
		checkDead(t, s, r.Hash)
	}
	checkList(t, s, "alice")
	checkRecord(t, mustGet(t, s, bob.Hash), bob) // other users keep theirs
	checkList(t, s, "bob", bob)

	// A record created after the bump is live.
	after := create(t, s, newRecord("alice", 10))
	checkRecord(t, mustGet(t, s, after.Hash), after)
	checkList(t, s, "alice", after)
}

func testRevokeUserKeep(t *testing.T, s session.Store, _ func() error) {
	a1 := create(t, s, newRecord("alice", 1))
	a2 := create(t, s, newRecord("alice", 2))
	a3 := create(t, s, newRecord("alice", 3))

	revoke(t, s, "alice", &a2.Hash)
	checkDead(t, s, a1.Hash)
	checkDead(t, s, a3.Hash)
	kept := mustGet(t, s, a2.Hash)
	if kept.Gen == a2.Gen {
		t.Errorf("Gen of the kept record: got %d, want it moved to the new generation", kept.Gen)
	}
	checkList(t, s, "alice", kept)

	// The kept record lives on as any other: it can be saved...
	kept.Data["theme"] = []byte("light")
	if err := s.Save(t.Context(), kept); err != nil {
		t.Fatalf("Save of the kept record: %v", err)
	}
	checkRecord(t, mustGet(t, s, a2.Hash), kept)

	// ...and the next bump kills it.
	revoke(t, s, "alice", nil)
	checkDead(t, s, a2.Hash)
}

// keep only keeps a record of the user being revoked; a record of another
// user is left exactly as it was, generation included (moved to the revoked
// user's generation, it could outlive its own user's next bump, or die).
func testRevokeUserKeepOtherUser(t *testing.T, s session.Store, _ func() error) {
	a := create(t, s, newRecord("alice", 1))
	b := create(t, s, newRecord("bob", 1))

	revoke(t, s, "alice", &b.Hash)
	checkDead(t, s, a.Hash)
	checkRecord(t, mustGet(t, s, b.Hash), b)

	revoke(t, s, "bob", nil)
	checkDead(t, s, b.Hash)
}

// keep can't bring back a record that is already dead.
func testRevokeUserKeepDead(t *testing.T, s session.Store, _ func() error) {
	a := create(t, s, newRecord("alice", 1))
	revoke(t, s, "alice", nil)
	revoke(t, s, "alice", &a.Hash)
	checkDead(t, s, a.Hash)
	checkList(t, s, "alice")

	missing := newRecord("alice", 2).Hash
	revoke(t, s, "alice", &missing)
	checkList(t, s, "alice")
}

// A user without sessions still gets the bump.
func testRevokeUserWithoutSessions(t *testing.T, s session.Store, _ func() error) {
	revoke(t, s, "nobody", nil)
	checkList(t, s, "nobody")

	before := create(t, s, newRecord("alice", 1))
	if err := s.Delete(t.Context(), before.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	revoke(t, s, "alice", nil) // alice has no session now
	after := create(t, s, newRecord("alice", 2))
	if after.Gen == before.Gen {
		t.Errorf("Gen after a bump with no sessions: got %d, want a generation other than %d", after.Gen, before.Gen)
	}
	checkRecord(t, mustGet(t, s, after.Hash), after)
	checkList(t, s, "alice", after)
}

// expirer is the optional capability a store may have to forget expired
// records (the Manager calls it from Run).
type expirer interface {
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

func testDeleteExpired(t *testing.T, s session.Store, _ func() error) {
	x, ok := s.(expirer)
	if !ok {
		t.Skip("the store has no DeleteExpired")
	}
	now := base.Add(24 * time.Hour)
	at := func(user string, n int, idle, abs time.Time) *session.Record {
		r := newRecord(user, n)
		r.IdleDeadline, r.AbsDeadline = idle, abs
		return create(t, s, r)
	}
	tests := []struct {
		name string
		r    *session.Record
		gone bool
	}{
		{"idle passed", at("alice", 1, now.Add(-time.Second), now.Add(time.Hour)), true},
		{"absolute passed", at("alice", 2, now.Add(time.Hour), now.Add(-time.Hour)), true},
		{"idle exactly now", at("alice", 3, now, now.Add(time.Hour)), true},
		{"absolute exactly now", at("bob", 4, now.Add(time.Hour), now), true},
		{"both ahead", at("alice", 5, now.Add(time.Millisecond), now.Add(time.Hour)), false},
		{"other user ahead", at("bob", 6, now.Add(time.Minute), now.Add(time.Hour)), false},
	}

	n, err := x.DeleteExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n != 4 {
		t.Errorf("DeleteExpired: got %d records removed, want 4", n)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.gone {
				checkDead(t, s, tc.r.Hash)
			} else {
				checkRecord(t, mustGet(t, s, tc.r.Hash), tc.r)
			}
		})
	}

	// Nothing left to remove.
	if n, err := x.DeleteExpired(t.Context(), now); err != nil || n != 0 {
		t.Errorf("DeleteExpired again: got %d, %v; want 0, nil", n, err)
	}
}

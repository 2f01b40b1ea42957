package postgres

import (
	"errors"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// SES-12 across nodes: node A reads the generation before checking the
// credential, node B revokes the user while A's Create is under way. On
// every ordering, no record of the old generation is left live: A's
// Create refuses, or its record dies with the bump.
func TestSES12_CreateRacingRevokeAcrossNodes(t *testing.T) {
	const user = "alice"

	t.Run("revocation commits before the create starts", func(t *testing.T) {
		a, b, _ := nodes(t)
		r := storekit.Record(user, 1)
		gen := mustGeneration(t, a.Store, user)
		if err := b.RevokeUser(t.Context(), user, nil); err != nil {
			t.Fatalf("RevokeUser: %v", err)
		}
		wantError(t, "Create", createCall(t, a.Store, r, gen, session.CreateOptions{}).wait(), session.ErrRevoked)
		checkLive(t, []*Store{a.Store, b.Store}, user, nil, r.Hash)
	})

	// B's revocation holds the generation row, stuck on a record of the
	// user's that the test locked; A's Create waits for the row, then sees
	// the new generation.
	t.Run("create waits for the revocation", func(t *testing.T) {
		a, b, admin := nodes(t)
		old := storekit.Record(user, 0)
		mustCreate(t, a.Store, old)
		r := storekit.Record(user, 1)
		gen := mustGeneration(t, a.Store, user)

		release := lockRecord(t, admin, old.Hash)
		revoking := revokeCall(t, b.Store, user)
		awaitLockWaits(t, admin, b, 1, revoking)
		creating := createCall(t, a.Store, r, gen, session.CreateOptions{MaxPerUser: 2})
		awaitLockWaits(t, admin, a, 1, creating, revoking)
		release()

		wantError(t, "RevokeUser", revoking.wait(), nil)
		wantError(t, "Create", creating.wait(), session.ErrRevoked)
		checkLive(t, []*Store{a.Store, b.Store}, user, nil, old.Hash, r.Hash)
	})

	// A's Create holds the generation row, paused before its COMMIT; B's
	// revocation waits for it, then bumps past the record A committed.
	t.Run("revocation waits for the create", func(t *testing.T) {
		a, b, admin := nodes(t)
		r := storekit.Record(user, 1)
		gen := mustGeneration(t, a.Store, user)

		paused, resume := pauseBeforeCommit(t, a.Store)
		creating := createCall(t, a.Store, r, gen, session.CreateOptions{MaxPerUser: 2})
		awaitPause(t, paused, creating)
		revoking := revokeCall(t, b.Store, user)
		awaitLockWaits(t, admin, b, 1, revoking)
		resume()

		wantError(t, "Create", creating.wait(), nil)
		wantError(t, "RevokeUser", revoking.wait(), nil)
		if r.Gen != gen {
			t.Errorf("Gen of the created record: got %d, want %d, the one read before", r.Gen, gen)
		}
		checkLive(t, []*Store{a.Store, b.Store}, user, nil, r.Hash)
		// The revocation's snapshot predates A's commit: A's row may be
		// left in the table (see revokeSQL), but only dead.
		gens, current := rowsOf(t, admin, user)
		for _, g := range gens {
			if g >= current {
				t.Errorf("a row of generation %d left at generation %d", g, current)
			}
		}
		t.Logf("rows left by the revocation: %d", len(gens))
	})

	// A rotation (a sign-in's new token) is a Create too: paused before
	// its COMMIT, it has deleted the old record; the revocation that waits
	// for it kills the new one.
	t.Run("revocation waits for a rotation", func(t *testing.T) {
		a, b, admin := nodes(t)
		old := storekit.Record(user, 0)
		mustCreate(t, a.Store, old)
		r := storekit.Record(user, 1)

		paused, resume := pauseBeforeCommit(t, a.Store)
		creating := createCall(t, a.Store, r, 0, session.CreateOptions{Replace: &old.Hash, MaxPerUser: 2})
		awaitPause(t, paused, creating)
		revoking := revokeCall(t, b.Store, user)
		awaitLockWaits(t, admin, b, 1, revoking)
		resume()

		wantError(t, "rotation", creating.wait(), nil)
		wantError(t, "RevokeUser", revoking.wait(), nil)
		checkLive(t, []*Store{a.Store, b.Store}, user, nil, old.Hash, r.Hash)
	})

	// The revocation holds the generation row, stuck on another record of
	// the user's; the rotation that waits for it finds the record it
	// replaces revoked.
	t.Run("rotation waits for the revocation", func(t *testing.T) {
		a, b, admin := nodes(t)
		old, other := storekit.Record(user, 0), storekit.Record(user, 1)
		mustCreate(t, a.Store, old)
		mustCreate(t, a.Store, other)
		r := storekit.Record(user, 2)

		release := lockRecord(t, admin, other.Hash)
		revoking := revokeCall(t, b.Store, user)
		awaitLockWaits(t, admin, b, 1, revoking)
		creating := createCall(t, a.Store, r, 0, session.CreateOptions{Replace: &old.Hash, MaxPerUser: 2})
		awaitLockWaits(t, admin, a, 1, creating, revoking)
		release()

		wantError(t, "RevokeUser", revoking.wait(), nil)
		wantError(t, "rotation", creating.wait(), session.ErrNotFound)
		checkLive(t, []*Store{a.Store, b.Store}, user, nil, old.Hash, other.Hash, r.Hash)
	})
}

// SES-13 across nodes: creates of one user on two nodes, all stuck on the
// user's generation row until every one has begun, then let go at once,
// leave the user with no more records than the cap. Each record evicted
// is a Changed event on a third node's feed.
func TestSES13_CapAcrossNodes(t *testing.T) {
	const (
		user    = "alice"
		limit   = 3
		perNode = 4 // each pool of pgtest has 4 connections
	)
	a, b, admin := nodes(t)
	f := storekit.Follow(t, openStore(t, admin, "c"))
	var all []*session.Record
	for n := range limit - 1 {
		r := storekit.Record(user, n)
		mustCreate(t, a.Store, r)
		all = append(all, r)
	}
	gen := mustGeneration(t, a.Store, user)

	end := hold(t, admin, `SELECT gen FROM session_generations WHERE user_id = $1 FOR UPDATE`, user)
	var calls []*call
	for i, n := range []node{a, b} {
		var mine []*call
		for k := range perNode {
			r := storekit.Record(user, 100+i*perNode+k)
			all = append(all, r)
			mine = append(mine, createCall(t, n.Store, r, gen, session.CreateOptions{MaxPerUser: limit}))
		}
		awaitLockWaits(t, admin, n, perNode, mine...)
		calls = append(calls, mine...)
	}
	end(true)
	for _, c := range calls {
		wantError(t, "Create", c.wait(), nil)
	}

	for _, s := range []*Store{a.Store, b.Store} {
		list, err := s.List(t.Context(), user)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(list) != limit {
			t.Errorf("node %s: live records after %d concurrent creates under a cap of %d: got %d", s.hub.key.node, len(calls), limit, len(list))
		}
	}
	var rows int
	if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE user_id = $1`, user).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != limit {
		t.Errorf("rows of the user: got %d, want %d: an evicted record is deleted, not only dead", rows, limit)
	}
	list, _ := a.List(t.Context(), user)
	kept := make(map[session.Hash]bool)
	for _, r := range list {
		kept[r.Hash] = true
	}
	for _, r := range all {
		if !kept[r.Hash] {
			f.Await(t, 0, session.Event{Kind: session.Changed, Hash: r.Hash})
		}
	}
}

// SES-03 across nodes: a rotation of a record on node A racing a Delete of
// the same record (a sign-out) on node B. The rotation fails, or it
// succeeds and the old record is gone: never both tokens alive.
func TestSES03_RotateRacingDeleteAcrossNodes(t *testing.T) {
	const user = "alice"

	// The rotation holds the generation row, stuck on inserting its new
	// record (the test claimed the hash, uncommitted), when B's Delete
	// commits: it then finds the record it replaces gone, and rolls back.
	t.Run("delete commits while the rotation is under way", func(t *testing.T) {
		a, b, admin := nodes(t)
		old := storekit.Record(user, 0)
		mustCreate(t, a.Store, old)
		r := storekit.Record(user, 1)

		release := claimHash(t, admin, r.Hash)
		rotating := createCall(t, a.Store, r, 0, session.CreateOptions{Replace: &old.Hash, MaxPerUser: 2})
		awaitLockWaits(t, admin, a, 1, rotating)
		wantError(t, "Delete", deleteCall(t, b.Store, old.Hash).wait(), nil)
		release()

		wantError(t, "rotation", rotating.wait(), session.ErrNotFound)
		checkLive(t, []*Store{a.Store, b.Store}, user, nil, old.Hash, r.Hash)
	})

	// The rotation, paused before its COMMIT, has deleted the old record;
	// B's Delete waits for it, then finds nothing left to delete.
	t.Run("delete waits for the rotation", func(t *testing.T) {
		a, b, admin := nodes(t)
		old := storekit.Record(user, 0)
		mustCreate(t, a.Store, old)
		r := storekit.Record(user, 1)

		paused, resume := pauseBeforeCommit(t, a.Store)
		rotating := createCall(t, a.Store, r, 0, session.CreateOptions{Replace: &old.Hash, MaxPerUser: 2})
		awaitPause(t, paused, rotating)
		deleting := deleteCall(t, b.Store, old.Hash)
		awaitLockWaits(t, admin, b, 1, deleting)
		resume()

		wantError(t, "rotation", rotating.wait(), nil)
		wantError(t, "Delete", deleting.wait(), nil)
		checkLive(t, []*Store{a.Store, b.Store}, user, []*session.Record{r}, old.Hash)
	})

	// Both wait for the record, locked by the test; whichever PostgreSQL
	// lets go first, never are both tokens alive.
	t.Run("both wait for the record", func(t *testing.T) {
		a, b, admin := nodes(t)
		old := storekit.Record(user, 0)
		mustCreate(t, a.Store, old)
		r := storekit.Record(user, 1)

		release := lockRecord(t, admin, old.Hash)
		deleting := deleteCall(t, b.Store, old.Hash)
		awaitLockWaits(t, admin, b, 1, deleting)
		rotating := createCall(t, a.Store, r, 0, session.CreateOptions{Replace: &old.Hash, MaxPerUser: 2})
		awaitLockWaits(t, admin, a, 1, rotating, deleting)
		release()

		wantError(t, "Delete", deleting.wait(), nil)
		switch err := rotating.wait(); {
		case err == nil:
			checkLive(t, []*Store{a.Store, b.Store}, user, []*session.Record{r}, old.Hash)
		case errors.Is(err, session.ErrNotFound):
			checkLive(t, []*Store{a.Store, b.Store}, user, nil, old.Hash, r.Hash)
		default:
			t.Errorf("rotation: got error %v, want nil or %v", err, session.ErrNotFound)
		}
	})
}

// The records a Create deletes, the one it replaces and the ones it
// evicts, reach another node's feed as Changed events: Create writes their
// messages in SQL, and the other node must read them as its own.
func TestFeedCreateAcrossNodes(t *testing.T) {
	const user = "alice"
	a, b, _ := nodes(t)
	f := storekit.Follow(t, b.Store)
	first, second := storekit.Record(user, 0), storekit.Record(user, 1)
	mustCreate(t, a.Store, first)
	mustCreate(t, a.Store, second)

	third := storekit.Record(user, 2)
	third.Gen = mustGeneration(t, a.Store, user)
	if err := a.Create(t.Context(), third, session.CreateOptions{MaxPerUser: 2}); err != nil {
		t.Fatalf("Create past the cap: %v", err)
	}
	f.Await(t, 0, session.Event{Kind: session.Changed, Hash: first.Hash}) // it expires first

	rotated := storekit.Record(user, 3)
	if err := a.Create(t.Context(), rotated, session.CreateOptions{Replace: &second.Hash, MaxPerUser: 2}); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	f.Await(t, 0, session.Event{Kind: session.Changed, Hash: second.Hash})
	if got := storekit.Count(f.Events(), session.Event{Kind: session.Changed, Hash: third.Hash}); got != 0 {
		t.Errorf("events: got %s, want none of the record kept", storekit.Describe(f.Events()))
	}
	checkLive(t, []*Store{a.Store, b.Store}, user, []*session.Record{third, rotated}, first.Hash, second.Hash)
}

// SES-13: RevokeUser deletes the records it revokes, rather than leave
// them dead for every per-user query to walk; the kept one stays.
func TestRevokeUserDeletesRecords(t *testing.T) {
	const user = "alice"
	a, _, admin := nodes(t)
	var records []*session.Record
	for n := range 3 {
		r := storekit.Record(user, n)
		mustCreate(t, a.Store, r)
		records = append(records, r)
	}
	bob := storekit.Record("bob", 1)
	mustCreate(t, a.Store, bob)

	if err := a.RevokeUser(t.Context(), user, &records[1].Hash); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if gens, current := rowsOf(t, admin, user); len(gens) != 1 || gens[0] != current {
		t.Errorf("rows after RevokeUser keeping one: generations %v, want [%d]", gens, current)
	}
	if err := a.RevokeUser(t.Context(), user, nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if gens, _ := rowsOf(t, admin, user); len(gens) != 0 {
		t.Errorf("rows after RevokeUser: generations %v, want none", gens)
	}
	if gens, _ := rowsOf(t, admin, "bob"); len(gens) != 1 {
		t.Errorf("rows of another user: got %d, want 1", len(gens))
	}
}

// A Create can't make room for its own record: a hash or a public id
// taken by the record it replaces or by one it would evict is a conflict,
// and the transaction leaves that record alone.
func TestCreateCantReuseWhatItDeletes(t *testing.T) {
	const user = "alice"
	s, _, _ := nodes(t)
	old := storekit.Record(user, 0)
	mustCreate(t, s.Store, old)
	for _, tc := range []struct {
		name string
		edit func(r *session.Record)
		opts session.CreateOptions
	}{
		{"the replaced record's hash", func(r *session.Record) { r.Hash = old.Hash }, session.CreateOptions{Replace: &old.Hash}},
		{"the replaced record's id", func(r *session.Record) { r.ID = old.ID }, session.CreateOptions{Replace: &old.Hash}},
		{"an evicted record's hash", func(r *session.Record) { r.Hash = old.Hash }, session.CreateOptions{MaxPerUser: 1}},
		{"an evicted record's id", func(r *session.Record) { r.ID = old.ID }, session.CreateOptions{MaxPerUser: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := storekit.Record(user, 1)
			tc.edit(r)
			r.Gen = mustGeneration(t, s.Store, user)
			wantError(t, "Create", s.Create(t.Context(), r, tc.opts), session.ErrConflict)
			if r.Version != 0 {
				t.Errorf("Version after a refused create: got %d, want 0", r.Version)
			}
			checkLive(t, []*Store{s.Store}, user, []*session.Record{old})
			switch got, err := s.Get(t.Context(), old.Hash); {
			case err != nil:
				t.Errorf("Get of the record under the taken hash: %v", err)
			case got.ID != old.ID:
				t.Errorf("the record under the taken hash: got %s, want %s", got.ID, old.ID)
			}
		})
	}
}

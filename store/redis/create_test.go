package redis

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// What Create and RevokeUser leave in Redis: nothing of the sessions they
// delete, on whichever node they run.

// keysUnder returns the sorted names of s's keys (its prefix's) on tg.
func keysUnder(t *testing.T, tg target, s *Store) []string {
	t.Helper()
	c := adminClient(t, tg)
	var found []string
	var cursor uint64
	for {
		entry, err := c.Do(t.Context(), c.B().Scan().Cursor(cursor).Match(s.keys.prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		found = append(found, entry.Elements...)
		if cursor = entry.Cursor; cursor == 0 {
			break
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

// sessionKeys returns the keys of the session r: record, id and pointer.
func sessionKeys(s *Store, r *session.Record) []string {
	u, hx := s.keys.user(r.UserID), hexHash(r.Hash)
	return []string{recordKey(u, hx), idKey(u, r.ID), s.keys.pointer(hx)}
}

// checkKeys fails the test unless s's keys on tg are exactly those of the
// sessions live and the user keys (generations, indexes) in more.
func checkKeys(t *testing.T, tg target, s *Store, live []*session.Record, more ...string) {
	t.Helper()
	want := slices.Clone(more)
	for _, r := range live {
		want = append(want, sessionKeys(s, r)...)
	}
	slices.Sort(want)
	got := keysUnder(t, tg, s)
	var extra, missing []string
	for _, k := range got {
		if _, found := slices.BinarySearch(want, k); !found {
			extra = append(extra, k)
		}
	}
	for _, k := range want {
		if _, found := slices.BinarySearch(got, k); !found {
			missing = append(missing, k)
		}
	}
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("keys: left behind %q; missing %q", extra, missing)
	}
}

// checkIndex fails the test unless the index of user holds exactly the
// hashes of want.
func checkIndex(t *testing.T, tg target, s *Store, user string, want ...*session.Record) {
	t.Helper()
	c := adminClient(t, tg)
	got, err := c.Do(t.Context(), c.B().Zrange().Key(indexKey(s.keys.user(user))).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		t.Fatalf("ZRANGE: %v", err)
	}
	var hashes []string
	for _, r := range want {
		hashes = append(hashes, hexHash(r.Hash))
	}
	slices.Sort(got)
	slices.Sort(hashes)
	if !slices.Equal(got, hashes) {
		t.Errorf("index of %s: got %q, want %q", user, got, hashes)
	}
}

func userKey(s *Store, user string, key func(string) string) string {
	return key(s.keys.user(user))
}

// SES-13: RevokeUser deletes what it revokes, pointers and ids included,
// and leaves the index holding the kept record alone; other users keep
// everything.
func TestRevokeUserDeletesKeys(t *testing.T) {
	tg := sharedRedis(t)
	s := newTestStore(t, tg, "")
	var alice []*session.Record
	for n := range 4 {
		r := storekit.Record("alice", n)
		mustCreate(t, s, r, session.CreateOptions{})
		alice = append(alice, r)
	}
	bob := storekit.Record("bob", 1)
	mustCreate(t, s, bob, session.CreateOptions{})
	bobKeys := []string{userKey(s, "bob", indexKey)}

	if err := s.RevokeUser(t.Context(), "alice", &alice[1].Hash); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	checkKeys(t, tg, s, []*session.Record{alice[1], bob},
		append(bobKeys, userKey(s, "alice", genKey), userKey(s, "alice", indexKey))...)
	checkIndex(t, tg, s, "alice", alice[1])

	if err := s.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	checkKeys(t, tg, s, []*session.Record{bob}, append(bobKeys, userKey(s, "alice", genKey))...)
	checkIndex(t, tg, s, "bob", bob)
}

// SES-13 and SES-03: the records a create evicts for the cap, and the one
// a rotation replaces, leave no key behind.
func TestCreateEvictionDeletesKeys(t *testing.T) {
	tg := sharedRedis(t)
	s := newTestStore(t, tg, "")
	f := storekit.Follow(t, s)
	capped := session.CreateOptions{MaxPerUser: 2}
	var alice []*session.Record
	for n := range 4 { // each expires after the one before
		r := storekit.Record("alice", n)
		mustCreate(t, s, r, capped)
		alice = append(alice, r)
	}
	index := userKey(s, "alice", indexKey)
	checkKeys(t, tg, s, alice[2:], index)
	checkIndex(t, tg, s, "alice", alice[2:]...)
	for _, r := range alice[:2] {
		if storekit.Count(f.Events(), session.Event{Kind: session.Changed, Hash: r.Hash}) != 1 {
			t.Errorf("events: got %s, want the eviction of %s", storekit.Describe(f.Events()), r.ID)
		}
	}

	rotated := storekit.Record("alice", 4)
	mustCreate(t, s, rotated, session.CreateOptions{Replace: &alice[3].Hash, MaxPerUser: 2})
	checkKeys(t, tg, s, []*session.Record{alice[2], rotated}, index)
	checkIndex(t, tg, s, "alice", alice[2], rotated)

	// A lower cap evicts down to it.
	last := storekit.Record("alice", 5)
	mustCreate(t, s, last, session.CreateOptions{MaxPerUser: 1})
	checkKeys(t, tg, s, []*session.Record{last}, index)
}

// A create that is refused, whatever the reason, leaves no pointer (nor
// anything else) behind, also when the reason came about between its
// pointer and its script.
func TestCreateRefusedLeavesNoPointer(t *testing.T) {
	tg := sharedRedis(t)
	s := newTestStore(t, tg, "")
	gone := storekit.Record("bob", 1)
	mustCreate(t, s, gone, session.CreateOptions{})
	if err := s.Delete(t.Context(), gone.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	taken := storekit.Record("carol", 1)
	mustCreate(t, s, taken, session.CreateOptions{})

	tests := []struct {
		name string
		r    *session.Record
		gen  uint64 // r.Gen
		opts session.CreateOptions
		want error
	}{
		{"stale generation", storekit.Record("alice", 1), 0, session.CreateOptions{}, session.ErrRevoked},
		{"future generation", storekit.Record("alice", 2), 2, session.CreateOptions{}, session.ErrRevoked},
		{"replaced record deleted", storekit.Record("bob", 2), 0, session.CreateOptions{Replace: &gone.Hash}, session.ErrNotFound},
		{"public id taken", func() *session.Record { r := storekit.Record("carol", 2); r.ID = taken.ID; return r }(), 0, session.CreateOptions{}, session.ErrConflict},
	}
	if err := s.RevokeUser(t.Context(), "alice", nil); err != nil { // alice is at generation 1
		t.Fatalf("RevokeUser: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Gen = tc.gen
			if err := s.Create(t.Context(), tc.r, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("Create: got error %v, want %v", err, tc.want)
			}
			if tc.r.Version != 0 {
				t.Errorf("Version after a refused create: got %d, want 0", tc.r.Version)
			}
		})
	}
	checkKeys(t, tg, s, []*session.Record{taken},
		userKey(s, "alice", genKey), userKey(s, "carol", indexKey))
}

// SES-12 across nodes: node A reads the generation (before checking the
// password), node B revokes the user's sessions (a password change), and
// A's create is refused, leaving no key behind; also when B's revocation
// lands between A's pointer and A's script. Read afresh, the create
// succeeds.
func TestSES12_CreateAfterRevocationOnOtherNode(t *testing.T) {
	tg := sharedRedis(t)
	prefix := testPrefix(t, tg)
	a := openStore(t, tg, Options{KeyPrefix: prefix}, "a")
	t.Cleanup(func() { a.Close() })
	b := openStore(t, tg, Options{KeyPrefix: prefix}, "b")
	t.Cleanup(func() { b.Close() })
	revokeOnB := func() {
		if err := b.RevokeUser(t.Context(), "alice", nil); err != nil {
			t.Fatalf("RevokeUser on B: %v", err)
		}
	}
	generation := func() uint64 {
		gen, err := a.Generation(t.Context(), "alice")
		if err != nil {
			t.Fatalf("Generation on A: %v", err)
		}
		return gen
	}

	// Before the create starts.
	r := storekit.Record("alice", 1)
	r.Gen = generation()
	revokeOnB()
	if err := a.Create(t.Context(), r, session.CreateOptions{}); !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("Create on A after a revocation on B: got error %v, want %v", err, session.ErrRevoked)
	}
	checkKeys(t, tg, a, nil, userKey(a, "alice", genKey))

	// Between A's pointer and A's script.
	r = storekit.Record("alice", 2)
	r.Gen = generation()
	a.afterPointer = revokeOnB
	err := a.Create(t.Context(), r, session.CreateOptions{})
	a.afterPointer = nil
	if !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("Create on A with a revocation on B after its pointer: got error %v, want %v", err, session.ErrRevoked)
	}
	checkKeys(t, tg, a, nil, userKey(a, "alice", genKey))

	// A rotation on A of a session B revoked after A's pointer.
	old := storekit.Record("alice", 3)
	mustCreate(t, a, old, session.CreateOptions{})
	r = storekit.Record("alice", 4)
	a.afterPointer = revokeOnB
	err = a.Create(t.Context(), r, session.CreateOptions{Replace: &old.Hash})
	a.afterPointer = nil
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("rotation on A of a session B revoked: got error %v, want %v", err, session.ErrNotFound)
	}
	checkKeys(t, tg, a, nil, userKey(a, "alice", genKey))

	// Read afresh: the session is made, at B's generation.
	r = storekit.Record("alice", 5)
	r.Gen = generation()
	if err := a.Create(t.Context(), r, session.CreateOptions{}); err != nil {
		t.Fatalf("Create on A at the current generation: %v", err)
	}
	if got, err := b.Get(t.Context(), r.Hash); err != nil || got.Gen != 3 {
		t.Errorf("Get on B: got %+v, %v; want the record at generation 3", got, err)
	}
}

// SES-13 across nodes: creates of one user split between two nodes, every
// one of them past its pointer before any runs its script (the
// interleaving where a cap counted outside the script would let them all
// in), leave the user exactly the cap, and no key of the sessions evicted.
func TestSES13_CapAcrossNodes(t *testing.T) {
	tg := sharedRedis(t)
	prefix := testPrefix(t, tg)
	nodes := make([]*Store, 2)
	for i := range nodes {
		nodes[i] = openStore(t, tg, Options{KeyPrefix: prefix}, "node"+string(rune('a'+i)))
		t.Cleanup(func() { nodes[i].Close() })
	}
	const limit, racers = 3, 16
	var atPointer sync.WaitGroup // a barrier: every create has set its pointer
	atPointer.Add(racers)
	for _, s := range nodes {
		s.afterPointer = func() {
			atPointer.Done()
			atPointer.Wait()
		}
	}
	var wg sync.WaitGroup
	for n := range racers {
		wg.Go(func() {
			r := storekit.Record("alice", n)
			if err := nodes[n%2].Create(t.Context(), r, session.CreateOptions{MaxPerUser: limit}); err != nil {
				t.Errorf("Create %s: %v", r.ID, err)
			}
		})
	}
	wg.Wait()

	list, err := nodes[0].List(t.Context(), "alice")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != limit {
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		t.Errorf("sessions after %d creates on two nodes under a cap of %d: got %d (%s)", racers, limit, len(list), strings.Join(ids, ", "))
	}
	checkKeys(t, tg, nodes[0], list, userKey(nodes[0], "alice", indexKey))
	checkIndex(t, tg, nodes[0], "alice", list...)
}

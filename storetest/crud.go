package storetest

import (
	"bytes"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// cloneRecord returns a deep copy of r, to keep what was saved while the
// test changes r.
func cloneRecord(r *session.Record) *session.Record {
	c := *r
	c.Data = maps.Clone(r.Data)
	for k, v := range c.Data {
		c.Data[k] = bytes.Clone(v)
	}
	return &c
}

func testCreateSetsVersionAndGen(t *testing.T, s session.Store, _ func() error) {
	r := newRecord("alice", 1)
	create(t, s, r)
	if r.Version != 1 {
		t.Errorf("Version after create: got %d, want 1", r.Version)
	}
	checkRecord(t, mustGet(t, s, r.Hash), r)

	// At the user's current generation: a bump kills it.
	if err := s.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	checkDead(t, s, r.Hash)
}

func testCreateDuplicateHash(t *testing.T, s session.Store, _ func() error) {
	first := create(t, s, newRecord("alice", 1))
	want := cloneRecord(first)

	dup := newRecord("bob", 2)
	dup.Hash = first.Hash
	wantErr(t, "create with an existing hash", createAt(t, s, dup, session.CreateOptions{}), session.ErrConflict)
	if dup.Version != 0 {
		t.Errorf("Version after a failed create: got %d, want 0", dup.Version)
	}
	checkRecord(t, mustGet(t, s, first.Hash), want)
}

func testCreateDuplicateID(t *testing.T, s session.Store, _ func() error) {
	first := create(t, s, newRecord("alice", 1))

	dup := newRecord("alice", 2)
	dup.ID = first.ID
	wantErr(t, "create with an existing public id", createAt(t, s, dup, session.CreateOptions{}), session.ErrConflict)
	checkDead(t, s, dup.Hash)
	checkRecord(t, mustGet(t, s, first.Hash), first)
}

// generation returns the user's current generation, failing the test if
// the store can't say.
func generation(t *testing.T, s session.Store, user string) uint64 {
	t.Helper()
	gen, err := s.Generation(t.Context(), user)
	if err != nil {
		t.Fatalf("Generation(%q): %v", user, err)
	}
	return gen
}

func testGenerationCountsRevocations(t *testing.T, s session.Store, _ func() error) {
	if got := generation(t, s, "alice"); got != 0 {
		t.Errorf("generation of a user never revoked: got %d, want 0", got)
	}
	revoke(t, s, "alice", nil)
	one := generation(t, s, "alice")
	revoke(t, s, "alice", nil)
	if two := generation(t, s, "alice"); one == 0 || two <= one {
		t.Errorf("generations after two revocations: got %d then %d, want them growing from 0", one, two)
	}
	if got := generation(t, s, "bob"); got != 0 {
		t.Errorf("generation of another user: got %d, want 0", got)
	}
}

// SES-12: a session checked against a credential read before a revocation
// (a password change, a disable) is never created after it.
func testCreateAfterRevocationRefused(t *testing.T, s session.Store, _ func() error) {
	r := newRecord("alice", 1)
	r.Gen = generation(t, s, "alice") // read before the credential is checked
	revoke(t, s, "alice", nil)        // the password changes meanwhile
	wantErr(t, "Create with the generation read before a revocation", s.Create(t.Context(), r, session.CreateOptions{}), session.ErrRevoked)
	checkDead(t, s, r.Hash)
	checkList(t, s, "alice")

	// A generation from the future is no better.
	r.Gen = generation(t, s, "alice") + 1
	wantErr(t, "Create with a generation not yet reached", s.Create(t.Context(), r, session.CreateOptions{}), session.ErrRevoked)
	checkDead(t, s, r.Hash)

	// Read afresh, it succeeds.
	create(t, s, r)
	checkList(t, s, "alice", r)
}

// SES-03: a rotation kills the old record and makes the new one in one
// change, at the old one's generation.
func testCreateReplace(t *testing.T, s session.Store, _ func() error) {
	old := newRecord("alice", 1)
	create(t, s, old)
	revoke(t, s, "alice", &old.Hash) // the old record moves to generation 1
	old = mustGet(t, s, old.Hash)

	f := storekit.Follow(t, s)
	before := storekit.Count(f.Events(), changed(old.Hash))
	next := newRecord("alice", 2)
	next.Gen = 0 // ignored: the replaced record's generation counts
	if err := s.Create(t.Context(), next, session.CreateOptions{Replace: &old.Hash}); err != nil {
		t.Fatalf("Create replacing a live record: %v", err)
	}
	if next.Gen != old.Gen || next.Version != 1 {
		t.Errorf("the new record: Gen %d, Version %d, want Gen %d (the replaced one's), Version 1", next.Gen, next.Version, old.Gen)
	}
	checkDead(t, s, old.Hash)
	checkRecord(t, mustGet(t, s, next.Hash), next)
	checkList(t, s, "alice", next)
	checkDelivered(t, f, "Create replacing a record", before, changed(old.Hash))

	// A clash leaves the replaced record alone.
	other := create(t, s, newRecord("alice", 3))
	clash := newRecord("alice", 4)
	clash.Hash = other.Hash
	wantErr(t, "Create replacing with a taken hash", s.Create(t.Context(), clash, session.CreateOptions{Replace: &next.Hash}), session.ErrConflict)
	checkRecord(t, mustGet(t, s, next.Hash), next)
	checkRecord(t, mustGet(t, s, other.Hash), other)

	// What a create deletes it can't reuse: not the replaced record's
	// hash or public id, not an evicted one's.
	same := newRecord("alice", 5)
	same.Hash = next.Hash
	wantErr(t, "Create replacing with the replaced record's hash", s.Create(t.Context(), same, session.CreateOptions{Replace: &next.Hash}), session.ErrConflict)
	sameID := newRecord("alice", 6)
	sameID.ID = next.ID
	wantErr(t, "Create replacing with the replaced record's id", s.Create(t.Context(), sameID, session.CreateOptions{Replace: &next.Hash}), session.ErrConflict)
	evicted := newRecord("alice", 7)
	evicted.Hash = next.Hash
	wantErr(t, "Create with the hash of the record it would evict", createAt(t, s, evicted, session.CreateOptions{MaxPerUser: 1}), session.ErrConflict)
	checkList(t, s, "alice", next, other)
}

// SES-03: a record signed out, revoked, or another user's can't be
// rotated into a new one.
func testCreateReplaceDead(t *testing.T, s session.Store, _ func() error) {
	deleted := create(t, s, newRecord("alice", 1))
	if err := s.Delete(t.Context(), deleted.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	revoked := create(t, s, newRecord("bob", 1))
	revoke(t, s, "bob", nil)
	bobs := create(t, s, newRecord("bob", 2))
	never := newRecord("alice", 9)
	for _, tc := range []struct {
		name string
		user string
		old  session.Hash
	}{
		{"deleted", "alice", deleted.Hash},
		{"revoked by generation", "bob", revoked.Hash},
		{"another user's", "alice", bobs.Hash},
		{"never created", "alice", never.Hash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := newRecord(tc.user, 20)
			next.Gen = generation(t, s, tc.user)
			wantErr(t, "Create replacing a dead record", s.Create(t.Context(), next, session.CreateOptions{Replace: &tc.old}), session.ErrNotFound)
			checkDead(t, s, next.Hash)
			if next.Version != 0 {
				t.Errorf("Version after a refused create: got %d, want 0", next.Version)
			}
		})
	}
	checkRecord(t, mustGet(t, s, bobs.Hash), bobs)
}

// SES-13: a user's records are capped; the ones that expire first make
// room, each an invalidation; other users are untouched; a rotation makes
// room by its own replacement.
func testCreateMaxPerUser(t *testing.T, s session.Store, _ func() error) {
	const limit = 3
	opts := session.CreateOptions{MaxPerUser: limit}
	bob := create(t, s, newRecord("bob", 1))
	var alice []*session.Record
	for n := range limit {
		r := newRecord("alice", n)
		if err := createAt(t, s, r, opts); err != nil {
			t.Fatalf("create %s: %v", r.ID, err)
		}
		alice = append(alice, r)
	}
	// alice/0 is the most recently used: it expires last.
	alice[0].IdleDeadline = base.Add(11 * time.Hour)
	if err := s.Save(t.Context(), alice[0]); err != nil {
		t.Fatalf("Save: %v", err)
	}
	f := storekit.Follow(t, s)
	before := storekit.Count(f.Events(), changed(alice[1].Hash))
	extra := newRecord("alice", limit)
	if err := createAt(t, s, extra, opts); err != nil {
		t.Fatalf("create past the cap: %v", err)
	}
	checkDead(t, s, alice[1].Hash) // the one that expires first
	checkDelivered(t, f, "Create past the cap", before, changed(alice[1].Hash))
	checkList(t, s, "alice", alice[0], alice[2], extra)
	checkRecord(t, mustGet(t, s, bob.Hash), bob)

	// A rotation at the cap replaces, it doesn't evict.
	rotated := newRecord("alice", limit+1)
	if err := s.Create(t.Context(), rotated, session.CreateOptions{Replace: &extra.Hash, MaxPerUser: limit}); err != nil {
		t.Fatalf("rotation at the cap: %v", err)
	}
	checkList(t, s, "alice", alice[0], alice[2], rotated)

	// A lower cap evicts down to it at the next create.
	last := newRecord("alice", limit+2)
	if err := createAt(t, s, last, session.CreateOptions{MaxPerUser: 1}); err != nil {
		t.Fatalf("create under a lower cap: %v", err)
	}
	checkList(t, s, "alice", last)
}

func testGetMissing(t *testing.T, s session.Store, _ func() error) {
	checkDead(t, s, newRecord("alice", 1).Hash) // empty store
	create(t, s, newRecord("alice", 2))
	checkDead(t, s, newRecord("alice", 1).Hash) // store with another record
}

// A hash asked for before its session existed is found once it does: a
// store may not remember that it found nothing.
func testGetAfterMiss(t *testing.T, s session.Store, _ func() error) {
	r := newRecord("alice", 1)
	checkDead(t, s, r.Hash)
	create(t, s, r)
	checkRecord(t, mustGet(t, s, r.Hash), r)
}

// The records Get and List return are the caller's to keep and change.
func testGetReturnsCopy(t *testing.T, s session.Store, _ func() error) {
	r := create(t, s, newRecord("alice", 1))
	want := cloneRecord(r)

	mutate := func(got *session.Record) {
		got.UserAgent = "changed"
		got.Version += 10
		got.Created = got.Created.Add(time.Hour)
		got.Data["theme"][0] = 'X'
		got.Data["theme"] = append(got.Data["theme"], "er"...)
		got.Data["added"] = []byte("1")
	}
	mutate(mustGet(t, s, r.Hash))
	checkRecord(t, mustGet(t, s, r.Hash), want)

	list, err := s.List(t.Context(), "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("List: got %d records, error %v; want 1 record", len(list), err)
	}
	mutate(list[0])
	checkRecord(t, mustGet(t, s, r.Hash), want)
}

// After Save returns, changing the record passed in changes nothing stored.
func testSaveKeepsNoReference(t *testing.T, s session.Store, _ func() error) {
	r := create(t, s, newRecord("alice", 1))
	want := cloneRecord(r)
	r.Data["theme"][0] = 'X'
	r.Data["added"] = []byte("1")
	r.IP = "198.51.100.1"
	checkRecord(t, mustGet(t, s, r.Hash), want)

	r = cloneRecord(want)
	r.Data["theme"] = []byte("light")
	if err := s.Save(t.Context(), r); err != nil {
		t.Fatalf("Save: %v", err)
	}
	want = cloneRecord(r)
	r.Data["theme"][0] = 'X'
	checkRecord(t, mustGet(t, s, r.Hash), want)
}

func testDataRoundTrip(t *testing.T, s session.Store, _ func() error) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	many := make(map[string][]byte)
	for i := range 100 {
		many[strings.Repeat("k", i)] = bytes.Repeat([]byte{byte(i)}, i)
	}
	tests := []struct {
		name string
		data map[string][]byte
	}{
		{"nil", nil},
		{"empty map", map[string][]byte{}},
		{"binary", map[string][]byte{"bin": binary, "zeros": make([]byte, 64)}},
		{"empty value", map[string][]byte{"empty": {}, "nil": nil, "x": []byte("y")}},
		{"empty key", map[string][]byte{"": []byte("v")}},
		{"unicode and control key", map[string][]byte{"клю\x00ч\n🔑": []byte("v")}},
		{"large value", map[string][]byte{"big": bytes.Repeat([]byte("0123456789abcdef"), 4096/16)}},
		{"many keys", many},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecord("alice", i)
			r.Data = tc.data
			create(t, s, r)
			checkRecord(t, mustGet(t, s, r.Hash), r)

			// And through an update of an existing record.
			u := newRecord("bob", i)
			create(t, s, u)
			u.Data = tc.data
			if err := s.Save(t.Context(), u); err != nil {
				t.Fatalf("Save: %v", err)
			}
			checkRecord(t, mustGet(t, s, u.Hash), u)
		})
	}
}

// Times come back as the same instant to at least the millisecond, whatever
// their location.
func testTimesRoundTrip(t *testing.T, s session.Store, _ func() error) {
	east := time.FixedZone("UTC+05:30", 5*3600+1800)
	west := time.FixedZone("UTC-08:00", -8*3600)
	r := newRecord("alice", 1)
	r.Created = base.In(east)
	r.LastSeen = base.Add(999_999 * time.Nanosecond).In(west)
	r.IdleDeadline = time.Date(2030, time.March, 4, 13, 0, 45, 999_999_999, time.UTC)
	r.AbsDeadline = time.Date(2031, time.December, 31, 23, 59, 59, 1_000_000, east)
	create(t, s, r)
	checkRecord(t, mustGet(t, s, r.Hash), r)
}

func testSaveIncrementsVersion(t *testing.T, s session.Store, _ func() error) {
	r := create(t, s, newRecord("alice", 1))
	gen := r.Gen
	for i := range 3 {
		prev := r.Version
		r.LastSeen = r.LastSeen.Add(time.Minute)
		r.IdleDeadline = r.LastSeen.Add(30 * time.Minute)
		r.UserAgent = "agent " + string(rune('a'+i))
		r.IP = "2001:db8::" + string(rune('1'+i))
		r.Data["n"] = []byte{byte(i)}
		r.Gen = gen + 7 // Save never changes Gen of an existing record
		if err := s.Save(t.Context(), r); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		if r.Version != prev+1 {
			t.Errorf("Version after Save %d: got %d, want %d", i, r.Version, prev+1)
		}
		r.Gen = gen
		checkRecord(t, mustGet(t, s, r.Hash), r)
	}
}

func testSaveStaleVersion(t *testing.T, s session.Store, _ func() error) {
	r := create(t, s, newRecord("alice", 1))
	winner, loser := cloneRecord(r), cloneRecord(r)

	winner.Data["theme"] = []byte("light")
	if err := s.Save(t.Context(), winner); err != nil {
		t.Fatalf("Save: %v", err)
	}
	loser.Data["theme"] = []byte("blue")
	wantErr(t, "Save with a stale version", s.Save(t.Context(), loser), session.ErrConflict)
	if loser.Version != r.Version {
		t.Errorf("Version after a failed Save: got %d, want %d (unchanged)", loser.Version, r.Version)
	}
	checkRecord(t, mustGet(t, s, r.Hash), winner)

	// A version from the future is as stale as one from the past.
	loser.Version = winner.Version + 5
	wantErr(t, "Save with a future version", s.Save(t.Context(), loser), session.ErrConflict)
}

func testSaveMissing(t *testing.T, s session.Store, _ func() error) {
	never := newRecord("alice", 1)
	never.Version = 3
	wantErr(t, "Save of a record never created", s.Save(t.Context(), never), session.ErrNotFound)
	checkDead(t, s, never.Hash) // and Save did not create it

	deleted := create(t, s, newRecord("alice", 2))
	if err := s.Delete(t.Context(), deleted.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantErr(t, "Save of a deleted record", s.Save(t.Context(), deleted), session.ErrNotFound)
	checkDead(t, s, deleted.Hash)
}

func testSaveRevoked(t *testing.T, s session.Store, _ func() error) {
	r := create(t, s, newRecord("alice", 1))
	if err := s.RevokeUser(t.Context(), "alice", nil); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	wantErr(t, "Save of a record revoked by generation", s.Save(t.Context(), r), session.ErrNotFound)
	checkDead(t, s, r.Hash)
}

func testDeleteIsIdempotent(t *testing.T, s session.Store, _ func() error) {
	if err := s.Delete(t.Context(), newRecord("alice", 9).Hash); err != nil {
		t.Errorf("Delete of a record never created: got error %v, want nil", err)
	}
	gone := create(t, s, newRecord("alice", 1))
	kept := create(t, s, newRecord("alice", 2))
	for i := range 2 {
		if err := s.Delete(t.Context(), gone.Hash); err != nil {
			t.Errorf("Delete #%d: got error %v, want nil", i+1, err)
		}
		checkDead(t, s, gone.Hash)
	}
	checkRecord(t, mustGet(t, s, kept.Hash), kept)
	checkList(t, s, "alice", kept)
}

// checkList fails the test unless List(user) returns want, in that order.
func checkList(t *testing.T, s session.Store, user string, want ...*session.Record) {
	t.Helper()
	got, err := s.List(t.Context(), user)
	if err != nil {
		t.Fatalf("List(%q): %v", user, err)
	}
	ids := func(rs []*session.Record) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.ID
		}
		return out
	}
	if len(got) != len(want) {
		t.Fatalf("List(%q): got %v, want %v", user, ids(got), ids(want))
	}
	for i := range want {
		if d := diffRecord(got[i], want[i]); d != "" {
			t.Errorf("List(%q)[%d]: got %v, want %v: %s", user, i, ids(got), ids(want), d)
		}
	}
}

// List orders by Record.Created, not by when the records were saved.
func testListPerUserOldestFirst(t *testing.T, s session.Store, _ func() error) {
	a3 := create(t, s, newRecord("alice", 3))
	a1 := create(t, s, newRecord("alice", 1))
	b1 := create(t, s, newRecord("bob", 1))
	a2 := create(t, s, newRecord("alice", 2))
	checkList(t, s, "alice", a1, a2, a3)
	checkList(t, s, "bob", b1)
}

func testListEmpty(t *testing.T, s session.Store, _ func() error) {
	checkList(t, s, "nobody")
	r := create(t, s, newRecord("alice", 1))
	if err := s.Delete(t.Context(), r.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkList(t, s, "alice")
}

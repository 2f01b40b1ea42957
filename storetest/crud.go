package storetest

import (
	"bytes"
	"maps"
	"strings"
	"testing"
	"time"

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
	r.Gen = 1 << 40 // the store stamps Gen itself; what the caller put there means nothing
	create(t, s, r)
	if r.Version == 0 {
		t.Errorf("Version after create: got 0, want the new version")
	}
	checkRecord(t, mustGet(t, s, r.Hash), r)

	// Stamped with the user's current generation, not 1<<40: a bump kills it.
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
	wantErr(t, "create with an existing hash", s.Save(t.Context(), dup), session.ErrConflict)
	if dup.Version != 0 {
		t.Errorf("Version after a failed create: got %d, want 0", dup.Version)
	}
	checkRecord(t, mustGet(t, s, first.Hash), want)
}

func testCreateDuplicateID(t *testing.T, s session.Store, _ func() error) {
	first := create(t, s, newRecord("alice", 1))

	dup := newRecord("alice", 2)
	dup.ID = first.ID
	wantErr(t, "create with an existing public id", s.Save(t.Context(), dup), session.ErrConflict)
	checkDead(t, s, dup.Hash)
	checkRecord(t, mustGet(t, s, first.Hash), first)
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
	wantErr(t, "Save of a record revoked by generation", s.Save(t.Context(), r), session.ErrConflict)
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

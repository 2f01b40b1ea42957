package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/keys"
)

// store is what the suite checks of every backend: the Store, Clients and
// PATs contracts, the signing keys' storage and the server's secrets.
type store interface {
	Store
	Clients
	PATs
	Revocations
	KeyStorage() keys.Storage
	Secret(ctx context.Context, name string, size int) ([]byte, error)
	Setting(ctx context.Context, name string) ([]byte, error)
	SwapSetting(ctx context.Context, name string, old, value []byte) error
}

// interleaver is what a backend's store offers the tests that force an
// interleaving: hooks that run in CreateFirst between its check and its
// insert, in Delete between its check and its removal and in KeyStorage's
// Save between its check of the version and its commit, and another
// store on the same database, through another pool, that fails at once
// where it would wait for a lock.
type interleaver interface {
	setCreateFirstHook(func())
	setDeleteHook(func())
	setSaveKeysHook(func())
	noWaitTwin(t *testing.T) (store, error)
}

// opener opens a store on one database, fresh and empty when the subtest
// began. Each call opens another connection pool and sets the store up
// again (tables, migrations), as another process or node would; the store
// reads the time from now. It is safe to call from several goroutines and
// returns errors instead of failing the test.
type opener func(now func() time.Time) (store, error)

// runStoreSuite is the one conformance suite every account backend runs
// (SQLite, PostgreSQL): fresh returns an opener on a new, empty database
// for each subtest, and cleans it up when the subtest ends.
func runStoreSuite(t *testing.T, fresh func(t *testing.T) opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open opener)
	}{
		{"PW08_FreshStoreHasNoAccounts", testFreshStoreHasNoAccounts},
		{"CreateAndLookUp", testCreateAndLookUp},
		{"CreateErrors", testCreateErrors},
		{"NotFound", testNotFound},
		{"Updates", testUpdates},
		{"SetPasswordComparesAndSwaps", testSetPasswordComparesAndSwaps},
		{"ListOrderedByName", testListOrderedByName},
		{"Secret", testSecret},
		{"SecretConcurrentFirstCalls", testSecretConcurrentFirstCalls},
		{"SwapSetting", testSwapSetting},
		{"CreateRace", testCreateRace},
		{"CreateFirst", testCreateFirst},
		{"CreateFirstAfterCreate", testCreateFirstAfterCreate},
		{"PW08_OneFirstAdminAcrossNodes", testOneFirstAdminAcrossNodes},
		{"PW08_FirstAdminCheckedAndCreatedAtOnce", testFirstAdminCheckedAndCreatedAtOnce},
		{"PW08_SetupLinksSharedAndSpentOnce", testSetupLinksSharedAndSpentOnce},
		{"PW08_CreateSpendsSetupLinks", testCreateSpendsSetupLinks},
		{"ConcurrentStarts", testConcurrentStarts},
		{"Rename", testRename},
		{"RenameRace", testRenameRace},
		{"Delete", testDelete},
		{"DeleteKeepsAnAdminAcrossNodes", testDeleteKeepsAnAdminAcrossNodes},
		{"LastAdminCheckedAndDeletedAtOnce", testLastAdminCheckedAndDeletedAtOnce},
		{"ClientRoundTrip", testClientRoundTrip},
		{"ClientListOrderedByID", testClientListOrderedByID},
		{"ClientErrors", testClientErrors},
		{"ClientUpdates", testClientUpdates},
		{"ClientCreateRace", testClientCreateRace},
		{"PATRoundTrip", testPATRoundTrip},
		{"PATErrors", testPATErrors},
		{"TouchAndDeletePAT", testTouchAndDeletePAT},
		{"DeleteUserDeletesPATs", testDeleteUserDeletesPATs},
		{"CHG03_DeleteUserPATs", testDeleteUserPATs},
		{"PATOfUserBeingDeleted", testPATOfUserBeingDeleted},
		{"KeyStorageRoundTrip", testKeyStorageRoundTrip},
		{"KeyStorageSaveRace", testKeyStorageSaveRace},
		{"KeyStorageConcurrentSaves", testKeyStorageConcurrentSaves},
		{"KEY04_SealedKeyRingAcrossNodes", testKeyRingAcrossNodes},
		{"MISC05_StoreErrorsFailClosed", testMachineStoreErrors},
		{"JWT09_RecordedRevocations", testRecordedRevocations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
	}
}

// mustOpen opens a store with open and fails the test if it can't.
func mustOpen(t *testing.T, open opener, now func() time.Time) store {
	t.Helper()
	s, err := open(now)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// addSetup keeps a setup link in s, valid for an hour from now, and
// returns its hash.
func addSetup(t *testing.T, s Store, now time.Time) SetupHash {
	t.Helper()
	var h SetupHash
	rand.Read(h[:])
	if err := s.AddSetup(t.Context(), h, now.Add(time.Hour)); err != nil {
		t.Fatalf("AddSetup: %v", err)
	}
	return h
}

func mustCreate(t *testing.T, s Store, u *User) *User {
	t.Helper()
	if err := s.Create(t.Context(), u); err != nil {
		t.Fatalf("Create(%q): %v", u.Name, err)
	}
	return u
}

// PW-08
func testFreshStoreHasNoAccounts(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	n, err := s.Count(t.Context())
	if err != nil || n != 0 {
		t.Fatalf("Count() = %d, %v; want 0, nil", n, err)
	}
	users, err := s.List(t.Context())
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("List() = %v, %v; want an empty slice, nil", users, err)
	}
}

func testCreateAndLookUp(t *testing.T, open opener) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	s := mustOpen(t, open, func() time.Time { return now.Add(789) }) // nanoseconds are dropped
	u := mustCreate(t, s, &User{Name: " Alice ", PasswordHash: "$argon2id$x", Admin: true})
	if u.Name != "alice" {
		t.Errorf("Name = %q, want %q", u.Name, "alice")
	}
	if len(u.ID) != 24 || u.ID[:2] != "u_" {
		t.Errorf("ID = %q, want u_ and 22 base64url characters", u.ID)
	}
	if !u.Created.Equal(now) {
		t.Errorf("Created = %v, want %v", u.Created, now)
	}
	for _, name := range []string{"alice", "ALICE", "\talice"} {
		got, err := s.ByName(t.Context(), name)
		if err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("ByName(%q) = %+v, %v; want %+v", name, got, err, u)
		}
	}
	got, err := s.ByID(t.Context(), u.ID)
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Errorf("ByID(%q) = %+v, %v; want %+v", u.ID, got, err, u)
	}
	if n, err := s.Count(t.Context()); n != 1 || err != nil {
		t.Errorf("Count() = %d, %v; want 1, nil", n, err)
	}
}

func testCreateErrors(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	mustCreate(t, s, &User{Name: "alice"})
	tests := []struct {
		name string
		want error
	}{
		{"alice", ErrExists},
		{"ALICE", ErrExists},
		{"\u212Aelvin", nil},
		{"kelvin", ErrExists},
		{"", ErrInvalidName},
		{"a b", ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &User{Name: tt.name}
			if err := s.Create(t.Context(), u); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Create(%q) = %v, want %v", tt.name, err, tt.want)
			}
			if tt.want != nil && u.ID != "" {
				t.Errorf("Create(%q) failed but set ID %q", tt.name, u.ID)
			}
		})
	}
	if n, err := s.Count(t.Context()); n != 2 || err != nil {
		t.Errorf("Count() = %d, %v; want 2, nil", n, err)
	}
}

func testNotFound(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	mustCreate(t, s, &User{Name: "alice"})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"ByName unknown", func() error { _, err := s.ByName(ctx, "bob"); return err }},
		{"ByName invalid", func() error { _, err := s.ByName(ctx, "no such/name"); return err }},
		{"ByID unknown", func() error { _, err := s.ByID(ctx, "u_nope"); return err }},
		{"SetPassword unknown", func() error { return s.SetPassword(ctx, "u_nope", "", "h") }},
		{"SetDisabled unknown", func() error { return s.SetDisabled(ctx, "u_nope", true) }},
		{"Rename unknown", func() error { return s.Rename(ctx, "u_nope", "bob") }},
		{"Delete unknown", func() error { return s.Delete(ctx, "u_nope") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
		})
	}
}

func testUpdates(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	u := mustCreate(t, s, &User{Name: "alice", PasswordHash: "old"})
	other := mustCreate(t, s, &User{Name: "bob", PasswordHash: "bob's"})
	ctx := t.Context()
	if err := s.SetPassword(ctx, u.ID, "old", "new"); err != nil {
		t.Fatal(err)
	}
	for _, disabled := range []bool{true, true, false} {
		if err := s.SetDisabled(ctx, u.ID, disabled); err != nil {
			t.Fatalf("SetDisabled(%v): %v", disabled, err)
		}
		got, err := s.ByID(ctx, u.ID)
		if err != nil || got.Disabled != disabled || got.PasswordHash != "new" {
			t.Fatalf("after SetDisabled(%v): got %+v, %v; want disabled %v, hash %q", disabled, got, err, disabled, "new")
		}
	}
	if got, err := s.ByID(ctx, other.ID); err != nil || !reflect.DeepEqual(got, other) {
		t.Errorf("other user after updates: got %+v, %v; want it unchanged, %+v", got, err, other)
	}
}

// A password change is a compare-and-swap: of two changes (a sign-in's
// rehash, a password change on another node) that read the same hash, one
// wins and the other learns it lost; neither overwrites the other.
func testSetPasswordComparesAndSwaps(t *testing.T, open opener) {
	a, b := mustOpen(t, open, time.Now), mustOpen(t, open, time.Now) // two nodes
	u := mustCreate(t, a, &User{Name: "alice", PasswordHash: "h0"})
	ctx := t.Context()
	if err := a.SetPassword(ctx, u.ID, "not h0", "h1"); !errors.Is(err, ErrChanged) {
		t.Fatalf("SetPassword from a hash that isn't current: got %v, want ErrChanged", err)
	}
	const racers = 8
	var wg sync.WaitGroup
	var won sync.Map
	for i := range racers {
		wg.Go(func() {
			s := []store{a, b}[i%2]
			next := "h1-" + string(rune('a'+i))
			switch err := s.SetPassword(ctx, u.ID, "h0", next); {
			case err == nil:
				won.Store(next, true)
			case !errors.Is(err, ErrChanged):
				t.Errorf("SetPassword: %v", err)
			}
		})
	}
	wg.Wait()
	var winners []string
	won.Range(func(k, _ any) bool { winners = append(winners, k.(string)); return true })
	if len(winners) != 1 {
		t.Fatalf("compare-and-swaps from one hash that won: got %v, want exactly one", winners)
	}
	if got, err := b.ByID(ctx, u.ID); err != nil || got.PasswordHash != winners[0] {
		t.Errorf("hash after the race: got %+v, %v; want the winner's %q", got, err, winners[0])
	}
}

// Names sort byte by byte on every backend, whatever a database's
// collation would do with punctuation.
func testListOrderedByName(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	for _, name := range []string{"carol", "Alice", "bob", "a_b", "a.b", "a-b", "ab", "a+b", "a@b", "a1", "b"} {
		mustCreate(t, s, &User{Name: name})
	}
	users, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Name)
	}
	want := []string{"a+b", "a-b", "a.b", "a1", "a@b", "a_b", "ab", "alice", "b", "bob", "carol"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List() names = %v, want %v", got, want)
	}
}

func testSecret(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	ctx := t.Context()
	a, err := s.Secret(ctx, "csrf", 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("Secret(csrf, 32) = %x, %v; want 32 bytes", a, err)
	}
	again, err := s.Secret(ctx, "csrf", 32)
	if err != nil || string(again) != string(a) {
		t.Fatalf("second Secret(csrf, 32) = %x, %v; want %x", again, err, a)
	}
	other, err := s.Secret(ctx, "other", 32)
	if err != nil || string(other) == string(a) {
		t.Fatalf("Secret(other, 32) = %x, %v; want fresh bytes", other, err)
	}
	if _, err := s.Secret(ctx, "csrf", 16); err == nil {
		t.Fatal("Secret(csrf, 16) after Secret(csrf, 32): got no error, want one")
	}
	if _, err := s.Secret(ctx, "zero", 0); err == nil {
		t.Fatal("Secret(zero, 0): got no error, want one")
	}
}

// A setting is created once, then changed only by a writer that read its
// current value (another node's store sees every change); the secrets are
// apart.
func testSwapSetting(t *testing.T, open opener) {
	a, b := mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)
	ctx := t.Context()
	if v, err := a.Setting(ctx, "csrf"); !errors.Is(err, ErrNoSetting) {
		t.Fatalf("Setting(csrf) before any = %q, %v; want ErrNoSetting", v, err)
	}
	steps := []struct {
		s          store
		old, value string // "" old: create
		want       error
	}{
		{a, "", "one", nil},
		{b, "", "two", ErrSettingChanged}, // exists already
		{b, "two", "three", ErrSettingChanged},
		{b, "one", "two", nil},
		{a, "one", "three", ErrSettingChanged}, // a read "one" before b changed it
		{a, "two", "three", nil},
	}
	for i, st := range steps {
		var old []byte
		if st.old != "" {
			old = []byte(st.old)
		}
		if err := st.s.SwapSetting(ctx, "csrf", old, []byte(st.value)); !errors.Is(err, st.want) {
			t.Errorf("step %d: SwapSetting(%q, %q) = %v, want %v", i, st.old, st.value, err, st.want)
		}
	}
	for _, s := range []store{a, b} {
		if v, err := s.Setting(ctx, "csrf"); err != nil || string(v) != "three" {
			t.Errorf("Setting(csrf) = %q, %v; want three", v, err)
		}
	}
	if secret, err := a.Secret(ctx, "csrf", 32); err != nil || len(secret) != 32 {
		t.Errorf("Secret(csrf, 32) beside a setting csrf = %x, %v; want 32 bytes of its own", secret, err)
	}
}

// Concurrent first calls from two connection pools on one database (as
// from two processes or nodes) must agree on the secret.
func testSecretConcurrentFirstCalls(t *testing.T, open opener) {
	stores := []store{mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)}
	const callers = 8
	secrets := make([][]byte, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { secrets[i], errs[i] = stores[i%2].Secret(t.Context(), "csrf", 32) })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || string(secrets[i]) != string(secrets[0]) {
			t.Errorf("caller %d: got %x, %v; want %x", i, secrets[i], errs[i], secrets[0])
		}
	}
}

// Two processes or nodes creating the same name at once: exactly one wins,
// the others get ErrExists, and every one of them then finds the winner.
func testCreateRace(t *testing.T, open opener) {
	stores := make([]store, 4)
	for i := range stores {
		stores[i] = mustOpen(t, open, time.Now)
	}
	users := make([]*User, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		users[i] = &User{Name: []string{"alice", "Alice", "ALICE", " alice"}[i]}
		wg.Go(func() { errs[i] = s.Create(t.Context(), users[i]) })
	}
	wg.Wait()
	var winner *User
	for i, err := range errs {
		switch {
		case err == nil && winner == nil:
			winner = users[i]
		case err == nil:
			t.Errorf("creator %d: got nil after another creator won, want ErrExists", i)
		case !errors.Is(err, ErrExists):
			t.Errorf("creator %d: got %v, want nil or ErrExists", i, err)
		}
	}
	if winner == nil {
		t.Fatal("got no successful creation, want 1")
	}
	for i, s := range stores {
		if got, err := s.ByName(t.Context(), "alice"); err != nil || !reflect.DeepEqual(got, winner) {
			t.Errorf("store %d: ByName(alice) = %+v, %v; want %+v", i, got, err, winner)
		}
	}
}

// Several processes or nodes starting at once on a fresh database all set
// it up without error, and the result works for all of them.
func testConcurrentStarts(t *testing.T, open opener) {
	stores := make([]store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = open(time.Now) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	u := mustCreate(t, stores[0], &User{Name: "alice"})
	for i, s := range stores {
		if got, err := s.ByID(t.Context(), u.ID); err != nil || got.Name != "alice" {
			t.Errorf("store %d: ByID = %+v, %v; want alice", i, got, err)
		}
		if n, err := s.Count(t.Context()); n != 1 || err != nil {
			t.Errorf("store %d: Count() = %d, %v; want 1, nil", i, n, err)
		}
	}
}

// CreateFirst creates a user like Create on an empty store, and refuses
// once any user exists, however it was created.
func testCreateFirst(t *testing.T, open opener) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	s := mustOpen(t, open, func() time.Time { return now })
	ctx := t.Context()
	setup := addSetup(t, s, now)
	if err := s.CreateFirst(ctx, &User{Name: "no such/name"}, setup, now); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("CreateFirst with an invalid name: got %v, want ErrInvalidName", err)
	}
	u := &User{Name: " Root ", PasswordHash: "$argon2id$x", Admin: true}
	if err := s.CreateFirst(ctx, u, setup, now); err != nil {
		t.Fatalf("CreateFirst on an empty store: %v", err)
	}
	if u.Name != "root" || len(u.ID) != 24 || !u.Created.Equal(now) {
		t.Errorf("CreateFirst set %+v, want name root, an id and Created %v", u, now)
	}
	if got, err := s.ByID(ctx, u.ID); err != nil || !reflect.DeepEqual(got, u) {
		t.Errorf("ByID = %+v, %v; want %+v", got, err, u)
	}
	for _, name := range []string{"second", "root"} {
		again := &User{Name: name, Admin: true}
		if err := s.CreateFirst(ctx, again, addSetup(t, s, now), now); !errors.Is(err, ErrNotFirst) || again.ID != "" {
			t.Errorf("CreateFirst(%s) once a user exists: got %v, ID %q; want ErrNotFirst, no ID", name, err, again.ID)
		}
	}
	if n, err := s.Count(ctx); n != 1 || err != nil {
		t.Errorf("Count() = %d, %v; want 1, nil", n, err)
	}
}

// A user made by Create, through another pool, counts as well.
func testCreateFirstAfterCreate(t *testing.T, open opener) {
	mustCreate(t, mustOpen(t, open, time.Now), &User{Name: "alice"})
	s := mustOpen(t, open, time.Now)
	if err := s.CreateFirst(t.Context(), &User{Name: "root", Admin: true}, addSetup(t, s, time.Now()), time.Now()); !errors.Is(err, ErrNotFirst) {
		t.Fatalf("CreateFirst after Create: got %v, want ErrNotFirst", err)
	}
	if n, err := s.Count(t.Context()); n != 1 || err != nil {
		t.Errorf("Count() = %d, %v; want 1, nil", n, err)
	}
}

// PW-08: many nodes that see an empty database try to create the first
// admin at once with one setup link, through two connection pools (as
// two processes or nodes): exactly one succeeds, every other gets
// ErrNotFirst, and both pools see that one user.
func testOneFirstAdminAcrossNodes(t *testing.T, open opener) {
	stores := []store{mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)}
	setup := addSetup(t, stores[0], time.Now())
	const callers = 16
	// Every caller has a connection open already, so that all of them
	// reach the database at once when the start is given.
	var warm sync.WaitGroup
	for i := range callers {
		warm.Go(func() { stores[i%2].Count(t.Context()) })
	}
	warm.Wait()
	users := make([]*User, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		users[i] = &User{Name: fmt.Sprintf("admin%d", i), Admin: true}
		wg.Go(func() {
			<-start
			errs[i] = stores[i%2].CreateFirst(t.Context(), users[i], setup, time.Now())
		})
	}
	close(start)
	wg.Wait()
	var winners []*User
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, users[i])
		case !errors.Is(err, ErrNotFirst):
			t.Errorf("caller %d: got %v, want nil or ErrNotFirst", i, err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d CreateFirst calls succeeded, want exactly 1", len(winners))
	}
	for i, s := range stores {
		list, err := s.List(t.Context())
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], winners[0]) {
			t.Errorf("store %d: List() = %v, %v; want only %s", i, names(list), err, winners[0].Name)
		}
	}
}

// PW-08: another node's CreateFirst, run while one node's CreateFirst is
// between its check and its insert, creates no user: it waits for the
// first (here, its store doesn't wait, and fails), and once the first is
// done it answers ErrNotFirst. Exactly one admin exists. (Without a lock
// around the check and the insert, both would see no user and both would
// create one.)
func testFirstAdminCheckedAndCreatedAtOnce(t *testing.T, open opener) {
	ctx := t.Context()
	s := mustOpen(t, open, time.Now)
	other, err := s.(interleaver).noWaitTwin(t)
	if err != nil {
		t.Fatalf("open another store: %v", err)
	}
	setup := addSetup(t, s, time.Now())
	var otherErr error
	s.(interleaver).setCreateFirstHook(func() {
		otherErr = other.CreateFirst(ctx, &User{Name: "bob", Admin: true}, setup, time.Now())
	})
	first := &User{Name: "alice", Admin: true}
	if err := s.CreateFirst(ctx, first, setup, time.Now()); err != nil {
		t.Fatalf("CreateFirst: %v", err)
	}
	if otherErr == nil {
		t.Errorf("a CreateFirst between another's check and insert: got no error, want it to wait (here: fail)")
	}
	if err := other.CreateFirst(ctx, &User{Name: "bob", Admin: true}, setup, time.Now()); !errors.Is(err, ErrNotFirst) {
		t.Errorf("CreateFirst once the first is done: got %v, want ErrNotFirst", err)
	}
	list, err := other.List(ctx)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], first) {
		t.Fatalf("List() = %v, %v; want only %s", names(list), err, first.Name)
	}
}

// PW-08: a setup link kept through one pool (one node) is valid through
// another until it expires; CreateFirst refuses an unknown or expired
// one with ErrNoSetup and changes nothing, and spends every link when it
// creates the first admin.
func testSetupLinksSharedAndSpentOnce(t *testing.T, open opener) {
	ctx := t.Context()
	now := time.Now()
	a, b := mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)
	linkA, linkB := addSetup(t, a, now), addSetup(t, b, now)
	var unknown SetupHash
	tests := []struct {
		name  string
		setup SetupHash
		at    time.Time
		want  bool
	}{
		{"A's link through B", linkA, now, true},
		{"B's link through B", linkB, now, true},
		{"unknown", unknown, now, false},
		{"A's link a moment before it expires", linkA, now.Add(time.Hour - time.Microsecond), true},
		{"A's link when it expires", linkA, now.Add(time.Hour), false},
	}
	for _, tc := range tests {
		if got, err := b.SetupValid(ctx, tc.setup, tc.at); got != tc.want || err != nil {
			t.Errorf("%s: SetupValid = %v, %v; want %v", tc.name, got, err, tc.want)
		}
		if tc.want {
			continue
		}
		if err := b.CreateFirst(ctx, &User{Name: "root", Admin: true}, tc.setup, tc.at); !errors.Is(err, ErrNoSetup) {
			t.Errorf("%s: CreateFirst got %v, want ErrNoSetup", tc.name, err)
		}
	}
	if n, err := a.Count(ctx); n != 0 || err != nil {
		t.Fatalf("after refused setups: Count() = %d, %v; want 0", n, err)
	}
	if err := b.CreateFirst(ctx, &User{Name: "root", Admin: true}, linkA, now); err != nil {
		t.Fatalf("CreateFirst through B with A's link: %v", err)
	}
	for _, l := range []SetupHash{linkA, linkB} {
		if got, err := a.SetupValid(ctx, l, now); got || err != nil {
			t.Errorf("a link after the first admin: SetupValid = %v, %v; want false (spent)", got, err)
		}
	}
}

// PW-08: a user added another way (tether user add) spends every setup
// link, so deleting that user within the link's hour doesn't reopen it.
func testCreateSpendsSetupLinks(t *testing.T, open opener) {
	ctx := t.Context()
	now := time.Now()
	s := mustOpen(t, open, time.Now)
	link := addSetup(t, s, now)
	bob := mustCreate(t, s, &User{Name: "bob"})
	if err := s.Delete(ctx, bob.ID); err != nil {
		t.Fatalf("Delete(bob): %v", err)
	}
	if got, err := s.SetupValid(ctx, link, now); got || err != nil {
		t.Errorf("a link after a user was created and deleted: SetupValid = %v, %v; want false", got, err)
	}
	if err := s.CreateFirst(ctx, &User{Name: "root", Admin: true}, link, now); !errors.Is(err, ErrNoSetup) {
		t.Errorf("CreateFirst with that link: got %v, want ErrNoSetup", err)
	}
}

// A rename keeps the user's id, record and sign-in name canonical; a name
// taken by another user, or invalid, changes nothing.
func testRename(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	ctx := t.Context()
	alice := mustCreate(t, s, &User{Name: "alice", PasswordHash: "h", Admin: true})
	bob := mustCreate(t, s, &User{Name: "bob"})
	tests := []struct {
		name string
		want error
	}{
		{" Alicia ", nil},
		{"alicia", nil}, // its own name
		{"BOB", ErrExists},
		{"a b", ErrInvalidName},
		{"", ErrInvalidName},
	}
	for _, tt := range tests {
		if err := s.Rename(ctx, alice.ID, tt.name); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Rename(alice, %q) = %v, want %v", tt.name, err, tt.want)
		}
	}
	want := *alice
	want.Name = "alicia"
	if got, err := s.ByName(ctx, "alicia"); err != nil || !reflect.DeepEqual(got, &want) {
		t.Errorf("ByName(alicia) = %+v, %v; want %+v", got, err, &want)
	}
	if _, err := s.ByName(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByName(alice) after the rename: got %v, want ErrNotFound", err)
	}
	if got, err := s.ByID(ctx, bob.ID); err != nil || !reflect.DeepEqual(got, bob) {
		t.Errorf("bob after the renames: got %+v, %v; want %+v", got, err, bob)
	}
}

// Two processes or nodes renaming two users to one name at once: exactly
// one wins, the other gets ErrExists.
func testRenameRace(t *testing.T, open opener) {
	stores := []store{mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)}
	users := []*User{mustCreate(t, stores[0], &User{Name: "alice"}), mustCreate(t, stores[0], &User{Name: "bob"})}
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { errs[i] = stores[i].Rename(t.Context(), u.ID, "carol") })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrExists) {
		t.Fatalf("two renames to one name: got %v; want one nil and one ErrExists", errs)
	}
	if list, err := stores[1].List(t.Context()); err != nil || !reflect.DeepEqual(names(list), []string{"alice", "carol"}) &&
		!reflect.DeepEqual(names(list), []string{"bob", "carol"}) {
		t.Errorf("List() = %v, %v; want carol and the loser's old name", names(list), err)
	}
}

// Delete removes a user, except the only admin who can sign in: a
// disabled admin doesn't count, and may go.
func testDelete(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	ctx := t.Context()
	root := mustCreate(t, s, &User{Name: "root", Admin: true})
	old := mustCreate(t, s, &User{Name: "old", Admin: true, Disabled: true})
	bob := mustCreate(t, s, &User{Name: "bob"})
	steps := []struct {
		what string
		id   string
		want error
	}{
		{"a user", bob.ID, nil},
		{"a user twice", bob.ID, ErrNotFound},
		{"the only admin who can sign in", root.ID, ErrLastAdmin},
		{"a disabled admin", old.ID, nil},
	}
	for _, st := range steps {
		if err := s.Delete(ctx, st.id); !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
			t.Errorf("Delete(%s) = %v, want %v", st.what, err, st.want)
		}
	}
	if list, err := s.List(ctx); err != nil || !reflect.DeepEqual(list, []*User{root}) {
		t.Fatalf("List() = %v, %v; want only root", names(list), err)
	}
	mustCreate(t, s, &User{Name: "second", Admin: true})
	if err := s.Delete(ctx, root.ID); err != nil {
		t.Errorf("Delete(root) once another admin exists: %v", err)
	}
	if n, err := s.Count(ctx); n != 1 || err != nil {
		t.Errorf("Count() = %d, %v; want 1, nil", n, err)
	}
}

// Many processes or nodes each deleting another admin at once, through
// two connection pools: all but one succeed, and an admin is left.
func testDeleteKeepsAnAdminAcrossNodes(t *testing.T, open opener) {
	stores := []store{mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)}
	const admins = 8
	users := make([]*User, admins)
	for i := range users {
		users[i] = mustCreate(t, stores[0], &User{Name: fmt.Sprintf("admin%d", i), Admin: true})
	}
	errs := make([]error, admins)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			<-start
			errs[i] = stores[i%2].Delete(t.Context(), u.ID)
		})
	}
	close(start)
	wg.Wait()
	refused := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, ErrLastAdmin):
			refused++
		case err != nil:
			t.Errorf("Delete(%s): got %v, want nil or ErrLastAdmin", users[i].Name, err)
		}
	}
	if n, err := stores[1].Count(t.Context()); refused != 1 || n != 1 || err != nil {
		t.Fatalf("%d Deletes refused, Count() = %d, %v; want 1 refused and 1 admin left", refused, n, err)
	}
}

// Another node's Delete of the other admin, run while one node's Delete
// is between its check and its removal, waits for it (here, its store
// doesn't wait, and fails); once the first is done, it is refused. (Without
// a lock around the check and the removal, both would see another admin
// and none would be left.)
func testLastAdminCheckedAndDeletedAtOnce(t *testing.T, open opener) {
	ctx := t.Context()
	s := mustOpen(t, open, time.Now)
	alice := mustCreate(t, s, &User{Name: "alice", Admin: true})
	bob := mustCreate(t, s, &User{Name: "bob", Admin: true})
	other, err := s.(interleaver).noWaitTwin(t)
	if err != nil {
		t.Fatalf("open another store: %v", err)
	}
	var otherErr error
	s.(interleaver).setDeleteHook(func() { otherErr = other.Delete(ctx, bob.ID) })
	if err := s.Delete(ctx, alice.ID); err != nil {
		t.Fatalf("Delete(alice): %v", err)
	}
	if otherErr == nil {
		t.Errorf("a Delete between another's check and removal: got no error, want it to wait (here: fail)")
	}
	if err := other.Delete(ctx, bob.ID); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("Delete(bob) once alice is gone: got %v, want ErrLastAdmin", err)
	}
	if list, err := other.List(ctx); err != nil || !reflect.DeepEqual(list, []*User{bob}) {
		t.Fatalf("List() = %v, %v; want only bob", names(list), err)
	}
}

// names returns the names of users.
func names(users []*User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Name)
	}
	return out
}

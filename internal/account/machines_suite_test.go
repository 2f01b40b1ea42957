package account

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// The suite's cases of Clients and PATs (machines.go); keys_suite_test.go
// has KeyStorage's.

func mustCreateClient(t *testing.T, s Clients, c *Client) *Client {
	t.Helper()
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("CreateClient(%q): %v", c.ID, err)
	}
	return c
}

func mustCreatePAT(t *testing.T, s PATs, p *PAT) *PAT {
	t.Helper()
	if err := s.CreatePAT(t.Context(), p); err != nil {
		t.Fatalf("CreatePAT(%q): %v", p.Name, err)
	}
	return p
}

// newPATFor returns a token of user to create, named name, expiring in a
// day.
func newPATFor(user *User, name string) *PAT {
	_, h := NewPAT()
	return &PAT{UserID: user.ID, Name: name, Hash: h, Expires: time.Now().Add(24 * time.Hour)}
}

// A client comes back, through another pool too, as CreateClient set it:
// its sets sorted without duplicates, Created to the microsecond.
func testClientRoundTrip(t *testing.T, open opener) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 8009, time.FixedZone("CET", 3600))
	a := mustOpen(t, open, func() time.Time { return now })
	b := mustOpen(t, open, time.Now)
	_, h := NewClientSecret()
	c := mustCreateClient(t, a, &Client{ID: "ci-bot", SecretHash: h, Scopes: []string{"write", "read", "write"},
		Audiences: []string{"api://y", "api://x", "api://y"}, MaxTTL: 5*time.Minute + time.Nanosecond, Disabled: true})
	// Scopes are a set; the audiences keep their order: the first is the
	// default.
	want := &Client{ID: "ci-bot", SecretHash: h, Scopes: []string{"read", "write"}, Audiences: []string{"api://y", "api://x"},
		MaxTTL: 5*time.Minute + time.Nanosecond, Disabled: true, Created: time.Date(2026, 3, 4, 4, 6, 7, 8000, time.UTC)}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("CreateClient set %+v, want %+v", c, want)
	}
	bare := mustCreateClient(t, a, &Client{ID: "bare", Scopes: []string{}})
	for _, s := range []store{a, b} {
		for _, w := range []*Client{want, bare} {
			if got, err := s.Client(t.Context(), w.ID); err != nil || !reflect.DeepEqual(got, w) {
				t.Errorf("Client(%q) = %+v, %v; want %+v", w.ID, got, err, w)
			}
		}
	}
	if bare.Scopes != nil || bare.Audiences != nil {
		t.Errorf("a client of no scopes and audiences: got %q and %q, want nil (an empty set is nil)", bare.Scopes, bare.Audiences)
	}
}

// Client ids sort byte by byte on every backend.
func testClientListOrderedByID(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	if list, err := s.ClientList(t.Context()); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ClientList() of none = %v, %v; want an empty slice, nil", list, err)
	}
	for _, id := range []string{"carol", "a_b", "a.b", "a-b", "ab", "a1", "b"} {
		mustCreateClient(t, s, &Client{ID: id})
	}
	list, err := s.ClientList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range list {
		got = append(got, c.ID)
	}
	if want := []string{"a-b", "a.b", "a1", "a_b", "ab", "b", "carol"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ClientList() ids = %v, want %v", got, want)
	}
}

// CreateClient refuses an id that isn't canonical, one that is taken
// (leaving the first client as it was) and a negative lifetime; the
// others answer ErrClientNotFound for a client that isn't there, lookups
// by an id spelt otherwise included.
func testClientErrors(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	ctx := t.Context()
	first := mustCreateClient(t, s, &Client{ID: "bot", Scopes: []string{"a"}})
	creates := []struct {
		name string
		c    Client
		want error // nil: some other error
	}{
		{"taken", Client{ID: "bot", Scopes: []string{"b"}}, ErrClientExists},
		{"empty id", Client{}, ErrInvalidClientID},
		{"upper case", Client{ID: "Bot2"}, ErrInvalidClientID},
		{"space", Client{ID: " bot2"}, ErrInvalidClientID},
		{"at sign", Client{ID: "bot@x"}, ErrInvalidClientID},
		{"65 characters", Client{ID: strings.Repeat("b", 65)}, ErrInvalidClientID},
		{"negative MaxTTL", Client{ID: "bot3", MaxTTL: -time.Second}, nil},
	}
	for _, tt := range creates {
		c := tt.c
		err := s.CreateClient(ctx, &c)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !c.Created.IsZero() {
			t.Errorf("CreateClient(%s) = %v, Created %v; want %v and no Created", tt.name, err, c.Created, tt.want)
		}
	}
	if list, err := s.ClientList(ctx); err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], first) {
		t.Errorf("ClientList() after refused creations = %v, %v; want only %+v", list, err, first)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Client", func() error { _, err := s.Client(ctx, "nobody"); return err }},
		{"Client by another spelling", func() error { _, err := s.Client(ctx, "BOT"); return err }},
		{"SetClientSecret", func() error { return s.SetClientSecret(ctx, "nobody", SecretHash{1}) }},
		{"SetClientDisabled", func() error { return s.SetClientDisabled(ctx, "nobody", true) }},
		{"DeleteClient", func() error { return s.DeleteClient(ctx, "nobody") }},
	}
	for _, tt := range calls {
		if err := tt.call(); !errors.Is(err, ErrClientNotFound) {
			t.Errorf("%s: got %v, want ErrClientNotFound", tt.name, err)
		}
	}
}

// Each change touches its one field of its one client, as seen through
// another pool; a deleted client's id can be taken again.
func testClientUpdates(t *testing.T, open opener) {
	a, b := mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)
	ctx := t.Context()
	c := mustCreateClient(t, a, &Client{ID: "bot", SecretHash: SecretHash{1}, Scopes: []string{"read"}})
	other := mustCreateClient(t, a, &Client{ID: "other", SecretHash: SecretHash{2}})
	_, h := NewClientSecret()
	if err := a.SetClientSecret(ctx, c.ID, h); err != nil {
		t.Fatal(err)
	}
	c.SecretHash = h
	for _, disabled := range []bool{true, true, false} {
		if err := a.SetClientDisabled(ctx, c.ID, disabled); err != nil {
			t.Fatalf("SetClientDisabled(%v): %v", disabled, err)
		}
		c.Disabled = disabled
		if got, err := b.Client(ctx, c.ID); err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("after SetClientDisabled(%v): got %+v, %v; want %+v", disabled, got, err, c)
		}
	}
	if err := a.DeleteClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client(ctx, c.ID); !errors.Is(err, ErrClientNotFound) {
		t.Errorf("Client after DeleteClient: got %v, want ErrClientNotFound", err)
	}
	if err := a.DeleteClient(ctx, c.ID); !errors.Is(err, ErrClientNotFound) {
		t.Errorf("DeleteClient twice: got %v, want ErrClientNotFound", err)
	}
	if got, err := b.Client(ctx, other.ID); err != nil || !reflect.DeepEqual(got, other) {
		t.Errorf("the other client after the changes: got %+v, %v; want %+v", got, err, other)
	}
	mustCreateClient(t, b, &Client{ID: "bot"})
}

// Nodes adding one client id at once: exactly one wins.
func testClientCreateRace(t *testing.T, open opener) {
	stores := []store{mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)}
	const callers = 8
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			errs[i] = stores[i%2].CreateClient(t.Context(), &Client{ID: "bot", SecretHash: SecretHash{byte(i)}})
		})
	}
	wg.Wait()
	var won []int
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, i)
		case !errors.Is(err, ErrClientExists):
			t.Errorf("caller %d: got %v, want nil or ErrClientExists", i, err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("callers that created the client: %v, want exactly one", won)
	}
	if c, err := stores[1].Client(t.Context(), "bot"); err != nil || c.SecretHash != (SecretHash{byte(won[0])}) {
		t.Errorf("Client(bot) = %+v, %v; want the winner's", c, err)
	}
}

// A token comes back, by hash, in its user's list and through another
// pool, as CreatePAT set it: a fresh id, Created now and Expires to the
// microsecond, its scopes sorted, its generation as given.
func testPATRoundTrip(t *testing.T, open opener) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 8009, time.UTC)
	clock := now // each call of the store's clock is a second later: alice, bob, then the token
	a := mustOpen(t, open, func() time.Time { clock = clock.Add(time.Second); return clock })
	b := mustOpen(t, open, time.Now)
	alice := mustCreate(t, a, &User{Name: "alice"})
	bob := mustCreate(t, a, &User{Name: "bob"})
	_, h := NewPAT()
	expires := time.Date(2026, 4, 4, 5, 6, 7, 8009, time.FixedZone("X", -7200))
	p := mustCreatePAT(t, a, &PAT{UserID: alice.ID, Name: "laptop script ✓", Hash: h, Scopes: []string{"b", "a", "b"}, Expires: expires, Gen: 1 << 40})
	want := &PAT{ID: p.ID, UserID: alice.ID, Name: "laptop script ✓", Hash: h, Scopes: []string{"a", "b"},
		Created: now.Add(3 * time.Second).Truncate(time.Microsecond), Expires: time.Date(2026, 4, 4, 7, 6, 7, 8000, time.UTC), Gen: 1 << 40}
	if len(p.ID) != 26 || !strings.HasPrefix(p.ID, "pat_") || !reflect.DeepEqual(p, want) {
		t.Errorf("CreatePAT set %+v, want %+v and an id of pat_ and 22 characters", p, want)
	}
	second := mustCreatePAT(t, a, newPATFor(alice, "second"))
	bobs := mustCreatePAT(t, a, newPATFor(bob, "bob's"))
	for _, s := range []store{a, b} {
		if got, err := s.PATByHash(t.Context(), h); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("PATByHash = %+v, %v; want %+v", got, err, want)
		}
		if list, err := s.PATList(t.Context(), alice.ID); err != nil || !reflect.DeepEqual(list, []*PAT{want, second}) {
			t.Errorf("PATList(alice) = %v, %v; want her two, oldest first", list, err)
		}
		if list, err := s.PATList(t.Context(), bob.ID); err != nil || !reflect.DeepEqual(list, []*PAT{bobs}) {
			t.Errorf("PATList(bob) = %v, %v; want his one", list, err)
		}
		if list, err := s.PATList(t.Context(), "u_nobody"); err != nil || list == nil || len(list) != 0 {
			t.Errorf("PATList(nobody) = %v, %v; want an empty slice, nil", list, err)
		}
	}
}

// CreatePAT refuses a token of nobody, or without a name of 1 to 100
// bytes of UTF-8 or an expiry, and keeps none of them; the lookups answer
// ErrPATNotFound for a token that isn't there or isn't the user's.
func testPATErrors(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	ctx := t.Context()
	alice := mustCreate(t, s, &User{Name: "alice"})
	bob := mustCreate(t, s, &User{Name: "bob"})
	mustCreatePAT(t, s, newPATFor(alice, strings.Repeat("é", MaxPATNameLen/2)))
	creates := []struct {
		name string
		p    *PAT
		want error
	}{
		{"no such user", newPATFor(&User{ID: "u_nobody"}, "x"), ErrNotFound},
		{"no name", newPATFor(alice, ""), ErrInvalidPAT},
		{"101 bytes of name", newPATFor(alice, "x"+strings.Repeat("é", MaxPATNameLen/2)), ErrInvalidPAT},
		{"invalid UTF-8", newPATFor(alice, "a\xffb"), ErrInvalidPAT},
		{"no expiry", &PAT{UserID: alice.ID, Name: "x"}, ErrInvalidPAT},
	}
	for _, tt := range creates {
		if err := s.CreatePAT(ctx, tt.p); !errors.Is(err, tt.want) || tt.p.ID != "" {
			t.Errorf("CreatePAT(%s) = %v, ID %q; want %v and no ID", tt.name, err, tt.p.ID, tt.want)
		}
	}
	if list, err := s.PATList(ctx, alice.ID); err != nil || len(list) != 1 {
		t.Errorf("PATList(alice) after refused creations = %v, %v; want her one token", list, err)
	}
	bobs := mustCreatePAT(t, s, newPATFor(bob, "bob's"))
	if _, err := s.PATByHash(ctx, SecretHash{1}); !errors.Is(err, ErrPATNotFound) {
		t.Errorf("PATByHash(unknown) = %v, want ErrPATNotFound", err)
	}
	for _, tt := range []struct{ user, id string }{{alice.ID, "pat_nope"}, {alice.ID, bobs.ID}, {"u_nobody", bobs.ID}} {
		if _, err := s.DeletePAT(ctx, tt.user, tt.id); !errors.Is(err, ErrPATNotFound) {
			t.Errorf("DeletePAT(%s, %s) = %v, want ErrPATNotFound", tt.user, tt.id, err)
		}
	}
	if got, err := s.PATByHash(ctx, bobs.Hash); err != nil || !reflect.DeepEqual(got, bobs) {
		t.Errorf("bob's token after alice tried to delete it: got %+v, %v; want %+v", got, err, bobs)
	}
}

// TouchPAT keeps the latest use, to the microsecond, whichever node
// touches in whatever order; touching a token that is gone does nothing.
// DeletePAT returns the token as it was, last use included.
func testTouchAndDeletePAT(t *testing.T, open opener) {
	a, b := mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)
	ctx := t.Context()
	alice := mustCreate(t, a, &User{Name: "alice"})
	p := mustCreatePAT(t, a, newPATFor(alice, "script"))
	t1 := time.Date(2026, 5, 6, 7, 8, 9, 10011, time.UTC)
	steps := []struct {
		s    store
		at   time.Time
		want time.Time
	}{
		{a, t1, t1.Truncate(time.Microsecond)},
		{b, t1.Add(-time.Hour), t1.Truncate(time.Microsecond)},
		{b, t1.Add(time.Minute), t1.Add(time.Minute).Truncate(time.Microsecond)},
		{a, t1, t1.Add(time.Minute).Truncate(time.Microsecond)},
	}
	for i, st := range steps {
		if err := st.s.TouchPAT(ctx, p.ID, st.at); err != nil {
			t.Fatalf("step %d: TouchPAT: %v", i, err)
		}
		if got, err := b.PATByHash(ctx, p.Hash); err != nil || !got.LastUsed.Equal(st.want) || got.LastUsed.Location() != time.UTC {
			t.Fatalf("step %d: LastUsed = %+v, %v; want %v", i, got, err, st.want)
		}
	}
	want := *p
	want.LastUsed = steps[len(steps)-1].want
	got, err := b.DeletePAT(ctx, alice.ID, p.ID)
	if err != nil || !reflect.DeepEqual(got, &want) {
		t.Fatalf("DeletePAT = %+v, %v; want %+v", got, err, &want)
	}
	if _, err := a.PATByHash(ctx, p.Hash); !errors.Is(err, ErrPATNotFound) {
		t.Errorf("PATByHash after DeletePAT: got %v, want ErrPATNotFound", err)
	}
	if _, err := a.DeletePAT(ctx, alice.ID, p.ID); !errors.Is(err, ErrPATNotFound) {
		t.Errorf("DeletePAT twice: got %v, want ErrPATNotFound", err)
	}
	for _, id := range []string{p.ID, "pat_never"} {
		if err := a.TouchPAT(ctx, id, time.Now()); err != nil {
			t.Errorf("TouchPAT(%s) of no token: got %v, want nil", id, err)
		}
	}
}

// Deleting a user deletes their tokens with them, and no one else's.
func testDeleteUserDeletesPATs(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	ctx := t.Context()
	alice := mustCreate(t, s, &User{Name: "alice"})
	bob := mustCreate(t, s, &User{Name: "bob"})
	hers := []*PAT{mustCreatePAT(t, s, newPATFor(alice, "one")), mustCreatePAT(t, s, newPATFor(alice, "two"))}
	his := mustCreatePAT(t, s, newPATFor(bob, "his"))
	if err := s.Delete(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range hers {
		if _, err := s.PATByHash(ctx, p.Hash); !errors.Is(err, ErrPATNotFound) {
			t.Errorf("PATByHash(%s) after her deletion: got %v, want ErrPATNotFound", p.Name, err)
		}
	}
	if list, err := s.PATList(ctx, alice.ID); err != nil || len(list) != 0 {
		t.Errorf("PATList(alice) after her deletion = %v, %v; want none", list, err)
	}
	if got, err := s.PATByHash(ctx, his.Hash); err != nil || !reflect.DeepEqual(got, his) {
		t.Errorf("bob's token: got %+v, %v; want %+v", got, err, his)
	}
}

// DeletePATs removes every token of one user, from any node, and no one
// else's; a user with none is not an error.
func testDeleteUserPATs(t *testing.T, open opener) {
	a, b := mustOpen(t, open, time.Now), mustOpen(t, open, time.Now)
	ctx := t.Context()
	alice := mustCreate(t, a, &User{Name: "alice"})
	bob := mustCreate(t, a, &User{Name: "bob"})
	hers := []*PAT{mustCreatePAT(t, a, newPATFor(alice, "one")), mustCreatePAT(t, a, newPATFor(alice, "two"))}
	his := mustCreatePAT(t, a, newPATFor(bob, "his"))
	if n, err := b.DeletePATs(ctx, alice.ID); n != 2 || err != nil {
		t.Fatalf("DeletePATs(alice) = %d, %v; want 2, nil", n, err)
	}
	for _, p := range hers {
		if _, err := a.PATByHash(ctx, p.Hash); !errors.Is(err, ErrPATNotFound) {
			t.Errorf("PATByHash(%s) after DeletePATs: got %v, want ErrPATNotFound", p.Name, err)
		}
	}
	if n, err := a.DeletePATs(ctx, alice.ID); n != 0 || err != nil {
		t.Errorf("DeletePATs(alice) again = %d, %v; want 0, nil", n, err)
	}
	if got, err := a.PATByHash(ctx, his.Hash); err != nil || !reflect.DeepEqual(got, his) {
		t.Errorf("bob's token: got %+v, %v; want %+v", got, err, his)
	}
}

// Another node's CreatePAT for a user, run while one node's Delete of
// that user is between its check and its removal, waits for it (here,
// its store doesn't wait, and fails); once the user is gone it answers
// ErrNotFound. So no token outlives its user.
func testPATOfUserBeingDeleted(t *testing.T, open opener) {
	ctx := t.Context()
	s := mustOpen(t, open, time.Now)
	alice := mustCreate(t, s, &User{Name: "alice"})
	other, err := s.(interleaver).noWaitTwin(t)
	if err != nil {
		t.Fatalf("open another store: %v", err)
	}
	var otherErr error
	s.(interleaver).setDeleteHook(func() { otherErr = other.CreatePAT(ctx, newPATFor(alice, "late")) })
	if err := s.Delete(ctx, alice.ID); err != nil {
		t.Fatalf("Delete(alice): %v", err)
	}
	if otherErr == nil {
		t.Errorf("a CreatePAT between a Delete's check and removal: got no error, want it to wait (here: fail)")
	}
	if err := other.CreatePAT(ctx, newPATFor(alice, "later")); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreatePAT once the user is gone: got %v, want ErrNotFound", err)
	}
	if list, err := other.PATList(ctx, alice.ID); err != nil || len(list) != 0 {
		t.Errorf("PATList of the deleted user = %v, %v; want none", list, err)
	}
}

// JWT-09: the durable copy of the denylist's jti entries: a revocation is
// read back through another pool, the later exp wins, an entry past its
// exp is dropped once others are written, and nothing is kept without a
// jti and an exp.
func testRecordedRevocations(t *testing.T, open opener) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { return now }
	a, b := mustOpen(t, open, clock), mustOpen(t, open, clock)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.RecordRevocation(ctx, "j1", now.Add(time.Hour)))
	must(a.RecordRevocation(ctx, "j1", now.Add(time.Minute))) // earlier: the later stays
	must(a.RecordRevocation(ctx, "j2", now.Add(time.Minute)))
	if got, err := b.RevocationRecorded(ctx, "j1"); err != nil || !got {
		t.Errorf("RevocationRecorded(j1) through another pool = %v, %v; want true", got, err)
	}
	if got, err := b.RevocationRecorded(ctx, "j3"); err != nil || got {
		t.Errorf("RevocationRecorded(j3) = %v, %v; want false", got, err)
	}
	list, err := b.RecordedRevocations(ctx, now.Add(30*time.Minute))
	want := []RecordedRevocation{{"j1", now.Add(time.Hour)}}
	if err != nil || !reflect.DeepEqual(list, want) {
		t.Errorf("RecordedRevocations(now + 30 min) = %v, %v; want %v", list, err, want)
	}
	now = now.Add(2 * time.Minute) // j2 has expired: the next write drops it
	must(a.RecordRevocation(ctx, "j3", now.Add(time.Hour)))
	if got, err := b.RevocationRecorded(ctx, "j2"); err != nil || got {
		t.Errorf("RevocationRecorded(j2) past its exp, after a write = %v, %v; want false (dropped)", got, err)
	}
	for _, bad := range []struct {
		jti string
		exp time.Time
	}{{"", now}, {"j4", time.Time{}}} {
		if err := a.RecordRevocation(ctx, bad.jti, bad.exp); err == nil {
			t.Errorf("RecordRevocation(%q, %v): no error", bad.jti, bad.exp)
		}
	}
}

package account

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/keys"
)

// The suite's cases of KeyStorage, and of a keys.Ring on it.

// record returns a record named kid with every field set: times to the
// microsecond in a zone other than UTC, some private bytes.
func record(kid string, sealed bool) keys.Record {
	at := time.Date(2026, 7, 8, 9, 10, 11, 12000, time.FixedZone("X", 5*3600))
	private := make([]byte, 48)
	rand.Read(private)
	return keys.Record{Kid: kid, Alg: keys.EdDSA, Private: private, Sealed: sealed,
		Created: at, SignFrom: at.Add(15 * time.Minute), SignUntil: at.Add(720 * time.Hour), RemoveAt: at.Add(721 * time.Hour)}
}

// sameRecords reports how got (in any order) differs from want: "" if it
// holds the same records, times equal to the microsecond.
func sameRecords(got, want []keys.Record) string {
	byKid := func(a, b keys.Record) int { return strings.Compare(a.Kid, b.Kid) }
	got, want = slices.SortedFunc(slices.Values(got), byKid), slices.SortedFunc(slices.Values(want), byKid)
	if len(got) != len(want) {
		return fmt.Sprintf("%d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Kid != w.Kid || g.Alg != w.Alg || g.Sealed != w.Sealed || !bytes.Equal(g.Private, w.Private) ||
			!g.Created.Equal(w.Created) || !g.SignFrom.Equal(w.SignFrom) ||
			!g.SignUntil.Equal(w.SignUntil) || !g.RemoveAt.Equal(w.RemoveAt) {
			return fmt.Sprintf("record %d: got %v %x, want %v %x", i, g, []byte(g.Private), w, []byte(w.Private))
		}
	}
	return ""
}

func mustLoad(t *testing.T, st keys.Storage) ([]keys.Record, uint64) {
	t.Helper()
	recs, version, err := st.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return recs, version
}

// Load returns what Save wrote, every field, through another pool; a Save
// replaces or adds records and never deletes one; a Save of a version
// that isn't the ring's writes nothing.
func testKeyStorageRoundTrip(t *testing.T, open opener) {
	a, b := mustOpen(t, open, time.Now).KeyStorage(), mustOpen(t, open, time.Now).KeyStorage()
	ctx := t.Context()
	if recs, version := mustLoad(t, b); len(recs) != 0 || version != 0 {
		t.Fatalf("Load of a new ring = %v, %d; want no record, version 0", recs, version)
	}
	plain, sealed, open2 := record("k1", false), record("k2", true), record("k3", false)
	open2.SignUntil, open2.RemoveAt = time.Time{}, time.Time{} // no end planned
	want := []keys.Record{plain, sealed, open2}
	v1, err := a.Save(ctx, 0, want)
	if err != nil || v1 == 0 {
		t.Fatalf("Save(0) = %d, %v; want a version above 0", v1, err)
	}
	recs, version := mustLoad(t, b)
	if diff := sameRecords(recs, want); diff != "" || version != v1 {
		t.Fatalf("Load after Save: version %d (want %d): %s", version, v1, diff)
	}
	for _, r := range recs {
		if r.Created.Location() != time.UTC || r.SignUntil.IsZero() != (r.Kid == "k3") {
			t.Errorf("Load: record %s has times %v, %v; want them in UTC, zero kept zero", r.Kid, r.Created, r.SignUntil)
		}
	}

	removed := plain
	removed.Private, removed.RemoveAt = nil, plain.Created.Add(time.Hour) // destroyed
	v2, err := b.Save(ctx, v1, []keys.Record{removed})
	if err != nil || v2 <= v1 {
		t.Fatalf("Save(%d) = %d, %v; want a version above %d", v1, v2, err, v1)
	}
	want[0] = removed
	changed := sealed
	changed.Alg = keys.ES256
	for _, stale := range []uint64{0, v1, v2 + 1} {
		if v, err := a.Save(ctx, stale, []keys.Record{changed, record("k4", false)}); !errors.Is(err, keys.ErrConflict) {
			t.Errorf("Save(%d) while the ring is at %d = %d, %v; want ErrConflict", stale, v2, v, err)
		}
	}
	recs, version = mustLoad(t, a)
	if diff := sameRecords(recs, want); diff != "" || version != v2 {
		t.Fatalf("Load after a replacement and refused Saves: version %d (want %d): %s", version, v2, diff)
	}
	if v3, err := a.Save(ctx, v2, nil); err != nil || v3 <= v2 {
		t.Errorf("Save(%d) of no record = %d, %v; want a version above %d", v2, v3, err, v2)
	}
}

// Two nodes that loaded one version save at once: one wins, the other
// gets ErrConflict and writes nothing. Another node's Save, run while one
// node's Save is between its check of the version and its commit, waits
// for it (here, its store doesn't wait, and fails); after the commit it
// gets ErrConflict. (Without a lock around the check and the writes, both
// would see the version they loaded and both would write.)
func testKeyStorageSaveRace(t *testing.T, open opener) {
	ctx := t.Context()
	s := mustOpen(t, open, time.Now)
	other, err := s.(interleaver).noWaitTwin(t)
	if err != nil {
		t.Fatalf("open another store: %v", err)
	}
	_, version := mustLoad(t, s.KeyStorage())
	_, otherVersion := mustLoad(t, other.KeyStorage())
	var otherErr error
	s.(interleaver).setSaveKeysHook(func() {
		_, otherErr = other.KeyStorage().Save(ctx, otherVersion, []keys.Record{record("theirs", false)})
	})
	mine := record("mine", false)
	if _, err := s.KeyStorage().Save(ctx, version, []keys.Record{mine}); err != nil {
		t.Fatalf("Save: %v", err)
	}
	s.(interleaver).setSaveKeysHook(nil)
	if otherErr == nil {
		t.Errorf("a Save between another's check and commit: got no error, want it to wait (here: fail)")
	}
	if _, err := other.KeyStorage().Save(ctx, otherVersion, []keys.Record{record("theirs", false)}); !errors.Is(err, keys.ErrConflict) {
		t.Errorf("Save of the same version once the first is done: got %v, want ErrConflict", err)
	}
	if recs, _ := mustLoad(t, other.KeyStorage()); sameRecords(recs, []keys.Record{mine}) != "" {
		t.Errorf("Load after the race: %s", sameRecords(recs, []keys.Record{mine}))
	}
}

// Many nodes save on one version at once, through two pools, on a new
// ring and on one saved before: exactly one Save wins each time, and only
// its record is added.
func testKeyStorageConcurrentSaves(t *testing.T, open opener) {
	stores := []keys.Storage{mustOpen(t, open, time.Now).KeyStorage(), mustOpen(t, open, time.Now).KeyStorage()}
	var kept []keys.Record
	for round := range 2 {
		_, version := mustLoad(t, stores[0])
		const callers = 8
		recs := make([]keys.Record, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			recs[i] = record(fmt.Sprintf("k%d-%d", round, i), false)
			wg.Go(func() { _, errs[i] = stores[i%2].Save(t.Context(), version, recs[i:i+1]) })
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				kept = append(kept, recs[i])
			case !errors.Is(err, keys.ErrConflict):
				t.Errorf("round %d, caller %d: got %v, want nil or ErrConflict", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d Saves of version %d won, want exactly 1", round, won, version)
		}
		if got, _ := mustLoad(t, stores[1]); sameRecords(got, kept) != "" {
			t.Errorf("round %d: Load after the race: %s", round, sameRecords(got, kept))
		}
	}
}

// A keys.Ring runs on the store: a key one node rotates in, sealed with
// the master key, is the key another node's ring, on another pool,
// publishes and signs with; a rotation both decide on adds one key.
func testKeyRingAcrossNodes(t *testing.T, open opener) {
	ctx := t.Context()
	master, err := keys.ParseMasterKey(keys.NewMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg := keys.Config{MasterKey: master}
	ring := func(s store) *keys.Ring {
		r, err := keys.NewRing(ctx, s.KeyStorage(), cfg)
		if err != nil {
			t.Fatalf("NewRing: %v", err)
		}
		return r
	}
	a, b := ring(mustOpen(t, open, time.Now)), ring(mustOpen(t, open, time.Now))
	kid, err := a.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := b.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for name, r := range map[string]*keys.Ring{"reloaded": b, "new": ring(mustOpen(t, open, time.Now))} {
		signKid, _, signer, err := r.SigningKey(ctx)
		if err != nil || signKid != kid {
			t.Fatalf("%s ring: SigningKey = %s, %v; want %s", name, signKid, err, kid)
		}
		_, pub, err := a.PublicKey(ctx, kid)
		if err != nil {
			t.Fatalf("PublicKey(%s): %v", kid, err)
		}
		sig, err := signer.Sign(rand.Reader, []byte("token"), &ed25519.Options{})
		if err != nil || !ed25519.Verify(pub.(ed25519.PublicKey), []byte("token"), sig) {
			t.Fatalf("%s ring: its signature doesn't verify with the rotating node's key: %v", name, err)
		}
	}
	recs, _ := mustLoad(t, mustOpen(t, open, time.Now).KeyStorage())
	if len(recs) != 1 || !recs[0].Sealed {
		t.Fatalf("stored records %v; want one, sealed (KEY-04)", recs)
	}
	second, err := b.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate on the other node: %v", err)
	}
	if _, err := a.Rotate(ctx); !errors.Is(err, keys.ErrRotationPending) {
		t.Errorf("a second rotation decided on the first node: got %v, want ErrRotationPending", err)
	}
	if _, _, err := a.PublicKey(ctx, second); err != nil {
		t.Errorf("the first node's ring after its refused rotation: PublicKey(%s) = %v, want the other node's key", second, err)
	}
}

// A store error fails closed: with the context done, every method
// answers the context's error, never a not-found, a conflict or a value.
func testMachineStoreErrors(t *testing.T, open opener) {
	s := mustOpen(t, open, time.Now)
	alice := mustCreate(t, s, &User{Name: "alice"})
	p := mustCreatePAT(t, s, newPATFor(alice, "script"))
	mustCreateClient(t, s, &Client{ID: "bot"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateClient", func() error { return s.CreateClient(ctx, &Client{ID: "bot2"}) }},
		{"Client", func() error { _, err := s.Client(ctx, "bot"); return err }},
		{"ClientList", func() error { _, err := s.ClientList(ctx); return err }},
		{"SetClientSecret", func() error { return s.SetClientSecret(ctx, "bot", SecretHash{}) }},
		{"SetClientDisabled", func() error { return s.SetClientDisabled(ctx, "bot", true) }},
		{"DeleteClient", func() error { return s.DeleteClient(ctx, "bot") }},
		{"CreatePAT", func() error { return s.CreatePAT(ctx, newPATFor(alice, "x")) }},
		{"PATByHash", func() error { _, err := s.PATByHash(ctx, p.Hash); return err }},
		{"PATList", func() error { _, err := s.PATList(ctx, alice.ID); return err }},
		{"DeletePAT", func() error { _, err := s.DeletePAT(ctx, alice.ID, p.ID); return err }},
		{"DeletePATs", func() error { _, err := s.DeletePATs(ctx, alice.ID); return err }},
		{"TouchPAT", func() error { return s.TouchPAT(ctx, p.ID, time.Now()) }},
		{"Load", func() error { _, _, err := s.KeyStorage().Load(ctx); return err }},
		{"Save", func() error { _, err := s.KeyStorage().Save(ctx, 0, nil); return err }},
		{"RecordRevocation", func() error { return s.RecordRevocation(ctx, "j1", time.Now().Add(time.Hour)) }},
		{"RevocationRecorded", func() error { _, err := s.RevocationRecorded(ctx, "j1"); return err }},
		{"RecordedRevocations", func() error { _, err := s.RecordedRevocations(ctx, time.Now()); return err }},
	}
	for _, tt := range calls {
		if err := tt.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with its context done: got %v, want context.Canceled", tt.name, err)
		}
	}
	if got, err := s.PATByHash(t.Context(), p.Hash); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("the token after the failed calls: got %+v, %v; want it unchanged", got, err)
	}
}

package storetest

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetherauth/tether/session"
)

// Writers racing on one record with load, change, Save and retry on
// ErrConflict lose no update.
func testConcurrentSaves(t *testing.T, s session.Store, _ func() error) {
	const writers, increments = 8, 25
	r := newRecord("alice", 1)
	r.Data["n"] = []byte("0")
	create(t, s, r)

	increment := func() error {
		for {
			got, err := s.Get(t.Context(), r.Hash)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(string(got.Data["n"]))
			if err != nil {
				return err
			}
			got.Data["n"] = []byte(strconv.Itoa(n + 1))
			err = s.Save(t.Context(), got)
			if !errors.Is(err, session.ErrConflict) {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range increments {
				if err := increment(); err != nil {
					t.Errorf("increment: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	got := mustGet(t, s, r.Hash)
	if n, want := string(got.Data["n"]), strconv.Itoa(writers*increments); n != want {
		t.Errorf("counter: got %s, want %s", n, want)
	}
	if want := r.Version + writers*increments; got.Version != want {
		t.Errorf("Version: got %d, want %d (one per successful Save)", got.Version, want)
	}
}

func testConcurrentCreates(t *testing.T, s session.Store, _ func() error) {
	const users, perUser = 4, 8
	records := make([][]*session.Record, users)
	for u := range records {
		for n := range perUser {
			records[u] = append(records[u], newRecord("user"+strconv.Itoa(u), n))
		}
	}
	var wg sync.WaitGroup
	for _, rs := range records {
		for _, r := range rs {
			wg.Go(func() {
				if err := s.Create(t.Context(), r, session.CreateOptions{}); err != nil {
					t.Errorf("create %s: %v", r.ID, err)
				}
			})
		}
	}
	wg.Wait()
	for u, rs := range records {
		checkList(t, s, "user"+strconv.Itoa(u), rs...)
	}
}

// Of many creates of one hash, exactly one wins.
func testConcurrentCreatesSameHash(t *testing.T, s session.Store, _ func() error) {
	const racers = 16
	var wins atomic.Int32
	var winner atomic.Pointer[session.Record]
	var wg sync.WaitGroup
	for n := range racers {
		wg.Go(func() {
			r := newRecord("alice", n)
			r.Hash = newRecord("alice", 0).Hash
			switch err := s.Create(t.Context(), r, session.CreateOptions{}); {
			case err == nil:
				wins.Add(1)
				winner.Store(r)
			case !errors.Is(err, session.ErrConflict):
				t.Errorf("create %s: got error %v, want nil or %v", r.ID, err, session.ErrConflict)
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("successful creates: got %d, want 1", got)
	}
	checkRecord(t, mustGet(t, s, winner.Load().Hash), winner.Load())
	checkList(t, s, "alice", winner.Load())
}

// SES-12, raced: creates holding the generation they read race a
// revocation. Once RevokeUser has returned, no create holding a generation
// read before it succeeds, and every record it left live is of the new
// generation.
func testConcurrentCreatesRevoke(t *testing.T, s session.Store, _ func() error) {
	const racers, rounds = 8, 10
	for round := range rounds {
		user := "alice" + strconv.Itoa(round)
		old := generation(t, s, user)
		var revoked atomic.Bool
		var wg sync.WaitGroup
		for n := range racers {
			wg.Go(func() {
				for i := range 4 {
					r := newRecord(user, n*4+i)
					r.Gen = old
					after := revoked.Load()
					err := s.Create(t.Context(), r, session.CreateOptions{})
					switch {
					case err == nil && after:
						t.Errorf("round %d: a create holding the old generation succeeded after RevokeUser returned", round)
					case err != nil && !errors.Is(err, session.ErrRevoked):
						t.Errorf("round %d: create: got error %v, want nil or %v", round, err, session.ErrRevoked)
					}
				}
			})
		}
		revoke(t, s, user, nil)
		revoked.Store(true)
		wg.Wait()
		checkList(t, s, user) // whatever was created before the bump died with it
	}
}

// SES-13, raced: however many creates of one user run at once, the user
// never has more records than the cap.
func testConcurrentCreatesMaxPerUser(t *testing.T, s session.Store, _ func() error) {
	const limit, racers = 4, 24
	var wg sync.WaitGroup
	for n := range racers {
		wg.Go(func() {
			if err := createAt(t, s, newRecord("alice", n), session.CreateOptions{MaxPerUser: limit}); err != nil {
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	list, err := s.List(t.Context(), "alice")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != limit {
		t.Errorf("records after %d concurrent creates under a cap of %d: got %d", racers, limit, len(list))
	}
}

// SES-03, raced: a record can be rotated once; every other rotation of it
// finds it gone.
func testConcurrentReplaceOnce(t *testing.T, s session.Store, _ func() error) {
	old := create(t, s, newRecord("alice", 0))
	const racers = 12
	var wins atomic.Int32
	var wg sync.WaitGroup
	for n := range racers {
		wg.Go(func() {
			err := s.Create(t.Context(), newRecord("alice", n+1), session.CreateOptions{Replace: &old.Hash})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, session.ErrNotFound):
				t.Errorf("rotation: got error %v, want nil or %v", err, session.ErrNotFound)
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Errorf("successful rotations of one record: got %d, want 1", got)
	}
	checkDead(t, s, old.Hash)
	list, err := s.List(t.Context(), "alice")
	if err != nil || len(list) != 1 {
		t.Errorf("List after the rotations: got %d records, error %v; want 1", len(list), err)
	}
}

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
				if err := s.Save(t.Context(), r); err != nil {
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
			switch err := s.Save(t.Context(), r); {
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

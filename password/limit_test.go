package password

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// hashOps are the operations that take a hashing slot, for the PW-04 tests.
var hashOps = map[string]func(ctx context.Context, h *Hasher) error{
	"Hash": func(ctx context.Context, h *Hasher) error {
		_, err := h.Hash(ctx, "correct horse battery staple")
		return err
	},
	"Verify": func(ctx context.Context, h *Hasher) error {
		_, _, err := h.Verify(ctx, "correct horse battery staple", phcOf("m=19456,t=2,p=1", salt16, key32))
		return err
	},
	"VerifyDummy": func(ctx context.Context, h *Hasher) error {
		return h.VerifyDummy(ctx, "correct horse battery staple")
	},
}

// start runs op in a goroutine; the returned channel gets its error.
func start(ctx context.Context, h *Hasher, op func(context.Context, *Hasher) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- op(ctx, h) }()
	return done
}

// finished reports whether done has an error ready, and which.
func finished(done <-chan error) (bool, error) {
	select {
	case err := <-done:
		return true, err
	default:
		return false, nil
	}
}

// TestPW04_BusyAfterWait: with every slot taken, a caller waits exactly
// Wait (on synctest's clock), then gets ErrBusy without hashing.
func TestPW04_BusyAfterWait(t *testing.T) {
	for name, op := range hashOps {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHasher(t, HasherConfig{MaxConcurrent: 2, Wait: time.Second})
				calls := recordKDF(h, zeroKey)
				for range 2 {
					if err := h.acquire(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				begin := time.Now()
				done := start(t.Context(), h, op)

				time.Sleep(time.Second - time.Nanosecond)
				synctest.Wait()
				if ok, err := finished(done); ok {
					t.Fatalf("returned %v before Wait was over", err)
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				ok, err := finished(done)
				if !ok || !errors.Is(err, ErrBusy) {
					t.Fatalf("got %v, %v, want ErrBusy", ok, err)
				}
				if waited := time.Since(begin); waited != time.Second {
					t.Errorf("waited %v, want %v", waited, time.Second)
				}
				if n := len(calls()); n != 0 {
					t.Errorf("got %v hashes, want 0", n)
				}
			})
		})
	}
}

// TestPW04_WaiterGetsFreedSlot: a waiting caller hashes as soon as a slot is
// released.
func TestPW04_WaiterGetsFreedSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHasher(t, HasherConfig{MaxConcurrent: 1, Wait: time.Hour})
		calls := recordKDF(h, zeroKey)
		if err := h.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		done := start(t.Context(), h, hashOps["Hash"])
		time.Sleep(time.Minute)
		synctest.Wait()
		if ok, err := finished(done); ok {
			t.Fatalf("returned %v while no slot was free", err)
		}
		h.release()
		synctest.Wait()
		if ok, err := finished(done); !ok || err != nil {
			t.Fatalf("got %v, %v, want true, <nil>", ok, err)
		}
		if n := len(calls()); n != 1 {
			t.Errorf("got %v hashes, want 1", n)
		}
	})
}

// TestPW04_ContextEndsWait: a context that ends while the caller waits
// gives ErrBusy wrapping the context's error.
func TestPW04_ContextEndsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHasher(t, HasherConfig{MaxConcurrent: 1, Wait: time.Hour})
		if err := h.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := start(ctx, h, hashOps["Hash"])
		synctest.Wait()
		cancel()
		synctest.Wait()
		ok, err := finished(done)
		if !ok || !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, %v, want ErrBusy and context.Canceled", ok, err)
		}
	})
}

// TestPW04_ContextAlreadyDone: an ended context hashes nothing and is not
// reported as busy.
func TestPW04_ContextAlreadyDone(t *testing.T) {
	h := newHasher(t, HasherConfig{})
	calls := recordKDF(h, zeroKey)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, op := range hashOps {
		if err := op(ctx, h); !errors.Is(err, context.Canceled) || errors.Is(err, ErrBusy) {
			t.Errorf("%s: got %v, want context.Canceled", name, err)
		}
	}
	if n := len(calls()); n != 0 {
		t.Errorf("got %v hashes, want 0", n)
	}
}

// TestPW04_AtMostMaxConcurrent: with more callers than slots, exactly
// MaxConcurrent hash at once and the others wait their turn.
func TestPW04_AtMostMaxConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slots, callers = 2, 5
		h := newHasher(t, HasherConfig{MaxConcurrent: slots, Wait: time.Hour})
		gate := make(chan struct{})
		var mu sync.Mutex
		running, most := 0, 0
		calls := recordKDF(h, func(password, salt []byte, p Params) []byte {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			<-gate
			mu.Lock()
			running--
			mu.Unlock()
			return zeroKey(password, salt, p)
		})
		var dones []<-chan error
		for range callers {
			dones = append(dones, start(t.Context(), h, hashOps["Hash"]))
		}
		synctest.Wait()
		if n := len(calls()); n != slots {
			t.Fatalf("got %v hashes running, want %v", n, slots)
		}
		close(gate)
		for _, done := range dones {
			if err := <-done; err != nil {
				t.Errorf("got %v, want <nil>", err)
			}
		}
		if most != slots || len(calls()) != callers {
			t.Errorf("got %v at once and %v in all, want %v and %v", most, len(calls()), slots, callers)
		}
	})
}

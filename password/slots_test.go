package password

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// takeAll takes every slot of h, as running hashes would.
func takeAll(t *testing.T, h *Hasher) {
	t.Helper()
	for range h.Stats().Slots {
		if err := h.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// waiting returns how many calls wait for a slot of h, whatever their
// priority.
func waiting(h *Hasher) int {
	n := 0
	for _, w := range h.Stats().Waiting {
		n += w
	}
	return n
}

// PW-04: a freed slot goes to the oldest caller of the highest priority
// waiting: a flood of Low calls queued first doesn't delay a High one.
func TestPW04_SlotsByPriorityThenArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHasher(t, HasherConfig{MaxConcurrent: 1, Wait: time.Hour})
		var order []string
		h.idKey = func(password, salt []byte, p Params) []byte {
			order = append(order, string(password)) // one slot: one at a time
			return zeroKey(password, salt, p)
		}
		takeAll(t, h)
		arrivals := []struct {
			name string
			p    Priority
		}{{"low1", Low}, {"normal1", Normal}, {"low2", Low}, {"high1", High}, {"normal2", Normal}, {"high2", High}}
		var dones []<-chan error
		for _, a := range arrivals {
			ctx := WithPriority(t.Context(), a.p)
			dones = append(dones, start(ctx, h, func(ctx context.Context, h *Hasher) error {
				_, err := h.Hash(ctx, a.name)
				return err
			}))
			synctest.Wait() // queued in this order
		}
		h.release()
		for _, done := range dones {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"high1", "high2", "normal1", "normal2", "low1", "low2"}
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Errorf("got hashing order %v, want %v", order, want)
		}
	})
}

// PW-04: at most MaxWaiting calls wait, whatever floods the queue, so its
// memory is bounded. One more Low call is refused at once, without waiting
// for Wait; a higher one takes the place of the newest Low, which is
// refused; a High call finding the queue full of High calls is refused.
func TestPW04_QueueCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxWaiting = 4
		h := newHasher(t, HasherConfig{MaxConcurrent: 2, MaxWaiting: maxWaiting, Wait: time.Hour})
		calls := recordKDF(h, zeroKey)
		takeAll(t, h)
		low := WithPriority(t.Context(), Low)
		var lows []<-chan error
		for range 1000 {
			lows = append(lows, start(low, h, hashOps["Verify"]))
		}
		synctest.Wait() // no time has passed: the refused were refused at once
		refused := 0
		var queued []<-chan error
		for _, done := range lows {
			ok, err := finished(done)
			switch {
			case !ok:
				queued = append(queued, done)
			case !errors.Is(err, ErrBusy):
				t.Fatalf("got %v, want ErrBusy", err)
			default:
				refused++
			}
		}
		if refused != 1000-maxWaiting || waiting(h) != maxWaiting {
			t.Fatalf("1000 Low calls: got %d refused and %d waiting, want %d and %d", refused, waiting(h), 1000-maxWaiting, maxWaiting)
		}
		if !h.Saturated(Low) || h.Saturated(Normal) || h.Saturated(High) {
			t.Errorf("Saturated(Low, Normal, High): got %v %v %v, want true false false",
				h.Saturated(Low), h.Saturated(Normal), h.Saturated(High))
		}

		// High calls push the newest Low calls out, one each.
		high := WithPriority(t.Context(), High)
		var highs []<-chan error
		for i := range maxWaiting {
			highs = append(highs, start(high, h, hashOps["Hash"]))
			synctest.Wait()
			if got := h.Stats().Waiting; got != [priorities]int{maxWaiting - 1 - i, 0, i + 1} {
				t.Fatalf("after %d High calls: got waiting %v", i+1, got)
			}
		}
		if !h.Saturated(High) {
			t.Error("a queue full of High calls: Saturated(High) is false")
		}
		if err := hashOps["Hash"](high, h); !errors.Is(err, ErrBusy) {
			t.Errorf("a High call with the queue full of High calls: got %v, want ErrBusy", err)
		}
		for range h.Stats().Slots {
			h.release()
		}
		for _, done := range highs {
			if err := <-done; err != nil {
				t.Errorf("a waiting High call: got %v, want <nil>", err)
			}
		}
		for _, done := range queued {
			if ok, err := finished(done); !ok || !errors.Is(err, ErrBusy) {
				t.Fatalf("a waiting Low call: got %v %v, want it pushed out (ErrBusy)", ok, err)
			}
		}
		if n := len(calls()); n != maxWaiting {
			t.Errorf("got %d hashes, want %d (the High calls')", n, maxWaiting)
		}
		if st := h.Stats(); st.Running != 0 || waiting(h) != 0 {
			t.Errorf("after all: got %+v, want nothing running or waiting", st)
		}
	})
}

// PW-04: a call that gives up waiting, on Wait or on its context, leaves
// the queue: it neither holds a place nor is handed a slot later.
func TestPW04_GivingUpLeavesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHasher(t, HasherConfig{MaxConcurrent: 1, MaxWaiting: 2, Wait: time.Second})
		takeAll(t, h)
		ctx, cancel := context.WithCancel(t.Context())
		cancelled := start(ctx, h, hashOps["Hash"])
		timedOut := start(t.Context(), h, hashOps["Hash"])
		synctest.Wait()
		cancel()
		if err := <-cancelled; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: got %v, want ErrBusy and context.Canceled", err)
		}
		if err := <-timedOut; !errors.Is(err, ErrBusy) {
			t.Errorf("after Wait: got %v, want ErrBusy", err)
		}
		if n := waiting(h); n != 0 {
			t.Errorf("got %d waiting, want 0", n)
		}
		h.release()
		if st := h.Stats(); st.Running != 0 {
			t.Errorf("got %d running after the release, want 0", st.Running)
		}
	})
}

func TestWithPriority(t *testing.T) {
	tests := []struct {
		set  Priority
		want Priority
	}{{Low, Low}, {Normal, Normal}, {High, High}, {-100, Low}, {100, High}}
	if got := PriorityOf(t.Context()); got != Normal {
		t.Errorf("no priority: got %v, want normal", got)
	}
	for _, tt := range tests {
		if got := PriorityOf(WithPriority(t.Context(), tt.set)); got != tt.want {
			t.Errorf("WithPriority(%v): got %v, want %v", tt.set, got, tt.want)
		}
	}
	if got := fmt.Sprint(Low, Normal, High, Priority(5)); got != "low normal high Priority(5)" {
		t.Errorf("got %q", got)
	}
}

// BenchmarkHasherAcquire measures taking and freeing a slot, without the
// hashing: alone, and with every CPU contending for fewer slots.
func BenchmarkHasherAcquire(b *testing.B) {
	b.Run("free", func(b *testing.B) {
		h := newHasher(b, HasherConfig{})
		b.ReportAllocs()
		for b.Loop() {
			if err := h.acquire(b.Context()); err != nil {
				b.Fatal(err)
			}
			h.release()
		}
	})
	b.Run("contended", func(b *testing.B) {
		h := newHasher(b, HasherConfig{MaxConcurrent: 1, Wait: time.Minute})
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			ctx := WithPriority(b.Context(), Low)
			for pb.Next() {
				if err := h.acquire(ctx); err != nil {
					b.Error(err)
					return
				}
				h.release()
			}
		})
	})
}

// PW-04: a High call waits highPatience times Wait for a slot, where a
// Normal one gives up after Wait: on a machine a flood slows down, the
// hashes ahead of a trusted sign-in may take longer than Wait.
func TestPW04_HighWaitsLonger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = time.Second
		h := newHasher(t, HasherConfig{MaxConcurrent: 1, Wait: wait})
		recordKDF(h, zeroKey)
		takeAll(t, h)
		hash := func(ctx context.Context, h *Hasher) error { _, err := h.Hash(ctx, "pw"); return err }
		high := start(WithPriority(t.Context(), High), h, hash)
		normal := start(t.Context(), h, hash)
		time.Sleep(wait + time.Millisecond)
		if err := <-normal; !errors.Is(err, ErrBusy) {
			t.Fatalf("a Normal call after Wait: got %v, want ErrBusy", err)
		}
		time.Sleep((highPatience - 2) * wait) // the running hash ends before High's patience does
		h.release()
		if err := <-high; err != nil {
			t.Fatalf("a High call, its slot freed after %v: %v", (highPatience-1)*wait, err)
		}
	})
}

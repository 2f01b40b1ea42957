package storetest

import (
	"context"
	"testing"
)

// Bench is the timed loop of a backend's benchmark: it reports
// allocations, resets the timer and calls op until b has run long enough,
// from the benchmark's goroutine or, with parallel, from b.RunParallel's.
// op is given the number of the call in its goroutine, from 0, to pick
// its input round-robin.
func Bench(b *testing.B, parallel bool, op func(ctx context.Context, i int) error) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		i := 0
		for b.Loop() {
			if err := op(b.Context(), i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := op(context.Background(), i); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

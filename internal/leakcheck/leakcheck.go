// Package leakcheck lets tests assert that the code under test left no
// goroutine running. It compares goroutine counts, so tests that use it must
// not run in parallel with other tests of their package.
package leakcheck

import (
	"runtime"
	"testing"
	"time"
)

// Baseline records the current number of goroutines and returns a check
// that fails t unless, within a few seconds, the count is back at or below
// it; on failure it prints every goroutine's stack.
func Baseline(t testing.TB) (check func()) {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines: %d before, %d after:\n%s", before, n, buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

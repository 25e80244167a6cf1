package leakcheck

import (
	"testing"
	"time"
)

// fakeTB records a Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestBaseline(t *testing.T) {
	check := Baseline(t)
	done := make(chan struct{})
	go func() { <-done }()
	close(done)
	check() // the goroutine exits: passes

	f := &fakeTB{TB: t}
	check = Baseline(f)
	stop := make(chan struct{})
	go func() { <-stop }()
	start := time.Now()
	check()
	close(stop)
	if !f.failed || time.Since(start) < 4*time.Second {
		t.Fatalf("a goroutine left running was not reported (failed=%v after %v)", f.failed, time.Since(start))
	}
}

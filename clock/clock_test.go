package clock

import (
	"testing"
	"time"
)

func TestFakeRunsTimersInDeadlineOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	var got []string
	var seen []time.Duration
	add := func(name string, d time.Duration) Timer {
		return c.AfterFunc(d, func() {
			got = append(got, name)
			seen = append(seen, c.Now().Sub(start))
		})
	}
	add("c", 30*time.Millisecond)
	add("a", 10*time.Millisecond)
	stopped := add("x", 15*time.Millisecond)
	add("b", 20*time.Millisecond)
	add("b2", 20*time.Millisecond) // same deadline: creation order
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}
	c.Advance(25 * time.Millisecond)
	want := []string{"a", "b", "b2"}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	if seen[0] != 10*time.Millisecond || seen[1] != 20*time.Millisecond {
		t.Fatalf("Now inside timers = %v, want deadlines", seen)
	}
	if d := c.Now().Sub(start); d != 25*time.Millisecond {
		t.Fatalf("Now after Advance = +%v, want +25ms", d)
	}
	if c.Pending() != 1 {
		t.Fatalf("Pending = %d, want 1", c.Pending())
	}
	c.Advance(time.Second)
	if len(got) != 4 || got[3] != "c" {
		t.Fatalf("fired %v, want c last", got)
	}
}

func TestFakeTimerMayRearmDuringAdvance(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	n := 0
	var tick func()
	tick = func() {
		n++
		c.AfterFunc(time.Second, tick)
	}
	c.AfterFunc(time.Second, tick)
	c.Advance(5500 * time.Millisecond)
	if n != 5 {
		t.Fatalf("periodic timer fired %d times in 5.5s, want 5", n)
	}
}

func TestRealAfterFunc(t *testing.T) {
	done := make(chan struct{})
	Real{}.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("real timer did not fire")
	}
}

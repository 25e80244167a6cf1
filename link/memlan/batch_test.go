package memlan_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
)

// batchHandler records batch sizes and payloads, and blocks in its first
// call until released, so that frames pile up meanwhile.
type batchHandler struct {
	mu       sync.Mutex // guards the fields below; held for a few instructions
	batches  []int
	payloads []string
	states   []link.LinkState
	release  chan struct{}
	first    sync.Once
	entered  chan struct{}
	events   chan struct{}
}

func newBatchHandler() *batchHandler {
	return &batchHandler{release: make(chan struct{}), entered: make(chan struct{}), events: make(chan struct{}, 1<<12)}
}

func (h *batchHandler) HandleFrames(frames [][]byte, _ []link.FrameFlags) {
	h.first.Do(func() {
		close(h.entered)
		<-h.release
	})
	h.mu.Lock()
	h.batches = append(h.batches, len(frames))
	for _, f := range frames {
		h.payloads = append(h.payloads, payloadOf(f))
	}
	h.mu.Unlock()
	h.events <- struct{}{}
}

func (h *batchHandler) HandleLinkState(st link.LinkState) {
	h.mu.Lock()
	h.states = append(h.states, st)
	h.mu.Unlock()
	h.events <- struct{}{}
}

func (h *batchHandler) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.events:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestBatchDelivery: frames that queued while the handler was busy are
// handed over together, in order, at most link.MaxBatch per call.
func TestBatchDelivery(t *testing.T) {
	lan := memlan.New(memlan.Options{QueueLen: 1024})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	h := newBatchHandler()
	if err := b.Attach(h); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFrame(frame(macB, macA, "first")); err != nil {
		t.Fatal(err)
	}
	<-h.entered
	const n = 300
	for i := range n {
		if err := a.WriteFrame(frame(macB, macA, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	close(h.release)
	h.waitFor(t, "all frames", func() bool { return len(h.payloads) == n+1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, p := range h.payloads[1:] {
		if p != fmt.Sprint(i) {
			t.Fatalf("frame %d is %q", i, p)
		}
	}
	if len(h.batches) < 2 || h.batches[1] != link.MaxBatch {
		t.Fatalf("batches %v: the frames that queued did not come as a full batch", h.batches)
	}
	for _, n := range h.batches {
		if n < 1 || n > link.MaxBatch {
			t.Fatalf("batch of %d frames", n)
		}
	}
	if len(h.states) != 1 || !h.states[0].Up {
		t.Fatalf("states %v, want one up", h.states)
	}
}

// TestCarrierAndRemove: pulling the cable stops traffic both ways and is
// reported; plugging it back restores it; Remove is Gone, final.
func TestCarrierAndRemove(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	h := newBatchHandler()
	close(h.release)
	if err := b.Attach(h); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "initial state", func() bool { return len(h.states) == 1 })
	b.SetCarrier(false)
	b.SetCarrier(false) // no change, no report
	h.waitFor(t, "carrier lost", func() bool { return len(h.states) == 2 })
	if err := a.WriteFrame(frame(macB, macA, "lost")); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFrame(frame(macA, macB, "x")); !errors.Is(err, link.ErrLinkDown) {
		t.Fatalf("write without carrier: %v, want ErrLinkDown", err)
	}
	b.SetCarrier(true)
	h.waitFor(t, "carrier back", func() bool { return len(h.states) == 3 })
	if err := a.WriteFrame(frame(macB, macA, "back")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "frame after carrier returned", func() bool { return len(h.payloads) == 1 })
	b.Remove()
	h.waitFor(t, "Gone", func() bool { return len(h.states) == 4 })
	if err := b.WriteFrame(frame(macA, macB, "x")); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Remove: %v, want ErrGone", err)
	}
	if err := a.WriteFrame(frame(macB, macA, "after remove")); err != nil {
		t.Fatal(err)
	}
	b.SetCarrier(false) // after Remove: nothing
	time.Sleep(20 * time.Millisecond)
	h.mu.Lock()
	got, states := h.payloads, h.states
	h.mu.Unlock()
	want := []link.LinkState{{Up: true}, {Up: false}, {Up: true}, {Gone: true}}
	if len(states) != len(want) {
		t.Fatalf("states %v", states)
	}
	for i, st := range states {
		if st.Up != want[i].Up || st.Gone != want[i].Gone {
			t.Fatalf("states %v, want %v", states, want)
		}
	}
	if len(got) != 1 || got[0] != "back" {
		t.Fatalf("frames %v, want only [back]", got)
	}
	if st := b.Stats(); st.DroppedCarrier != 1 {
		t.Fatalf("stats %+v, want 1 dropped for carrier", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// An endpoint whose carrier is off before Attach reports down first.
	c := lan.NewEndpoint("c", memlan.EndpointConfig{MAC: macC})
	c.SetCarrier(false)
	hc := newBatchHandler()
	if err := c.Attach(hc); err != nil {
		t.Fatal(err)
	}
	hc.waitFor(t, "initial state", func() bool { return len(hc.states) == 1 })
	if hc.states[0].Up {
		t.Fatal("initial state up with the carrier off")
	}
}

// countingHandler counts log records.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countingHandler) WithGroup(string) slog.Handler             { return h }

// TestNilLoggerDiscards: with no Logger, a queue overflow (logged as a
// warning) reaches no handler, slog.Default's included.
func TestNilLoggerDiscards(t *testing.T) {
	def := &countingHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(def))
	defer slog.SetDefault(old)
	lan := memlan.New(memlan.Options{QueueLen: 1})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	h := newBatchHandler()
	if err := b.Attach(h); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFrame(frame(macB, macA, "first")); err != nil {
		t.Fatal(err)
	}
	<-h.entered
	for range 5 {
		if err := a.WriteFrame(frame(macB, macA, "more")); err != nil {
			t.Fatal(err)
		}
	}
	close(h.release)
	if b.Stats().DroppedQueue == 0 {
		t.Fatal("the queue did not overflow")
	}
	if n := def.n.Load(); n != 0 {
		t.Fatalf("%d records reached slog.Default", n)
	}
}

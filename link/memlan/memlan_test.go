package memlan_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/wire"
)

const testEtherType = 0x88b5

var (
	macA = wire.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB = wire.MAC{0x02, 0, 0, 0, 0, 0x0b}
	macC = wire.MAC{0x02, 0, 0, 0, 0, 0x0c}
	macD = wire.MAC{0x02, 0, 0, 0, 0, 0x0d}
	macE = wire.MAC{0x02, 0, 0, 0, 0, 0x0e}

	groupA = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
	groupB = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x04}
	groupC = wire.MAC{0x33, 0x33, 0x00, 0x00, 0x0a, 0x01}
)

// frame builds a minimum-size test frame carrying payload.
func frame(dst, src wire.MAC, payload string) []byte {
	b := wire.AppendEthernet(make([]byte, 0, 60), dst, src, testEtherType)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

func payloadOf(f []byte) string {
	return string(bytes.TrimRight(f[wire.EthernetHeaderLen:], "\x00"))
}

// collector returns a handler that sends each frame's payload to the
// channel (copying it, as handlers must).
func collector(size int) (link.Handler, chan string) {
	ch := make(chan string, size)
	return link.FrameFunc(func(f []byte) {
		if len(f) < 14 || binary.BigEndian.Uint16(f[12:14]) != testEtherType {
			return
		}
		ch <- payloadOf(f)
	}), ch
}

func expect(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("did not receive %q", want)
	}
}

func expectNothing(t *testing.T, ch chan string, wait time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("received unexpected %q", got)
	case <-time.After(wait):
	}
}

// until collects payloads from ch up to and including marker.
func until(t *testing.T, ch chan string, marker string) []string {
	t.Helper()
	var got []string
	for {
		select {
		case p := <-ch:
			if p == marker {
				return got
			}
			got = append(got, p)
		case <-time.After(5 * time.Second):
			t.Fatalf("marker %q not received; got %q", marker, got)
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustAttach(t *testing.T, ep *memlan.Endpoint, h link.Handler) {
	t.Helper()
	if err := ep.Attach(h); err != nil {
		t.Fatal(err)
	}
}

func mustFilter(t *testing.T, ep *memlan.Endpoint, addrs ...wire.MAC) link.FilterStatus {
	t.Helper()
	st, err := ep.SetMulticastFilter(addrs)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDeliveryMatrix sends unicast, broadcast and multicast frames and checks
// which endpoint gets which, including the all-multicast fallback beyond the
// filter capacity and that a (promiscuous) sender never hears itself.
func TestDeliveryMatrix(t *testing.T) {
	lan := memlan.New(memlan.Options{Seed: 1})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA, Promiscuous: true})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	c := lan.NewEndpoint("c", memlan.EndpointConfig{MAC: macC})
	d := lan.NewEndpoint("d", memlan.EndpointConfig{MAC: macD, Promiscuous: true})
	e := lan.NewEndpoint("e", memlan.EndpointConfig{MAC: macE, FilterCapacity: 2})
	chans := map[string]chan string{}
	for _, ep := range []*memlan.Endpoint{a, b, c, d, e} {
		h, ch := collector(64)
		mustAttach(t, ep, h)
		chans[ep.Name()] = ch
	}
	if st := mustFilter(t, b, groupA); st != (link.FilterStatus{Exact: 1}) {
		t.Fatalf("b filter status %+v, want Exact 1", st)
	}
	if st := mustFilter(t, e, groupA, groupC, groupA, groupB); st != (link.FilterStatus{AllMulticast: true}) {
		t.Fatalf("e filter status %+v, want AllMulticast", st)
	}
	if exact, all := e.Filter(); !all || exact != nil {
		t.Fatalf("e.Filter() = %v, %v; want nil, true", exact, all)
	}

	sends := []struct {
		dst     wire.MAC
		payload string
	}{
		{macB, "unicast-b"},
		{wire.MAC{0x02, 0, 0, 0, 0, 0x99}, "unicast-other"},
		{wire.BroadcastMAC, "broadcast"},
		{groupA, "group-a"},
		{groupB, "group-b"},
		{macA, "unicast-self"},
	}
	for _, s := range sends {
		if err := a.WriteFrame(frame(s.dst, macA, s.payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.WriteFrame(frame(wire.BroadcastMAC, macA, "end")); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"b": {"unicast-b", "broadcast", "group-a"},
		"c": {"broadcast"},
		"d": {"unicast-b", "unicast-other", "broadcast", "group-a", "group-b", "unicast-self"},
		"e": {"broadcast", "group-a", "group-b"},
	}
	for name, w := range want {
		if got := until(t, chans[name], "end"); !slices.Equal(got, w) {
			t.Errorf("%s received %q, want %q", name, got, w)
		}
	}
	expectNothing(t, chans["a"], 20*time.Millisecond)

	wantStats := map[*memlan.Endpoint]memlan.EndpointStats{
		a: {FramesSent: 7},
		b: {FramesReceived: 4, DroppedFilter: 3},
		c: {FramesReceived: 2, DroppedFilter: 5},
		d: {FramesReceived: 7},
		e: {FramesReceived: 4, DroppedFilter: 3},
	}
	for ep, w := range wantStats {
		if got := ep.Stats(); got != w {
			t.Errorf("%s stats %+v, want %+v", ep.Name(), got, w)
		}
	}
}

// TestFilterReport checks Filter's sorted, deduplicated view and the status.
func TestFilterReport(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	ep := lan.NewEndpoint("x", memlan.EndpointConfig{MAC: macA, FilterCapacity: 3})
	if exact, all := ep.Filter(); exact != nil || all {
		t.Fatalf("initial filter %v %v, want empty", exact, all)
	}
	st := mustFilter(t, ep, groupC, groupB, groupA, groupB)
	if st != (link.FilterStatus{Exact: 3}) {
		t.Fatalf("status %+v, want Exact 3", st)
	}
	exact, all := ep.Filter()
	if want := []wire.MAC{groupA, groupB, groupC}; all || !slices.Equal(exact, want) {
		t.Fatalf("Filter() = %v, %v; want %v, false", exact, all, want)
	}
	exact[0] = wire.MAC{} // the caller's copy
	if again, _ := ep.Filter(); again[0] != groupA {
		t.Fatal("Filter returned the endpoint's own slice")
	}
	if _, err := ep.SetMulticastFilter([]wire.MAC{groupA, macB}); !errors.Is(err, memlan.ErrNotMulticast) {
		t.Fatalf("unicast address in filter: err %v, want ErrNotMulticast", err)
	}
	if got := ep.FilterCalls(); got != 1 {
		t.Fatalf("FilterCalls = %d, want 1 (invalid call not counted)", got)
	}
	mustFilter(t, ep)
	if exact, all := ep.Filter(); len(exact) != 0 || all {
		t.Fatalf("cleared filter %v %v, want empty", exact, all)
	}
}

// TestDelayOrdering checks that Delay holds frames back and that jitter
// never reorders frames to one receiver.
func TestDelayOrdering(t *testing.T) {
	const delay, jitter, n = 30 * time.Millisecond, 20 * time.Millisecond, 200
	lan := memlan.New(memlan.Options{Seed: 7, Delay: delay, Jitter: jitter})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	var first atomic.Int64
	h, ch := collector(n)
	mustAttach(t, b, link.FrameFunc(func(f []byte) {
		first.CompareAndSwap(0, time.Now().UnixNano())
		h.HandleFrames([][]byte{f}, nil)
	}))
	start := time.Now()
	for i := range n {
		if err := a.WriteFrame(frame(macB, macA, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		expect(t, ch, fmt.Sprint(i))
	}
	if got := time.Unix(0, first.Load()).Sub(start); got < delay {
		t.Fatalf("first frame delivered after %v, want at least %v", got, delay)
	}
}

// lossPattern sends n frames over a lossy LAN and returns which arrived.
func lossPattern(t *testing.T, seed uint64, n int) []bool {
	t.Helper()
	lan := memlan.New(memlan.Options{Seed: seed, Loss: 0.3})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	var mu sync.Mutex
	got := make([]bool, n)
	mustAttach(t, b, link.FrameFunc(func(f []byte) {
		var i int
		if _, err := fmt.Sscan(payloadOf(f), &i); err != nil {
			t.Errorf("bad payload %q", payloadOf(f))
			return
		}
		mu.Lock()
		got[i] = true
		mu.Unlock()
	}))
	for i := range n {
		if err := a.WriteFrame(frame(macB, macA, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all frames delivered or lost", func() bool {
		s := b.Stats()
		return s.FramesReceived+s.DroppedLoss == uint64(n)
	})
	s := b.Stats()
	if s.DroppedLoss < uint64(n)/10 || s.DroppedLoss > uint64(n)/2 {
		t.Errorf("seed %d: %d of %d frames lost at Loss 0.3", seed, s.DroppedLoss, n)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// TestLossDeterministic checks that the same seed drops the same frames.
func TestLossDeterministic(t *testing.T) {
	const n = 400
	p1 := lossPattern(t, 42, n)
	p2 := lossPattern(t, 42, n)
	if !slices.Equal(p1, p2) {
		t.Fatal("same seed, different loss patterns")
	}
	if p3 := lossPattern(t, 43, n); slices.Equal(p1, p3) {
		t.Fatal("different seeds, same loss pattern")
	}
}

// TestLossExtremes checks Loss 0 and Loss 1.
func TestLossExtremes(t *testing.T) {
	lan := memlan.New(memlan.Options{Loss: 1})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	h, ch := collector(8)
	mustAttach(t, b, h)
	for range 5 {
		if err := a.WriteFrame(frame(macB, macA, "x")); err != nil {
			t.Fatal(err)
		}
	}
	expectNothing(t, ch, 20*time.Millisecond)
	if s := b.Stats(); s.DroppedLoss != 5 {
		t.Fatalf("DroppedLoss = %d, want 5", s.DroppedLoss)
	}
}

// TestQueueFull blocks a handler and checks that overflowing frames are
// dropped and counted while queued ones are delivered afterwards.
func TestQueueFull(t *testing.T) {
	const qlen = 4
	lan := memlan.New(memlan.Options{QueueLen: qlen})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h, ch := collector(16)
	mustAttach(t, b, link.FrameFunc(func(f []byte) {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		h.HandleFrames([][]byte{f}, nil)
	}))
	if err := a.WriteFrame(frame(macB, macA, "first")); err != nil {
		t.Fatal(err)
	}
	<-entered // the handler holds "first"; the queue is empty
	for i := range 10 {
		if err := a.WriteFrame(frame(macB, macA, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Stats(); s.DroppedQueue != 10-qlen {
		t.Fatalf("DroppedQueue = %d, want %d", s.DroppedQueue, 10-qlen)
	}
	entered <- struct{}{} // later frames pass straight through
	close(release)
	expect(t, ch, "first")
	for i := range qlen {
		expect(t, ch, fmt.Sprint(i))
	}
	expectNothing(t, ch, 20*time.Millisecond)
	if s := b.Stats(); s.FramesReceived != 1+qlen {
		t.Fatalf("FramesReceived = %d, want %d", s.FramesReceived, 1+qlen)
	}
}

// TestBeforeAttach checks that frames arriving before Attach are dropped and
// counted, and that Attach works only once.
func TestBeforeAttach(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	if err := a.WriteFrame(frame(macB, macA, "early")); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.DroppedDetached != 1 {
		t.Fatalf("DroppedDetached = %d, want 1", s.DroppedDetached)
	}
	h, ch := collector(4)
	mustAttach(t, b, h)
	if err := b.Attach(h); !errors.Is(err, memlan.ErrAttached) {
		t.Fatalf("second Attach: err %v, want ErrAttached", err)
	}
	if err := b.Attach(nil); err == nil {
		t.Fatal("Attach(nil) succeeded")
	}
	if err := a.WriteFrame(frame(macB, macA, "late")); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "late")
}

// TestFrameSize checks the MTU and minimum-length limits.
func TestFrameSize(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA, MTU: 100})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	if a.MTU() != 100 || b.MTU() != memlan.DefaultMTU {
		t.Fatalf("MTU %d, %d; want 100, %d", a.MTU(), b.MTU(), memlan.DefaultMTU)
	}
	if a.HardwareAddr() != macA || a.Name() != "a" {
		t.Fatalf("HardwareAddr %v Name %q", a.HardwareAddr(), a.Name())
	}
	var got atomic.Int64
	mustAttach(t, b, link.FrameFunc(func(f []byte) { got.Store(int64(len(f))) }))
	max := frame(macB, macA, strings.Repeat("x", 100+memlan.MaxHeaderLen-14))
	if err := a.WriteFrame(max); err != nil {
		t.Fatalf("frame of MTU+%d bytes: %v", memlan.MaxHeaderLen, err)
	}
	eventually(t, "maximum frame delivered", func() bool { return got.Load() == int64(len(max)) })
	if err := a.WriteFrame(append(max, 0)); !errors.Is(err, memlan.ErrFrameSize) {
		t.Fatalf("oversized frame: err %v, want ErrFrameSize", err)
	}
	if err := a.WriteFrame(max[:13]); !errors.Is(err, memlan.ErrFrameSize) {
		t.Fatalf("runt frame: err %v, want ErrFrameSize", err)
	}
	if err := lan.Inject(max[:13]); !errors.Is(err, memlan.ErrFrameSize) {
		t.Fatalf("runt injected frame: err %v, want ErrFrameSize", err)
	}
	if s := a.Stats(); s.FramesSent != 1 {
		t.Fatalf("FramesSent = %d, want 1", s.FramesSent)
	}
}

// TestWriteCopies checks that WriteFrame does not keep the caller's buffer.
func TestWriteCopies(t *testing.T) {
	lan := memlan.New(memlan.Options{Delay: 20 * time.Millisecond})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	h, ch := collector(4)
	mustAttach(t, b, h)
	buf := frame(macB, macA, "original")
	if err := a.WriteFrame(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf[14:], "clobbered")
	expect(t, ch, "original")
}

// TestFailFilter checks injected driver failures: they take the filter
// delay, leave the filter unchanged and are counted as calls.
func TestFailFilter(t *testing.T) {
	const delay = 30 * time.Millisecond
	errDriver := errors.New("driver says no")
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	ep := lan.NewEndpoint("x", memlan.EndpointConfig{MAC: macA, FilterDelay: delay})
	mustFilter(t, ep, groupA)
	ep.FailFilter(errDriver, 2)
	for i := range 2 {
		start := time.Now()
		_, err := ep.SetMulticastFilter([]wire.MAC{groupB})
		if !errors.Is(err, errDriver) {
			t.Fatalf("call %d: err %v, want %v", i, err, errDriver)
		}
		if !strings.Contains(err.Error(), "x") {
			t.Errorf("error %q lacks the endpoint name", err)
		}
		if el := time.Since(start); el < delay {
			t.Fatalf("failing call took %v, want at least %v", el, delay)
		}
		if exact, _ := ep.Filter(); !slices.Equal(exact, []wire.MAC{groupA}) {
			t.Fatalf("filter after failure %v, want unchanged [%v]", exact, groupA)
		}
	}
	mustFilter(t, ep, groupB)
	if exact, _ := ep.Filter(); !slices.Equal(exact, []wire.MAC{groupB}) {
		t.Fatalf("filter %v, want [%v]", exact, groupB)
	}
	ep.FailFilter(errDriver, 5)
	ep.FailFilter(nil, 0) // cancels
	ep.SetFilterDelay(0)
	mustFilter(t, ep, groupC)
	if got := ep.FilterCalls(); got != 5 {
		t.Fatalf("FilterCalls = %d, want 5", got)
	}
}

// TestSlowFilterKeepsDelivering proves that frames are delivered while a
// 200 ms filter update is in progress, through the old filter, and that the
// new filter takes over when the update returns.
func TestSlowFilterKeepsDelivering(t *testing.T) {
	const delay = 200 * time.Millisecond
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	h, ch := collector(64)
	mustAttach(t, b, h)
	mustFilter(t, b, groupA)
	b.SetFilterDelay(delay)

	var updating atomic.Bool
	updating.Store(true)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := b.SetMulticastFilter([]wire.MAC{groupB})
		updating.Store(false)
		done <- err
	}()
	for i := range 3 {
		if err := a.WriteFrame(frame(groupA, macA, fmt.Sprint("old", i))); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteFrame(frame(groupB, macA, fmt.Sprint("new", i))); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteFrame(frame(macB, macA, fmt.Sprint("unicast", i))); err != nil {
			t.Fatal(err)
		}
		expect(t, ch, fmt.Sprint("old", i))
		expect(t, ch, fmt.Sprint("unicast", i))
		if !updating.Load() {
			t.Fatalf("round %d: frames delivered only after the update finished (%v)", i, time.Since(start))
		}
		if exact, _ := b.Filter(); !slices.Equal(exact, []wire.MAC{groupA}) {
			t.Fatalf("filter during update %v, want old [%v]", exact, groupA)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Fatalf("update took %v, want at least %v", el, delay)
	}
	if err := a.WriteFrame(frame(groupA, macA, "old-after")); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFrame(frame(groupB, macA, "new-after")); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "new-after")
	expectNothing(t, ch, 20*time.Millisecond)
}

// TestFilterSerialized checks that concurrent SetMulticastFilter calls run
// one after the other.
func TestFilterSerialized(t *testing.T) {
	const delay = 50 * time.Millisecond
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	ep := lan.NewEndpoint("x", memlan.EndpointConfig{MAC: macA, FilterDelay: delay})
	var wg sync.WaitGroup
	start := time.Now()
	for _, g := range []wire.MAC{groupA, groupB, groupC} {
		wg.Go(func() {
			if _, err := ep.SetMulticastFilter([]wire.MAC{g}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if el := time.Since(start); el < 3*delay {
		t.Fatalf("three concurrent %v updates took %v, want at least %v", delay, el, 3*delay)
	}
	if exact, _ := ep.Filter(); len(exact) != 1 {
		t.Fatalf("filter %v, want one of the three groups", exact)
	}
}

// TestCaptureInject checks observers and injected frames.
func TestCaptureInject(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	c := lan.NewEndpoint("c", memlan.EndpointConfig{MAC: macC})
	hb, chb := collector(16)
	hc, chc := collector(16)
	ha, cha := collector(16)
	mustAttach(t, a, ha)
	mustAttach(t, b, hb)
	mustAttach(t, c, hc)
	mustFilter(t, b, groupA)

	var captured []string // serialized by the LAN
	lan.Capture(func(from string, f []byte) {
		captured = append(captured, from+":"+payloadOf(f))
	})
	var count atomic.Int32
	lan.Capture(func(string, []byte) { count.Add(1) })

	if err := lan.Inject(frame(groupA, macE, "query")); err != nil {
		t.Fatal(err)
	}
	if err := lan.Inject(frame(groupB, macE, "nobody")); err != nil {
		t.Fatal(err)
	}
	if err := lan.Inject(frame(macA, macE, "to-a")); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFrame(frame(groupC, macB, "report")); err != nil {
		t.Fatal(err)
	}
	expect(t, chb, "query")
	expect(t, cha, "to-a")
	expectNothing(t, chc, 20*time.Millisecond)
	expectNothing(t, chb, 0)
	want := []string{"inject:query", "inject:nobody", "inject:to-a", "b:report"}
	if !slices.Equal(captured, want) {
		t.Fatalf("captured %q, want %q", captured, want)
	}
	if n := count.Load(); n != 4 {
		t.Fatalf("second observer saw %d frames, want 4", n)
	}
}

// TestEndpointClose checks Close semantics on one endpoint.
func TestEndpointClose(t *testing.T) {
	// The busy writer overflows b's queue; keep the warning out of the
	// test output.
	lan := memlan.New(memlan.Options{Logger: slog.New(slog.DiscardHandler)})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	c := lan.NewEndpoint("c", memlan.EndpointConfig{MAC: macC})
	var afterClose atomic.Bool
	var lateCalls atomic.Int32
	mustAttach(t, b, link.FrameFunc(func([]byte) {
		if afterClose.Load() {
			lateCalls.Add(1)
		}
	}))
	hc, chc := collector(16)
	mustAttach(t, c, hc)

	// Keep b busy while it closes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := a.WriteFrame(frame(macB, macA, "busy")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	time.Sleep(10 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	afterClose.Store(true)
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := lateCalls.Load(); n != 0 {
		t.Fatalf("handler called %d times after Close returned", n)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.WriteFrame(frame(macC, macB, "x")); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("WriteFrame after Close: err %v, want ErrClosed", err)
	}
	if _, err := b.SetMulticastFilter(nil); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("SetMulticastFilter after Close: err %v, want ErrClosed", err)
	}
	if err := b.Attach(link.FrameFunc(func([]byte) {})); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Attach after Close: err %v, want ErrClosed", err)
	}
	if err := b.WriteFrame(frame(macC, macB, "x")); err == nil || !strings.Contains(err.Error(), "b") {
		t.Fatalf("error %v lacks the endpoint name", err)
	}
	// The rest of the LAN still works.
	if err := a.WriteFrame(frame(macC, macA, "still")); err != nil {
		t.Fatal(err)
	}
	expect(t, chc, "still")

	// A closed endpoint that never attached, and Close cutting a slow
	// filter update short.
	d := lan.NewEndpoint("d", memlan.EndpointConfig{MAC: macD, FilterDelay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := d.SetMulticastFilter([]wire.MAC{groupA})
		errc <- err
	}()
	eventually(t, "filter call started", func() bool { return d.FilterCalls() == 1 })
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, link.ErrClosed) {
			t.Fatalf("interrupted filter update: err %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cut the filter delay short")
	}
}

// TestLANClose checks that closing the LAN closes its endpoints and that the
// LAN refuses work afterwards.
func TestLANClose(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
	mustAttach(t, a, link.FrameFunc(func([]byte) {}))
	if err := lan.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lan.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.WriteFrame(frame(wire.BroadcastMAC, macA, "x")); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("WriteFrame after LAN Close: err %v, want ErrClosed", err)
	}
	if err := lan.Inject(frame(wire.BroadcastMAC, macE, "x")); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Inject after LAN Close: err %v, want ErrClosed", err)
	}
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
	if err := b.Attach(link.FrameFunc(func([]byte) {})); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Attach on an endpoint of a closed LAN: err %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// deliveryGoroutines counts goroutines running an endpoint's delivery loop
// or a filter update.
func deliveryGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, []byte("link/memlan.(*Endpoint).run(")) +
		bytes.Count(buf, []byte("link/memlan.(*Endpoint).SetMulticastFilter("))
}

// TestNoGoroutineLeak checks that LAN.Close leaves no goroutine behind, with
// delayed frames in flight and a slow filter update pending.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	lan := memlan.New(memlan.Options{Delay: time.Hour})
	var eps []*memlan.Endpoint
	for i := range 5 {
		ep := lan.NewEndpoint(fmt.Sprint("ep", i), memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 1, byte(i)}, FilterDelay: time.Hour})
		mustAttach(t, ep, link.FrameFunc(func([]byte) {}))
		eps = append(eps, ep)
	}
	for _, ep := range eps {
		if err := ep.WriteFrame(frame(wire.BroadcastMAC, ep.HardwareAddr(), "x")); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := eps[0].SetMulticastFilter([]wire.MAC{groupA})
		errc <- err
	}()
	eventually(t, "filter call started", func() bool { return eps[0].FilterCalls() == 1 })
	if n := deliveryGoroutines(); n != 6 {
		t.Fatalf("%d memlan goroutines before Close, want 6", n)
	}
	if err := lan.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, link.ErrClosed) {
		t.Fatalf("pending filter update: err %v, want ErrClosed", err)
	}
	// The pending SetMulticastFilter caller may still be unwinding when
	// errc is received, and other tests' endpoints may be finishing; so
	// wait a little, but every memlan goroutine must be gone.
	eventually(t, "no memlan goroutine left after Close", func() bool { return deliveryGoroutines() == 0 })
	eventually(t, "goroutine count back to its level before the test", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestConcurrentWriters runs writers, filter updates and stats readers at
// once (meant for -race) and checks that every receiver gets every frame of
// every other writer in per-writer order.
func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 4, 300
	lan := memlan.New(memlan.Options{QueueLen: writers * perWriter, Jitter: time.Millisecond, Seed: 3})
	defer lan.Close()
	eps := make([]*memlan.Endpoint, writers)
	next := make([][]int, writers) // next[r][w]: next sequence r expects from w
	counts := make([]atomic.Int64, writers)
	for r := range writers {
		eps[r] = lan.NewEndpoint(fmt.Sprint("w", r), memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 2, byte(r)}})
		next[r] = make([]int, writers)
		mustAttach(t, eps[r], link.FrameFunc(func(f []byte) {
			w, seq := int(f[11]), int(binary.BigEndian.Uint32(f[14:]))
			if w == r {
				t.Errorf("%d received its own frame", r)
			}
			if seq != next[r][w] {
				t.Errorf("%d: frame %d from %d, want %d", r, seq, w, next[r][w])
			}
			next[r][w] = seq + 1
			counts[r].Add(1)
		}))
	}
	for _, ep := range eps {
		mustFilter(t, ep, groupA)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			buf := make([]byte, 60)
			for seq := range perWriter {
				b := wire.AppendEthernet(buf[:0], groupA, eps[w].HardwareAddr(), testEtherType)
				b = binary.BigEndian.AppendUint32(b, uint32(seq))
				if err := eps[w].WriteFrame(b[:60]); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 20 {
				// groupA stays in every filter.
				if _, err := eps[w].SetMulticastFilter([]wire.MAC{groupA, groupB}); err != nil {
					t.Error(err)
				}
				eps[w].Filter()
				eps[w].Stats()
			}
		})
	}
	wg.Wait()
	want := int64((writers - 1) * perWriter)
	eventually(t, "all frames delivered", func() bool {
		for r := range writers {
			if counts[r].Load() != want {
				return false
			}
		}
		return true
	})
	for _, ep := range eps {
		if s := ep.Stats(); s.FramesSent != perWriter || s.FramesReceived != uint64(want) || s.DroppedQueue != 0 {
			t.Errorf("%s stats %+v", ep.Name(), s)
		}
	}
}

// TestDeliveryDoesNotAllocate checks that steady-state delivery, with and
// without a delivery delay, reuses the queue's buffers: writing a frame and
// having it delivered to a handler allocates nothing.
func TestDeliveryDoesNotAllocate(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Microsecond} {
		t.Run(fmt.Sprintf("delay=%v", delay), func(t *testing.T) {
			lan := memlan.New(memlan.Options{Delay: delay, Jitter: delay})
			defer lan.Close()
			a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: macA})
			b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: macB})
			c := lan.NewEndpoint("c", memlan.EndpointConfig{MAC: macC})
			got := make(chan byte, 1)
			mustAttach(t, b, link.FrameFunc(func(f []byte) { got <- f[14] }))
			mustAttach(t, c, link.FrameFunc(func([]byte) {}))
			mustFilter(t, b, groupA)
			mustFilter(t, c, groupB)
			lan.Capture(func(string, []byte) {})
			f := frame(groupA, macA, "steady")
			var failed error
			send := func() {
				if err := a.WriteFrame(f); err != nil && failed == nil {
					failed = err
				}
				if p := <-got; p != 's' && failed == nil {
					failed = fmt.Errorf("received payload starting %q", p)
				}
			}
			for range 100 {
				send() // fill the queue slots' buffers
			}
			allocs := testing.AllocsPerRun(500, send)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Fatalf("%.2f allocations per delivered frame, want 0", allocs)
			}
			if s := c.Stats(); s.DroppedFilter == 0 || s.FramesReceived != 0 {
				t.Fatalf("c stats %+v: the filtered receiver was not exercised", s)
			}
		})
	}
}

package mux_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/link/mux"
	"github.com/mcstack/mcstack/wire"
)

// recorder is a virtual endpoint's handler: it copies what it gets and
// checks the Handler contract (never two handler calls at once across the
// whole mux, batches never empty nor above link.MaxBatch).
type recorder struct {
	inCall *atomic.Int32 // shared by all recorders of a test
	bad    *atomic.Int32
	mu     sync.Mutex // guards frames and states
	frames []string   // payloads
	states []link.LinkState
}

func (r *recorder) HandleFrames(frames [][]byte, _ []link.FrameFlags) {
	if r.inCall.Add(1) != 1 || len(frames) == 0 || len(frames) > link.MaxBatch {
		r.bad.Add(1)
	}
	r.mu.Lock()
	for _, f := range frames {
		r.frames = append(r.frames, string(f[wire.EthernetHeaderLen:]))
	}
	r.mu.Unlock()
	r.inCall.Add(-1)
}

func (r *recorder) HandleLinkState(st link.LinkState) {
	if r.inCall.Add(1) != 1 {
		r.bad.Add(1)
	}
	r.mu.Lock()
	r.states = append(r.states, st)
	r.mu.Unlock()
	r.inCall.Add(-1)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames...)
}

func (r *recorder) lastState() (link.LinkState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return link.LinkState{}, false
	}
	return r.states[len(r.states)-1], true
}

type fixture struct {
	lan    *memlan.LAN
	peer   *memlan.Endpoint // another station: sends to the mux
	parent *memlan.Endpoint
	m      *mux.Mux
	eps    []*mux.Endpoint
	recs   []*recorder
	inCall atomic.Int32
	bad    atomic.Int32
}

func newFixture(t *testing.T, n int, cfg memlan.EndpointConfig) *fixture {
	t.Helper()
	f := &fixture{lan: memlan.New(memlan.Options{Seed: 1, QueueLen: 4096})}
	t.Cleanup(func() { f.lan.Close() })
	f.peer = f.lan.NewEndpoint("peer", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 0xfe}})
	cfg.MAC = wire.MAC{2, 0, 0, 0, 0, 1}
	f.parent = f.lan.NewEndpoint("parent", cfg)
	m, err := mux.New(f.parent, mux.Options{Base: wire.MAC{2, 0xaa, 0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(func() { m.Close() })
	for i := range n {
		e, err := m.NewEndpoint(i)
		if err != nil {
			t.Fatal(err)
		}
		r := &recorder{inCall: &f.inCall, bad: &f.bad}
		if err := e.Attach(r); err != nil {
			t.Fatal(err)
		}
		f.eps = append(f.eps, e)
		f.recs = append(f.recs, r)
	}
	return f
}

func (f *fixture) send(t *testing.T, dst wire.MAC, payload string) {
	t.Helper()
	fr := wire.AppendEthernet(nil, dst, f.peer.HardwareAddr(), 0x88b5)
	if err := f.peer.WriteFrame(append(fr, payload...)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var (
	g1 = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x01, 0x01}
	g2 = wire.MAC{0x01, 0x00, 0x5e, 0x02, 0x02, 0x02}
	g3 = wire.MAC{0x33, 0x33, 0x00, 0x00, 0x00, 0x03}
)

func TestDelivery(t *testing.T) {
	const n = 5
	// filters[i] is host i's multicast filter.
	filters := [][]wire.MAC{{g1}, {g1, g2}, {g2}, {}, {g3, g1}}
	type frame struct {
		dst  wire.MAC
		want []int // hosts that must get it
	}
	m0 := wire.MAC{2, 0xaa, 0, 0, 0, 0}
	mac := func(i int) wire.MAC { m := m0; m[5] = byte(i); return m }
	cases := []struct {
		name string
		fr   frame
	}{
		{"unicast to host 0", frame{mac(0), []int{0}}},
		{"unicast to host 3", frame{mac(3), []int{3}}},
		{"unicast to unknown MAC", frame{mac(9), nil}},
		{"multicast g1", frame{g1, []int{0, 1, 4}}},
		{"multicast g2", frame{g2, []int{1, 2}}},
		{"multicast g3 (IPv6 MAC)", frame{g3, []int{4}}},
		{"multicast nobody joined", frame{wire.MAC{0x01, 0x00, 0x5e, 0x7f, 0, 1}, nil}},
		{"broadcast", frame{wire.BroadcastMAC, []int{0, 1, 2, 3, 4}}},
	}
	f := newFixture(t, n, memlan.EndpointConfig{Promiscuous: true, FilterCapacity: 64})
	for i, e := range f.eps {
		if _, err := e.SetMulticastFilter(filters[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The parent was programmed with the union.
	exact, all := f.parent.Filter()
	if all || fmt.Sprint(exact) != fmt.Sprint([]wire.MAC{g1, g2, g3}) {
		t.Fatalf("parent filter = %v (all %v), want [g1 g2 g3]", exact, all)
	}
	for ci, c := range cases {
		f.send(t, c.fr.dst, c.name)
		// A marker broadcast after each case shows when delivery is done.
		f.send(t, wire.BroadcastMAC, fmt.Sprintf("marker %d", ci))
	}
	last := fmt.Sprintf("marker %d", len(cases)-1)
	for _, r := range f.recs {
		waitFor(t, "markers", func() bool { g := r.got(); return len(g) > 0 && g[len(g)-1] == last })
	}
	for _, c := range cases {
		for i, r := range f.recs {
			got := 0
			for _, p := range r.got() {
				if p == c.name {
					got++
				}
			}
			want := 0
			for _, w := range c.fr.want {
				if w == i {
					want = 1
				}
			}
			if got != want {
				t.Errorf("%s: host %d got it %d times, want %d", c.name, i, got, want)
			}
		}
	}
	st := f.m.Stats()
	if st.Unwanted != 2 {
		t.Errorf("Stats.Unwanted = %d, want 2 (unknown unicast, unjoined group)", st.Unwanted)
	}
	if f.bad.Load() != 0 {
		t.Errorf("%d handler contract violations", f.bad.Load())
	}
}

func TestFilterChangesAndClose(t *testing.T) {
	f := newFixture(t, 3, memlan.EndpointConfig{FilterCapacity: 64})
	steps := []struct {
		name    string
		host    int
		filter  []wire.MAC
		close   bool
		union   []wire.MAC
		receive []int // hosts receiving g1 afterwards
	}{
		{"host 0 joins g1", 0, []wire.MAC{g1}, false, []wire.MAC{g1}, []int{0}},
		{"host 1 joins g1 and g2", 1, []wire.MAC{g2, g1, g1}, false, []wire.MAC{g1, g2}, []int{0, 1}},
		{"host 2 joins g1", 2, []wire.MAC{g1}, false, []wire.MAC{g1, g2}, []int{0, 1, 2}},
		{"host 0 leaves g1 (swap-delete moves host 2)", 0, nil, false, []wire.MAC{g1, g2}, []int{1, 2}},
		{"host 2 switches to g2", 2, []wire.MAC{g2}, false, []wire.MAC{g1, g2}, []int{1}},
		{"host 1 closes", 1, nil, true, []wire.MAC{g2}, nil},
		{"host 0 rejoins g1", 0, []wire.MAC{g1}, false, []wire.MAC{g1, g2}, []int{0}},
	}
	for si, s := range steps {
		if s.close {
			if err := f.eps[s.host].Close(); err != nil {
				t.Fatal(err)
			}
			// The next filter request reprograms the parent.
			// (host 0 has left everything at this point.)
			if _, err := f.eps[0].SetMulticastFilter(nil); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.eps[s.host].SetMulticastFilter(s.filter); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := f.m.Union(); fmt.Sprint(got) != fmt.Sprint(s.union) {
			t.Errorf("%s: union %v, want %v", s.name, got, s.union)
		}
		if exact, _ := f.parent.Filter(); fmt.Sprint(exact) != fmt.Sprint(s.union) {
			t.Errorf("%s: parent filter %v, want %v", s.name, exact, s.union)
		}
		payload := fmt.Sprintf("step %d", si)
		f.send(t, g1, payload)
		f.send(t, g2, "sync "+payload) // every step has someone on g2 after step 1
		time.Sleep(20 * time.Millisecond)
		for h, r := range f.recs {
			got := false
			for _, p := range r.got() {
				got = got || p == payload
			}
			want := false
			for _, w := range s.receive {
				want = want || w == h
			}
			if got != want {
				t.Errorf("%s: host %d received g1 frame: %v, want %v", s.name, h, got, want)
			}
		}
	}
	if err := f.eps[1].WriteFrame(make([]byte, 64)); !errors.Is(err, link.ErrClosed) {
		t.Errorf("write on closed endpoint: %v, want ErrClosed", err)
	}
	if _, err := f.eps[1].SetMulticastFilter(nil); !errors.Is(err, link.ErrClosed) {
		t.Errorf("filter on closed endpoint: %v, want ErrClosed", err)
	}
}

// A slow parent filter: 200 hosts change their filters at once; the
// parent is called far fewer times than there were changes, every call
// returns only once the parent holds its address, and delivery keeps
// flowing while the parent call is in progress.
func TestParentUpdatesCoalesce(t *testing.T) {
	const n = 200
	f := newFixture(t, n, memlan.EndpointConfig{FilterCapacity: 1024, FilterDelay: 20 * time.Millisecond})
	// Host 0 joins first, so frames to g1 flow during the burst.
	if _, err := f.eps[0].SetMulticastFilter([]wire.MAC{g1}); err != nil {
		t.Fatal(err)
	}
	calls0 := f.parent.FilterCalls()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := wire.MAC{0x01, 0x00, 0x5e, 0x10, byte(i >> 8), byte(i)}
			if _, err := f.eps[i].SetMulticastFilter([]wire.MAC{g}); err != nil {
				errs <- err
				return
			}
			exact, _ := f.parent.Filter()
			found := false
			for _, m := range exact {
				found = found || m == g
			}
			if !found {
				errs <- fmt.Errorf("host %d: SetMulticastFilter returned before the parent held %v", i, g)
			}
		}()
	}
	// Meanwhile frames to g1 reach host 0 although a parent call is slow.
	start := time.Now()
	f.send(t, g1, "during")
	waitFor(t, "delivery during a parent update", func() bool { return len(f.recs[0].got()) > 0 })
	during := time.Since(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := f.parent.FilterCalls() - calls0
	if calls >= n/4 {
		t.Errorf("parent called %d times for %d changes: not coalesced", calls, n-1)
	}
	if during >= 20*time.Millisecond {
		t.Logf("note: delivery took %v during the update (the machine is busy?)", during)
	}
	t.Logf("%d filter changes, %d parent calls", n-1, calls)
	if got := len(f.m.Union()); got != n {
		t.Errorf("union holds %d addresses, want %d", got, n)
	}
}

func TestParentFilterErrorRetried(t *testing.T) {
	f := newFixture(t, 2, memlan.EndpointConfig{FilterCapacity: 64})
	boom := errors.New("boom")
	f.parent.FailFilter(boom, 1)
	if _, err := f.eps[0].SetMulticastFilter([]wire.MAC{g1}); !errors.Is(err, boom) {
		t.Fatalf("first call: %v, want the parent's error", err)
	}
	// The retry (the stack retries with the same set) reaches the parent.
	if _, err := f.eps[0].SetMulticastFilter([]wire.MAC{g1}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if exact, _ := f.parent.Filter(); len(exact) != 1 || exact[0] != g1 {
		t.Fatalf("parent filter after retry: %v", exact)
	}
}

func TestLinkStateFansOut(t *testing.T) {
	f := newFixture(t, 4, memlan.EndpointConfig{})
	for i, r := range f.recs {
		waitFor(t, fmt.Sprintf("host %d initial state", i), func() bool { st, ok := r.lastState(); return ok && st.Up })
	}
	f.parent.SetCarrier(false)
	for i, r := range f.recs {
		waitFor(t, fmt.Sprintf("host %d down", i), func() bool { st, ok := r.lastState(); return ok && !st.Up })
	}
	// An endpoint attached now hears the current state at Attach.
	e, err := f.m.NewEndpoint(100)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{inCall: &f.inCall, bad: &f.bad}
	if err := e.Attach(r); err != nil {
		t.Fatal(err)
	}
	if st, ok := r.lastState(); !ok || st.Up {
		t.Errorf("late endpoint's first state: %v (%v), want down", st, ok)
	}
	f.parent.SetCarrier(true)
	for i, r := range append(f.recs, r) {
		waitFor(t, fmt.Sprintf("host %d up", i), func() bool { st, ok := r.lastState(); return ok && st.Up })
	}
	f.parent.Remove()
	waitFor(t, "gone", func() bool { st, ok := r.lastState(); return ok && st.Gone })
	if f.bad.Load() != 0 {
		t.Errorf("%d handler contract violations", f.bad.Load())
	}
}

// Close of a virtual endpoint under a stream of broadcasts: its handler is
// never called after Close returns, the others keep receiving.
func TestCloseStopsDelivery(t *testing.T) {
	f := newFixture(t, 3, memlan.EndpointConfig{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fr := wire.AppendEthernet(nil, wire.BroadcastMAC, f.peer.HardwareAddr(), 0x88b5)
			f.peer.WriteFrame(append(fr, fmt.Sprint(i)...))
			if i%64 == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	waitFor(t, "traffic", func() bool { return len(f.recs[1].got()) > 10 })
	if err := f.eps[1].Close(); err != nil {
		t.Fatal(err)
	}
	n := len(f.recs[1].got())
	before := len(f.recs[0].got())
	waitFor(t, "others keep receiving", func() bool { return len(f.recs[0].got()) > before+10 })
	close(stop)
	<-done
	if got := len(f.recs[1].got()); got != n {
		t.Errorf("closed endpoint got %d more frames after Close returned", got-n)
	}
	// Its number can be used again.
	if _, err := f.m.NewEndpoint(1); err != nil {
		t.Errorf("reuse of a closed endpoint's number: %v", err)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t, 1, memlan.EndpointConfig{})
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"index in use", second(f.m.NewEndpoint(0)), mux.ErrIndex},
		{"negative index", second(f.m.NewEndpoint(-1)), mux.ErrIndex},
		{"index too large", second(f.m.NewEndpoint(mux.MaxEndpoints)), mux.ErrIndex},
		{"attach twice", f.eps[0].Attach(&recorder{}), mux.ErrAttached},
		{"unicast in filter", second(f.eps[0].SetMulticastFilter([]wire.MAC{{2, 0, 0, 0, 0, 9}})), mux.ErrNotMulticast},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if err := f.m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.NewEndpoint(5); !errors.Is(err, link.ErrClosed) {
		t.Errorf("NewEndpoint after Close: %v", err)
	}
	if _, err := f.eps[0].SetMulticastFilter([]wire.MAC{g1}); !errors.Is(err, link.ErrClosed) {
		t.Errorf("SetMulticastFilter after Close: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestMACs(t *testing.T) {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	p := lan.NewEndpoint("p", memlan.EndpointConfig{MAC: wire.MAC{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}})
	m, err := mux.New(p, mux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cases := []struct {
		i    int
		want wire.MAC
	}{
		{0, wire.MAC{0x02, 0x33, 0x44, 0x55, 0, 0}},
		{1, wire.MAC{0x02, 0x33, 0x44, 0x55, 0, 1}},
		{0x1234, wire.MAC{0x02, 0x33, 0x44, 0x55, 0x12, 0x34}},
		{0x10000, wire.MAC{0x02, 0x33, 0x44, 0x56, 0, 0}},
	}
	for _, c := range cases {
		if got := m.MAC(c.i); got != c.want {
			t.Errorf("MAC(%d) = %v, want %v", c.i, got, c.want)
		}
	}
	// A base with the group bit set still yields unicast, local MACs.
	m2, err := mux.New(lan.NewEndpoint("q", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 7}}), mux.Options{Base: wire.MAC{0x01, 0, 0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	e, err := m2.NewEndpoint(3)
	if err != nil {
		t.Fatal(err)
	}
	if mac := e.HardwareAddr(); mac.IsMulticast() || mac[0]&2 == 0 || e.MTU() != memlan.DefaultMTU || e.Name() != "q#3" {
		t.Errorf("endpoint 3: mac %v mtu %d name %q", mac, e.MTU(), e.Name())
	}
}

// gateParent blocks SetMulticastFilter while the gate is closed, to hold
// a parent call in progress for as long as a test wants.
type gateParent struct {
	link.Endpoint
	closed  atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gateParent) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	if g.closed.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Endpoint.SetMulticastFilter(addrs)
}

// TestNoLockAcrossParentCall checks the lock rule of Mux.idx: nobody holds
// it across a parent call. While one host's SetMulticastFilter waits in a
// parent call that does not return, frames are still delivered to the
// other hosts and a new host can be created and attached.
func TestNoLockAcrossParentCall(t *testing.T) {
	lan := memlan.New(memlan.Options{Seed: 1})
	defer lan.Close()
	peer := lan.NewEndpoint("peer", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 0xfe}})
	gp := &gateParent{Endpoint: lan.NewEndpoint("parent", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}, FilterCapacity: 64}),
		entered: make(chan struct{}, 1), release: make(chan struct{})}
	m, err := mux.New(gp, mux.Options{Base: wire.MAC{2, 0xaa, 0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var inCall, bad atomic.Int32
	var eps []*mux.Endpoint
	var recs []*recorder
	for i := range 2 {
		e, err := m.NewEndpoint(i)
		if err != nil {
			t.Fatal(err)
		}
		r := &recorder{inCall: &inCall, bad: &bad}
		if err := e.Attach(r); err != nil {
			t.Fatal(err)
		}
		eps, recs = append(eps, e), append(recs, r)
	}
	if _, err := eps[0].SetMulticastFilter([]wire.MAC{g1}); err != nil {
		t.Fatal(err)
	}
	gp.closed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := eps[1].SetMulticastFilter([]wire.MAC{g2})
		done <- err
	}()
	select {
	case <-gp.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the parent was not called")
	}
	// The parent call is in progress and will not return until released.
	fr := wire.AppendEthernet(nil, g1, peer.HardwareAddr(), 0x88b5)
	if err := peer.WriteFrame(append(fr, "during"...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a delivery while a parent call is in progress", func() bool { return len(recs[0].got()) > 0 })
	created := make(chan error, 1)
	go func() {
		e, err := m.NewEndpoint(7)
		if err == nil {
			err = e.Attach(&recorder{inCall: &inCall, bad: &bad})
		}
		created <- err
	}()
	select {
	case err := <-created:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NewEndpoint+Attach blocked behind a parent call")
	}
	gp.closed.Store(false)
	close(gp.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// flagRecorder records each frame's first payload byte and its flags.
type flagRecorder struct {
	got []string
}

func (r *flagRecorder) HandleFrames(frames [][]byte, flags []link.FrameFlags) {
	for i, f := range frames {
		fl := "nil"
		if flags != nil {
			fl = fmt.Sprint(flags[i])
		}
		r.got = append(r.got, fmt.Sprintf("%c:%s", f[wire.EthernetHeaderLen], fl))
	}
}
func (r *flagRecorder) HandleLinkState(link.LinkState) {}

// TestFlagsFollowFrames: the parent's per-frame flags reach each host with
// the frames it gets (none when the parent gave none).
func TestFlagsFollowFrames(t *testing.T) {
	p := &nullParent{}
	m, err := mux.New(p, mux.Options{Base: wire.MAC{2, 0xaa, 0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x01, 0x01}
	recs := make([]*flagRecorder, 2)
	for i := range recs {
		e, err := m.NewEndpoint(i)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &flagRecorder{}
		if err := e.Attach(recs[i]); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := e.SetMulticastFilter([]wire.MAC{g}); err != nil {
				t.Fatal(err)
			}
		}
	}
	frame := func(dst wire.MAC, c byte) []byte {
		return append(wire.AppendEthernet(nil, dst, wire.MAC{2, 0, 0, 0, 0, 9}, 0x88b5), c)
	}
	// a: group (host 0), b: unicast to host 1, c: broadcast (both).
	batch := [][]byte{frame(g, 'a'), frame(m.MAC(1), 'b'), frame(wire.BroadcastMAC, 'c')}
	p.h.HandleFrames(batch, []link.FrameFlags{link.FrameChecksumValid, 0, link.FrameChecksumValid})
	p.h.HandleFrames(batch[2:], nil)
	want := []string{"[a:1 c:1 c:nil]", "[b:0 c:1 c:nil]"}
	for i, r := range recs {
		if got := fmt.Sprint(r.got); got != want[i] {
			t.Errorf("host %d got %s, want %s", i, got, want[i])
		}
	}
}

package stack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
)

// The deferred work: the filter and protocol workers coalesce, retry and
// drain; closes return at once.

// A leave followed at once by a join of the same group costs no driver
// update and no delta.
func TestLeaveThenJoinCoalesces(t *testing.T) {
	cfg := Config{CoalesceDelay: 100 * time.Millisecond}
	rec := newRecorder(&cfg)
	s, ifc, ep := newTestStack(t, cfg)
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	c6 := mustListen(t, s, "udp6", "[::]:5000")
	must(t, c.JoinGroup(ifc, eg4))
	must(t, c6.JoinSourceSpecificGroup(ifc, eg6, es6))
	syncIfc(t, ifc)
	calls := ep.filterCalls()
	d4, _ := rec.engine(ifc.Name(), "igmp").snapshot()
	d6, _ := rec.engine(ifc.Name(), "mld").snapshot()
	if len(d4) != 1 || len(d6) != 1 {
		t.Fatalf("deltas after the joins: %v %v", d4, d6)
	}

	must(t, c.LeaveGroup(ifc, eg4))
	must(t, c.JoinGroup(ifc, eg4))
	must(t, c6.LeaveSourceSpecificGroup(ifc, eg6, es6))
	must(t, c6.SetSourceFilter(ifc, eg6, membership.Include, []netip.Addr{es6}))
	syncIfc(t, ifc)
	if n := ep.filterCalls(); n != calls {
		t.Fatalf("%d driver calls for a leave and rejoin, want none", n-calls)
	}
	if d, _ := rec.engine(ifc.Name(), "igmp").snapshot(); len(d) != 1 {
		t.Fatalf("IGMP deltas after leave and rejoin: %v", d[1:])
	}
	if d, _ := rec.engine(ifc.Name(), "mld").snapshot(); len(d) != 1 {
		t.Fatalf("MLD deltas after leave and rejoin: %v", d[1:])
	}
	if st := ifc.Status(); st.Driver.Calls != uint64(calls) || st.Driver.Requests <= st.Driver.Calls {
		t.Fatalf("driver status %+v after %d calls", st.Driver, calls)
	}

	// A change that does not come back is delivered as one delta from
	// the first state to the last.
	must(t, c.BlockSource(ifc, eg4, es1))
	must(t, c.BlockSource(ifc, eg4, es2))
	syncIfc(t, ifc)
	d, _ := rec.engine(ifc.Name(), "igmp").snapshot()
	want := membership.Delta{Group: eg4, Old: membership.State{Mode: membership.Exclude},
		New: membership.State{Mode: membership.Exclude, Sources: []netip.Addr{es1, es2}}}
	if len(d) != 2 || d[1].Group != want.Group || !d[1].Old.Equal(want.Old) || !d[1].New.Equal(want.New) {
		t.Fatalf("deltas %v, want the joins and %v", d, want)
	}
	if n := ep.filterCalls(); n != calls {
		t.Fatalf("%d driver calls for source changes, want none", n-calls)
	}
}

// Closing N sockets with a distinct group each costs O(1) driver updates,
// and the final filter is what remains needed.
func TestCloseBurstCoalesces(t *testing.T) {
	const n = 200
	s, ifc, ep := newTestStack(t, Config{CoalesceDelay: 5 * time.Millisecond})
	ep.setDelay(20 * time.Millisecond)
	keep := mustListen(t, s, "udp4", "0.0.0.0:5000")
	kept := netip.MustParseAddr("232.5.5.5")
	must(t, keep.JoinGroup(ifc, kept))
	var cs []*Conn
	for i := range n {
		c := mustListen(t, s, "udp4", fmt.Sprintf("0.0.0.0:%d", 10000+i))
		must(t, c.JoinGroup(ifc, netip.AddrFrom4([4]byte{239, 1, byte(i >> 8), byte(i)})))
		cs = append(cs, c)
	}
	syncIfc(t, ifc)
	if got := len(ep.lastFilter()); got != n+3 {
		t.Fatalf("filter has %d MACs, want %d", got, n+3)
	}
	calls := ep.filterCalls()
	start := time.Now()
	for _, c := range cs {
		must(t, c.Close())
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("closing %d sockets took %v", n, el)
	}
	syncIfc(t, ifc)
	if got := ep.filterCalls() - calls; got > 3 {
		t.Fatalf("%d driver calls for %d closes, want at most 3", got, n)
	}
	if got, want := ep.lastFilter(), macSet(kept); !slices.Equal(got, want) {
		t.Fatalf("final filter %v, want %v", got, want)
	}
	if g := ifc.Status().Groups; len(g) != 1 || g[0].Group != kept || g[0].Refs != 1 {
		t.Fatalf("groups %v", g)
	}
}

// A socket closed while the driver is busy with an update that includes
// its group is released once: refs come back to zero, the filter drops the
// group, and the group works again for a new socket.
func TestCloseDuringPendingUpdate(t *testing.T) {
	cfg := Config{}
	rec := newRecorder(&cfg)
	s, ifc, ep := newTestStack(t, cfg)
	syncIfc(t, ifc)
	ep.setDelay(200 * time.Millisecond)
	a := mustListen(t, s, "udp4", "0.0.0.0:5000")
	b := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, a.JoinGroup(ifc, eg4))
	must(t, b.JoinSourceSpecificGroup(ifc, eg4, es1))
	waitFor(t, 5*time.Second, "the driver update to start", ep.inUpdate.Load)
	if !ifc.Status().Driver.Pending {
		t.Error("Status().Driver.Pending not set during the update")
	}
	must(t, a.Close())
	must(t, b.Close())
	if err := a.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if g := ifc.Status().Groups; len(g) != 0 {
		t.Fatalf("groups right after close: %v", g)
	}
	syncIfc(t, ifc)
	if got := ep.lastFilter(); !slices.Equal(got, alwaysMACs) {
		t.Fatalf("filter after close %v, want %v", got, alwaysMACs)
	}
	if st := ifc.Status().Driver; st.Pending || !slices.Equal(st.Exact, alwaysMACs) {
		t.Fatalf("driver status %+v", st)
	}
	f := newFolder()
	ds, _ := rec.engine(ifc.Name(), "igmp").snapshot()
	if err := f.fold(ds); err != nil || len(f.state) != 0 {
		t.Fatalf("folded deltas %v (%v): %v", f.state, err, ds)
	}
	ep.setDelay(0)
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	if g := ifc.Status().Groups; len(g) != 1 || g[0].Refs != 1 {
		t.Fatalf("groups after a new join: %v", g)
	}
	syncIfc(t, ifc)
	if got := ep.lastFilter(); !slices.Equal(got, macSet(eg4)) {
		t.Fatalf("filter after a new join %v", got)
	}
}

// Driver failures are retried with backoff, reported by Status and Sync,
// and forgotten once an update succeeds.
func TestDriverErrorsRetried(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{FilterRetry: 5 * time.Millisecond})
	syncIfc(t, ifc)
	ep.setFailNext(1 << 20)
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ifc.Sync(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Sync while the driver fails: %v", err)
	}
	st := ifc.Status().Driver
	if st.Errors == 0 || st.LastError != errInjected.Error() || !st.Pending {
		t.Fatalf("driver status while failing: %+v", st)
	}
	// Retries go on without Sync, with a growing delay (5 ms doubling, at
	// most 1 s): in 300 ms far fewer than the 60 a fixed 5 ms would give,
	// and they keep coming (at least 2 more within 2.5 s at the 1 s cap).
	// Bounds are loose: how far the backoff has grown when the window
	// opens depends on the machine's load.
	c0 := ep.filterCalls()
	time.Sleep(300 * time.Millisecond)
	if n := ep.filterCalls() - c0; n > 15 {
		t.Fatalf("%d retries in 300ms, want a few with backoff", n)
	}
	c1 := ep.filterCalls()
	waitFor(t, 5*time.Second, "retries to continue", func() bool { return ep.filterCalls()-c1 >= 2 })
	ep.setFailNext(0)
	waitFor(t, 5*time.Second, "the driver to recover", func() bool {
		st := ifc.Status().Driver
		return st.LastError == "" && !st.Pending
	})
	if got := ep.lastFilter(); !slices.Equal(got, macSet(eg4)) {
		t.Fatalf("filter after recovery %v", got)
	}
	syncIfc(t, ifc)
	if st := ifc.Status().Driver; st.Errors == 0 || st.Calls <= st.Errors || !slices.Equal(st.Exact, macSet(eg4)) {
		t.Fatalf("driver status after recovery: %+v", st)
	}
}

// RemoveInterface and Stack.Close drain: the engines get the leaves and
// Shutdown, the driver the empty filter, the endpoint Close, and no
// goroutine is left.
func TestRemoveInterfaceDrains(t *testing.T) {
	check := goroutineBaseline(t)
	cfg := Config{CoalesceDelay: 50 * time.Millisecond}
	rec := newRecorder(&cfg)
	s := New(cfg)
	eps := [2]*testEndpoint{newTestEndpoint("test0", 1), newTestEndpoint("test1", 2)}
	var ifcs [2]*Interface
	for i, ep := range eps {
		ifc, err := s.AddInterface(ep, InterfaceConfig{Addrs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 24)}})
		must(t, err)
		ifcs[i] = ifc
	}
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	c6 := mustListen(t, s, "udp6", "[::]:5000")
	for _, ifc := range ifcs {
		must(t, c.JoinGroup(ifc, eg4))
		must(t, c6.JoinGroup(ifc, eg6))
	}
	// No sync: the joins and the removal are still pending on the workers.
	must(t, s.RemoveInterface(ifcs[0]))
	for _, fam := range []string{"igmp", "mld"} {
		ds, down := rec.engine("test0", fam).snapshot()
		f := newFolder()
		if !down {
			t.Fatalf("%s engine not shut down when RemoveInterface returned", fam)
		}
		// The joins were still pending when the interface was removed: the
		// engine never heard of them (the removal drops the pending deltas
		// and lets Shutdown send the final reports).
		if err := f.fold(ds); err != nil || len(f.state) != 0 {
			t.Fatalf("%s deltas at removal fold to %v (%v): %v", fam, f.state, err, ds)
		}
		if n := rec.engine("test0", fam).lateCalls(); n != 0 {
			t.Fatalf("%s: %d StateChanged calls after Shutdown", fam, n)
		}
	}
	if !eps[0].isClosed() {
		t.Fatal("endpoint not closed")
	}
	if got := eps[0].lastFilter(); len(got) != 0 {
		t.Fatalf("final filter %v, want empty", got)
	}
	if err := s.RemoveInterface(ifcs[0]); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("second RemoveInterface: %v", err)
	}
	if err := ifcs[0].Sync(context.Background()); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("Sync on a removed interface: %v", err)
	}
	// The sockets lost their memberships on test0 only.
	if _, _, err := c.SourceFilter(ifcs[0], eg4); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("SourceFilter on the removed interface: %v", err)
	}
	if mode, _, err := c.SourceFilter(ifcs[1], eg4); err != nil || mode != membership.Exclude {
		t.Fatalf("SourceFilter on test1: %v %v", mode, err)
	}
	eps[1].inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte("still")))
	wantPayloads(t, c, "socket after removing the other interface", "still")
	if got, err := s.InterfaceByName("test0"); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("InterfaceByName(test0) = %v, %v", got, err)
	}
	if got, err := s.InterfaceByName("test1"); err != nil || got != ifcs[1] {
		t.Fatalf("InterfaceByName(test1) = %v, %v", got, err)
	}
	if l := s.Interfaces(); len(l) != 1 || l[0] != ifcs[1] {
		t.Fatalf("Interfaces() = %v", l)
	}

	// Stack.Close drains the rest, closing the sockets.
	must(t, s.Close())
	if _, down := rec.engine("test1", "igmp").snapshot(); !down {
		t.Fatal("test1 engine not shut down by Close")
	}
	if !eps[1].isClosed() || len(eps[1].lastFilter()) != 0 {
		t.Fatalf("test1 after Close: closed %v filter %v", eps[1].isClosed(), eps[1].lastFilter())
	}
	if err := c.JoinGroup(nil, eg4); !errors.Is(err, ErrClosed) {
		t.Fatalf("JoinGroup after Stack.Close: %v", err)
	}
	must(t, s.Close()) // twice is harmless
	if _, err := s.AddInterface(newTestEndpoint("late", 3), InterfaceConfig{}); !errors.Is(err, ErrStackClosed) {
		t.Fatalf("AddInterface after Close: %v", err)
	}
	check()
}

// An endpoint that cannot be attached leaves nothing behind and stays the
// caller's.
func TestAddInterfaceAttachFails(t *testing.T) {
	check := goroutineBaseline(t)
	s := New(Config{})
	ep := newTestEndpoint("bad0", 1)
	ep.attachErr = errInjected
	if _, err := s.AddInterface(ep, InterfaceConfig{}); !errors.Is(err, errInjected) {
		t.Fatalf("AddInterface: %v", err)
	}
	if ep.isClosed() || ep.filterCalls() != 0 {
		t.Fatalf("endpoint closed %v, filter calls %d", ep.isClosed(), ep.filterCalls())
	}
	if len(s.Interfaces()) != 0 {
		t.Fatal("failed interface listed")
	}
	// The name is free again.
	ep2 := newTestEndpoint("bad0", 2)
	ifc, err := s.AddInterface(ep2, InterfaceConfig{})
	must(t, err)
	if _, err := s.AddInterface(newTestEndpoint("bad0", 3), InterfaceConfig{}); !errors.Is(err, ErrInterfaceExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := s.AddInterface(newTestEndpoint("x", 3), InterfaceConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("224.0.0.1/32")}}); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("multicast interface address: %v", err)
	}
	syncIfc(t, ifc)
	must(t, s.Close())
	check()
}

// Close racing AddInterface neither deadlocks nor leaks.
func TestCloseRacesAddInterface(t *testing.T) {
	check := goroutineBaseline(t)
	for i := range 50 {
		s := New(Config{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.AddInterface(newTestEndpoint(fmt.Sprint("r", i), 1), InterfaceConfig{})
		}()
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("AddInterface hung")
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close hung")
		}
		s.Close() // an interface added after Close began is drained here
	}
	check()
}

// Close returns at once even when the driver is slow: the memberships are
// released in memory and the driver update follows.
func TestCloseDoesNotWaitForDriver(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	syncIfc(t, ifc)
	ep.setDelay(300 * time.Millisecond)
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	waitFor(t, 5*time.Second, "the driver update to start", ep.inUpdate.Load)
	start := time.Now()
	must(t, c.Close())
	must(t, mustListen(t, s, "udp4", "0.0.0.0:5001").JoinGroup(ifc, eg4b))
	if el := time.Since(start); el > 150*time.Millisecond {
		t.Fatalf("Close and a join took %v while the driver was busy", el)
	}
	if !ep.inUpdate.Load() {
		t.Log("driver update finished early; the bound above is weaker")
	}
}

// Close racing RemoveInterface: both succeed, and everything is drained
// once both returned.
func TestCloseRacesRemoveInterface(t *testing.T) {
	check := goroutineBaseline(t)
	for range 20 {
		s := New(Config{})
		var ifcs []*Interface
		for i := range 3 {
			ifc, err := s.AddInterface(newTestEndpoint(fmt.Sprint("r", i), byte(i+1)), InterfaceConfig{})
			must(t, err)
			ifcs = append(ifcs, ifc)
		}
		c := mustListen(t, s, "udp6", "[::]:5000")
		for _, ifc := range ifcs {
			must(t, c.JoinGroup(ifc, eg6))
		}
		errc := make(chan error, 1)
		go func() {
			err := s.RemoveInterface(ifcs[1])
			if errors.Is(err, ErrUnknownInterface) {
				err = nil // Close took it first
			}
			errc <- err
		}()
		if err := s.Close(); err != nil {
			t.Fatalf("Close racing RemoveInterface: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("RemoveInterface racing Close: %v", err)
		}
	}
	check()
}

// Status reports a filter change as pending from the moment it is made,
// also while the filter worker is still coalescing.
func TestDriverPendingWhileCoalescing(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{CoalesceDelay: 300 * time.Millisecond})
	syncIfc(t, ifc)
	if st := ifc.Status().Driver; st.Pending || !slices.Equal(st.Exact, alwaysMACs) {
		t.Fatalf("idle driver status %+v", st)
	}
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	if st := ifc.Status().Driver; !st.Pending {
		t.Fatalf("driver status right after a join: %+v", st)
	}
	syncIfc(t, ifc)
	if st := ifc.Status().Driver; st.Pending || !slices.Equal(st.Exact, macSet(eg4)) || !slices.Equal(ep.lastFilter(), macSet(eg4)) {
		t.Fatalf("driver status after sync: %+v", st)
	}
}

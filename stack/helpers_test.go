package stack

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/leakcheck"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/wire"
)

// testEndpoint is a link.Endpoint for tests: frames written are recorded,
// frames are injected with inject, and filter updates are recorded and may
// be slowed down or made to fail.
type testEndpoint struct {
	name string
	mac  wire.MAC

	mu       sync.Mutex
	handler  link.Handler
	written  [][]byte
	filters  [][]wire.MAC
	delay    time.Duration
	failNext int
	closed   bool
	// attachErr, when set, is returned by Attach.
	attachErr error
	// blockWrites makes the next WriteFrame calls fail with
	// link.ErrWouldBlock (negative: every call); blocked counts them.
	blockWrites int
	blocked     int

	// inUpdate is set while SetMulticastFilter runs (after its delay
	// began), so tests can tell when the filter worker is inside the
	// driver.
	inUpdate atomic.Bool
}

func newTestEndpoint(name string, last byte) *testEndpoint {
	return &testEndpoint{name: name, mac: wire.MAC{0x02, 0, 0, 0, 0, last}}
}

func (e *testEndpoint) Name() string           { return e.name }
func (e *testEndpoint) MTU() int               { return 1500 }
func (e *testEndpoint) HardwareAddr() wire.MAC { return e.mac }
func (e *testEndpoint) Attach(h link.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.attachErr != nil {
		return e.attachErr
	}
	e.handler = h
	return nil
}
func (e *testEndpoint) WriteFrame(f []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return link.ErrClosed
	}
	if e.blockWrites != 0 {
		e.blockWrites--
		e.blocked++
		return fmt.Errorf("test endpoint: %w", link.ErrWouldBlock)
	}
	e.written = append(e.written, slices.Clone(f))
	return nil
}
func (e *testEndpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	e.inUpdate.Store(true)
	defer e.inUpdate.Store(false)
	e.mu.Lock()
	d := e.delay
	e.mu.Unlock()
	time.Sleep(d)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return link.FilterStatus{}, link.ErrClosed
	}
	e.filters = append(e.filters, slices.Clone(addrs))
	if e.failNext > 0 {
		e.failNext--
		return link.FilterStatus{}, errInjected
	}
	return link.FilterStatus{Exact: len(addrs)}, nil
}
func (e *testEndpoint) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}

type injectedError struct{}

func (injectedError) Error() string { return "injected driver failure" }

var errInjected error = injectedError{}

func (e *testEndpoint) inject(f []byte) {
	e.mu.Lock()
	h := e.handler
	e.mu.Unlock()
	h.HandleFrames([][]byte{f}, nil)
}

func (e *testEndpoint) filterCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.filters)
}

func (e *testEndpoint) lastFilter() []wire.MAC {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.filters) == 0 {
		return nil
	}
	return e.filters[len(e.filters)-1]
}

// udpFrame builds an Ethernet frame carrying a UDP datagram, to the
// group's MAC for a multicast dst and to test0's MAC otherwise.
func udpFrame(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	dmac, ok := wire.MulticastMAC(dst)
	if !ok {
		dmac = wire.MAC{0x02, 0, 0, 0, 0, 1}
	}
	return udpFrameTo(t, dmac, src, dst, sport, dport, payload)
}

// udpFrameTo builds an Ethernet frame to dmac carrying a UDP datagram.
func udpFrameTo(t testing.TB, dmac wire.MAC, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	u, err := wire.AppendUDP(nil, src, dst, sport, dport, payload)
	if err != nil {
		t.Fatal(err)
	}
	var f []byte
	if dst.Is4() {
		f = wire.AppendEthernet(nil, dmac, wire.MAC{0x02, 0, 0, 0, 0, 0x99}, wire.EtherTypeIPv4)
		f, err = wire.AppendIPv4(f, wire.IPv4{TTL: 8, Protocol: wire.ProtoUDP, Src: src, Dst: dst}, u)
	} else {
		f = wire.AppendEthernet(nil, dmac, wire.MAC{0x02, 0, 0, 0, 0, 0x99}, wire.EtherTypeIPv6)
		f, err = wire.AppendIPv6(f, wire.IPv6{HopLimit: 8, NextHeader: wire.ProtoUDP, Src: src, Dst: dst}, u)
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func syncIfc(t testing.TB, ifc *Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ifc.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

var (
	hostAddr = netip.MustParsePrefix("192.0.2.1/24")
	host6    = netip.MustParsePrefix("2001:db8::1/64")
)

// defaultEngines installs recording engines unless the test chose its
// own: the stack's tests then do not depend on what the real IGMP/MLD
// engines transmit (reports would show in frames_sent and in the frames
// written).
func defaultEngines(cfg *Config) {
	if cfg.NewIGMP == nil && cfg.NewMLD == nil {
		newRecorder(cfg)
	}
}

func newTestStack(t testing.TB, cfg Config) (*Stack, *Interface, *testEndpoint) {
	t.Helper()
	defaultEngines(&cfg)
	s := New(cfg)
	ep := newTestEndpoint("test0", 1)
	ifc, err := s.AddInterface(ep, InterfaceConfig{Addrs: []netip.Prefix{hostAddr, host6}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, ifc, ep
}

func (e *testEndpoint) setDelay(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.delay = d
}

func (e *testEndpoint) setFailNext(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failNext = n
}

func (e *testEndpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *testEndpoint) writtenFrames() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.written)
}

// alwaysMACs is what the driver filter holds with no memberships: the MACs
// of all-systems (224.0.0.1) and all-nodes (ff02::1).
var alwaysMACs = []wire.MAC{{0x01, 0x00, 0x5e, 0, 0, 1}, {0x33, 0x33, 0, 0, 0, 1}}

// macSet returns the sorted union of alwaysMACs and the groups' MACs, the
// filter the driver must hold for those member groups.
func macSet(groups ...netip.Addr) []wire.MAC {
	out := slices.Clone(alwaysMACs)
	for _, g := range groups {
		m, ok := wire.MulticastMAC(g)
		if !ok {
			panic(fmt.Sprintf("macSet: %v is not multicast", g))
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b wire.MAC) int { return slices.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// recEngine is a proto.Engine that records what the stack hands it.
type recEngine struct {
	fam string
	ifc string

	mu       sync.Mutex
	deltas   []membership.Delta
	calls    int // StateChanged calls
	shutdown bool
	// afterShutdown counts StateChanged calls made after Shutdown (a bug).
	afterShutdown int
	reannounced   int
}

func (e *recEngine) StateChanged(_ time.Time, ds []membership.Delta) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shutdown {
		e.afterShutdown++
	}
	e.calls++
	e.deltas = append(e.deltas, ds...)
}
func (e *recEngine) Receive(time.Time, proto.Received) {}
func (e *recEngine) Tick(time.Time)                    {}
func (e *recEngine) NextTimer() (time.Time, bool)      { return time.Time{}, false }
func (e *recEngine) TakeOutgoing() []proto.Packet      { return nil }
func (e *recEngine) SetSource(netip.Addr)              {}
func (e *recEngine) Shutdown(time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown = true
}
func (e *recEngine) Status() proto.Status { return proto.Status{Family: e.fam} }

// Reannounce records the call (the stack calls it when the link comes back).
func (e *recEngine) Reannounce(time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reannounced++
}

func (e *recEngine) reannounces() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reannounced
}

func (e *recEngine) snapshot() (deltas []membership.Delta, shutdown bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.deltas), e.shutdown
}

func (e *recEngine) lateCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.afterShutdown
}

// recorder installs recording engines in a Config and finds them by
// interface name and family ("igmp", "mld").
type recorder struct {
	mu      sync.Mutex
	engines map[string]*recEngine
}

func newRecorder(cfg *Config) *recorder {
	r := &recorder{engines: map[string]*recEngine{}}
	mk := func(fam string) func(proto.Config) proto.Engine {
		return func(pc proto.Config) proto.Engine {
			e := &recEngine{fam: fam, ifc: pc.Interface}
			r.mu.Lock()
			r.engines[pc.Interface+"/"+fam] = e
			r.mu.Unlock()
			return e
		}
	}
	cfg.NewIGMP, cfg.NewMLD = mk("igmp"), mk("mld")
	return r
}

func (r *recorder) engine(ifc, fam string) *recEngine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.engines[ifc+"/"+fam]
}

// folder folds an engine's deltas into per-group states, checking that
// each delta starts where the previous one for its group ended and
// changes something.
type folder struct {
	state map[netip.Addr]membership.State
	next  int // deltas already folded
}

func newFolder() *folder { return &folder{state: map[netip.Addr]membership.State{}} }

func (f *folder) fold(ds []membership.Delta) error {
	for ; f.next < len(ds); f.next++ {
		d := ds[f.next]
		prev := f.state[d.Group]
		if !prev.Equal(d.Old) {
			return fmt.Errorf("delta %d for %v: Old %v, but the folded state is %v", f.next, d.Group, d.Old, prev)
		}
		if d.Old.Equal(d.New) {
			return fmt.Errorf("delta %d for %v changes nothing (%v)", f.next, d.Group, d.Old)
		}
		if d.New.IsMember() {
			f.state[d.Group] = d.New
		} else {
			delete(f.state, d.Group)
		}
	}
	return nil
}

// drained is one datagram taken off a socket queue by drainConn.
type drained struct {
	payload string
	cm      ControlMessage
}

func (d drained) String() string {
	return fmt.Sprintf("%q from %v to %v ifindex %d ttl %d", d.payload, d.cm.Src, d.cm.Dst, d.cm.IfIndex, d.cm.TTL)
}

// drainConn takes every queued datagram off c without blocking (a past
// read deadline would fail ReadMsg even with data queued).
func drainConn(c *Conn) []drained {
	var out []drained
	for d := c.pop(); d != nil; d = c.pop() {
		out = append(out, drained{string(d.buf), ControlMessage{Src: d.src, Dst: d.dst, IfIndex: d.ifIndex, TTL: int(d.ttl)}})
		d.release()
	}
	return out
}

// readOne reads one datagram with a timeout.
func readOne(t testing.TB, c *Conn, timeout time.Duration) (string, ControlMessage) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, cm, err := c.ReadMsg(buf)
	if err != nil {
		t.Fatalf("ReadMsg: %v", err)
	}
	return string(buf[:n]), cm
}

// goroutineBaseline: see leakcheck.Baseline.
var goroutineBaseline = leakcheck.Baseline

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var (
	host2Addr = netip.MustParsePrefix("198.51.100.1/24")
	host2v6   = netip.MustParsePrefix("2001:db8:1::1/64")
)

// newTwoIfcStack returns a stack with test0 (hostAddr, host6) and test1
// (host2Addr, host2v6).
func newTwoIfcStack(t testing.TB, cfg Config) (*Stack, [2]*Interface, [2]*testEndpoint) {
	t.Helper()
	defaultEngines(&cfg)
	s := New(cfg)
	var ifcs [2]*Interface
	var eps [2]*testEndpoint
	addrs := [2][]netip.Prefix{{hostAddr, host6}, {host2Addr, host2v6}}
	for i := range 2 {
		eps[i] = newTestEndpoint(fmt.Sprintf("test%d", i), byte(i+1))
		ifc, err := s.AddInterface(eps[i], InterfaceConfig{Addrs: addrs[i]})
		if err != nil {
			t.Fatal(err)
		}
		ifcs[i] = ifc
	}
	t.Cleanup(func() { s.Close() })
	return s, ifcs, eps
}

func mustListen(t testing.TB, s *Stack, network, laddr string) *Conn {
	t.Helper()
	c, err := s.ListenUDP(network, netip.MustParseAddrPort(laddr))
	if err != nil {
		t.Fatalf("ListenUDP(%s, %s): %v", network, laddr, err)
	}
	return c
}

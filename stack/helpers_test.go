package stack

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
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
}

func newTestEndpoint(name string, last byte) *testEndpoint {
	return &testEndpoint{name: name, mac: wire.MAC{0x02, 0, 0, 0, 0, last}}
}

func (e *testEndpoint) Name() string            { return e.name }
func (e *testEndpoint) MTU() int                { return 1500 }
func (e *testEndpoint) HardwareAddr() wire.MAC  { return e.mac }
func (e *testEndpoint) Attach(h link.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handler = h
	return nil
}
func (e *testEndpoint) WriteFrame(f []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return link.ErrClosed
	}
	e.written = append(e.written, slices.Clone(f))
	return nil
}
func (e *testEndpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
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
	h(f)
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

// udpFrame builds an Ethernet frame carrying a UDP datagram.
func udpFrame(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	u, err := wire.AppendUDP(nil, src, dst, sport, dport, payload)
	if err != nil {
		t.Fatal(err)
	}
	dmac, ok := wire.MulticastMAC(dst)
	if !ok {
		dmac = wire.MAC{0x02, 0, 0, 0, 0, 1}
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

func newTestStack(t testing.TB, cfg Config) (*Stack, *Interface, *testEndpoint) {
	t.Helper()
	s := New(cfg)
	ep := newTestEndpoint("test0", 1)
	ifc, err := s.AddInterface(ep, InterfaceConfig{Addrs: []netip.Prefix{hostAddr, host6}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, ifc, ep
}

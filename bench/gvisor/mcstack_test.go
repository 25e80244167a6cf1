package gvisorbench

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

// senderMAC is the Ethernet source of the injected frames (mcstack's link
// handler takes whole frames; gVisor's channel endpoint takes the bare IP
// packet, so the 14-byte header is the only difference in input).
var senderMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}

// mcEndpoint is the trivial link.Endpoint of the mcstack side: it keeps
// the handler the stack attaches (frames are injected by calling it, as a
// driver's receive loop would), drops what the stack transmits and
// programs its multicast filter instantly.
type mcEndpoint struct {
	handler link.Handler
}

func (e *mcEndpoint) Name() string                  { return "bench0" }
func (e *mcEndpoint) MTU() int                      { return 1500 }
func (e *mcEndpoint) HardwareAddr() wire.MAC        { return wire.MAC{0x02, 0, 0, 0, 0, 0x01} }
func (e *mcEndpoint) Attach(h link.Handler) error   { e.handler = h; return nil }
func (e *mcEndpoint) WriteFrame(frame []byte) error { return nil }
func (e *mcEndpoint) Close() error                  { return nil }
func (e *mcEndpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	return link.FilterStatus{Exact: len(addrs)}, nil
}

// readTimeout bounds a read that finds nothing queued: far longer than any
// benchmark run (one b.N round lasts about -benchtime), so it never fires
// in a healthy run.
const readTimeout = 10 * time.Minute

// mcStack is an mcstack Stack with one interface and n UDP sockets bound to
// groupPort and joined to groupAddr, the same scenario as gvStack.
type mcStack struct {
	s     *stack.Stack
	ep    *mcEndpoint
	conns []*stack.Conn
	batch [1][]byte // the one-frame batch inject hands over (reused: no allocation)
}

func newMcStack(tb testing.TB, n int) *mcStack {
	tb.Helper()
	m := &mcStack{s: stack.New(stack.Config{}), ep: &mcEndpoint{}}
	ifc, err := m.s.AddInterface(m.ep, stack.InterfaceConfig{
		Addrs: []netip.Prefix{netip.PrefixFrom(ifAddr, ifPrefix)},
	})
	if err != nil {
		tb.Fatalf("AddInterface: %v", err)
	}
	for i := 0; i < n; i++ {
		c, err := m.s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), groupPort))
		if err != nil {
			tb.Fatalf("ListenUDP socket %d: %v", i, err)
		}
		if err := c.JoinGroup(ifc, groupAddr); err != nil {
			tb.Fatalf("JoinGroup socket %d: %v", i, err)
		}
		// ReadMsg blocks while nothing is queued (gVisor's Read returns
		// ErrWouldBlock instead). A read deadline turns a packet that was
		// not delivered into a failed read instead of a hung benchmark; it
		// costs nothing per read (one timer per socket).
		if err := c.SetReadDeadline(time.Now().Add(readTimeout)); err != nil {
			tb.Fatalf("SetReadDeadline socket %d: %v", i, err)
		}
		m.conns = append(m.conns, c)
	}
	return m
}

func (m *mcStack) close() { m.s.Close() }

// queued reports whether socket i still has a datagram queued: a read
// with a deadline shortly after now (not in the past: a passed deadline
// fails even a read that has data) succeeds. It consumes the datagram and
// leaves the socket's deadline at readTimeout again.
func (m *mcStack) queued(i int, buf []byte) bool {
	c := m.conns[i]
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _, err := c.ReadMsg(buf)
	c.SetReadDeadline(time.Now().Add(readTimeout))
	return err == nil
}

// inject hands one Ethernet frame to the interface's receive handler, as
// the endpoint's delivery goroutine would. The frame is only borrowed for
// the call (link.Handler contract), so the benchmark reuses one.
func (m *mcStack) inject(frame []byte) {
	m.batch[0] = frame
	m.ep.handler.HandleFrames(m.batch[:], nil)
}

func BenchmarkMcstackMulticastUDP(b *testing.B) {
	forEachCase(b, func(b *testing.B, sockets, payload int) {
		m := newMcStack(b, sockets)
		defer m.close()
		want := benchPayload(payload)
		frame := ethernetFrame(senderMAC, buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, want))
		buf := make([]byte, 65536)
		counts := make([]int, sockets)

		// One checked round outside the timer: right content, right source.
		m.inject(frame)
		for i, c := range m.conns {
			n, cm, err := c.ReadMsg(buf)
			if err != nil {
				b.Fatalf("warm-up: socket %d: ReadMsg: %v", i, err)
			}
			if !bytes.Equal(buf[:n], want) || cm.Src != netip.AddrPortFrom(srcAddr, srcPort) || cm.Dst != groupAddr {
				b.Fatalf("warm-up: socket %d: got %d bytes from %v to %v", i, n, cm.Src, cm.Dst)
			}
		}

		b.ReportAllocs()
		b.ResetTimer()
		for it := 0; it < b.N; it++ {
			m.inject(frame)
			for i, c := range m.conns {
				n, _, err := c.ReadMsg(buf)
				if err != nil {
					b.Fatalf("packet %d: socket %d: ReadMsg: %v (dropped?)", it, i, err)
				}
				if n != payload {
					b.Fatalf("packet %d: socket %d: read %d bytes, want %d", it, i, n, payload)
				}
				counts[i]++
			}
		}
		b.StopTimer()

		for i, c := range counts {
			if c != b.N {
				b.Fatalf("socket %d received %d of %d packets", i, c, b.N)
			}
			if m.queued(i, buf) {
				b.Fatalf("socket %d has an extra packet queued", i)
			}
			if d := m.conns[i].Dropped(); d != 0 {
				b.Fatalf("socket %d dropped %d datagrams", i, d)
			}
		}
		reportRates(b, sockets)
	})
}

// TestMcstackDelivery runs the mcstack scenario once per case outside the
// benchmark harness, like TestDelivery for gVisor and the floor.
func TestMcstackDelivery(t *testing.T) {
	for _, sockets := range benchSockets {
		want := benchPayload(64)
		m := newMcStack(t, sockets)
		m.inject(ethernetFrame(senderMAC, buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, want)))
		// Not for this port: nobody gets it.
		m.inject(ethernetFrame(senderMAC, buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort+1, ipTTL, want)))
		buf := make([]byte, 2048)
		for i, c := range m.conns {
			n, _, err := c.ReadMsg(buf)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Errorf("mcstack sockets=%d: socket %d: err=%v, %d bytes", sockets, i, err, n)
			}
			if m.queued(i, buf) {
				t.Errorf("mcstack sockets=%d: socket %d: extra datagram", sockets, i)
			}
		}
		m.close()
	}
}

// TestMcstackAllocs logs (does not enforce: BENCHMARKS.md reports it) the
// allocations per packet of the mcstack receive path with 16 sockets.
func TestMcstackAllocs(t *testing.T) {
	m := newMcStack(t, 16)
	defer m.close()
	frame := ethernetFrame(senderMAC, buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, benchPayload(1024)))
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(1000, func() {
		m.inject(frame)
		for _, c := range m.conns {
			c.ReadMsg(buf)
		}
	})
	t.Logf("mcstack: %.2f allocations per packet (16 sockets, 1024-byte payload)", allocs)
}

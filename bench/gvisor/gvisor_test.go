package gvisorbench

import (
	"bytes"
	"io"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const gvNIC tcpip.NICID = 1

// gvStack is a gVisor netstack with one channel-link NIC and n UDP endpoints
// bound to groupPort (SO_REUSEADDR + SO_REUSEPORT) and joined to groupAddr.
type gvStack struct {
	s    *stack.Stack
	link *channel.Endpoint
	eps  []tcpip.Endpoint
	wqs  []*waiter.Queue
}

func newGVStack(tb testing.TB, n int) *gvStack {
	tb.Helper()
	g := &gvStack{
		s: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
		}),
		// Outbound queue only holds the IGMP reports sent on join; full
		// means dropped, never blocked.
		link: channel.New(64, 1500, ""),
	}
	if err := g.s.CreateNIC(gvNIC, g.link); err != nil {
		tb.Fatalf("CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(ifAddr.As4()),
			PrefixLen: ifPrefix,
		},
	}
	if err := g.s.AddProtocolAddress(gvNIC, pa, stack.AddressProperties{}); err != nil {
		tb.Fatalf("AddProtocolAddress: %v", err)
	}
	for i := 0; i < n; i++ {
		wq := new(waiter.Queue)
		ep, err := g.s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, wq)
		if err != nil {
			tb.Fatalf("NewEndpoint: %v", err)
		}
		ep.SocketOptions().SetReuseAddress(true)
		ep.SocketOptions().SetReusePort(true)
		if err := ep.Bind(tcpip.FullAddress{Port: groupPort}); err != nil {
			tb.Fatalf("Bind socket %d: %v", i, err)
		}
		if err := ep.SetSockOpt(&tcpip.AddMembershipOption{
			NIC:           gvNIC,
			MulticastAddr: tcpip.AddrFrom4(groupAddr.As4()),
		}); err != nil {
			tb.Fatalf("AddMembership socket %d: %v", i, err)
		}
		g.eps = append(g.eps, ep)
		g.wqs = append(g.wqs, wq)
	}
	g.link.Drain() // IGMP reports from the joins
	return g
}

func (g *gvStack) close() {
	for _, ep := range g.eps {
		ep.Close()
	}
	g.link.Close()
	g.s.Close()
	g.s.Wait()
}

// inject hands one IPv4 packet to the stack as the NIC driver would. The
// PacketBuffer (and the copy of pkt into it) is per packet: that is how the
// gVisor link API takes input.
func (g *gvStack) inject(pkt []byte) {
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithData(pkt),
	})
	g.link.InjectInbound(ipv4.ProtocolNumber, pb)
	pb.DecRef()
}

// readBuf is an io.Writer over a reused buffer; reset before each Read.
type readBuf struct {
	b []byte
	n int
}

func (r *readBuf) Write(p []byte) (int, error) {
	n := copy(r.b[r.n:], p)
	r.n += n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

func BenchmarkGVisorMulticastUDP(b *testing.B) {
	forEachCase(b, func(b *testing.B, sockets, payload int) {
		g := newGVStack(b, sockets)
		defer g.close()
		want := benchPayload(payload)
		pkt := buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, want)
		rb := &readBuf{b: make([]byte, 65536)}
		counts := make([]int, sockets)

		// One checked round outside the timer: right content, right source.
		g.inject(pkt)
		for i, ep := range g.eps {
			rb.n = 0
			res, err := ep.Read(rb, tcpip.ReadOptions{NeedRemoteAddr: true})
			if err != nil {
				b.Fatalf("warm-up: socket %d: Read: %v", i, err)
			}
			if !bytes.Equal(rb.b[:rb.n], want) || res.Count != payload ||
				res.RemoteAddr.Addr != tcpip.AddrFrom4(srcAddr.As4()) || res.RemoteAddr.Port != srcPort {
				b.Fatalf("warm-up: socket %d: got %d bytes from %v:%d", i, res.Count, res.RemoteAddr.Addr, res.RemoteAddr.Port)
			}
		}

		b.ReportAllocs()
		b.ResetTimer()
		for it := 0; it < b.N; it++ {
			g.inject(pkt)
			for i, ep := range g.eps {
				rb.n = 0
				res, err := ep.Read(rb, tcpip.ReadOptions{})
				if err != nil {
					b.Fatalf("packet %d: socket %d: Read: %v (dropped?)", it, i, err)
				}
				if res.Count != payload {
					b.Fatalf("packet %d: socket %d: read %d bytes, want %d", it, i, res.Count, payload)
				}
				counts[i]++
			}
		}
		b.StopTimer()

		for i, c := range counts {
			if c != b.N {
				b.Fatalf("socket %d received %d of %d packets", i, c, b.N)
			}
			rb.n = 0
			if _, err := g.eps[i].Read(rb, tcpip.ReadOptions{}); err == nil {
				b.Fatalf("socket %d has an extra packet queued", i)
			}
		}
		if n := g.s.Stats().UDP.ReceiveBufferErrors.Value(); n != 0 {
			b.Fatalf("gVisor counted %d receive-buffer drops", n)
		}
		reportRates(b, sockets)
	})
}

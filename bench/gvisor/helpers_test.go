package gvisorbench

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestBuildIPv4UDP checks the packet builder against gVisor's own header
// parsers and checksum code, so a wrong checksum cannot make one stack drop
// what another accepts.
func TestBuildIPv4UDP(t *testing.T) {
	for _, n := range append([]int{0, 1}, benchPayloads...) {
		want := benchPayload(n)
		pkt := buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, want)
		ip := header.IPv4(pkt)
		if !ip.IsValid(len(pkt)) || !ip.IsChecksumValid() {
			t.Fatalf("payload %d: invalid IPv4 header", n)
		}
		if ip.SourceAddress() != tcpip.AddrFrom4(srcAddr.As4()) || ip.DestinationAddress() != tcpip.AddrFrom4(groupAddr.As4()) ||
			ip.TransportProtocol() != header.UDPProtocolNumber || ip.TTL() != ipTTL {
			t.Fatalf("payload %d: wrong IPv4 fields", n)
		}
		u := header.UDP(ip.Payload())
		if u.SourcePort() != srcPort || u.DestinationPort() != groupPort || int(u.Length()) != 8+n {
			t.Fatalf("payload %d: wrong UDP fields", n)
		}
		if !u.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(), checksum.Checksum(u.Payload(), 0)) {
			t.Fatalf("payload %d: bad UDP checksum %#04x", n, u.Checksum())
		}
		if !bytes.Equal(u.Payload(), want) {
			t.Fatalf("payload %d: wrong payload", n)
		}

		f := ethernetFrame([6]byte{2, 0, 0, 0, 0, 2}, pkt)
		e := header.Ethernet(f)
		if e.DestinationAddress() != tcpip.LinkAddress([]byte{1, 0, 0x5e, 1, 1, 1}) ||
			e.Type() != header.IPv4ProtocolNumber || !bytes.Equal(f[header.EthernetMinimumSize:], pkt) {
			t.Fatalf("payload %d: bad Ethernet frame", n)
		}
	}
}

// TestDelivery runs each implementation once per case outside the benchmark
// harness, so `go test` alone shows the scenario works.
func TestDelivery(t *testing.T) {
	for _, sockets := range benchSockets {
		want := benchPayload(64)
		pkt := buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, want)

		g := newGVStack(t, sockets)
		g.inject(pkt)
		rb := &readBuf{b: make([]byte, 2048)}
		for i, ep := range g.eps {
			rb.n = 0
			if _, err := ep.Read(rb, tcpip.ReadOptions{}); err != nil || !bytes.Equal(rb.b[:rb.n], want) {
				t.Errorf("gVisor sockets=%d: socket %d: err=%v, %d bytes", sockets, i, err, rb.n)
			}
		}
		g.close()

		f, socks := newFloorStack(sockets)
		if !f.deliver(pkt) {
			t.Fatalf("floor sockets=%d: rejected", sockets)
		}
		buf := make([]byte, 2048)
		for i, r := range socks {
			if n, ok := floorRead(r, buf); !ok || !bytes.Equal(buf[:n], want) {
				t.Errorf("floor sockets=%d: socket %d: ok=%v, %d bytes", sockets, i, ok, n)
			}
		}
		// Not for this group or port: nobody gets it.
		other := buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort+1, ipTTL, want)
		if f.deliver(other) {
			t.Errorf("floor sockets=%d: accepted a packet for another port", sockets)
		}
	}
}

// TestFloorZeroAllocs holds the floor to its promise.
func TestFloorZeroAllocs(t *testing.T) {
	f, socks := newFloorStack(16)
	pkt := buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, benchPayload(1024))
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(1000, func() {
		f.deliver(pkt)
		for _, r := range socks {
			floorRead(r, buf)
		}
	})
	if allocs != 0 {
		t.Fatalf("floor allocates %.1f times per packet", allocs)
	}
}

package scale

// Helpers that need nothing but link and wire.

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

var hostAddr = netip.MustParsePrefix("192.0.2.2/24")

const (
	ipv4RAHeader        = 24  // IPv4 header with the 4-byte Router Alert option
	igmpv3RptHdr        = 8   // type, reserved, checksum, reserved, number of records
	igmpv3RecHdr        = 8   // record type, aux len, number of sources, multicast address
	generalQueryMaxResp = 100 // 10 s in tenths of a second
)

// minPackets is the fewest IGMPv3 reports that carry records of the given
// sizes within mtu: records are not split, so first-fit-decreasing over
// equal sizes is exact; for mixed sizes it is a lower bound by volume.
func minPackets(recSizes []int, mtu int) int {
	capacity := mtu - ipv4RAHeader - igmpv3RptHdr
	total := 0
	for _, s := range recSizes {
		total += s
	}
	same := true
	for _, s := range recSizes {
		same = same && s == recSizes[0]
	}
	if same && len(recSizes) > 0 {
		per := capacity / recSizes[0]
		return (len(recSizes) + per - 1) / per
	}
	return (total + capacity - 1) / capacity
}

// generalQuery is an IGMPv3 General Query (RFC 9776 §4.1).
func generalQuery() []byte {
	q := make([]byte, 12)
	q[0] = 0x11
	q[1] = generalQueryMaxResp
	q[8] = 2   // QRV 2
	q[9] = 125 // QQIC 125 s
	binary.BigEndian.PutUint16(q[2:4], ^fold(sum(q)))
	return q
}

func sum(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

var excludeSizes = []int{1, 100, 1000}

// sources returns n distinct unicast sources, sorted ascending.
func sources(n int) []netip.Addr {
	s := make([]netip.Addr, n)
	for i := range s {
		k := i + 1
		s[i] = netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
	}
	return s
}

// udpFrame is an Ethernet/IPv4/UDP frame from src to group:port with a
// 32-byte payload and valid checksums.
func udpFrame(src, group netip.Addr, port uint16) []byte {
	mac, _ := wire.MulticastMAC(group)
	const ipLen = 20 + 8 + 32
	b := make([]byte, 14+ipLen)
	copy(b[0:6], mac[:])
	copy(b[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], ipLen)
	ip[8], ip[9] = 8, 17
	s4, g4 := src.As4(), group.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], g4[:])
	binary.BigEndian.PutUint16(ip[10:12], ^fold(sum(ip[:20])))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:2], 4000)
	binary.BigEndian.PutUint16(udp[2:4], port)
	binary.BigEndian.PutUint16(udp[4:6], 8+32)
	ps := sum(ip[12:20]) + 17 + uint32(len(udp)) + sum(udp)
	c := ^fold(ps)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return b
}

// nullEndpoint is a link.Endpoint that drops what the stack sends and
// programs its filter instantly; injected frames go straight to the handler.
type nullEndpoint struct {
	handler link.Handler
	writes  atomic.Int64
	filters atomic.Int64
}

func newNullEndpoint() *nullEndpoint { return &nullEndpoint{} }

func (e *nullEndpoint) Name() string                  { return "null0" }
func (e *nullEndpoint) MTU() int                      { return 1500 }
func (e *nullEndpoint) HardwareAddr() wire.MAC        { return wire.MAC{0x02, 0, 0, 0, 0, 0x02} }
func (e *nullEndpoint) Attach(h link.Handler) error   { e.handler = h; return nil }
func (e *nullEndpoint) WriteFrame(frame []byte) error { e.writes.Add(1); return nil }
func (e *nullEndpoint) Close() error                  { return nil }
func (e *nullEndpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	e.filters.Add(1)
	return link.FilterStatus{Exact: len(addrs)}, nil
}

func TestMinPackets(t *testing.T) {
	eight := func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = igmpv3RecHdr
		}
		return s
	}
	// (1500 - 24 - 8) / 8 = 183 records per packet.
	for _, c := range []struct{ n, want int }{{1, 1}, {183, 1}, {184, 2}, {10000, 55}} {
		if got := minPackets(eight(c.n), 1500); got != c.want {
			t.Errorf("minPackets(%d x 8 B) = %d, want %d", c.n, got, c.want)
		}
	}
	q := generalQuery()
	if fold(sum(q)) != 0xffff || len(q) != 12 {
		t.Errorf("general query checksum or length wrong: % x", q)
	}
	f := udpFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("239.1.2.3"), 5000)
	ip := f[14:]
	if fold(sum(ip[:20])) != 0xffff || fold(sum(ip[12:20])+17+uint32(len(ip[20:]))+sum(ip[20:])) != 0xffff {
		t.Errorf("udpFrame checksums wrong: % x", f)
	}
}

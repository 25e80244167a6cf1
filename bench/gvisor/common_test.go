// Package gvisorbench compares multicast UDP receive cost of gVisor's netstack,
// a hand-written floor (the least work a packet needs) and mcstack.
//
// Every benchmark here has the same shape so that benchstat and run.sh can
// line them up:
//
//	Benchmark<Impl>/sockets=N/payload=M
//
// One iteration (b.N) = one IPv4/UDP multicast packet injected into the
// receive path and read back from each of the N sockets. Each benchmark
// reports pkts/s (injected packets per second), deliveries/s (packets read
// across all sockets) and allocs/op (allocations per injected packet).
package gvisorbench

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// The scenario shared by every implementation.
var (
	benchSockets  = []int{1, 4, 16}
	benchPayloads = []int{64, 1024}

	ifAddr    = netip.MustParseAddr("192.0.2.1") // the receiving interface (TEST-NET-1)
	ifPrefix  = 24
	srcAddr   = netip.MustParseAddr("192.0.2.2") // the sender on the same LAN
	groupAddr = netip.MustParseAddr("239.1.1.1")
)

const (
	srcPort   = 40000
	groupPort = 5000
	ipTTL     = 1
)

// forEachCase runs fn as Benchmark.../sockets=N/payload=M for every case.
func forEachCase(b *testing.B, fn func(b *testing.B, sockets, payload int)) {
	for _, n := range benchSockets {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			for _, p := range benchPayloads {
				b.Run(fmt.Sprintf("payload=%d", p), func(b *testing.B) {
					fn(b, n, p)
				})
			}
		})
	}
}

// reportRates adds the throughput metrics every benchmark reports. Call it
// after b.StopTimer, so b.Elapsed covers only the timed loop.
func reportRates(b *testing.B, sockets int) {
	s := b.Elapsed().Seconds()
	if s <= 0 {
		return
	}
	b.ReportMetric(float64(b.N)/s, "pkts/s")
	b.ReportMetric(float64(b.N)*float64(sockets)/s, "deliveries/s")
}

// benchPayload returns a payload of size n with a recognisable pattern.
func benchPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return p
}

// buildIPv4UDP returns an IPv4 packet (no link header) carrying one UDP
// datagram, with a valid IPv4 header checksum and a valid UDP checksum (as a
// Linux sender would send it). The IPv4 header has no options, DF set.
func buildIPv4UDP(src, dst netip.Addr, sport, dport uint16, ttl uint8, payload []byte) []byte {
	const ihl, udpLen = 20, 8
	total := ihl + udpLen + len(payload)
	pkt := make([]byte, total)
	ip := pkt[:ihl]
	ip[0] = 0x45 // version 4, IHL 5
	ip[1] = 0    // TOS
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], 1) // ID
	binary.BigEndian.PutUint16(ip[6:], 0x4000)
	ip[8] = ttl
	ip[9] = 17 // UDP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(0, ip))

	u := pkt[ihl:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	// Pseudo-header: src, dst, zero+proto, UDP length.
	var ph [12]byte
	copy(ph[0:4], s4[:])
	copy(ph[4:8], d4[:])
	ph[9] = 17
	binary.BigEndian.PutUint16(ph[10:], uint16(udpLen+len(payload)))
	c := ^onesSum(onesSum(0, ph[:]), u)
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return pkt
}

// ethernetFrame wraps an IPv4 multicast packet in an Ethernet II header with
// the group's multicast MAC (01:00:5e + low 23 bits), for an implementation
// whose receive hook takes whole frames. The gVisor benchmark does not use it.
func ethernetFrame(srcMAC [6]byte, ipPkt []byte) []byte {
	dst := [6]byte{0x01, 0x00, 0x5e}
	d := ipPkt[16:20]
	dst[3], dst[4], dst[5] = d[1]&0x7f, d[2], d[3]
	f := make([]byte, 14+len(ipPkt))
	copy(f[0:6], dst[:])
	copy(f[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	copy(f[14:], ipPkt)
	return f
}

// onesSum folds b into the 16-bit one's-complement sum s.
func onesSum(s uint16, b []byte) uint16 {
	acc := uint32(s)
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

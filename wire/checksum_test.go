package wire

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refSum16 is RFC 1071's definition, 16 bits at a time.
func refSum16(b []byte, acc uint64) uint64 {
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// The wide sum gives the checksum of the 16-bit definition for every
// length, content and initial value (including all-ones data, where end
// around carries pile up).
func TestChecksumMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		for _, fill := range []string{"random", "ones", "zeros"} {
			b := make([]byte, n)
			for i := range b {
				switch fill {
				case "random":
					b[i] = byte(r.Uint32())
				case "ones":
					b[i] = 0xff
				}
			}
			for _, init := range []uint32{0, 0xffff, 0x1fffe, r.Uint32() & 0x3ffff} {
				if got, want := Checksum(b, init), ^fold(refSum16(b, uint64(init))); got != want {
					t.Fatalf("%s, %d bytes, initial %#x: Checksum %#04x, definition %#04x", fill, n, init, got, want)
				}
			}
		}
	}
}

// Long buffers take the vector bulk sum where there is one (sumWide):
// every tail length after its 64-byte blocks, at every even and odd
// offset into the buffer, and all-ones data up to the largest IPv6
// payload, where the lane accumulators grow most.
func TestChecksumLongBuffers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, 65535+64)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	for n := 120; n < 400; n++ {
		for off := range 3 {
			b := big[off : off+n]
			if got, want := Checksum(b, 0x1234), ^fold(refSum16(b, 0x1234)); got != want {
				t.Fatalf("%d random bytes at offset %d: Checksum %#04x, definition %#04x", n, off, got, want)
			}
		}
	}
	ones := make([]byte, 65535)
	for i := range ones {
		ones[i] = 0xff
	}
	for _, n := range []int{1024, 1472, 8972, 65527, 65535} {
		for _, b := range [][]byte{ones[:n], big[:n]} {
			if got, want := Checksum(b, 0xffff), ^fold(refSum16(b, 0xffff)); got != want {
				t.Fatalf("%d bytes: Checksum %#04x, definition %#04x", n, got, want)
			}
		}
	}
}

// The folds of the wide sum can end at 0x10000: found by FuzzParseMLD
// (testdata/fuzz/FuzzParseMLD/2b9c634ddab56c78), whose message sums so.
func TestChecksumFoldCarry(t *testing.T) {
	b := []byte{0x82, 0x00, 0x5a, 0xa1, 0x30, 0x30, 0x00, 0x00, 0xff, 0x58, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
		0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x43, 0x00, 0x8c, 0x00, 0x02, 0x30, 0x30, 0x30, 0x30,
		0x30, 0x58, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x78,
		0x30, 0x30, 0x30, 0x30, 0x30, 0x00, 0x30, 0x30, 0x00, 0xef, 0x00, 0x00}
	for _, init := range []uint32{0, 1, 0xffff, 0x1ffff} {
		if got, want := Checksum(b, init), ^fold(refSum16(b, uint64(init))); got != want {
			t.Errorf("initial %#x: Checksum %#04x, definition %#04x", init, got, want)
		}
	}
	// Every 16-byte block of all-ones words with one carry-producing
	// word: the last fold must carry too.
	for v := range 0x10000 {
		b := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, byte(v >> 8), byte(v)}
		if got, want := Checksum(b, 0), ^fold(refSum16(b, 0)); got != want {
			t.Fatalf("last word %#04x: Checksum %#04x, definition %#04x", v, got, want)
		}
	}
}

// PseudoHeaderSum is the sum of the pseudo-header built by hand (RFC 768,
// RFC 8200 §8.1) for random and all-ones addresses, where the 32-bit word
// sums of the IPv4 path carry, and for IPv4-mapped destinations, which the
// IPv4 path reads as their 4-byte form.
func TestPseudoHeaderSumMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ones4, ones16 := [4]byte{255, 255, 255, 255}, [16]byte{}
	for i := range ones16 {
		ones16[i] = 0xff
	}
	for i := 0; i < 2000; i++ {
		var s4, d4 [4]byte
		var s16, d16 [16]byte
		binary.BigEndian.PutUint32(s4[:], r.Uint32())
		binary.BigEndian.PutUint32(d4[:], r.Uint32())
		binary.BigEndian.PutUint64(s16[:], r.Uint64())
		binary.BigEndian.PutUint64(s16[8:], r.Uint64())
		binary.BigEndian.PutUint64(d16[:], r.Uint64())
		binary.BigEndian.PutUint64(d16[8:], r.Uint64())
		if i%4 == 0 {
			s4, d4, s16, d16 = ones4, ones4, ones16, ones16
		}
		proto, n4, n6 := uint8(r.Uint32()), int(r.Uint32()&0xffff), int(r.Uint32())
		src4, dst4 := netip.AddrFrom4(s4), netip.AddrFrom4(d4)
		want4 := uint32(fold(refSum16(pseudo4(src4, dst4, n4, proto), 0)))
		if got := PseudoHeaderSum(src4, dst4, proto, n4); got != want4 {
			t.Fatalf("IPv4 %v > %v proto %d len %d: %#x, definition %#x", src4, dst4, proto, n4, got, want4)
		}
		if got := PseudoHeaderSum(src4, netip.AddrFrom16(dst4.As16()), proto, n4); got != want4 {
			t.Fatalf("IPv4 %v > mapped %v: %#x, definition %#x", src4, dst4, got, want4)
		}
		src6, dst6 := netip.AddrFrom16(s16), netip.AddrFrom16(d16)
		want6 := uint32(fold(refSum16(pseudo6(src6, dst6, n6, proto), 0)))
		if got := PseudoHeaderSum(src6, dst6, proto, n6); got != want6 {
			t.Fatalf("IPv6 %v > %v nh %d len %d: %#x, definition %#x", src6, dst6, proto, n6, got, want6)
		}
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), uint32(7))
	f.Fuzz(func(t *testing.T, b []byte, init uint32) {
		init &= 0xfffff
		if got, want := Checksum(b, init), ^fold(refSum16(b, uint64(init))); got != want {
			t.Fatalf("Checksum %#04x, definition %#04x", got, want)
		}
	})
}

func BenchmarkChecksum1024(b *testing.B) {
	buf := make([]byte, 1032)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Checksum(buf, 0)
	}
}

// The receive path's two checksums of a 64-byte datagram: its IPv4
// header and its UDP header, payload and pseudo-header.
func BenchmarkChecksumHeaders(b *testing.B) {
	hdr, udp := make([]byte, 20), make([]byte, 72)
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("239.1.1.1")
	for b.Loop() {
		Checksum(hdr, 0)
		Checksum(udp, PseudoHeaderSum(src, dst, ProtoUDP, len(udp)))
	}
}

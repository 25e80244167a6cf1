package gvisorbench

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The floor: the least work any stack must do to hand one multicast UDP
// packet to N sockets, with none of a stack's generality. Per packet: parse
// the IPv4 and UDP headers by hand (no checksum is verified), one map lookup
// (group+port -> receivers), one push into each receiver's ring; per socket:
// one pop and a copy of the payload into the reader's reused buffer. The ring
// holds a slice of the packet (the packet is read before the next arrives,
// as in the benchmark loop), so nothing is allocated.

type floorKey struct {
	group [4]byte
	port  uint16
}

const floorRingSize = 64 // power of two

// floorRing is a single-threaded FIFO of payload slices.
type floorRing struct {
	slots      [floorRingSize][]byte
	head, tail uint32 // pop at head, push at tail
}

func (r *floorRing) push(p []byte) bool {
	if r.tail-r.head == floorRingSize {
		return false
	}
	r.slots[r.tail&(floorRingSize-1)] = p
	r.tail++
	return true
}

func (r *floorRing) pop() ([]byte, bool) {
	if r.head == r.tail {
		return nil, false
	}
	i := r.head & (floorRingSize - 1)
	p := r.slots[i]
	r.slots[i] = nil
	r.head++
	return p, true
}

type floorStack struct {
	groups map[floorKey][]*floorRing
	drops  int
}

func newFloorStack(n int) (*floorStack, []*floorRing) {
	f := &floorStack{groups: make(map[floorKey][]*floorRing)}
	k := floorKey{group: groupAddr.As4(), port: groupPort}
	socks := make([]*floorRing, n)
	for i := range socks {
		socks[i] = new(floorRing)
		f.groups[k] = append(f.groups[k], socks[i])
	}
	return f, socks
}

// deliver parses pkt and queues its payload on every socket joined to its
// group and port. It reports whether the packet was accepted.
func (f *floorStack) deliver(pkt []byte) bool {
	if len(pkt) < 28 || pkt[0]>>4 != 4 {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < 20 || total > len(pkt) || total < ihl+8 {
		return false
	}
	if binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 || pkt[9] != 17 || pkt[16]&0xf0 != 0xe0 {
		return false // fragment, not UDP, or not multicast
	}
	u := pkt[ihl:total]
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < 8 || ulen > len(u) {
		return false
	}
	k := floorKey{port: binary.BigEndian.Uint16(u[2:])}
	copy(k.group[:], pkt[16:20])
	rings := f.groups[k]
	if len(rings) == 0 {
		return false
	}
	payload := u[8:ulen]
	for _, r := range rings {
		if !r.push(payload) {
			f.drops++
		}
	}
	return true
}

// read pops one payload from r into buf, like a socket read.
func floorRead(r *floorRing, buf []byte) (int, bool) {
	p, ok := r.pop()
	if !ok {
		return 0, false
	}
	return copy(buf, p), true
}

func BenchmarkFloor(b *testing.B) {
	forEachCase(b, func(b *testing.B, sockets, payload int) {
		f, socks := newFloorStack(sockets)
		want := benchPayload(payload)
		pkt := buildIPv4UDP(srcAddr, groupAddr, srcPort, groupPort, ipTTL, want)
		buf := make([]byte, 65536)
		counts := make([]int, sockets)

		if !f.deliver(pkt) {
			b.Fatal("warm-up: packet rejected")
		}
		for i, r := range socks {
			n, ok := floorRead(r, buf)
			if !ok || !bytes.Equal(buf[:n], want) {
				b.Fatalf("warm-up: socket %d: got %d bytes, ok=%v", i, n, ok)
			}
		}

		b.ReportAllocs()
		b.ResetTimer()
		for it := 0; it < b.N; it++ {
			if !f.deliver(pkt) {
				b.Fatalf("packet %d rejected", it)
			}
			for i, r := range socks {
				n, ok := floorRead(r, buf)
				if !ok {
					b.Fatalf("packet %d: socket %d: nothing to read (dropped?)", it, i)
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
			if _, ok := floorRead(socks[i], buf); ok {
				b.Fatalf("socket %d has an extra packet queued", i)
			}
		}
		if f.drops != 0 {
			b.Fatalf("floor dropped %d deliveries", f.drops)
		}
		reportRates(b, sockets)
	})
}

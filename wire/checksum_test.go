package wire

import (
	"encoding/binary"
	"math/rand/v2"
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

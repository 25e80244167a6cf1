package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// sum16 adds b to acc as a sequence of big-endian 16-bit words, padding an
// odd final byte with zero (RFC 1071 §4.1). The result is not folded.
//
// It sums little-endian words with end-around carry instead (RFC 1071 §2:
// the sum may be computed in any word size and byte order, then folded and
// swapped): eight bytes at a time, then a 4-, 2- and 1-byte tail (an odd
// last byte is the low byte of its little-endian word), with one fold and
// one byte swap at the end; on amd64 with AVX2 the bulk of a long buffer
// is summed 64 bytes at a time (sumWide). A 20-byte IPv4 header is three
// loads.
func sum16(b []byte, acc uint64) uint64 {
	var s, c uint64
	if len(b) >= wideMin {
		// A vector unit, where there is one, takes the bulk: its sum of
		// little-endian words starts s.
		s, b = sumWide(b)
	}
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		s, c = bits.Add64(s, uint64(binary.LittleEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		s, c = bits.Add64(s, uint64(binary.LittleEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		s, c = bits.Add64(s, uint64(b[0]), c)
	}
	s, c = bits.Add64(s, 0, c)
	s += c // cannot carry again: s ≤ 2^64-2 after adding a carry
	// Fold to 16 bits in little-endian word space, then swap into the
	// big-endian space of acc.
	s = s>>32 + s&0xffffffff
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return acc + uint64(bits.ReverseBytes16(uint16(s)))
}

func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = (acc >> 16) + (acc & 0xffff)
	}
	return uint16(acc)
}

// Checksum returns the Internet checksum (RFC 1071): the one's complement of
// the one's-complement sum of initial and the 16-bit words of b. initial is
// an unfolded partial sum such as the one PseudoHeaderSum returns.
//
// To compute a checksum, zero the checksum field and store the result. To
// verify, run Checksum over the message including its checksum field: the
// result is 0 when the checksum is correct.
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold(sum16(b, uint64(initial)))
}

// PseudoHeaderSum returns the unfolded one's-complement sum of the upper-layer
// pseudo-header: for IPv4 (RFC 768) src, dst, zero, protocol and a 16-bit
// length; for IPv6 (RFC 8200 §8.1) src, dst, a 32-bit length and the next
// header value. src decides the family: an Is4 address selects IPv4, anything
// else is used as 16 bytes.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var acc uint64
	if src.Is4() {
		// Two 32-bit words each: their 16-bit halves are the words summed.
		s, d := src.As4(), [4]byte{}
		if dst.Is4() {
			d = dst.As4() // inlined; as4's call and copy cost ~3 ns
		} else {
			d = as4(dst)
		}
		w := uint64(binary.BigEndian.Uint32(s[:])) + uint64(binary.BigEndian.Uint32(d[:]))
		acc = w>>16 + w&0xffff + uint64(proto) + uint64(uint16(length))
	} else {
		s, d := src.As16(), dst.As16()
		acc = sum16(s[:], 0)
		acc = sum16(d[:], acc)
		acc += uint64(uint32(length)>>16) + uint64(uint32(length)&0xffff) + uint64(proto)
	}
	return uint32(fold(acc))
}

// as4 returns the 4-byte form of an IPv4 (or IPv4-mapped) address and zeros
// for anything else; it never panics.
func as4(a netip.Addr) [4]byte {
	a = a.Unmap()
	if a.Is4() {
		return a.As4()
	}
	return [4]byte{}
}

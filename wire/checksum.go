package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// sum16 adds b to acc as a sequence of big-endian 16-bit words, padding an
// odd final byte with zero (RFC 1071 §4.1). The result is not folded.
//
// The bulk is summed eight bytes at a time as little-endian 64-bit words
// with end-around carry (RFC 1071 §2: the sum may be computed in any word
// size and byte order, then folded and swapped), which is several times
// faster than 16-bit words for a 1,000-byte datagram; on amd64 with AVX2
// the bulk of a long buffer is summed 64 bytes at a time (sumWide).
func sum16(b []byte, acc uint64) uint64 {
	if len(b) >= 16 {
		// A vector unit, where there is one, takes the bulk: its sum of
		// little-endian words starts s (sumWide).
		var s, c uint64
		s, b = sumWide(b)
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
		s, c = bits.Add64(s, 0, c)
		s += c // cannot carry again: s ≤ 2^64-2 after adding a carry
		// Fold to 16 bits in little-endian word space, then swap into
		// the big-endian space of acc.
		s = s>>32 + s&0xffffffff
		for s > 0xffff {
			s = s>>16 + s&0xffff
		}
		acc += uint64(bits.ReverseBytes16(uint16(s)))
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
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
		s, d := as4(src), as4(dst)
		acc = sum16(s[:], 0)
		acc = sum16(d[:], acc)
		acc += uint64(proto) + uint64(uint16(length))
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

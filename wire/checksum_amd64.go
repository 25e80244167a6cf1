//go:build amd64 && !purego

package wire

import "golang.org/x/sys/cpu"

// useAVX2 selects the vector bulk sum (sumAVX2) on CPUs that have it.
var useAVX2 = cpu.X86.HasAVX2

// wideMin is the length from which the vector sum pays for its set-up.
const wideMin = 128

// sumAVX2 returns the sum, as a plain 64-bit integer, of the little-endian
// 32-bit words of b, whose length must be a multiple of 64. For the
// one's-complement sum that is the same as the sum of b's little-endian
// 16-bit words, since 2^16 ≡ 1 (mod 2^16-1). Implemented in
// checksum_amd64.s; it cannot overflow for any b shorter than 2^34 bytes.
//
//go:noescape
func sumAVX2(b []byte) uint64

// sumWide sums the longest prefix of b the vector code takes (see
// sumAVX2) and returns the rest, or (0, b) where it does not apply.
func sumWide(b []byte) (sum uint64, rest []byte) {
	if !useAVX2 || len(b) < wideMin {
		return 0, b
	}
	n := len(b) &^ 63
	return sumAVX2(b[:n]), b[n:]
}

//go:build !amd64 || purego

package wire

// wideMin is the length from which sum16 offers a buffer to sumWide.
const wideMin = 128

// sumWide is the hook for a vector bulk sum (checksum_amd64.go); this
// platform has none and sums everything in sum16's 64-bit loop.
func sumWide(b []byte) (sum uint64, rest []byte) { return 0, b }

//go:build linux

package tpacket

import "unsafe"

// unsafeBytes views words as bytes (8-byte aligned, as ring blocks are).
func unsafeBytes(words []uint64) []byte {
	if len(words) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
}

// alignedCopy copies b into 8-byte aligned memory.
func alignedCopy(b Block) Block {
	words := make([]uint64, (len(b)+7)/8)
	out := unsafeBytes(words)[:len(b)]
	copy(out, b)
	return Block(out)
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

package wire

import "math/bits"

// IGMPv3 and MLDv2 encode long durations in a small floating-point format:
// codes below 2^(n-1) are the value itself; otherwise the code is
// 1|exp(3)|mant(n-4) and the value is (mant | 2^(n-4)) << (exp+3). The
// 8-bit and 16-bit forms below differ only in n.

func decodeCode(code uint32, width uint) uint32 {
	if code < 1<<(width-1) {
		return code
	}
	mantBits := width - 4
	mant := code & (1<<mantBits - 1)
	exp := (code >> mantBits) & 7
	return (mant | 1<<mantBits) << (exp + 3)
}

// encodeCode returns the largest width-bit code whose value is <= v.
func encodeCode(v uint32, width uint, maxValue uint32) uint32 {
	if v < 1<<(width-1) {
		return v
	}
	if v >= maxValue {
		return 1<<width - 1
	}
	mantBits := width - 4
	// The leading 1 of (mant|2^mantBits) << (exp+3) is bit exp+width-1.
	exp := uint(bits.Len32(v)) - width
	mant := (v >> (exp + 3)) & (1<<mantBits - 1)
	return 1<<(width-1) | uint32(exp)<<mantBits | mant
}

// DecodeCode8 decodes an 8-bit IGMPv3 Max Resp Code or QQIC (RFC 9776
// §4.1.1, §4.1.7): codes below 128 are the value itself; otherwise the code
// is 1|exp(3)|mant(4) and the value is (mant|0x10) << (exp+3).
func DecodeCode8(code uint8) uint32 { return decodeCode(uint32(code), 8) }

// MaxCode8Value is the largest value an 8-bit code represents (code 0xff).
const MaxCode8Value = 31744

// EncodeCode8 returns the largest code whose DecodeCode8 value is <= v,
// saturating at 0xff for v >= MaxCode8Value. Values below 128 are exact.
func EncodeCode8(v uint32) uint8 { return uint8(encodeCode(v, 8, MaxCode8Value)) }

// DecodeCode16 decodes a 16-bit MLDv2 Maximum Response Code (RFC 9777
// §5.1.3): codes below 32768 are the value itself; otherwise the code is
// 1|exp(3)|mant(12) and the value is (mant|0x1000) << (exp+3).
func DecodeCode16(code uint16) uint32 { return decodeCode(uint32(code), 16) }

// MaxCode16Value is the largest value a 16-bit code represents (code 0xffff).
const MaxCode16Value = 8387584

// EncodeCode16 returns the largest code whose DecodeCode16 value is <= v,
// saturating at 0xffff for v >= MaxCode16Value. Values below 32768 are exact.
func EncodeCode16(v uint32) uint16 { return uint16(encodeCode(v, 16, MaxCode16Value)) }

package wire

import "math/bits"

// DecodeCode8 decodes an 8-bit IGMPv3 Max Resp Code or QQIC (RFC 9776
// §4.1.1, §4.1.7): codes below 128 are the value itself; otherwise the code
// is 1|exp(3)|mant(4) and the value is (mant|0x10) << (exp+3).
func DecodeCode8(code uint8) uint32 {
	if code < 128 {
		return uint32(code)
	}
	mant := uint32(code & 0x0f)
	exp := uint32(code>>4) & 7
	return (mant | 0x10) << (exp + 3)
}

// MaxCode8Value is the largest value an 8-bit code represents (code 0xff).
const MaxCode8Value = 31744

// EncodeCode8 returns the largest code whose DecodeCode8 value is <= v,
// saturating at 0xff for v >= MaxCode8Value. Values below 128 are exact.
func EncodeCode8(v uint32) uint8 {
	if v < 128 {
		return uint8(v)
	}
	if v >= MaxCode8Value {
		return 0xff
	}
	exp := bits.Len32(v) - 8 // the leading 1 of (mant|0x10)<<(exp+3) is bit exp+7
	mant := (v >> (exp + 3)) & 0x0f
	return uint8(0x80 | exp<<4 | int(mant))
}

// DecodeCode16 decodes a 16-bit MLDv2 Maximum Response Code (RFC 9777
// §5.1.3): codes below 32768 are the value itself; otherwise the code is
// 1|exp(3)|mant(12) and the value is (mant|0x1000) << (exp+3).
func DecodeCode16(code uint16) uint32 {
	if code < 32768 {
		return uint32(code)
	}
	mant := uint32(code & 0x0fff)
	exp := uint32(code>>12) & 7
	return (mant | 0x1000) << (exp + 3)
}

// MaxCode16Value is the largest value a 16-bit code represents (code 0xffff).
const MaxCode16Value = 8387584

// EncodeCode16 returns the largest code whose DecodeCode16 value is <= v,
// saturating at 0xffff for v >= MaxCode16Value. Values below 32768 are exact.
func EncodeCode16(v uint32) uint16 {
	if v < 32768 {
		return uint16(v)
	}
	if v >= MaxCode16Value {
		return 0xffff
	}
	exp := bits.Len32(v) - 16 // leading 1 of (mant|0x1000)<<(exp+3) is bit exp+15
	mant := (v >> (exp + 3)) & 0x0fff
	return uint16(0x8000 | exp<<12 | int(mant))
}

package wire

import "net/netip"

// ICMPv6Checksum returns the ICMPv6 checksum (RFC 4443 §2.3) of msg sent
// from src to dst: the Internet checksum over the IPv6 pseudo-header (RFC
// 8200 §8.1, next header 58) and msg, with msg's checksum field (bytes 2–3)
// taken as zero whatever it holds.
func ICMPv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	acc := uint64(PseudoHeaderSum(src, dst, ProtoICMPv6, len(msg)))
	if len(msg) < 4 {
		var m [4]byte
		copy(m[:2], msg)
		return ^fold(sum16(m[:], acc))
	}
	acc = sum16(msg[:2], acc)
	acc = sum16(msg[4:], acc)
	return ^fold(acc)
}

// VerifyICMPv6 checks the checksum of the ICMPv6 message msg sent from src
// to dst. It returns a *ParseError wrapping ErrTruncated for messages
// shorter than 4 bytes and ErrChecksum for a mismatch.
func VerifyICMPv6(src, dst netip.Addr, msg []byte) error {
	if len(msg) < 4 {
		return peIcmpv6HeaderTruncated
	}
	if !src.Is6() || !dst.Is6() {
		return peIcmpv6AddressMalformed
	}
	if Checksum(msg, PseudoHeaderSum(src, dst, ProtoICMPv6, len(msg))) != 0 {
		return peIcmpv6ChecksumChecksum
	}
	return nil
}

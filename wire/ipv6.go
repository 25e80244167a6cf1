package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 option types (RFC 8200 §4.2, RFC 2711 §2.1).
const (
	ipv6OptPad1        = 0
	ipv6OptPadN        = 1
	ipv6OptRouterAlert = 5
)

// IPv6 is a parsed IPv6 packet (RFC 8200 §3) with its extension header
// chain walked.
//
// NextHeader is the protocol of Payload, the first header that is not
// Hop-by-Hop, Routing or Destination Options. The walk stops at a Fragment
// header (RFC 8200 §4.5) without reassembling: Fragment is set, NextHeader
// is ProtoFragment (44) and Payload starts at the Fragment header, so a
// fragment is never mistaken for an upper-layer message. RouterAlert and
// RouterAlertValue report a Router Alert option (RFC 2711) in the
// Hop-by-Hop header; value 0 means MLD.
type IPv6 struct {
	TrafficClass     uint8
	FlowLabel        uint32 // 20 bits
	HopLimit         uint8
	NextHeader       uint8 // upper-layer protocol after the extension chain
	Src, Dst         netip.Addr
	RouterAlert      bool
	RouterAlertValue uint16
	Fragment         bool
	Payload          []byte // upper-layer payload; aliases the parsed buffer
}

// IPv6View is a zero-copy view of the fixed IPv6 header. Accessors assume
// at least 40 bytes.
type IPv6View []byte

func (v IPv6View) PayloadLen() int   { return int(binary.BigEndian.Uint16(v[4:])) }
func (v IPv6View) NextHeader() uint8 { return v[6] }
func (v IPv6View) HopLimit() uint8   { return v[7] }
func (v IPv6View) Src() netip.Addr   { return netip.AddrFrom16([16]byte(v[8:24])) }
func (v IPv6View) Dst() netip.Addr   { return netip.AddrFrom16([16]byte(v[24:40])) }

// walkIPv6Options walks the TLV options of a Hop-by-Hop or Destination
// Options header (RFC 8200 §4.2). Unknown options whose two high-order type
// bits are not 00 require the packet to be discarded, which is reported as
// ErrUnsupported. When hbh is set, a Router Alert option (type 5, length 2)
// is returned.
func walkIPv6Options(opts []byte, hbh bool) (ra bool, raVal uint16, err error) {
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == ipv6OptPad1 {
			i++
			continue
		}
		if i+2 > len(opts) {
			return false, 0, peIpv6OptionLengthMalformed
		}
		l := int(opts[i+1])
		if i+2+l > len(opts) {
			return false, 0, peIpv6OptionLengthMalformed2
		}
		switch {
		case t == ipv6OptPadN:
		case t == ipv6OptRouterAlert && hbh:
			if l != 2 {
				return false, 0, peIpv6RouterAlertMalformed
			}
			if ra {
				return false, 0, peIpv6RouterAlertMalformed2
			}
			ra, raVal = true, binary.BigEndian.Uint16(opts[i+2:])
		case t>>6 != 0:
			return false, 0, peIpv6OptionTypeUnsupported
		}
		i += 2 + l
	}
	return ra, raVal, nil
}

// ParseIPv6 parses an IPv6 packet (RFC 8200): version 6, payload length
// consistent with len(b) (trailing link padding is ignored), then walks
// Hop-by-Hop (only as the first header, §4.1), Routing and Destination
// Options headers, stopping at the first other header (see IPv6 for the
// Fragment header). A payload length of zero is an empty payload (jumbograms
// are refused through their Hop-by-Hop option, which is not understood).
// Routing headers are skipped without processing segments.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return IPv6{}, peIpv6HeaderTruncated
	}
	if b[0]>>4 != 6 {
		return IPv6{}, peIpv6VersionMalformed
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	end := IPv6HeaderLen + plen
	if end > len(b) {
		return IPv6{}, peIpv6PayloadLengthTruncated
	}
	vtf := binary.BigEndian.Uint32(b)
	h := IPv6{
		TrafficClass: uint8(vtf >> 20),
		FlowLabel:    vtf & 0xfffff,
		HopLimit:     b[7],
		Src:          netip.AddrFrom16([16]byte(b[8:24])),
		Dst:          netip.AddrFrom16([16]byte(b[24:40])),
	}
	nh := b[6]
	off := IPv6HeaderLen
	for {
		switch nh {
		case ProtoHopByHop, ProtoRouting, ProtoDestOptions:
			if nh == ProtoHopByHop && off != IPv6HeaderLen {
				return IPv6{}, peIpv6HopByHopMalformed
			}
			if end-off < 8 {
				return IPv6{}, peIpv6ExtensionHeaderTruncated
			}
			l := (int(b[off+1]) + 1) * 8
			if end-off < l {
				return IPv6{}, peIpv6ExtensionHeaderLengthTruncated
			}
			if nh != ProtoRouting {
				ra, v, err := walkIPv6Options(b[off+2:off+l], nh == ProtoHopByHop)
				if err != nil {
					return IPv6{}, err
				}
				if ra {
					h.RouterAlert, h.RouterAlertValue = true, v
				}
			}
			nh = b[off]
			off += l
		case ProtoFragment:
			if end-off < 8 {
				return IPv6{}, peIpv6FragmentTruncated
			}
			h.Fragment = true
			h.NextHeader = nh
			h.Payload = b[off:end:end]
			return h, nil
		default:
			h.NextHeader = nh
			h.Payload = b[off:end:end]
			return h, nil
		}
	}
}

// HeadersLen returns the number of header bytes AppendIPv6 emits for h:
// 40, or 48 with Router Alert.
func (h IPv6) HeadersLen() int {
	if h.RouterAlert {
		return IPv6RouterAlertHeadersLen
	}
	return IPv6HeaderLen
}

// AppendIPv6 appends an IPv6 header for h, then, when h.RouterAlert is set,
// the Hop-by-Hop header NH 00 05 02 VV VV 01 00 (Router Alert with
// h.RouterAlertValue, RFC 2711 §2.1, then a 0-byte PadN; RFC 8200 §4.3),
// then payload, whose protocol is h.NextHeader. h.Fragment and h.Payload are
// ignored (a fragment's payload starts with its Fragment header, NextHeader
// 44). It refuses non-IPv6 addresses, a flow label over 20 bits and a
// payload length over 65535. b is not extended on error. It does not
// allocate when b has room.
func AppendIPv6(b []byte, h IPv6, payload []byte) ([]byte, error) {
	if !h.Src.Is6() || !h.Dst.Is6() {
		return b, eerr("ipv6", "source and destination must be IPv6 addresses")
	}
	if h.FlowLabel > 0xfffff {
		return b, eerr("ipv6", "flow label %#x exceeds 20 bits", h.FlowLabel)
	}
	hl := h.HeadersLen()
	plen := hl - IPv6HeaderLen + len(payload)
	if plen > 0xffff {
		return b, eerr("ipv6", "payload length %d exceeds 65535", plen)
	}
	b, t := grow(b, hl+len(payload))
	binary.BigEndian.PutUint32(t, 6<<28|uint32(h.TrafficClass)<<20|h.FlowLabel)
	binary.BigEndian.PutUint16(t[4:], uint16(plen))
	t[6] = h.NextHeader
	t[7] = h.HopLimit
	s, d := h.Src.As16(), h.Dst.As16()
	copy(t[8:24], s[:])
	copy(t[24:40], d[:])
	if h.RouterAlert {
		t[6] = ProtoHopByHop
		x := t[IPv6HeaderLen:IPv6RouterAlertHeadersLen]
		x[0], x[1], x[2], x[3] = h.NextHeader, 0, ipv6OptRouterAlert, 2
		binary.BigEndian.PutUint16(x[4:], h.RouterAlertValue)
		x[6], x[7] = ipv6OptPadN, 0
	}
	copy(t[hl:], payload)
	return b, nil
}

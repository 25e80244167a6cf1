package wire

import "net/netip"

// Link layer.
const (
	EthernetHeaderLen = 14     // dst, src, EtherType
	VLANTagLen        = 4      // one IEEE 802.1Q tag
	EtherTypeIPv4     = 0x0800 // RFC 894
	EtherTypeIPv6     = 0x86DD // RFC 2464
	EtherTypeVLAN     = 0x8100 // IEEE 802.1Q
)

// IP protocol / IPv6 next-header numbers.
const (
	ProtoHopByHop    = 0  // RFC 8200 §4.3
	ProtoIGMP        = 2  // RFC 1112 / RFC 2236 / RFC 9776
	ProtoUDP         = 17 // RFC 768
	ProtoRouting     = 43 // RFC 8200 §4.4
	ProtoFragment    = 44 // RFC 8200 §4.5
	ProtoICMPv6      = 58 // RFC 4443
	ProtoNoNext      = 59 // RFC 8200 §4.7
	ProtoDestOptions = 60 // RFC 8200 §4.6
)

// Header sizes.
const (
	IPv4HeaderLen = 20
	IPv6HeaderLen = 40
	UDPHeaderLen  = 8

	// IPv4RouterAlertHeaderLen is an IPv4 header carrying only the
	// Router Alert option (RFC 2113), as IGMP messages are sent (RFC 9776 §4).
	IPv4RouterAlertHeaderLen = 24
	// IPv6RouterAlertHeadersLen is the IPv6 header plus the 8-byte
	// Hop-by-Hop header carrying Router Alert (RFC 2711), as MLD uses
	// (RFC 9777 §5).
	IPv6RouterAlertHeadersLen = 48
)

// Well-known groups.
var (
	IPv4AllSystems = netip.AddrFrom4([4]byte{224, 0, 0, 1})  // RFC 1112
	IPv4AllRouters = netip.AddrFrom4([4]byte{224, 0, 0, 2})  // RFC 2236
	IGMPv3Routers  = netip.AddrFrom4([4]byte{224, 0, 0, 22}) // RFC 9776 §4.2.14
	IPv6AllNodes   = netip.MustParseAddr("ff02::1")          // RFC 4291
	IPv6AllRouters = netip.MustParseAddr("ff02::2")          // RFC 4291
	MLDv2Routers   = netip.MustParseAddr("ff02::16")         // RFC 9777 §5.2.14
)

// grow extends b by n bytes, reusing capacity when there is room, and
// returns the extended slice and the new n-byte tail. The tail's contents are
// unspecified; callers write every byte.
func grow(b []byte, n int) (all, tail []byte) {
	l := len(b)
	if cap(b)-l >= n {
		b = b[:l+n]
	} else {
		b = append(b, make([]byte, n)...)
	}
	return b, b[l : l+n]
}

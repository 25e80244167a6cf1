package wire

import (
	"fmt"
	"net/netip"
)

// MAC is an IEEE 802 MAC-48 address. It is a comparable value so it can be
// used as a map key and passed around without allocation.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// IsMulticast reports whether the group bit (the low bit of the first octet) is set.
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// MulticastMAC maps an IP multicast group to its Ethernet address:
// IPv4 to 01:00:5e plus the low 23 bits of the group (RFC 1112 §6.4),
// IPv6 to 33:33 plus the low 32 bits (RFC 2464 §7).
// ok is false when group is not a multicast address.
func MulticastMAC(group netip.Addr) (mac MAC, ok bool) {
	if !group.IsMulticast() {
		return MAC{}, false
	}
	if group.Is4() || group.Is4In6() {
		a := group.Unmap().As4()
		return MAC{0x01, 0x00, 0x5e, a[1] & 0x7f, a[2], a[3]}, true
	}
	a := group.As16()
	return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]}, true
}

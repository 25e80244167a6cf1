package wire

import "net/netip"

// IsReportable reports whether membership of group is announced with
// IGMP/MLD reports. It is false for non-multicast addresses, for the IPv4
// local network control block 224.0.0.0/24 (this package's choice: RFC 9776
// §5 never reports 224.0.0.1, and the rest of the block is link-local
// control traffic routers forward regardless), for ff02::1 and for IPv6
// multicast of scope 0 (reserved) or 1 (interface-local) (RFC 9777 §6).
func IsReportable(group netip.Addr) bool {
	if isMcast4(group) {
		a := group.As4()
		return !(a[0] == 224 && a[1] == 0 && a[2] == 0)
	}
	if !isMcast6(group) {
		return false
	}
	if group.WithZone("") == IPv6AllNodes {
		return false
	}
	s := MulticastScope(group)
	return s != 0 && s != 1
}

// IsSSM reports whether group is in a source-specific multicast range
// (RFC 4607 §1): 232.0.0.0/8 or ff3x::/32 (flags P=1, T=1, prefix length 0).
func IsSSM(group netip.Addr) bool {
	if isMcast4(group) {
		return group.As4()[0] == 232
	}
	if isMcast6(group) {
		a := group.As16()
		return a[1]>>4 == 3 && a[2] == 0 && a[3] == 0
	}
	return false
}

// IsLinkLocalMulticast reports whether group is link-local multicast:
// 224.0.0.0/24 for IPv4; for IPv6 any multicast address of link-local scope
// (ffx2::/16, RFC 4291 §2.7), which includes ff02::/16.
func IsLinkLocalMulticast(group netip.Addr) bool {
	return MulticastScope(group) == 2
}

// MulticastScope returns the scope of a multicast group: for IPv6 the scope
// nibble (RFC 4291 §2.7: 1 interface-local, 2 link-local, 5 site-local, 8
// organization-local, 14 global). For IPv4 it returns 2 for 224.0.0.0/24 and
// 14 for every other multicast address (administratively scoped 239/8 ranges,
// RFC 2365, are not distinguished). It returns -1 for non-multicast
// addresses.
func MulticastScope(group netip.Addr) int {
	if isMcast4(group) {
		a := group.As4()
		if a[0] == 224 && a[1] == 0 && a[2] == 0 {
			return 2
		}
		return 14
	}
	if isMcast6(group) {
		return int(group.As16()[1] & 0x0f)
	}
	return -1
}

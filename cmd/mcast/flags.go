package main

import (
	"fmt"
	"net/netip"
	"strings"
)

// prefixList is a repeatable ADDR/PREFIX flag. A bare address gets the
// host prefix length (/32, /128).
type prefixList []netip.Prefix

func (l *prefixList) String() string { return joinStrings(*l) }

func (l *prefixList) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return fmt.Errorf("%q is not ADDR/PREFIX", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%q: use a plain IPv4 address, not IPv4-mapped IPv6", s)
	}
	if p.Addr().IsMulticast() || p.Addr().IsUnspecified() {
		return fmt.Errorf("%q is not a unicast interface address", s)
	}
	*l = append(*l, p)
	return nil
}

// addrList is a repeatable address flag.
type addrList []netip.Addr

func (l *addrList) String() string { return joinStrings(*l) }

func (l *addrList) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	*l = append(*l, a.Unmap())
	return nil
}

func joinStrings[T fmt.Stringer](l []T) string {
	s := make([]string, len(l))
	for i, x := range l {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

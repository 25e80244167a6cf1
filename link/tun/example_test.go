//go:build linux

package tun_test

import (
	"fmt"
	"log"
	"net/netip"

	"github.com/mcstack/mcstack/link/tun"
	"github.com/mcstack/mcstack/stack"
)

// Run the stack on a TUN device (needs CAP_NET_ADMIN): an L3 link, which
// the endpoint presents to the stack as Ethernet. Route the groups into
// the device on the kernel side (`ip link set tun0 up; ip route add
// 239.0.0.0/8 dev tun0`) and the kernel's multicast senders reach the
// stack's sockets. Not run: it needs privileges.
func Example() {
	ep, err := tun.Open("tun0", tun.Options{})
	if err != nil {
		log.Fatal(err) // e.g. tun.ErrPermission, tun.ErrBusy
	}
	s := stack.New(stack.Config{})
	defer s.Close() // leaves every group, then closes the endpoint
	ifc, err := s.AddInterface(ep, stack.InterfaceConfig{
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := s.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.JoinGroup(ifc, netip.MustParseAddr("239.1.1.1")); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, cm, err := c.ReadMsg(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes from %v to %v on ifindex %d (MAC %v is synthetic)\n", n, cm.Src, cm.Dst, cm.IfIndex, ep.HardwareAddr())
}

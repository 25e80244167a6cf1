//go:build linux

package tap_test

import (
	"fmt"
	"log"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/tap"
	"github.com/mcstack/mcstack/wire"
)

// Create a TAP device (needs CAP_NET_ADMIN), bring its kernel side up
// (`ip link set tap0 up`, or put it in a bridge), and receive frames sent
// to the stack's own MAC address or to one multicast group. Not run: it
// needs privileges.
func Example() {
	ep, err := tap.Open("tap0", tap.Options{MAC: wire.MAC{0x02, 0, 0, 0, 0, 1}})
	if err != nil {
		log.Fatal(err) // e.g. tap.ErrPermission, tap.ErrBusy
	}
	defer ep.Close() // a device Open created disappears
	if err := ep.Attach(link.FrameFunc(func(frame []byte) {
		fmt.Printf("%d bytes from %v\n", len(frame), wire.MAC(frame[6:12]))
	})); err != nil {
		log.Fatal(err)
	}
	// The software filter: 239.1.1.1 passes, other groups are dropped.
	if _, err := ep.SetMulticastFilter([]wire.MAC{{0x01, 0x00, 0x5e, 0x01, 0x01, 0x01}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ep.Name(), "ifindex", ep.Index(), "mtu", ep.MTU())
}

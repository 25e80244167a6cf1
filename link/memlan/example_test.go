package memlan_test

import (
	"fmt"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/wire"
)

// Two stations on a LAN: b programs its multicast filter for one group and
// hears a frame a sends to it, but not one sent to another group.
func Example() {
	lan := memlan.New(memlan.Options{Seed: 1})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 2}})

	got := make(chan string, 4)
	if err := b.Attach(link.FrameFunc(func(frame []byte) {
		eth, err := wire.ParseEthernet(frame)
		if err != nil {
			return
		}
		got <- fmt.Sprintf("%v from %v: %s", eth.Dst, eth.Src, eth.Payload) // copies
	})); err != nil {
		fmt.Println(err)
		return
	}
	group := wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
	st, err := b.SetMulticastFilter([]wire.MAC{group})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("exact entries:", st.Exact)

	send := func(dst wire.MAC, payload string) {
		frame := wire.AppendEthernet(nil, dst, a.HardwareAddr(), 0x88b5)
		if err := a.WriteFrame(append(frame, payload...)); err != nil {
			fmt.Println(err)
		}
	}
	send(wire.MAC{0x01, 0x00, 0x5e, 0x09, 0x09, 0x09}, "filtered out")
	send(group, "hello, group")
	fmt.Println(<-got)
	fmt.Println("dropped by filter:", b.Stats().DroppedFilter)
	// Output:
	// exact entries: 1
	// 01:00:5e:01:02:03 from 02:00:00:00:00:01: hello, group
	// dropped by filter: 1
}

package mux_test

import (
	"fmt"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/link/mux"
	"github.com/mcstack/mcstack/wire"
)

// Three virtual hosts behind one LAN endpoint: a frame to a group reaches
// only the hosts that joined it, and the parent is programmed with the
// union of their filters.
func Example() {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	router := lan.NewEndpoint("router", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}})
	port := lan.NewEndpoint("port", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 2}})

	m, err := mux.New(port, mux.Options{Base: wire.MAC{2, 0xee, 0, 0, 0, 0}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	group := wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x01, 0x01}
	got := make(chan string, 8)
	for i := range 3 {
		e, err := m.NewEndpoint(i)
		if err != nil {
			fmt.Println(err)
			return
		}
		e.Attach(link.FrameFunc(func(frame []byte) {
			got <- fmt.Sprintf("host %d (%v) got %q", i, e.HardwareAddr(), frame[wire.EthernetHeaderLen:])
		}))
		if i != 1 { // host 1 joins nothing
			if _, err := e.SetMulticastFilter([]wire.MAC{group}); err != nil {
				fmt.Println(err)
				return
			}
		}
	}
	exact, _ := port.Filter()
	fmt.Println("parent filter:", exact)

	frame := wire.AppendEthernet(nil, group, router.HardwareAddr(), 0x88b5)
	router.WriteFrame(append(frame, "to the group"...))
	for range 2 {
		select {
		case s := <-got:
			fmt.Println(s)
		case <-time.After(5 * time.Second):
			fmt.Println("timeout")
		}
	}
	// Unordered output:
	// parent filter: [01:00:5e:01:01:01]
	// host 0 (02:ee:00:00:00:00) got "to the group"
	// host 2 (02:ee:00:00:00:02) got "to the group"
}

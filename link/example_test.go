package link_test

import (
	"fmt"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/wire"
)

// counter is a full Handler: it gets frames in batches and the link's
// state. Frames are valid only during HandleFrames, so it copies what it
// keeps (here: only a count and the last source address).
type counter struct {
	frames  chan int
	lastSrc wire.MAC
	states  chan link.LinkState
}

func (c *counter) HandleFrames(frames [][]byte, _ []link.FrameFlags) {
	for _, f := range frames {
		c.lastSrc = wire.MAC(f[6:12]) // an array: a copy
	}
	c.frames <- len(frames)
}

func (c *counter) HandleLinkState(st link.LinkState) { c.states <- st }

// A Handler receives batches of frames and link-state changes, from one
// goroutine at a time; here over the in-memory LAN, whose endpoints report
// their carrier like a kernel interface does.
func Example_handler() {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 2}})

	h := &counter{frames: make(chan int, 8), states: make(chan link.LinkState, 8)}
	if err := b.Attach(h); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("state after Attach:", <-h.states)

	frame := wire.AppendEthernet(nil, b.HardwareAddr(), a.HardwareAddr(), 0x88b5)
	if err := a.WriteFrame(append(frame, "hello"...)); err != nil {
		fmt.Println(err)
	}
	fmt.Println("frames in the batch:", <-h.frames, "from", h.lastSrc)

	b.SetCarrier(false)
	fmt.Println("state:", <-h.states)
	// Output:
	// state after Attach: up
	// frames in the batch: 1 from 02:00:00:00:00:01
	// state: down
}

// FrameFunc adapts a per-frame function to a Handler that ignores
// link-state changes.
func ExampleFrameFunc() {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	a := lan.NewEndpoint("a", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}})
	b := lan.NewEndpoint("b", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 2}})
	got := make(chan string, 1)
	if err := b.Attach(link.FrameFunc(func(frame []byte) {
		got <- string(frame[wire.EthernetHeaderLen:]) // string() copies
	})); err != nil {
		fmt.Println(err)
		return
	}
	frame := wire.AppendEthernet(nil, b.HardwareAddr(), a.HardwareAddr(), 0x88b5)
	if err := a.WriteFrame(append(frame, "hello"...)); err != nil {
		fmt.Println(err)
	}
	fmt.Println(<-got)
	// Output: hello
}

//go:build linux

package afpacket_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/wire"
)

// stateLogger prints link-state changes and counts frames.
type stateLogger struct{ frames int }

func (s *stateLogger) HandleFrames(frames [][]byte, _ []link.FrameFlags) { s.frames += len(frames) }
func (s *stateLogger) HandleLinkState(st link.LinkState)                 { log.Printf("eth0: link %v", st) }

// Open an endpoint on eth0 (needs CAP_NET_RAW), receive through the
// default TPACKET_V3 ring, and accept one multicast group in the NIC's
// filter. Not run: it needs a real interface and privileges.
func Example() {
	ep, err := afpacket.Open("eth0", afpacket.Options{})
	if err != nil {
		log.Fatal(err) // e.g. afpacket.ErrPermission, afpacket.ErrNoSuchInterface
	}
	defer ep.Close()
	fmt.Println("receiving with", ep.Mode(), "on ifindex", ep.Index())
	if err := ep.Attach(&stateLogger{}); err != nil {
		log.Fatal(err)
	}
	group := wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x01, 0x01} // 239.1.1.1
	st, err := ep.SetMulticastFilter([]wire.MAC{group})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exact filter entries:", st.Exact)
}

// Pick the recvmsg path instead of the ring, and tell apart
// what can go wrong with a write.
func ExampleOptions() {
	ep, err := afpacket.Open("eth0", afpacket.Options{Mode: afpacket.ModeRecvmsg})
	if err != nil {
		log.Fatal(err)
	}
	defer ep.Close()
	frame := wire.AppendEthernet(nil, wire.BroadcastMAC, ep.HardwareAddr(), 0x88b5)
	switch err := ep.WriteFrame(append(frame, make([]byte, 46)...)); {
	case errors.Is(err, link.ErrWouldBlock):
		fmt.Println("queue full for", afpacket.DefaultWriteTimeout, "- dropped; writes that gave up:", ep.Stats().TxWouldBlock)
	case errors.Is(err, link.ErrLinkDown):
		fmt.Println("no carrier")
	case err != nil:
		log.Fatal(err)
	}
}

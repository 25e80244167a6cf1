package proto_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
)

// Example drives an IGMP engine the way the stack does: state changes in,
// queries in, timers from NextTimer, packets out.
func Example() {
	e := proto.NewIGMP(proto.Config{
		Source: netip.MustParseAddr("192.0.2.2"),
		Rand:   rand.New(rand.NewPCG(1, 2)), // reproducible delays
	})
	now := time.Unix(0, 0)
	show := func() {
		for _, p := range e.TakeOutgoing() {
			r, err := prototest.Decode(p)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println(r)
		}
	}
	// A socket joins 239.1.2.3 from any source, another one subscribes to
	// 232.1.1.1 from 192.0.2.9 only.
	e.StateChanged(now, []membership.Delta{
		{Group: netip.MustParseAddr("239.1.2.3"), New: membership.State{Mode: membership.Exclude}},
		{Group: netip.MustParseAddr("232.1.1.1"), New: membership.NewState(membership.Include, []netip.Addr{netip.MustParseAddr("192.0.2.9")})},
	})
	show()
	// The querier asks; the answer comes within the Max Resp Time.
	e.Receive(now, prototest.IGMPv3Query(netip.IPv4Unspecified(), 10*time.Second))
	for {
		at, ok := e.NextTimer()
		if !ok {
			break
		}
		now = at
		e.Tick(now)
		show()
	}
	// Output:
	// igmpv3 224.0.0.22 [ALLOW(232.1.1.1){192.0.2.9} TO_EX(239.1.2.3){}]
	// igmpv3 224.0.0.22 [ALLOW(232.1.1.1){192.0.2.9} TO_EX(239.1.2.3){}]
	// igmpv3 224.0.0.22 [IS_IN(232.1.1.1){192.0.2.9} IS_EX(239.1.2.3){}]
}

// Package interop holds mcstack's interoperability tests against the Linux
// kernel as an independent peer (issue 5, item 3). It has no exported API:
// everything is in the _test.go files.
//
// Each test builds its own private network out of network namespaces: a
// Linux bridge with IGMP/MLD snooping and its querier enabled (the oracle:
// `bridge -d -j mdb show` tells what our reports announced), our stack on an
// AF_PACKET socket (or a TAP device) attached to a bridge port, a Linux
// kernel UDP sender, and a Linux kernel receiver joined to the same groups.
// The whole run is captured on our bridge port and checked with tshark.
//
// The tests need root (namespaces, veths, bridges, raw sockets) and skip
// with a message otherwise. Our stack's AF_PACKET endpoint uses the
// default receive mode (the TPACKET_V3 ring) unless MCSTACK_AFPACKET_MODE
// says ring or recvmsg; `make test` and `make interop` run the suite in
// both. Run them with `make interop`, or:
//
//	MCSTACK_AFPACKET_MODE=recvmsg go test -race -count=1 -v -run Interop ./interop/...
package interop

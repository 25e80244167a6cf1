package stack

import "sync/atomic"

// counter names one of an interface's data-path counters.
type counter int

const (
	cFramesReceived    counter = iota // frames handed up by the endpoint
	cDatagramsReceived                // UDP datagrams queued to a socket (once per socket)
	cDatagramsDropped                 // datagrams dropped because a socket queue was full
	cNotForUs                         // unicast frames or packets not addressed to this host
	cNotIP                            // frames of other EtherTypes
	cBadLink                          // malformed Ethernet frames
	cBadIP                            // malformed IPv4/IPv6 packets
	cFragments                        // IP fragments (not reassembled)
	cBadUDP                           // malformed UDP or bad UDP checksum
	cNoSocket                         // no socket bound to the destination port
	cFiltered                         // multicast datagrams no socket's filter accepted
	cProtoQueued                      // IGMP/MLD messages handed to the protocol worker
	cProtoDropped                     // IGMP/MLD messages dropped: protocol queue full
	cBadICMPv6                        // ICMPv6 messages with a bad checksum
	cLoopedBack                       // sent multicast datagrams delivered locally
	cFramesSent                       // frames written to the endpoint
	cSendErrors                       // frames the endpoint refused
	numCounters
)

// CounterNames lists the keys of Status.Counters, in a stable order.
var CounterNames = [numCounters]string{
	"frames_received", "datagrams_received", "datagrams_dropped", "not_for_us",
	"not_ip", "bad_link", "bad_ip", "fragments", "bad_udp", "no_socket",
	"filtered", "proto_queued", "proto_dropped", "bad_icmpv6", "looped_back",
	"frames_sent", "send_errors",
}

// counterSet holds an interface's counters; updated with atomics only.
type counterSet [numCounters]atomic.Uint64

func (c *counterSet) inc(n counter) { c[n].Add(1) }

func (c *counterSet) snapshot() map[string]uint64 {
	m := make(map[string]uint64, numCounters)
	for i := range c {
		m[CounterNames[i]] = c[i].Load()
	}
	return m
}

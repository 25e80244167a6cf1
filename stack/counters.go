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
	cLink8023                         // 802.3 frames (a length, not an EtherType: STP, LLC)
	cBadLink                          // truncated Ethernet frames
	cBadIPTruncated                   // IPv4/IPv6 packets shorter than their headers or lengths say
	cBadIPChecksum                    // IPv4 header checksum errors
	cBadIPMalformed                   // other invalid or unsupported IPv4/IPv6 headers
	cFragments                        // IP fragments (not reassembled)
	cBadUDPTruncated                  // UDP datagrams shorter than their header or length say
	cBadUDPChecksum                   // UDP checksum errors
	cBadUDPMalformed                  // other invalid UDP headers
	cNoSocket                         // no socket bound to the destination port
	cFiltered                         // multicast datagrams no socket's filter accepted
	cProtoQueued                      // IGMP/MLD messages handed to the protocol worker
	cProtoDropped                     // IGMP/MLD messages dropped: protocol queue full
	cBadICMPv6                        // ICMPv6 messages with a bad checksum
	cLoopedBack                       // sent multicast datagrams delivered locally
	cFramesSent                       // frames written to the endpoint
	cSendErrors                       // frames the endpoint refused (or reports dropped after retries)
	cSendBlocked                      // transmissions the endpoint could not take at once (ErrWouldBlock), retried
	cLinkChanges                      // link state changes reported by the endpoint
	numCounters
)

// rxBatch keeps a bit per counter in a uint32.
var _ [32 - numCounters]struct{}

// CounterNames lists the keys of Status.Counters, in a stable order.
var CounterNames = [numCounters]string{
	"frames_received", "datagrams_received", "datagrams_dropped", "not_for_us",
	"not_ip", "link_8023", "bad_link", "bad_ip_truncated", "bad_ip_checksum",
	"bad_ip_malformed", "fragments", "bad_udp_truncated", "bad_udp_checksum",
	"bad_udp_malformed", "no_socket", "filtered", "proto_queued", "proto_dropped",
	"bad_icmpv6", "looped_back", "frames_sent", "send_errors", "send_blocked",
	"link_changes",
}

// counterSet holds an interface's counters; updated with atomics only.
type counterSet [numCounters]atomic.Uint64

func (c *counterSet) inc(n counter) { c[n].Add(1) }

func (c *counterSet) add(n counter, v uint64) { c[n].Add(v) }

func (c *counterSet) snapshot() map[string]uint64 {
	m := make(map[string]uint64, numCounters)
	for i := range c {
		m[CounterNames[i]] = c[i].Load()
	}
	return m
}

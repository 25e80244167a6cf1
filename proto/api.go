package proto

import (
	"net/netip"
	"time"

	"github.com/mcstack/mcstack/membership"
)

// Packet is a complete IP packet an engine wants sent: an IPv4 packet with
// the Router Alert option and TTL 1, or an IPv6 packet with the Hop-by-Hop
// Router Alert option and hop limit 1. The stack adds the link header, with
// the destination MAC mapped from Dst.
type Packet struct {
	Dst  netip.Addr
	Data []byte
}

// Received is an IGMP or MLD message handed to an engine by the receive path.
type Received struct {
	Src, Dst netip.Addr
	// HopLimit is the IPv4 TTL or IPv6 hop limit.
	HopLimit uint8
	// RouterAlert is set when the IPv4 Router Alert option (RFC 2113) or
	// the IPv6 Hop-by-Hop Router Alert option for MLD (RFC 2711) was present.
	RouterAlert bool
	// Payload is the IGMP message (checksum not yet verified) or the ICMPv6
	// message of type 130, 131, 132 or 143 (checksum already verified by the
	// stack, since it covers the IPv6 pseudo-header). The engine must not
	// keep it after the call returns.
	Payload []byte
}

// Engine is one interface's host-side group membership protocol (IGMP for
// IPv4, MLD for IPv6). It is a pure state machine: it never starts a
// goroutine, never sleeps, and reads time only from the now arguments. The
// stack drives it from one goroutine per interface; methods are not safe for
// concurrent use. Packets it wants sent are queued and collected with
// TakeOutgoing, which the stack transmits with no lock held.
type Engine interface {
	// StateChanged reports coalesced changes of the interface's merged
	// per-group state (RFC 9776 §5.1, RFC 9777 §6.1).
	StateChanged(now time.Time, deltas []membership.Delta)
	// Receive processes an IGMP/MLD message heard on the interface.
	Receive(now time.Time, msg Received)
	// Tick runs every timer due at or before now.
	Tick(now time.Time)
	// NextTimer returns the earliest pending deadline, if any.
	NextTimer() (time.Time, bool)
	// TakeOutgoing returns the queued packets and forgets them.
	TakeOutgoing() []Packet
	// SetSource sets the source address of reports: the interface's IPv4
	// address (0.0.0.0 when it has none) or IPv6 link-local address
	// (:: when it has none, RFC 3590).
	SetSource(addr netip.Addr)
	// Shutdown queues the final reports for every group still joined
	// (IGMPv3/MLDv2 TO_IN{} records, or v2 Leave / MLDv1 Done) and cancels
	// all timers. Further calls but TakeOutgoing and Status do nothing.
	Shutdown(now time.Time)
	// Status describes the engine for status displays.
	Status() Status
}

// Status is a snapshot of an engine for `mcast stat` and metrics.
type Status struct {
	Family string // "igmp" or "mld"
	// Version is the compatibility mode in force: 1, 2 or 3 for IGMP,
	// 1 or 2 for MLD.
	Version int
	// Forced is nonzero when the version is pinned by configuration.
	Forced int
	// Robustness, QueryInterval and QueryResponseInterval as learned or configured.
	Robustness            int
	QueryInterval         time.Duration
	QueryResponseInterval time.Duration
	// OlderQuerierUntil gives, per older version (1, 2), when its Older
	// Version Querier Present timer expires; absent when not running.
	OlderQuerierUntil map[int]time.Time
	// PendingStateChanges counts groups with state-change retransmissions pending.
	PendingStateChanges int
	// PendingQueryResponses counts pending (group or interface) query responses.
	PendingQueryResponses int
	Counters              Counters
}

// Counters are the engine's monotonic event counts.
type Counters struct {
	QueriesReceived      uint64
	ReportsReceived      uint64 // other hosts' reports (v1/v2 suppression input)
	ReportsSent          uint64 // packets sent
	LeavesSent           uint64
	DroppedNoRouterAlert uint64
	DroppedBadHopLimit   uint64
	DroppedBadSource     uint64
	DroppedBadChecksum   uint64
	DroppedMalformed     uint64
	DroppedOther         uint64
	// DroppedBadDestination counts queries sent to a multicast address
	// other than all-systems/all-nodes or the queried group, and reports
	// not sent to their group (RFC 9776 §4.1.12, §9.1; RFC 9777 §5.1.15).
	DroppedBadDestination uint64
	// QueriesIgnored counts valid queries that needed no response: nothing
	// to report, or a group (and sources) the interface does not listen to.
	QueriesIgnored uint64
	// EncodeErrors counts reports the engine could not encode (a bug or an
	// invalid source address); they are logged and not sent.
	EncodeErrors uint64
}

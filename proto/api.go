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
	// the IPv6 Hop-by-Hop Router Alert option (RFC 2711) was present.
	RouterAlert bool
	// RouterAlertValue is the value of the IPv6 Router Alert option
	// (wire.IPv6.RouterAlertValue): 0 means MLD (RFC 2711 §2.1). The MLD
	// engine handles a message whose Router Alert carries another value
	// as one without Router Alert (counted in
	// Counters.RouterAlertNotMLD). Ignored for IPv4.
	RouterAlertValue uint16
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
	// Reannounce reports every group again after the link was down (carrier
	// back, or an interface added while down came up): what was sent or
	// pending meanwhile is lost. Each joined group is reported as a new
	// join (IGMPv3/MLDv2: ALLOW(A) for INCLUDE(A), TO_EX(B) for EXCLUDE(B);
	// IGMPv1/v2, MLDv1: the unsolicited reports of a join) with
	// [Robustness Variable] transmissions, the first at once; leaves still
	// being repeated start over; pending query responses are cancelled and
	// the querier's learned Robustness, Query Interval and Query Response
	// Interval return to the configured values, as Linux's ip_mc_up does.
	Reannounce(now time.Time)
	// Shutdown reports the departure of every group still joined (the
	// interface is removed or the stack closed) with the records an
	// ordinary leave gets: IGMPv3/MLDv2 BLOCK(A) for INCLUDE(A) and TO_IN {}
	// for EXCLUDE(B) (RFC 9776 §5.1 Table 1, RFC 9777 §6.1); IGMPv2/MLDv1 a
	// Leave/Done by the last reporter; IGMPv1 nothing. The first
	// transmission is queued at once; like every state change it is
	// repeated [Robustness Variable] - 1 times at random delays in (0,
	// Config.UnsolicitedReportInterval]. Pending query responses are
	// cancelled. Afterwards NextTimer reports only those repetitions and
	// Tick sends them; Receive, StateChanged, SetSource, Reannounce and a
	// second Shutdown do nothing; Status().PendingStateChanges counts the
	// groups with repetitions left. When all are sent NextTimer returns
	// false, at most (Robustness - 1) × UnsolicitedReportInterval after
	// Shutdown (the Robustness Variable in force, 2 by default or as
	// learned from the querier's QRV, at most 7: 1 s by default, 6 s at
	// most with the default interval).
	Shutdown(now time.Time)
	// Status describes the engine for status displays. It costs O(groups)
	// and returns copies: nothing in it is shared with the engine.
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
	// Querier is the querier last heard on the link (zero Addr and
	// LastQuery: none heard yet).
	Querier Querier
	// Groups is the per-group protocol state, sorted by group address:
	// every joined group, and every group whose leave is still being
	// repeated (State INCLUDE {}).
	Groups []GroupStatus
}

// Querier describes the last valid query heard on the link.
type Querier struct {
	Addr      netip.Addr    // source of the last query heard (0.0.0.0 or :: for a bridge querier without an address)
	Version   int           // its protocol version: IGMP 1, 2 or 3; MLD 1 or 2
	LastQuery time.Time     // when it was heard
	MaxResp   time.Duration // its Max Resp Time
}

// GroupStatus is the protocol state of one group.
type GroupStatus struct {
	Group netip.Addr
	// State is the interface state the engine reports for the group (a
	// copy).
	State membership.State
	// ResponseAt is when the pending query response for the group fires
	// (the IGMPv3/MLDv2 Group Timer; the IGMPv1/v2/MLDv1 report timer);
	// zero: none. A paced General Query response is not per group (see
	// Status.PendingQueryResponses).
	ResponseAt time.Time
	// Retransmissions counts the state-change transmissions still to send
	// for the group: IGMPv3/MLDv2 report transmissions carrying one of its
	// records; IGMPv1/v2/MLDv1 repetitions of its join report or Leave/Done.
	Retransmissions int
	// LastReporter (IGMPv1/v2, MLDv1 modes): this host sent the last
	// report for the group (RFC 2236 §3, RFC 2710 §4).
	LastReporter bool
}

// Counters are the engine's monotonic event counts.
type Counters struct {
	QueriesReceived      uint64
	ReportsReceived      uint64 // other hosts' reports (v1/v2 suppression input)
	ReportsSent          uint64 // packets sent
	LeavesSent           uint64
	DroppedNoRouterAlert uint64
	// RouterAlertNotMLD counts MLD messages whose Router Alert value was
	// not 0 (MLD, RFC 2711); each was handled as one without Router Alert.
	RouterAlertNotMLD  uint64
	DroppedBadHopLimit uint64
	DroppedBadSource   uint64
	DroppedBadChecksum uint64
	DroppedMalformed   uint64
	DroppedOther       uint64
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

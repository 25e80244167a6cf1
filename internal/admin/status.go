// Package admin is the control socket of a running `mcast recv`: an HTTP
// server on a unix socket that serves the stack's state as JSON (GET /status)
// and as Prometheus text (GET /metrics), and the client `mcast stat` uses.
//
// The package has its own status schema, independent of the stack's Go types,
// so that the JSON a script reads stays stable while the stack evolves; the
// program serving the socket converts its stack state into a Status.
package admin

import "time"

// Status is everything GET /status returns.
type Status struct {
	// Program names the serving program, e.g. "mcast recv".
	Program string `json:"program"`
	PID     int    `json:"pid"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Build identifies the serving program's build.
	Build      BuildInfo   `json:"build"`
	Interfaces []Interface `json:"interfaces"`
	// App counts what the program itself did with the datagrams it read.
	App AppCounters `json:"app"`
}

// BuildInfo identifies a program's build.
type BuildInfo struct {
	// Version is the main module's version, "(devel)" for a build
	// outside module mode or without version information.
	Version string `json:"version"`
	// Revision is the VCS revision the build recorded, if any.
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"go_version"`
}

// AppCounters are the serving program's own counts.
type AppCounters struct {
	DatagramsReceived uint64 `json:"datagrams_received"`
	BytesReceived     uint64 `json:"bytes_received"`
	DatagramsSent     uint64 `json:"datagrams_sent,omitempty"`
}

// Interface is one interface of the stack.
type Interface struct {
	Name  string   `json:"name"`
	Index int      `json:"index"`
	MAC   string   `json:"mac,omitempty"`
	MTU   int      `json:"mtu,omitempty"`
	Addrs []string `json:"addrs"`
	// Link is the link's state as the endpoint last reported it: "up",
	// "down" or "gone", with the error that revealed it in parentheses.
	Link string `json:"link,omitempty"`
	// Families holds the IPv4 (IGMP) and IPv6 (MLD) sides, in that order,
	// each present when the stack runs that protocol on the interface.
	Families []Family `json:"families"`
	Driver   Driver   `json:"driver"`
	Counters Counters `json:"counters"`
}

// Family is one address family's multicast state on an interface.
type Family struct {
	Family   string   `json:"family"` // "ipv4" or "ipv6"
	Protocol Protocol `json:"protocol"`
	// Groups are the interface-level (merged) group records.
	Groups []Group `json:"groups"`
}

// Protocol is the state of the IGMP or MLD engine.
type Protocol struct {
	Name string `json:"name"` // "igmp" or "mld"
	// Version is the compatibility mode in force (IGMP 1-3, MLD 1-2).
	Version int `json:"version"`
	// Forced is the configured pinned version, 0 when automatic.
	Forced                   int     `json:"forced,omitempty"`
	Robustness               int     `json:"robustness"`
	QueryIntervalSec         float64 `json:"query_interval_sec"`
	QueryResponseIntervalSec float64 `json:"query_response_interval_sec"`
	// OlderQuerierUntil maps an older version ("1", "2") whose Older
	// Version Querier Present timer runs to its expiry.
	OlderQuerierUntil     map[string]time.Time `json:"older_querier_until,omitempty"`
	PendingStateChanges   int                  `json:"pending_state_changes"`
	PendingQueryResponses int                  `json:"pending_query_responses"`
	Counters              ProtocolCounters     `json:"counters"`
	// Querier is the querier last heard on the link; absent when none
	// was heard yet.
	Querier *Querier `json:"querier,omitempty"`
}

// Querier is the last valid query heard on the link.
type Querier struct {
	// Addr is the query's source address (0.0.0.0 or :: for a snooping
	// switch's querier without an address).
	Addr string `json:"addr"`
	// Version is the querier's protocol version: IGMP 1-3, MLD 1-2.
	Version int `json:"version"`
	// LastQuery is when the last query was heard.
	LastQuery time.Time `json:"last_query"`
	// MaxRespSec is that query's Max Resp Time in seconds.
	MaxRespSec float64 `json:"max_resp_sec"`
}

// ProtocolCounters mirror the engine's monotonic counts.
type ProtocolCounters struct {
	QueriesReceived      uint64 `json:"queries_received"`
	ReportsReceived      uint64 `json:"reports_received"`
	ReportsSent          uint64 `json:"reports_sent"`
	LeavesSent           uint64 `json:"leaves_sent"`
	DroppedNoRouterAlert uint64 `json:"dropped_no_router_alert"`
	DroppedBadHopLimit   uint64 `json:"dropped_bad_hop_limit"`
	DroppedBadSource     uint64 `json:"dropped_bad_source"`
	DroppedBadChecksum   uint64 `json:"dropped_bad_checksum"`
	DroppedMalformed     uint64 `json:"dropped_malformed"`
	DroppedOther         uint64 `json:"dropped_other"`
}

// Group is an interface group record: the merge of its sockets' filters.
type Group struct {
	Group string `json:"group"`
	// Mode is "include" or "exclude"; exclude with no sources is an
	// any-source membership.
	Mode    string   `json:"mode"`
	Sources []string `json:"sources"`
	// Refs counts the socket memberships holding the group.
	Refs int    `json:"refs"`
	MAC  string `json:"mac,omitempty"`
	// State is an optional lifecycle note from the stack (e.g. "leaving").
	State string `json:"state,omitempty"`
	// ResponseAt is when the pending query response for the group fires
	// (the IGMPv3/MLDv2 Group Timer, the IGMPv1/v2/MLDv1 report timer);
	// absent when none is pending.
	ResponseAt *time.Time `json:"response_at,omitempty"`
	// Retransmissions counts state-change transmissions still to send.
	Retransmissions int `json:"retransmissions,omitempty"`
	// LastReporter (IGMPv1/v2, MLDv1): this host sent the last report.
	LastReporter bool `json:"last_reporter,omitempty"`
}

// Driver is the NIC multicast filter as the stack last programmed it.
type Driver struct {
	// Exact lists the MAC addresses in the exact filter table.
	Exact []string `json:"exact"`
	// AllMulticast is set when the table overflowed and the interface
	// accepts every multicast frame.
	AllMulticast bool `json:"all_multicast"`
	// Calls counts SetMulticastFilter calls; Requests the filter changes
	// asked for (Requests - Calls were coalesced).
	Calls     uint64 `json:"calls"`
	Requests  uint64 `json:"requests,omitempty"`
	Errors    uint64 `json:"errors"`
	LastError string `json:"last_error,omitempty"`
	// Pending is set while the programmed filter differs from the one
	// the memberships need (an update is under way or being retried).
	Pending bool `json:"pending,omitempty"`
}

// Counters are the interface's receive-path counts.
type Counters struct {
	FramesReceived    uint64 `json:"frames_received"`
	DatagramsReceived uint64 `json:"datagrams_received"`
	DatagramsDropped  uint64 `json:"datagrams_dropped"`
	// Other holds any further counters the stack keeps, by name.
	Other map[string]uint64 `json:"other,omitempty"`
}

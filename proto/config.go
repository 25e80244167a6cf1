package proto

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Config configures one engine. Zero fields take the RFC defaults noted.
type Config struct {
	// Interface names the interface in logs.
	Interface string
	// MTU is the largest IP packet the link carries; reports are packed
	// into packets no larger than this. Default 1500.
	MTU int
	// Source is the initial report source address (see Engine.SetSource).
	Source netip.Addr
	// ForceVersion pins the protocol version (IGMP 1, 2 or 3; MLD 1 or 2),
	// like Linux's force_igmp_version / force_mld_version. 0: automatic.
	ForceVersion int
	// Robustness is the initial Robustness Variable. Default 2.
	Robustness int
	// QueryInterval default 125 s; QueryResponseInterval default 10 s.
	QueryInterval         time.Duration
	QueryResponseInterval time.Duration
	// UnsolicitedReportInterval bounds the random delay of state-change
	// retransmissions, and of the repetitions of an IGMPv2 Leave / MLDv1
	// Done. Default 1 s (RFC 9776 §8.11, RFC 9777 §9.11). The repetitions
	// of an IGMPv1/v2 / MLDv1 join report use V1UnsolicitedReportInterval,
	// default 10 s (RFC 2236 §8.10, RFC 2710 §7.10).
	UnsolicitedReportInterval   time.Duration
	V1UnsolicitedReportInterval time.Duration
	// ResponseMargin is the part of a query's Max Resp Time the engine
	// keeps for its host's own latency, from the query's arrival to the
	// report leaving the link: responses are scheduled (and General Query
	// responses paced) within [0, MRT − ResponseMargin), the margin capped
	// at half the MRT. Default 0: the whole MRT, as RFC 9776 §5.2, RFC
	// 9777 §6.2 and Linux. A host that handles queries late — thousands
	// of emulated hosts sharing two cores receive one query one after the
	// other — sets it so that its reports still reach the router in time.
	ResponseMargin time.Duration
	// AcceptWithoutRouterAlert accepts queries lacking the Router Alert
	// option (RFC 9776 §4.1.12 allows hosts to accept them for
	// interoperability with older routers). Default false: they are dropped
	// and counted.
	AcceptWithoutRouterAlert bool
	// Rand supplies the random report delays; nil uses the runtime's
	// generator (math/rand/v2's top-level functions, no per-engine state).
	// Tests pass a seeded source for reproducible timing.
	Rand *rand.Rand
	// Logger receives the engine's events, with the attributes proto
	// (igmp, mld) and interface, and group, source (an IP source address)
	// and err where they apply; nil discards.
	Logger *slog.Logger
}

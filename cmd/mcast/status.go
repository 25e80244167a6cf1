package main

import (
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

// statusOf converts the stack's view of ifcs into the admin socket's
// schema: the JSON of GET /status, the source of GET /metrics and of the
// demo's live table.
func statusOf(program string, ifcs ...*stack.Interface) admin.Status {
	st := admin.Status{
		Program:    program,
		PID:        os.Getpid(),
		Time:       time.Now(),
		Build:      buildInfo(),
		Interfaces: make([]admin.Interface, 0, len(ifcs)),
	}
	for _, ifc := range ifcs {
		st.Interfaces = append(st.Interfaces, interfaceStatus(ifc.Status()))
	}
	return st
}

// buildInfo is the binary's build as the admin socket and the metrics
// report it (mcast --version prints the same).
var buildInfo = sync.OnceValue(func() admin.BuildInfo {
	v, rev, mod := buildVersion()
	if mod {
		rev += "-modified"
	}
	return admin.BuildInfo{Version: v, Revision: rev, GoVersion: runtime.Version()}
})

// The stack counters admin.Counters has fields for; the rest go to Other.
const (
	counterFrames    = "frames_received"
	counterDelivered = "datagrams_received"
	counterDropped   = "datagrams_dropped"
)

func interfaceStatus(s stack.Status) admin.Interface {
	out := admin.Interface{
		Name:  s.Name,
		Index: s.Index,
		MAC:   s.MAC.String(),
		MTU:   s.MTU,
		Addrs: make([]string, 0, len(s.Addrs)),
		Link:  s.Link.String(),
	}
	for _, a := range s.Addrs {
		out.Addrs = append(out.Addrs, a.String())
	}
	// The stack runs both engines on every interface; both families are
	// always shown, IPv4 first (stack.Status lists IPv4 groups first).
	v4 := admin.Family{Family: "ipv4", Protocol: protocolStatus(s.IGMP, "igmp"), Groups: []admin.Group{}}
	v6 := admin.Family{Family: "ipv6", Protocol: protocolStatus(s.MLD, "mld"), Groups: []admin.Group{}}
	for _, g := range s.Groups {
		ag := groupStatus(g)
		if g.Group.Is4() {
			v4.Groups = append(v4.Groups, ag)
		} else {
			v6.Groups = append(v6.Groups, ag)
		}
	}
	v4.Groups = withProtocolState(v4.Groups, s.IGMP.Groups)
	v6.Groups = withProtocolState(v6.Groups, s.MLD.Groups)
	out.Families = []admin.Family{v4, v6}

	d := s.Driver
	out.Driver = admin.Driver{
		Exact:        make([]string, 0, len(d.Exact)),
		AllMulticast: d.AllMulticast,
		Calls:        d.Calls,
		Requests:     d.Requests,
		Errors:       d.Errors,
		LastError:    d.LastError,
		Pending:      d.Pending,
	}
	for _, m := range d.Exact {
		out.Driver.Exact = append(out.Driver.Exact, m.String())
	}

	out.Counters = admin.Counters{
		FramesReceived:    s.Counters[counterFrames],
		DatagramsReceived: s.Counters[counterDelivered],
		DatagramsDropped:  s.Counters[counterDropped],
		Other:             map[string]uint64{},
	}
	for k, v := range s.Counters {
		switch k {
		case counterFrames, counterDelivered, counterDropped:
		default:
			out.Counters.Other[k] = v
		}
	}
	return out
}

func groupStatus(g membership.GroupInfo) admin.Group {
	ag := admin.Group{
		Group:   g.Group.String(),
		Mode:    g.State.Mode.String(),
		Sources: make([]string, 0, len(g.State.Sources)),
		Refs:    g.Refs,
	}
	for _, src := range g.State.Sources {
		ag.Sources = append(ag.Sources, src.String())
	}
	if mac, ok := wire.MulticastMAC(g.Group); ok {
		ag.MAC = mac.String()
	}
	return ag
}

// withProtocolState adds the engine's per-group timers to the interface
// group records, and lists the groups the engine still reports although
// no socket holds them (a leave being repeated) as "leaving".
func withProtocolState(groups []admin.Group, ps []proto.GroupStatus) []admin.Group {
	at := make(map[string]int, len(groups))
	for i, g := range groups {
		at[g.Group] = i
	}
	for _, pg := range ps {
		i, ok := at[pg.Group.String()]
		if !ok {
			ag := groupStatus(membership.GroupInfo{Group: pg.Group, State: pg.State})
			ag.State = "leaving"
			groups = append(groups, ag)
			i = len(groups) - 1
		}
		g := &groups[i]
		if !pg.ResponseAt.IsZero() {
			t := pg.ResponseAt
			g.ResponseAt = &t
		}
		g.Retransmissions = pg.Retransmissions
		g.LastReporter = pg.LastReporter
	}
	if len(groups) > len(at) {
		slices.SortFunc(groups, func(a, b admin.Group) int {
			return netip.MustParseAddr(a.Group).Compare(netip.MustParseAddr(b.Group))
		})
	}
	return groups
}

func protocolStatus(p proto.Status, name string) admin.Protocol {
	if p.Family != "" {
		name = p.Family
	}
	out := admin.Protocol{
		Name:                     name,
		Version:                  p.Version,
		Forced:                   p.Forced,
		Robustness:               p.Robustness,
		QueryIntervalSec:         p.QueryInterval.Seconds(),
		QueryResponseIntervalSec: p.QueryResponseInterval.Seconds(),
		PendingStateChanges:      p.PendingStateChanges,
		PendingQueryResponses:    p.PendingQueryResponses,
		Counters: admin.ProtocolCounters{
			QueriesReceived:      p.Counters.QueriesReceived,
			ReportsReceived:      p.Counters.ReportsReceived,
			ReportsSent:          p.Counters.ReportsSent,
			LeavesSent:           p.Counters.LeavesSent,
			DroppedNoRouterAlert: p.Counters.DroppedNoRouterAlert,
			DroppedBadHopLimit:   p.Counters.DroppedBadHopLimit,
			DroppedBadSource:     p.Counters.DroppedBadSource,
			DroppedBadChecksum:   p.Counters.DroppedBadChecksum,
			DroppedMalformed:     p.Counters.DroppedMalformed,
			DroppedOther:         p.Counters.DroppedOther,
		},
	}
	if q := p.Querier; !q.LastQuery.IsZero() {
		out.Querier = &admin.Querier{Addr: q.Addr.String(), Version: q.Version, LastQuery: q.LastQuery, MaxRespSec: q.MaxResp.Seconds()}
	}
	if len(p.OlderQuerierUntil) > 0 {
		out.OlderQuerierUntil = make(map[string]time.Time, len(p.OlderQuerierUntil))
		for v, t := range p.OlderQuerierUntil {
			out.OlderQuerierUntil[strconv.Itoa(v)] = t
		}
	}
	return out
}

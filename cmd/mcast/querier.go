package main

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// querier is the demo's "router": it sends IGMPv3 general queries and
// keeps, from the reports it hears, the per-host group state a multicast
// router would learn (RFC 9776 §6.4 applied per reporting host).
type querier struct {
	mac  wire.MAC
	addr netip.Addr

	// mu guards the counters and learned; held only to update or copy them.
	mu      sync.Mutex
	queries uint64
	reports uint64 // report packets heard
	records uint64
	learned map[netip.Addr]map[netip.Addr]membership.State // group -> host -> state
}

func newQuerier(mac wire.MAC, addr netip.Addr) *querier {
	return &querier{mac: mac, addr: addr, learned: map[netip.Addr]map[netip.Addr]membership.State{}}
}

// generalQuery returns an IGMPv3 General Query frame (to 224.0.0.1, TTL 1,
// Router Alert) asking for responses within maxResp tenths of a second and
// announcing a query interval of qqic seconds.
func (q *querier) generalQuery(maxRespDeci, qqicSec uint8) ([]byte, error) {
	igmp, err := wire.IGMPv3Query{
		MaxRespCode: wire.EncodeCode8(uint32(maxRespDeci)),
		Group:       netip.IPv4Unspecified(),
		QRV:         2,
		QQIC:        wire.EncodeCode8(uint32(qqicSec)),
	}.Append(nil)
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	dstMAC, _ := wire.MulticastMAC(wire.IPv4AllSystems)
	frame := wire.AppendEthernet(nil, dstMAC, q.mac, wire.EtherTypeIPv4)
	frame, err = wire.AppendIPv4(frame, wire.IPv4{
		TOS: 0xc0, TTL: 1, Protocol: wire.ProtoIGMP,
		Src: q.addr, Dst: wire.IPv4AllSystems, RouterAlert: true,
	}, igmp)
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	q.mu.Lock()
	q.queries++
	q.mu.Unlock()
	return frame, nil
}

// observe is the LAN capture hook: it learns from every IGMPv3 report.
// Frames of other kinds are ignored.
func (q *querier) observe(frame []byte) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil || eth.EtherType != wire.EtherTypeIPv4 {
		return
	}
	ip, err := wire.ParseIPv4(eth.Payload)
	if err != nil || ip.Protocol != wire.ProtoIGMP {
		return
	}
	msg, err := wire.ParseIGMP(ip.Payload)
	if err != nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch m := msg.(type) {
	case wire.IGMPv3Report:
		q.reports++
		for _, r := range m.Records {
			q.records++
			q.apply(ip.Src, r)
		}
	case wire.IGMPv12:
		// v1/v2 reports mean EXCLUDE {} (RFC 9776 §7.3.2); a leave, INCLUDE {}.
		switch m.Type {
		case wire.IGMPTypeV1Report, wire.IGMPTypeV2Report:
			q.reports++
			q.records++
			q.apply(ip.Src, wire.GroupRecord{Type: wire.ModeIsExclude, Group: m.Group})
		case wire.IGMPTypeV2Leave:
			q.reports++
			q.records++
			q.apply(ip.Src, wire.GroupRecord{Type: wire.ChangeToInclude, Group: m.Group})
		}
	}
}

func (q *querier) apply(host netip.Addr, r wire.GroupRecord) {
	hosts := q.learned[r.Group]
	if hosts == nil {
		hosts = map[netip.Addr]membership.State{}
		q.learned[r.Group] = hosts
	}
	cur := hosts[host] // zero: INCLUDE {}
	srcs := slices.Clone(r.Sources)
	switch r.Type {
	case wire.ModeIsInclude, wire.ChangeToInclude:
		cur = membership.State{Mode: membership.Include, Sources: srcs}
	case wire.ModeIsExclude, wire.ChangeToExclude:
		cur = membership.State{Mode: membership.Exclude, Sources: srcs}
	case wire.AllowNewSources:
		if cur.Mode == membership.Include {
			cur.Sources = union(cur.Sources, srcs)
		} else {
			cur.Sources = minus(cur.Sources, srcs)
		}
	case wire.BlockOldSources:
		if cur.Mode == membership.Include {
			cur.Sources = minus(cur.Sources, srcs)
		} else {
			cur.Sources = union(cur.Sources, srcs)
		}
	default:
		return
	}
	if !cur.IsMember() {
		delete(hosts, host)
		if len(hosts) == 0 {
			delete(q.learned, r.Group)
		}
		return
	}
	sortAddrs(cur.Sources)
	hosts[host] = cur
}

// querierView is a snapshot of what the querier learned.
type querierView struct {
	Queries, Reports, Records uint64
	Groups                    []learnedGroup
}

type learnedGroup struct {
	Group netip.Addr
	Host  netip.Addr
	State membership.State
}

func (q *querier) view() querierView {
	q.mu.Lock()
	defer q.mu.Unlock()
	v := querierView{Queries: q.queries, Reports: q.reports, Records: q.records}
	for g, hosts := range q.learned {
		for h, s := range hosts {
			v.Groups = append(v.Groups, learnedGroup{g, h, s})
		}
	}
	sort.Slice(v.Groups, func(i, j int) bool {
		a, b := v.Groups[i], v.Groups[j]
		if a.Group != b.Group {
			return a.Group.Less(b.Group)
		}
		return a.Host.Less(b.Host)
	})
	return v
}

func union(a, b []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func minus(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func sortAddrs(a []netip.Addr) { slices.SortFunc(a, func(x, y netip.Addr) int { return x.Compare(y) }) }

func fmtState(s membership.State) string {
	return fmt.Sprintf("%s {%s}", s.Mode, joinStrings(s.Sources))
}

// lookup returns the state learned for (group, host).
func (v querierView) lookup(group, host netip.Addr) (membership.State, bool) {
	for _, g := range v.Groups {
		if g.Group == group && g.Host == host {
			return g.State, true
		}
	}
	return membership.State{}, false
}

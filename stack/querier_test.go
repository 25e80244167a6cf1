package stack_test

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/wire"
)

// testQuerier is a small multicast router for the LAN tests: it watches
// every frame on a memlan.LAN, decodes the hosts' IGMP/MLD reports, keeps
// what each host told it, and injects queries built with package wire.
//
// Its group state is a simplified form of RFC 9776 §6.4 / RFC 9777 §7.4:
// instead of one aggregate state per group it tracks every reporter
// separately ("explicit tracking"), so each record applies to that host's
// own filter state as plain set operations:
//
//	IS_IN(B), ALLOW(B): INCLUDE(A) → INCLUDE(A+B); EXCLUDE(X) → EXCLUDE(X-B)
//	BLOCK(B):           INCLUDE(A) → INCLUDE(A-B); EXCLUDE(X) → EXCLUDE(X+B)
//	TO_IN(B):           → INCLUDE(B)
//	IS_EX(B), TO_EX(B): → EXCLUDE(B)
//	IGMPv1/v2, MLDv1 report: → EXCLUDE {}
//	Leave / Done:       → forgotten
//
// A reporter whose state becomes INCLUDE {} is no longer listed. IS_IN
// merges rather than replaces because a response to a Group-and-Source-
// Specific Query lists only the queried sources the host wants.
type testQuerier struct {
	lan *memlan.LAN
	v6  bool
	src netip.Addr // query source: 192.0.2.1 or fe80::1
	mac wire.MAC

	mu sync.Mutex
	// names maps a report source address to the host's name.
	names   map[netip.Addr]string
	reports []heardReport
	// state[group][host] is what host last told about group.
	state map[netip.Addr]map[string]membership.State
	errs  []string
}

// heardReport is one report seen on the LAN.
type heardReport struct {
	from string // sending endpoint
	rep  prototest.Report
}

var querierMAC = wire.MAC{0x02, 0, 0, 0, 0, 0xfe}

func newTestQuerier(lan *memlan.LAN, v6 bool) *testQuerier {
	q := &testQuerier{
		lan:   lan,
		v6:    v6,
		src:   netip.MustParseAddr("192.0.2.1"),
		mac:   querierMAC,
		names: map[netip.Addr]string{},
		state: map[netip.Addr]map[string]membership.State{},
	}
	if v6 {
		q.src = netip.MustParseAddr("fe80::1")
	}
	lan.Capture(q.capture)
	return q
}

// expectHost records that reports from src come from endpoint name: a
// report from another endpoint with that source, or with an unknown
// source, is an error.
func (q *testQuerier) expectHost(name string, src netip.Addr) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.names[src] = name
}

func (q *testQuerier) errorf(format string, args ...any) {
	q.errs = append(q.errs, fmt.Sprintf(format, args...))
}

// capture is the LAN observer. It runs on the writer's goroutine, called
// one at a time.
func (q *testQuerier) capture(from string, frame []byte) {
	if from == memlan.InjectName {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		q.errorf("%s: bad frame: %v", from, err)
		return
	}
	var dst netip.Addr
	switch {
	case eth.EtherType == wire.EtherTypeIPv4 && len(eth.Payload) >= wire.IPv4HeaderLen:
		dst = wire.IPv4View(eth.Payload).Dst()
	case eth.EtherType == wire.EtherTypeIPv6 && len(eth.Payload) >= wire.IPv6HeaderLen:
		dst = wire.IPv6View(eth.Payload).Dst()
	default:
		q.errorf("%s: frame of EtherType %#x, %d bytes", from, eth.EtherType, len(eth.Payload))
		return
	}
	rep, err := prototest.Decode(proto.Packet{Dst: dst, Data: eth.Payload})
	if errors.Is(err, prototest.ErrNotReport) {
		return // a datagram or another host's query-free traffic
	}
	if err != nil {
		q.errorf("%s: undecodable report: %v", from, err)
		return
	}
	if want, ok := wire.MulticastMAC(rep.Dst); !ok || eth.Dst != want {
		q.errorf("%s: %v sent to MAC %v", from, rep, eth.Dst)
	}
	if rep.TTL != 1 || !rep.RouterAlert {
		q.errorf("%s: %v with TTL %d, router alert %v", from, rep, rep.TTL, rep.RouterAlert)
	}
	if name, ok := q.names[rep.Src]; !ok || name != from {
		q.errorf("%s: %v from unexpected source %v", from, rep, rep.Src)
	}
	q.reports = append(q.reports, heardReport{from: from, rep: rep})
	if (rep.Family == "mld") != q.v6 {
		return // the other family's querier would handle it
	}
	switch {
	case rep.Records != nil:
		for _, r := range rep.Records {
			q.applyRecord(from, r)
		}
	case rep.Leave:
		q.set(rep.Group, from, membership.State{})
	default:
		q.set(rep.Group, from, membership.State{Mode: membership.Exclude})
	}
}

func (q *testQuerier) applyRecord(host string, r prototest.Record) {
	cur := q.state[r.Group][host] // INCLUDE {} when unknown
	var next membership.State
	switch r.Type {
	case wire.ModeIsInclude, wire.AllowNewSources:
		if cur.Mode == membership.Exclude {
			next = membership.NewState(membership.Exclude, minus(cur.Sources, r.Sources))
		} else {
			next = membership.NewState(membership.Include, append(slices.Clone(cur.Sources), r.Sources...))
		}
	case wire.BlockOldSources:
		if cur.Mode == membership.Exclude {
			next = membership.NewState(membership.Exclude, append(slices.Clone(cur.Sources), r.Sources...))
		} else {
			next = membership.NewState(membership.Include, minus(cur.Sources, r.Sources))
		}
	case wire.ChangeToInclude:
		next = membership.NewState(membership.Include, r.Sources)
	case wire.ModeIsExclude, wire.ChangeToExclude:
		next = membership.NewState(membership.Exclude, r.Sources)
	default:
		q.errorf("%s: record of unknown type %v", host, r)
		return
	}
	q.set(r.Group, host, next)
}

func (q *testQuerier) set(group netip.Addr, host string, st membership.State) {
	if !st.IsMember() {
		delete(q.state[group], host)
		if len(q.state[group]) == 0 {
			delete(q.state, group)
		}
		return
	}
	if q.state[group] == nil {
		q.state[group] = map[string]membership.State{}
	}
	q.state[group][host] = st
}

// minus returns a without the elements of b.
func minus(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// take returns the reports heard since the last take, as strings per
// sending host ("igmpv3 224.0.0.22 [TO_EX(239.1.2.3){192.0.2.102}]"), in
// the order each host sent them, and fails the test on any malformed
// report seen meanwhile.
func (q *testQuerier) take(t *testing.T) map[string][]string {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.errs {
		t.Error("querier:", e)
	}
	q.errs = nil
	out := map[string][]string{}
	for _, h := range q.reports {
		out[h.from] = append(out[h.from], h.rep.String())
	}
	q.reports = nil
	return out
}

// expect checks that exactly the reports in want were heard since the last
// take (a host absent from want sent nothing).
func (q *testQuerier) expect(t *testing.T, when string, want map[string][]string) {
	t.Helper()
	got := q.take(t)
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("%s: reports heard:\n%s\nwant:\n%s", when, fmtReports(got), fmtReports(want))
	}
}

func fmtReports(m map[string][]string) string {
	var s string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		for _, r := range m[k] {
			s += fmt.Sprintf("\t%s: %s\n", k, r)
		}
	}
	if s == "" {
		return "\t(none)\n"
	}
	return s
}

// expectState checks the querier's view of group: each listed host's
// state ("include{192.0.2.101}", "exclude{}"), and no other host.
func (q *testQuerier) expectState(t *testing.T, when string, group netip.Addr, want map[string]string) {
	t.Helper()
	q.mu.Lock()
	got := map[string]string{}
	for h, st := range q.state[group] {
		got[h] = st.String()
	}
	q.mu.Unlock()
	if !maps.Equal(got, want) {
		t.Errorf("%s: querier state of %v = %v, want %v", when, group, got, want)
	}
}

// Queries. maxResp is rounded down to what the message can carry; QRV is
// 2 and QQIC 125 s in IGMPv3/MLDv2 queries. A zero or unspecified group
// makes a General Query, sent to all-systems / all-nodes; specific queries
// go to their group.

// queryV3 injects an IGMPv3 or MLDv2 query.
func (q *testQuerier) queryV3(t *testing.T, group netip.Addr, maxResp time.Duration, sources ...netip.Addr) {
	t.Helper()
	group, dst := q.queryDst(group)
	var msg []byte
	var err error
	if q.v6 {
		msg, err = wire.MLDv2Query{
			MaxRespCode: wire.EncodeCode16(uint32(maxResp / time.Millisecond)),
			Group:       group, QRV: 2, QQIC: 125, Sources: sources,
		}.Append(nil, q.src, dst)
	} else {
		msg, err = wire.IGMPv3Query{
			MaxRespCode: wire.EncodeCode8(uint32(maxResp / (100 * time.Millisecond))),
			Group:       group, QRV: 2, QQIC: 125, Sources: sources,
		}.Append(nil)
	}
	if err != nil {
		t.Fatalf("encode query: %v", err)
	}
	q.inject(t, dst, msg)
}

// queryOld injects an IGMPv2 or MLDv1 query.
func (q *testQuerier) queryOld(t *testing.T, group netip.Addr, maxResp time.Duration) {
	t.Helper()
	group, dst := q.queryDst(group)
	var msg []byte
	var err error
	if q.v6 {
		msg, err = wire.MLDv1{Type: wire.MLDTypeQuery, MaxRespDelay: uint16(maxResp / time.Millisecond), Group: group}.
			Append(nil, q.src, dst)
	} else {
		msg, err = wire.IGMPv12{Type: wire.IGMPTypeQuery, MaxRespTime: uint8(maxResp / (100 * time.Millisecond)), Group: group}.
			Append(nil)
	}
	if err != nil {
		t.Fatalf("encode query: %v", err)
	}
	q.inject(t, dst, msg)
}

func (q *testQuerier) queryDst(group netip.Addr) (netip.Addr, netip.Addr) {
	switch {
	case group.IsValid() && !group.IsUnspecified():
		return group, group
	case q.v6:
		return netip.IPv6Unspecified(), wire.IPv6AllNodes
	default:
		return netip.IPv4Unspecified(), wire.IPv4AllSystems
	}
}

// inject puts msg on the LAN in an IP packet from the querier to dst with
// TTL / hop limit 1 and the Router Alert option (RFC 9776 §4, RFC 9777 §5).
func (q *testQuerier) inject(t *testing.T, dst netip.Addr, msg []byte) {
	t.Helper()
	mac, ok := wire.MulticastMAC(dst)
	if !ok {
		t.Fatalf("query to %v", dst)
	}
	var frame []byte
	var err error
	if q.v6 {
		frame = wire.AppendEthernet(nil, mac, q.mac, wire.EtherTypeIPv6)
		frame, err = wire.AppendIPv6(frame, wire.IPv6{
			HopLimit: 1, NextHeader: wire.ProtoICMPv6, Src: q.src, Dst: dst, RouterAlert: true, RouterAlertValue: 0,
		}, msg)
	} else {
		frame = wire.AppendEthernet(nil, mac, q.mac, wire.EtherTypeIPv4)
		frame, err = wire.AppendIPv4(frame, wire.IPv4{
			TOS: 0xc0, TTL: 1, Protocol: wire.ProtoIGMP, Src: q.src, Dst: dst, RouterAlert: true,
		}, msg)
	}
	if err != nil {
		t.Fatalf("encode query packet: %v", err)
	}
	if err := q.lan.Inject(frame); err != nil {
		t.Fatalf("inject query: %v", err)
	}
}

// TestQuerierState checks the test querier's own bookkeeping, so that the
// LAN tests rest on a router model that is itself tested.
func TestQuerierState(t *testing.T) {
	g := netip.MustParseAddr("239.1.2.3")
	s1, s2, s3 := netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("192.0.2.102"), netip.MustParseAddr("192.0.2.103")
	q := &testQuerier{state: map[netip.Addr]map[string]membership.State{}}
	rec := func(typ wire.RecordType, srcs ...netip.Addr) prototest.Record {
		return prototest.Record{Type: typ, Group: g, Sources: srcs}
	}
	steps := []struct {
		host string
		r    prototest.Record
		want map[string]string
	}{
		{"a", rec(wire.AllowNewSources, s1), map[string]string{"a": "include{192.0.2.101}"}},
		{"a", rec(wire.ModeIsInclude, s3), map[string]string{"a": "include{192.0.2.101,192.0.2.103}"}},
		{"a", rec(wire.BlockOldSources, s3, s2), map[string]string{"a": "include{192.0.2.101}"}},
		{"b", rec(wire.ChangeToExclude, s2), map[string]string{"a": "include{192.0.2.101}", "b": "exclude{192.0.2.102}"}},
		{"b", rec(wire.ModeIsInclude, s1, s2), map[string]string{"a": "include{192.0.2.101}", "b": "exclude{}"}},
		{"b", rec(wire.BlockOldSources, s3), map[string]string{"a": "include{192.0.2.101}", "b": "exclude{192.0.2.103}"}},
		{"b", rec(wire.AllowNewSources, s3), map[string]string{"a": "include{192.0.2.101}", "b": "exclude{}"}},
		{"b", rec(wire.ModeIsExclude, s1, s2), map[string]string{"a": "include{192.0.2.101}", "b": "exclude{192.0.2.101,192.0.2.102}"}},
		{"a", rec(wire.BlockOldSources, s1), map[string]string{"b": "exclude{192.0.2.101,192.0.2.102}"}},
		{"b", rec(wire.ChangeToInclude, s3), map[string]string{"b": "include{192.0.2.103}"}},
		{"b", rec(wire.ChangeToInclude), map[string]string{}},
	}
	for i, s := range steps {
		q.applyRecord(s.host, s.r)
		q.expectState(t, fmt.Sprintf("step %d (%s %v)", i, s.host, s.r), g, s.want)
	}
	if len(q.state) != 0 || len(q.errs) != 0 {
		t.Fatalf("left over: state %v, errors %v", q.state, q.errs)
	}
}

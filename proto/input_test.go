package proto_test

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/wire"
)

// counterDiff returns b - a field by field.
func counterDiff(a, b proto.Counters) proto.Counters {
	var d proto.Counters
	va, vb, vd := reflect.ValueOf(a), reflect.ValueOf(b), reflect.ValueOf(&d).Elem()
	for i := range vd.NumField() {
		vd.Field(i).SetUint(vb.Field(i).Uint() - va.Field(i).Uint())
	}
	return d
}

func with(r proto.Received, f func(*proto.Received)) proto.Received {
	r.Payload = append([]byte(nil), r.Payload...)
	f(&r)
	return r
}

// igmpRaw builds an IGMP payload of the given bytes with a correct checksum.
func igmpRaw(b ...byte) []byte {
	binary.BigEndian.PutUint16(b[2:], 0)
	binary.BigEndian.PutUint16(b[2:], wire.Checksum(b, 0))
	return b
}

// TestInputChecks feeds each kind of invalid message to an engine joined
// to one group and checks it is dropped (no report, nothing pending) and
// counted exactly once, and that the valid variants are answered.
func TestInputChecks(t *testing.T) {
	gq4 := prototest.IGMPv3Query(any4, time.Second)
	sq4 := prototest.IGMPv3Query(ip(g1), time.Second)
	gq6 := prototest.MLDv2Query(any6, time.Second)
	sq6 := prototest.MLDv2Query(ip(m1), time.Second)
	cases := []struct {
		name    string
		v6      bool
		opts    []opt
		msg     proto.Received
		want    proto.Counters
		answers bool
	}{
		{"igmp valid", false, nil, gq4, proto.Counters{QueriesReceived: 1}, true},
		{"igmp ttl 2", false, nil, with(gq4, func(r *proto.Received) { r.HopLimit = 2 }), proto.Counters{DroppedBadHopLimit: 1}, false},
		{"igmp ttl 0", false, nil, with(gq4, func(r *proto.Received) { r.HopLimit = 0 }), proto.Counters{DroppedBadHopLimit: 1}, false},
		{"igmpv3 no router alert", false, nil, with(gq4, func(r *proto.Received) { r.RouterAlert = false }), proto.Counters{DroppedNoRouterAlert: 1}, false},
		{"igmpv2 no router alert", false, nil, with(prototest.IGMPv2Query(any4, time.Second), func(r *proto.Received) { r.RouterAlert = false }), proto.Counters{DroppedNoRouterAlert: 1}, false},
		{"igmpv1 without router alert accepted", false, []opt{withForce(3)}, prototest.IGMPv1Query(), proto.Counters{QueriesReceived: 1}, true},
		{"igmp AcceptWithoutRouterAlert", false, []opt{withAcceptNoRA()}, with(gq4, func(r *proto.Received) { r.RouterAlert = false }), proto.Counters{QueriesReceived: 1}, true},
		{"igmp bad checksum", false, nil, with(gq4, func(r *proto.Received) { r.Payload[1] ^= 1 }), proto.Counters{DroppedBadChecksum: 1}, false},
		{"igmp truncated", false, nil, with(gq4, func(r *proto.Received) { r.Payload = r.Payload[:6] }), proto.Counters{DroppedMalformed: 1}, false},
		{"igmp 10-byte query", false, nil, with(gq4, func(r *proto.Received) { r.Payload = igmpRaw(0x11, 10, 0, 0, 0, 0, 0, 0, 0, 0) }), proto.Counters{DroppedMalformed: 1}, false},
		{"igmp general query with sources", false, nil, with(gq4, func(r *proto.Received) {
			r.Payload = igmpRaw(0x11, 10, 0, 0, 0, 0, 0, 0, 2, 125, 0, 1, 192, 0, 2, 9)
		}), proto.Counters{DroppedMalformed: 1}, false},
		{"igmp source count beyond message", false, nil, with(gq4, func(r *proto.Received) {
			r.Payload = igmpRaw(0x11, 10, 0, 0, 239, 1, 2, 3, 2, 125, 0, 9, 192, 0, 2, 9)
		}), proto.Counters{DroppedMalformed: 1}, false},
		{"igmp unknown type", false, nil, with(gq4, func(r *proto.Received) { r.Payload = igmpRaw(0x30, 0, 0, 0, 0, 0, 0, 0) }), proto.Counters{DroppedOther: 1}, false},
		{"igmp multicast source", false, nil, with(gq4, func(r *proto.Received) { r.Src = ip("224.0.0.9") }), proto.Counters{DroppedBadSource: 1}, false},
		{"igmp ipv6 source", false, nil, with(gq4, func(r *proto.Received) { r.Src = ip("fe80::1") }), proto.Counters{DroppedBadSource: 1}, false},
		{"igmp general query to a group not joined", false, nil, with(gq4, func(r *proto.Received) { r.Dst = ip(g2) }), proto.Counters{DroppedBadDestination: 1}, false},
		{"igmp general query to a joined group", false, nil, with(gq4, func(r *proto.Received) { r.Dst = ip(g1) }), proto.Counters{QueriesReceived: 1}, true},
		{"igmp group query to another joined group", false, nil, with(prototest.IGMPv3Query(ip(g2), time.Second), func(r *proto.Received) { r.Dst = ip(g1) }), proto.Counters{QueriesReceived: 1, QueriesIgnored: 1}, false},
		{"igmp general query to a joined local group", false, nil, with(gq4, func(r *proto.Received) { r.Dst = ip("224.0.0.251") }), proto.Counters{QueriesReceived: 1}, true},
		{"igmp general query to a local group not joined", false, nil, with(gq4, func(r *proto.Received) { r.Dst = ip("224.0.0.251") }), proto.Counters{DroppedBadDestination: 1}, false},
		{"igmp general query to 0.0.0.0", false, nil, with(gq4, func(r *proto.Received) { r.Dst = any4 }), proto.Counters{DroppedBadDestination: 1}, false},
		{"igmp group query to another group", false, nil, with(sq4, func(r *proto.Received) { r.Dst = ip(g2) }), proto.Counters{DroppedBadDestination: 1}, false},
		{"igmp group query to all-systems", false, nil, with(sq4, func(r *proto.Received) { r.Dst = wire.IPv4AllSystems }), proto.Counters{QueriesReceived: 1}, true},
		{"igmp query to our unicast address", false, nil, with(gq4, func(r *proto.Received) { r.Dst = src4 }), proto.Counters{QueriesReceived: 1}, true},
		{"igmp query for a group not joined", false, nil, prototest.IGMPv3Query(ip(g2), time.Second), proto.Counters{QueriesReceived: 1, QueriesIgnored: 1}, false},
		{"igmp report to a wrong destination", false, nil, with(prototest.IGMPReport(2, ip(g1)), func(r *proto.Received) { r.Dst = ip(g2) }), proto.Counters{DroppedBadDestination: 1}, false},
		{"igmp leave ignored", false, nil, with(gq4, func(r *proto.Received) { r.Payload = igmpRaw(0x17, 0, 0, 0, 239, 1, 2, 3) }), proto.Counters{}, false},
		{"igmpv3 report counted", false, nil, with(gq4, func(r *proto.Received) { r.Payload = igmpRaw(0x22, 0, 0, 0, 0, 0, 0, 0) }), proto.Counters{ReportsReceived: 1}, false},

		{"mld valid", true, nil, gq6, proto.Counters{QueriesReceived: 1}, true},
		{"mld hop limit 255", true, nil, with(gq6, func(r *proto.Received) { r.HopLimit = 255 }), proto.Counters{DroppedBadHopLimit: 1}, false},
		{"mld global source", true, nil, with(gq6, func(r *proto.Received) { r.Src = ip("2001:db8::1") }), proto.Counters{DroppedBadSource: 1}, false},
		{"mld unspecified source", true, nil, with(gq6, func(r *proto.Received) { r.Src = any6 }), proto.Counters{DroppedBadSource: 1}, false},
		{"mld ipv4 source", true, nil, with(gq6, func(r *proto.Received) { r.Src = ip("192.0.2.1") }), proto.Counters{DroppedBadSource: 1}, false},
		{"mld link-local source with zone", true, nil, with(gq6, func(r *proto.Received) { r.Src = ip("fe80::1%eth0") }), proto.Counters{QueriesReceived: 1}, true},
		{"mldv2 no router alert", true, nil, with(gq6, func(r *proto.Received) { r.RouterAlert = false }), proto.Counters{DroppedNoRouterAlert: 1}, false},
		{"mldv1 no router alert", true, nil, with(prototest.MLDv1Query(any6, time.Second), func(r *proto.Received) { r.RouterAlert = false }), proto.Counters{DroppedNoRouterAlert: 1}, false},
		{"mld AcceptWithoutRouterAlert", true, []opt{withAcceptNoRA()}, with(gq6, func(r *proto.Received) { r.RouterAlert = false }), proto.Counters{QueriesReceived: 1}, true},
		{"mld 26-byte query", true, nil, with(gq6, func(r *proto.Received) { r.Payload = r.Payload[:26] }), proto.Counters{DroppedMalformed: 1}, false},
		{"mld truncated", true, nil, with(gq6, func(r *proto.Received) { r.Payload = r.Payload[:3] }), proto.Counters{DroppedMalformed: 1}, false},
		{"mld unknown type", true, nil, with(gq6, func(r *proto.Received) { r.Payload[0] = 133 }), proto.Counters{DroppedOther: 1}, false},
		{"mld general query to a group not joined", true, nil, with(gq6, func(r *proto.Received) { r.Dst = ip(m2) }), proto.Counters{DroppedBadDestination: 1}, false},
		{"mld general query to a joined group", true, nil, with(gq6, func(r *proto.Received) { r.Dst = ip(m1) }), proto.Counters{QueriesReceived: 1}, true},
		{"mld general query to a joined link-scope group", true, nil, with(gq6, func(r *proto.Received) { r.Dst = ip("ff02::fb") }), proto.Counters{QueriesReceived: 1}, true},
		{"mld general query to a unicast address", true, nil, with(gq6, func(r *proto.Received) { r.Dst = src6 }), proto.Counters{QueriesReceived: 1}, true},
		{"mld router alert value 1", true, nil, with(gq6, func(r *proto.Received) { r.RouterAlertValue = 1 }), proto.Counters{DroppedNoRouterAlert: 1, RouterAlertNotMLD: 1}, false},
		{"mld router alert value 1 accepted without router alert", true, []opt{withAcceptNoRA()}, with(gq6, func(r *proto.Received) { r.RouterAlertValue = 1 }), proto.Counters{QueriesReceived: 1, RouterAlertNotMLD: 1}, true},
		{"mld router alert value 0", true, nil, with(gq6, func(r *proto.Received) { r.RouterAlertValue = 0 }), proto.Counters{QueriesReceived: 1}, true},
		{"igmp router alert value ignored", false, nil, with(gq4, func(r *proto.Received) { r.RouterAlertValue = 1 }), proto.Counters{QueriesReceived: 1}, true},
		{"mld group query to another group", true, nil, with(sq6, func(r *proto.Received) { r.Dst = ip(m2) }), proto.Counters{DroppedBadDestination: 1}, false},
		{"mld query for a group not joined", true, nil, prototest.MLDv2Query(ip(m2), time.Second), proto.Counters{QueriesReceived: 1, QueriesIgnored: 1}, false},
	}
	localJoins := map[string]string{
		"igmp general query to a joined local group":     "224.0.0.251",
		"mld general query to a joined link-scope group": "ff02::fb",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newH(t, tc.v6, tc.opts...)
			g := g1
			if tc.v6 {
				g = m1
			}
			h.set(g, st(exc))
			if l, ok := localJoins[tc.name]; ok {
				h.set(l, st(exc)) // another group the interface listens to (224.0.0.251 is never reported)
			}
			h.drain()
			before := h.e.Status().Counters
			h.recv(tc.msg)
			got := counterDiff(before, h.e.Status().Counters)
			evs := h.drain()
			got.ReportsSent = 0
			if got != tc.want {
				t.Errorf("counters changed by %+v, want %+v", got, tc.want)
			}
			if answered := len(evs) > 0; answered != tc.answers {
				t.Errorf("answered %v (%v), want %v", answered, strs(evs), tc.answers)
			}
			if s := h.e.Status(); s.PendingQueryResponses != 0 || s.PendingStateChanges != 0 {
				t.Errorf("pending after drain: %+v", s)
			}
		})
	}
}

// TestQueryFlood: a flood of queries leaves at most one pending response
// per joined group plus the interface timer, and answers each group once
// per response time.
func TestQueryFlood(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(exc))
			h.set(f.g2, f.st(inc, "a", "b"))
			h.drain()
			var evs []event
			for i := range 10000 {
				var q proto.Received
				switch i % 4 {
				case 0:
					q = f.query(f.g, 10*time.Second, "a", "c")
				case 1:
					q = f.query(f.g2, 10*time.Second, "b", "c")
				case 2:
					q = f.query(f.g, 10*time.Second)
				default:
					q = f.query("", 25*time.Second)
				}
				h.recv(q)
				if s := h.e.Status(); s.PendingQueryResponses > 3 {
					t.Fatalf("after %d queries: %d pending responses", i+1, s.PendingQueryResponses)
				}
				if i%1000 == 999 {
					evs = append(evs, h.runUntil(h.now.Add(time.Millisecond))...)
				}
			}
			evs = append(evs, h.runUntil(h.now.Add(30*time.Second))...)
			if len(evs) == 0 || len(evs) > 4 {
				t.Errorf("%d reports for the flood: %v", len(evs), strs(evs))
			}
			if s := h.e.Status(); s.Counters.QueriesReceived != 10000 {
				t.Errorf("QueriesReceived = %d", s.Counters.QueriesReceived)
			}
		})
	}
}

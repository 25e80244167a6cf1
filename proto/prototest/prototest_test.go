package prototest_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/wire"
)

func TestQueriesParse(t *testing.T) {
	g4, g6 := netip.MustParseAddr("239.1.1.1"), netip.MustParseAddr("ff15::1")
	s4 := netip.MustParseAddr("192.0.2.9")
	cases := []struct {
		name string
		r    proto.Received
		dst  string
		want any
	}{
		{"igmpv3 general", prototest.IGMPv3Query(netip.Addr{}, 10*time.Second), "224.0.0.1",
			wire.IGMPv3Query{MaxRespCode: 100, Group: netip.IPv4Unspecified(), QRV: 2, QQIC: 125}},
		{"igmpv3 source", prototest.IGMPv3Query(g4, time.Second, s4), "239.1.1.1",
			wire.IGMPv3Query{MaxRespCode: 10, Group: g4, QRV: 2, QQIC: 125, Sources: []netip.Addr{s4}}},
		{"igmpv2", prototest.IGMPv2Query(g4, 2*time.Second), "239.1.1.1", wire.IGMPv12{Type: 0x11, MaxRespTime: 20, Group: g4}},
		{"igmpv1", prototest.IGMPv1Query(), "224.0.0.1", wire.IGMPv12{Type: 0x11, Group: netip.IPv4Unspecified()}},
		{"igmp report", prototest.IGMPReport(1, g4), "239.1.1.1", wire.IGMPv12{Type: 0x12, Group: g4}},
		{"mldv2", prototest.MLDv2Query(g6, 2*time.Second), "ff15::1", wire.MLDv2Query{MaxRespCode: 2000, Group: g6, QRV: 2, QQIC: 125}},
		{"mldv1", prototest.MLDv1Query(netip.Addr{}, time.Second), "ff02::1", wire.MLDv1{Type: 130, MaxRespDelay: 1000, Group: netip.IPv6Unspecified()}},
		{"mld report", prototest.MLDReport(g6), "ff15::1", wire.MLDv1{Type: 131, Group: g6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.Dst != netip.MustParseAddr(tc.dst) || tc.r.HopLimit != 1 {
				t.Errorf("dst %v hop limit %d", tc.r.Dst, tc.r.HopLimit)
			}
			var got any
			var err error
			if tc.r.Src.Is4() {
				got, err = wire.ParseIGMP(tc.r.Payload)
			} else {
				if err := wire.VerifyICMPv6(tc.r.Src, tc.r.Dst, tc.r.Payload); err != nil {
					t.Fatal(err)
				}
				got, err = wire.ParseMLD(tc.r.Payload)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if prototest.IGMPv1Query().RouterAlert || !prototest.IGMPv2Query(g4, time.Second).RouterAlert {
		t.Error("router alert: IGMPv1 queries have none, the others have it")
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case wire.IGMPv3Query:
		b := b.(wire.IGMPv3Query)
		return a.MaxRespCode == b.MaxRespCode && a.Group == b.Group && a.QRV == b.QRV && a.QQIC == b.QQIC && len(a.Sources) == len(b.Sources) &&
			(len(a.Sources) == 0 || a.Sources[0] == b.Sources[0])
	case wire.MLDv2Query:
		b := b.(wire.MLDv2Query)
		return a.MaxRespCode == b.MaxRespCode && a.Group == b.Group && a.QRV == b.QRV && a.QQIC == b.QQIC && len(a.Sources) == len(b.Sources)
	}
	return a == b
}

func TestDecode(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("224.0.0.22")
	g := netip.MustParseAddr("239.1.1.1")
	rep, _ := wire.IGMPv3Report{Records: []wire.GroupRecord{{Type: wire.AllowNewSources, Group: g,
		Sources: []netip.Addr{netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.3")}}}}.Append(nil)
	pkt, err := wire.AppendIPv4(nil, wire.IPv4{TOS: 0xc0, TTL: 1, Protocol: wire.ProtoIGMP, Src: src, Dst: dst, RouterAlert: true}, rep)
	if err != nil {
		t.Fatal(err)
	}
	r, err := prototest.Decode(proto.Packet{Dst: dst, Data: pkt})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "igmpv3 224.0.0.22 [ALLOW(239.1.1.1){192.0.2.3,192.0.2.20}]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if r.TTL != 1 || !r.RouterAlert || r.TOS != 0xc0 || r.Src != src || r.Size != len(pkt) {
		t.Errorf("header fields %+v", r)
	}
	if _, err := prototest.Decode(proto.Packet{Dst: g, Data: pkt}); !errors.Is(err, prototest.ErrDstMismatch) {
		t.Errorf("wrong Dst: %v", err)
	}
	q := prototest.IGMPv3Query(g, time.Second)
	qp, _ := wire.AppendIPv4(nil, wire.IPv4{TTL: 1, Protocol: wire.ProtoIGMP, Src: src, Dst: g}, q.Payload)
	if _, err := prototest.Decode(proto.Packet{Dst: g, Data: qp}); !errors.Is(err, prototest.ErrNotReport) {
		t.Errorf("query: %v", err)
	}
	bad := append([]byte(nil), pkt...)
	bad[len(bad)-1] ^= 1
	if _, err := prototest.Decode(proto.Packet{Dst: dst, Data: bad}); !errors.Is(err, wire.ErrChecksum) {
		t.Errorf("bad IGMP checksum: %v", err)
	}
	done, _ := wire.MLDv1{Type: wire.MLDTypeV1Done, Group: netip.MustParseAddr("ff15::1")}.Append(nil, netip.MustParseAddr("fe80::2"), wire.IPv6AllRouters)
	p6, _ := wire.AppendIPv6(nil, wire.IPv6{HopLimit: 1, NextHeader: wire.ProtoICMPv6, Src: netip.MustParseAddr("fe80::2"), Dst: wire.IPv6AllRouters, RouterAlert: true}, done)
	r, err = prototest.Decode(proto.Packet{Dst: wire.IPv6AllRouters, Data: p6})
	if err != nil || r.String() != "mldv1-done ff02::2 ff15::1" {
		t.Errorf("done: %v %v", r, err)
	}
	p6[len(p6)-1] ^= 1
	if _, err := prototest.Decode(proto.Packet{Dst: wire.IPv6AllRouters, Data: p6}); !errors.Is(err, wire.ErrChecksum) {
		t.Errorf("bad ICMPv6 checksum: %v", err)
	}
	if _, err := prototest.Decode(proto.Packet{}); !errors.Is(err, prototest.ErrNotReport) {
		t.Errorf("empty: %v", err)
	}
}

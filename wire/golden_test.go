package wire

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

var (
	hostMAC  = MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	host4    = netip.MustParseAddr("192.0.2.1")
	host6LL  = netip.MustParseAddr("fe80::1")
	host6    = netip.MustParseAddr("2001:db8::1")
	group4   = netip.MustParseAddr("239.1.2.3")
	group6   = netip.MustParseAddr("ff0e::1:3")
	srcA4    = netip.MustParseAddr("192.0.2.100")
	srcB4    = netip.MustParseAddr("192.0.2.101")
	srcA6    = netip.MustParseAddr("2001:db8::64")
	srcB6    = netip.MustParseAddr("2001:db8::65")
	router6  = netip.MustParseAddr("fe80::fe")
	ssmGrp4  = netip.MustParseAddr("232.1.1.1")
	ssmGrp6  = netip.MustParseAddr("ff3e::8000:1")
	unspec4  = netip.IPv4Unspecified()
	unspec6  = netip.IPv6Unspecified()
	auxWord  = []byte{0xde, 0xad, 0xbe, 0xef}
	auxWords = []byte{1, 2, 3, 4, 5, 6, 7, 8}
)

// ---- IGMP golden messages (RFC 1112 App. I, RFC 2236 §2, RFC 9776 §4) ----

type igmpGolden struct {
	name string
	wire []byte
	msg  IGMPMessage
}

func igmpGoldens() []igmpGolden {
	return []igmpGolden{
		{"v1 query", igmpMsg("11 00 0000 00000000"), IGMPv12{Type: IGMPTypeQuery, Group: unspec4}},
		{"v1 report", igmpMsg("12 00 0000 ef010203"), IGMPv12{Type: IGMPTypeV1Report, Group: group4}},
		{"v2 general query", igmpMsg("11 64 0000 00000000"), IGMPv12{Type: IGMPTypeQuery, MaxRespTime: 100, Group: unspec4}},
		{"v2 group query", igmpMsg("11 0a 0000 ef010203"), IGMPv12{Type: IGMPTypeQuery, MaxRespTime: 10, Group: group4}},
		{"v2 report", igmpMsg("16 00 0000 ef010203"), IGMPv12{Type: IGMPTypeV2Report, Group: group4}},
		{"v2 leave", igmpMsg("17 00 0000 ef010203"), IGMPv12{Type: IGMPTypeV2Leave, Group: group4}},
		{"v3 general query", igmpMsg("11 64 0000 00000000 | 02 7d 0000"),
			IGMPv3Query{MaxRespCode: 100, Group: unspec4, QRV: 2, QQIC: 125}},
		// S flag set, QRV 3, float-coded Max Resp Code 0x8a = (0x1a)<<3 = 208
		// and QQIC 0x91 = (0x11)<<4 = 272, two sources.
		{"v3 group-and-source query", igmpMsg("11 8a 0000 ef010203 | 0b 91 0002 | c0000264 c0000265"),
			IGMPv3Query{MaxRespCode: 0x8a, Group: group4, SuppressRouterSide: true, QRV: 3, QQIC: 0x91, Sources: []netip.Addr{srcA4, srcB4}}},
		{"v3 report all record types", igmpMsg(`22 00 0000 0000 0006
			01 00 0001 ef010203 c0000264
			02 00 0000 ef010204
			03 00 0002 ef010205 c0000264 c0000265
			04 01 0001 ef010206 c0000265 deadbeef
			05 00 0001 e8010101 c0000264
			06 02 0000 e8010101 01020304 05060708`),
			IGMPv3Report{Records: []GroupRecord{
				{Type: ModeIsInclude, Group: group4, Sources: []netip.Addr{srcA4}},
				{Type: ModeIsExclude, Group: mustAddr("239.1.2.4")},
				{Type: ChangeToInclude, Group: mustAddr("239.1.2.5"), Sources: []netip.Addr{srcA4, srcB4}},
				{Type: ChangeToExclude, Group: mustAddr("239.1.2.6"), Sources: []netip.Addr{srcB4}, AuxData: auxWord},
				{Type: AllowNewSources, Group: ssmGrp4, Sources: []netip.Addr{srcA4}},
				{Type: BlockOldSources, Group: ssmGrp4, AuxData: auxWords},
			}}},
		{"v3 report no records", igmpMsg("22 00 0000 0000 0000"), IGMPv3Report{}},
	}
}

// ---- MLD golden messages (RFC 2710 §3, RFC 9777 §5) ----

type mldGolden struct {
	name     string
	src, dst netip.Addr
	wire     []byte
	msg      MLDMessage
}

func mldGoldens() []mldGolden {
	return []mldGolden{
		{"v1 general query", router6, IPv6AllNodes,
			mldMsg(router6, IPv6AllNodes, "82 00 0000 2710 0000 00000000000000000000000000000000"),
			MLDv1{Type: MLDTypeQuery, MaxRespDelay: 10000, Group: unspec6}},
		{"v1 report", host6LL, group6,
			mldMsg(host6LL, group6, "83 00 0000 0000 0000 ff0e0000000000000000000000010003"),
			MLDv1{Type: MLDTypeV1Report, Group: group6}},
		{"v1 done", host6LL, IPv6AllRouters,
			mldMsg(host6LL, IPv6AllRouters, "84 00 0000 0000 0000 ff0e0000000000000000000000010003"),
			MLDv1{Type: MLDTypeV1Done, Group: group6}},
		{"v2 general query", router6, IPv6AllNodes,
			mldMsg(router6, IPv6AllNodes, "82 00 0000 2710 0000 00000000000000000000000000000000 02 7d 0000"),
			MLDv2Query{MaxRespCode: 10000, Group: unspec6, QRV: 2, QQIC: 125}},
		// Float-coded Maximum Response Code 0x8123 = (0x1123)<<3 = 35096 ms.
		{"v2 group-and-source query", router6, group6,
			mldMsg(router6, group6, `82 00 0000 8123 0000 ff0e0000000000000000000000010003 0f 8c 0002
				20010db8000000000000000000000064 20010db8000000000000000000000065`),
			MLDv2Query{MaxRespCode: 0x8123, Group: group6, SuppressRouterSide: true, QRV: 7, QQIC: 0x8c, Sources: []netip.Addr{srcA6, srcB6}}},
		{"v2 report all record types", host6LL, MLDv2Routers,
			mldMsg(host6LL, MLDv2Routers, `8f 00 0000 0000 0006
				01 00 0001 ff0e0000000000000000000000010003 20010db8000000000000000000000064
				02 00 0000 ff0e0000000000000000000000010004
				03 00 0002 ff0e0000000000000000000000010005 20010db8000000000000000000000064 20010db8000000000000000000000065
				04 01 0000 ff0e0000000000000000000000010006 deadbeef
				05 00 0001 ff3e0000000000000000000080000001 20010db8000000000000000000000065
				06 02 0001 ff3e0000000000000000000080000001 20010db8000000000000000000000064 0102030405060708`),
			MLDv2Report{Records: []GroupRecord{
				{Type: ModeIsInclude, Group: group6, Sources: []netip.Addr{srcA6}},
				{Type: ModeIsExclude, Group: mustAddr("ff0e::1:4")},
				{Type: ChangeToInclude, Group: mustAddr("ff0e::1:5"), Sources: []netip.Addr{srcA6, srcB6}},
				{Type: ChangeToExclude, Group: mustAddr("ff0e::1:6"), AuxData: auxWord},
				{Type: AllowNewSources, Group: ssmGrp6, Sources: []netip.Addr{srcB6}},
				{Type: BlockOldSources, Group: ssmGrp6, Sources: []netip.Addr{srcA6}, AuxData: auxWords},
			}}},
	}
}

// ---- Real-world frames (/work/shared/interop-notes.md "Wire details that bite") ----

// igmpv3JoinFrame is a Linux-style IGMPv3 join: Ethernet to
// 01:00:5e:00:00:16, IPv4 with TOS c0, DF, TTL 1, IHL 6 with Router Alert
// 94 04 00 00, to 224.0.0.22, carrying a report with one TO_EX {} record.
func igmpv3JoinFrame() []byte {
	igmp := igmpMsg("22 00 0000 0000 0001 | 04 00 0000 ef010203")
	ip := hx("46 c0 0028 0000 4000 01 02 0000 c0000201 e0000016 94040000")
	patch(ip, 10, ip)
	eth := hx("01005e000016 020000000001 0800")
	return cat(eth, ip, igmp)
}

// mldv2JoinFrame is an MLDv2 join: Ethernet to 33:33:00:00:00:16, IPv6 next
// header 0, hop limit 1, from fe80::1 to ff02::16, Hop-by-Hop 3a 00 05 02 00
// 00 01 00, then a report with one TO_EX {} record for ff0e::1:3.
func mldv2JoinFrame() []byte {
	mld := mldMsg(host6LL, MLDv2Routers, "8f 00 0000 0000 0001 | 04 00 0000 ff0e0000000000000000000000010003")
	ip := hx(`60000000 0024 00 01 fe800000000000000000000000000001 ff020000000000000000000000000016
		3a 00 05 02 00 00 01 00`)
	eth := hx("333300000016 020000000001 86dd")
	return cat(eth, ip, mld)
}

// udp4Frame: 192.0.2.1:1234 → 239.1.2.3:5000 "hello", TTL 64, ID 0x1234.
func udp4Datagram() []byte {
	u := hx("04d2 1388 000d 0000 68656c6c6f")
	return patch(u, 6, pseudo4(host4, group4, 13, 17), u)
}

func udp4Packet() []byte {
	ip := hx("45 00 0021 1234 0000 40 11 0000 c0000201 ef010203")
	patch(ip, 10, ip)
	return cat(ip, udp4Datagram())
}

func udp6Datagram() []byte {
	u := hx("04d2 1388 000d 0000 68656c6c6f")
	return patch(u, 6, pseudo6(host6, group6, 13, 17), u)
}

// udp6Packet: 2001:db8::1 → ff0e::1:3, traffic class 0x2e, flow 0x12345,
// hop limit 64.
func udp6Packet() []byte {
	ip := hx("62e12345 000d 11 40 20010db8000000000000000000000001 ff0e0000000000000000000000010003")
	return cat(ip, udp6Datagram())
}

func TestGoldenIGMP(t *testing.T) {
	for _, g := range igmpGoldens() {
		t.Run(g.name, func(t *testing.T) {
			m, err := ParseIGMP(g.wire)
			if err != nil {
				t.Fatalf("ParseIGMP: %v", err)
			}
			if !reflect.DeepEqual(m, g.msg) {
				t.Fatalf("ParseIGMP =\n%+v\nwant\n%+v", m, g.msg)
			}
			if got := mustIGMP(t, g.msg); !bytes.Equal(got, g.wire) {
				t.Fatalf("Append =\n% x\nwant\n% x", got, g.wire)
			}
		})
	}
}

func TestGoldenMLD(t *testing.T) {
	for _, g := range mldGoldens() {
		t.Run(g.name, func(t *testing.T) {
			if err := VerifyICMPv6(g.src, g.dst, g.wire); err != nil {
				t.Fatalf("VerifyICMPv6: %v", err)
			}
			m, err := ParseMLD(g.wire)
			if err != nil {
				t.Fatalf("ParseMLD: %v", err)
			}
			if !reflect.DeepEqual(m, g.msg) {
				t.Fatalf("ParseMLD =\n%+v\nwant\n%+v", m, g.msg)
			}
			if got := mustMLD(t, g.msg, g.src, g.dst); !bytes.Equal(got, g.wire) {
				t.Fatalf("Append =\n% x\nwant\n% x", got, g.wire)
			}
		})
	}
}

func TestGoldenQueryDurations(t *testing.T) {
	q := IGMPv3Query{MaxRespCode: 0x8a, QQIC: 0x91}
	if got, want := q.MaxRespTime(), 20800*1e6; float64(got) != want {
		t.Errorf("IGMP MaxRespTime = %v, want 20.8s", got)
	}
	if got := q.QueryInterval(); got.Seconds() != 272 {
		t.Errorf("IGMP QueryInterval = %v, want 272s", got)
	}
	m := MLDv2Query{MaxRespCode: 0x8123, QQIC: 125}
	if got := m.MaxRespDelay(); got.Milliseconds() != 35096 {
		t.Errorf("MLD MaxRespDelay = %v, want 35.096s", got)
	}
	if got := m.QueryInterval(); got.Seconds() != 125 {
		t.Errorf("MLD QueryInterval = %v, want 125s", got)
	}
}

func TestGoldenIGMPv3JoinFrame(t *testing.T) {
	f := igmpv3JoinFrame()
	e, err := ParseEthernet(f)
	if err != nil {
		t.Fatal(err)
	}
	if e.Dst != (MAC{0x01, 0x00, 0x5e, 0, 0, 0x16}) || e.Src != hostMAC || e.EtherType != EtherTypeIPv4 || e.HasVLAN {
		t.Fatalf("ethernet = %+v", e)
	}
	ip, err := ParseIPv4(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := IPv4{TOS: 0xc0, DontFragment: true, TTL: 1, Protocol: ProtoIGMP, Src: host4, Dst: IGMPv3Routers,
		RouterAlert: true, Options: []byte{0x94, 4, 0, 0}, Payload: e.Payload[24:]}
	if !reflect.DeepEqual(ip, want) {
		t.Fatalf("ipv4 =\n%+v\nwant\n%+v", ip, want)
	}
	m, err := ParseIGMP(ip.Payload)
	if err != nil {
		t.Fatal(err)
	}
	wantRep := IGMPv3Report{Records: []GroupRecord{{Type: ChangeToExclude, Group: group4}}}
	if !reflect.DeepEqual(m, wantRep) {
		t.Fatalf("igmp = %+v", m)
	}
	// Build the same frame with the emitters.
	mac, _ := MulticastMAC(IGMPv3Routers)
	b := AppendEthernet(nil, mac, hostMAC, EtherTypeIPv4)
	body := mustIGMP(t, wantRep)
	b, err = AppendIPv4(b, IPv4{TOS: 0xc0, DontFragment: true, TTL: 1, Protocol: ProtoIGMP, Src: host4, Dst: IGMPv3Routers, RouterAlert: true}, body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, f) {
		t.Fatalf("emitted\n% x\nwant\n% x", b, f)
	}
	if len(b)-EthernetHeaderLen != IPv4RouterAlertHeaderLen+IGMPv3ReportHeaderLen+wantRep.Records[0].Len() {
		t.Fatalf("size constants disagree with emitted length %d", len(b))
	}
}

func TestGoldenMLDv2JoinFrame(t *testing.T) {
	f := mldv2JoinFrame()
	e, err := ParseEthernet(f)
	if err != nil {
		t.Fatal(err)
	}
	if e.Dst != (MAC{0x33, 0x33, 0, 0, 0, 0x16}) || e.EtherType != EtherTypeIPv6 {
		t.Fatalf("ethernet = %+v", e)
	}
	ip, err := ParseIPv6(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := IPv6{HopLimit: 1, NextHeader: ProtoICMPv6, Src: host6LL, Dst: MLDv2Routers, RouterAlert: true, RouterAlertValue: 0, Payload: e.Payload[48:]}
	if !reflect.DeepEqual(ip, want) {
		t.Fatalf("ipv6 =\n%+v\nwant\n%+v", ip, want)
	}
	if err := VerifyICMPv6(ip.Src, ip.Dst, ip.Payload); err != nil {
		t.Fatal(err)
	}
	m, err := ParseMLD(ip.Payload)
	if err != nil {
		t.Fatal(err)
	}
	wantRep := MLDv2Report{Records: []GroupRecord{{Type: ChangeToExclude, Group: group6}}}
	if !reflect.DeepEqual(m, wantRep) {
		t.Fatalf("mld = %+v", m)
	}
	mac, _ := MulticastMAC(MLDv2Routers)
	b := AppendEthernet(nil, mac, hostMAC, EtherTypeIPv6)
	b, err = AppendIPv6(b, IPv6{HopLimit: 1, NextHeader: ProtoICMPv6, Src: host6LL, Dst: MLDv2Routers, RouterAlert: true},
		mustMLD(t, wantRep, host6LL, MLDv2Routers))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, f) {
		t.Fatalf("emitted\n% x\nwant\n% x", b, f)
	}
	if len(b)-EthernetHeaderLen != IPv6RouterAlertHeadersLen+MLDv2ReportHeaderLen+wantRep.Records[0].Len() {
		t.Fatalf("size constants disagree with emitted length %d", len(b))
	}
}

func TestGoldenEthernet(t *testing.T) {
	plain := hx("01005e010203 020000000001 0800 cafe")
	e, err := ParseEthernet(plain)
	if err != nil {
		t.Fatal(err)
	}
	want := Ethernet{Dst: MAC{1, 0, 0x5e, 1, 2, 3}, Src: hostMAC, EtherType: EtherTypeIPv4, Payload: []byte{0xca, 0xfe}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("got %+v want %+v", e, want)
	}
	if got := append(AppendEthernet(nil, want.Dst, want.Src, EtherTypeIPv4), 0xca, 0xfe); !bytes.Equal(got, plain) {
		t.Fatalf("AppendEthernet = % x", got)
	}
	// 802.1Q: PCP 1, VID 100 → TCI 0x2064; inner IPv6; a second tag is not removed.
	tagged := hx("333300000016 020000000001 8100 2064 86dd beef")
	e, err = ParseEthernet(tagged)
	if err != nil {
		t.Fatal(err)
	}
	want = Ethernet{Dst: MAC{0x33, 0x33, 0, 0, 0, 0x16}, Src: hostMAC, HasVLAN: true, VLANTag: 0x2064, EtherType: EtherTypeIPv6, Payload: []byte{0xbe, 0xef}}
	if !reflect.DeepEqual(e, want) || e.VLANID() != 100 {
		t.Fatalf("got %+v want %+v", e, want)
	}
	if got := append(AppendEthernetVLAN(nil, want.Dst, want.Src, 0x2064, EtherTypeIPv6), 0xbe, 0xef); !bytes.Equal(got, tagged) {
		t.Fatalf("AppendEthernetVLAN = % x", got)
	}
	qinq := hx("333300000016 020000000001 8100 0001 8100 0002 86dd")
	e, err = ParseEthernet(qinq)
	if err != nil || e.EtherType != EtherTypeVLAN || e.VLANTag != 1 || !bytes.Equal(e.Payload, hx("0002 86dd")) {
		t.Fatalf("QinQ: %+v %v", e, err)
	}
}

func TestGoldenUDP(t *testing.T) {
	ip, err := ParseIPv4(udp4Packet())
	if err != nil {
		t.Fatal(err)
	}
	wantIP := IPv4{ID: 0x1234, TTL: 64, Protocol: ProtoUDP, Src: host4, Dst: group4, Payload: udp4Datagram()}
	if !reflect.DeepEqual(ip, wantIP) {
		t.Fatalf("ipv4 = %+v", ip)
	}
	u, err := ParseUDP(ip.Payload, ip.Src, ip.Dst)
	if err != nil {
		t.Fatal(err)
	}
	if u.SrcPort != 1234 || u.DstPort != 5000 || string(u.Payload) != "hello" {
		t.Fatalf("udp = %+v", u)
	}
	b, err := AppendUDP(nil, host4, group4, 1234, 5000, []byte("hello"))
	if err != nil || !bytes.Equal(b, udp4Datagram()) {
		t.Fatalf("AppendUDP v4 = % x, %v", b, err)
	}
	b, err = AppendIPv4(nil, IPv4{ID: 0x1234, TTL: 64, Protocol: ProtoUDP, Src: host4, Dst: group4}, b)
	if err != nil || !bytes.Equal(b, udp4Packet()) {
		t.Fatalf("AppendIPv4 = % x, %v", b, err)
	}

	ip6, err := ParseIPv6(udp6Packet())
	if err != nil {
		t.Fatal(err)
	}
	wantIP6 := IPv6{TrafficClass: 0x2e, FlowLabel: 0x12345, HopLimit: 64, NextHeader: ProtoUDP, Src: host6, Dst: group6, Payload: udp6Datagram()}
	if !reflect.DeepEqual(ip6, wantIP6) {
		t.Fatalf("ipv6 = %+v", ip6)
	}
	u, err = ParseUDP(ip6.Payload, ip6.Src, ip6.Dst)
	if err != nil || u.SrcPort != 1234 || u.DstPort != 5000 || string(u.Payload) != "hello" {
		t.Fatalf("udp6 = %+v, %v", u, err)
	}
	b, err = AppendUDP(nil, host6, group6, 1234, 5000, []byte("hello"))
	if err != nil || !bytes.Equal(b, udp6Datagram()) {
		t.Fatalf("AppendUDP v6 = % x, %v", b, err)
	}
	b, err = AppendIPv6(nil, wantIP6, b)
	if err != nil || !bytes.Equal(b, udp6Packet()) {
		t.Fatalf("AppendIPv6 = % x, %v", b, err)
	}
}

package crosscheck

// Cross-check against an independent decoder: gopacket's layers package.
// Note: gopacket v1.7.7 decodes the IGMPv3 8-bit float codes with exponent
// and mantissa swapped and scales QQIC in tenths of a second like Max Resp
// Code, so the durations compared here use codes below 128 and allow for the
// QQIC scaling.

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/mcstack/mcstack/wire"
)

var (
	hostMAC = wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	host4   = netip.MustParseAddr("192.0.2.1")
	host6LL = netip.MustParseAddr("fe80::1")
	host6   = netip.MustParseAddr("2001:db8::1")
	router6 = netip.MustParseAddr("fe80::fe")
	group4  = netip.MustParseAddr("239.1.2.3")
	group6  = netip.MustParseAddr("ff0e::1:3")
	ssm4    = netip.MustParseAddr("232.1.1.1")
	ssm6    = netip.MustParseAddr("ff3e::8000:1")
	srcA4   = netip.MustParseAddr("192.0.2.100")
	srcB4   = netip.MustParseAddr("192.0.2.101")
	srcA6   = netip.MustParseAddr("2001:db8::64")
	srcB6   = netip.MustParseAddr("2001:db8::65")
	aux1    = []byte{0xde, 0xad, 0xbe, 0xef}
	aux2    = []byte{1, 2, 3, 4, 5, 6, 7, 8}
)

func ipOf(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// refChecksum is an independent RFC 1071 Internet checksum: the one's
// complement of the one's complement sum of 16-bit words; 0 when b holds a
// correct checksum.
func refChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func frame4(t *testing.T, proto uint8, dst netip.Addr, ra bool, body []byte) []byte {
	t.Helper()
	mac, _ := wire.MulticastMAC(dst)
	b := wire.AppendEthernet(nil, mac, hostMAC, wire.EtherTypeIPv4)
	b, err := wire.AppendIPv4(b, wire.IPv4{TOS: 0xc0, TTL: 1, Protocol: proto, Src: host4, Dst: dst, RouterAlert: ra}, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func frame6(t *testing.T, nh uint8, src, dst netip.Addr, ra bool, body []byte) []byte {
	t.Helper()
	mac, _ := wire.MulticastMAC(dst)
	b := wire.AppendEthernet(nil, mac, hostMAC, wire.EtherTypeIPv6)
	b, err := wire.AppendIPv6(b, wire.IPv6{HopLimit: 1, NextHeader: nh, Src: src, Dst: dst, RouterAlert: ra}, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t *testing.T, b []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, f []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket decode error: %v", el.Error())
	}
	return p
}

func checkIPv4(t *testing.T, p gopacket.Packet, dst netip.Addr, ra bool) {
	t.Helper()
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatal("no IPv4 layer")
	}
	if _, res := ip.VerifyChecksum(); !res.Valid {
		t.Errorf("IPv4 checksum invalid: %+v", res)
	}
	if ip.TTL != 1 || !ip.SrcIP.Equal(ipOf(host4)) || !ip.DstIP.Equal(ipOf(dst)) || ip.TOS != 0xc0 {
		t.Errorf("IPv4 header: ttl %d src %v dst %v tos %#x", ip.TTL, ip.SrcIP, ip.DstIP, ip.TOS)
	}
	hasRA := false
	for _, o := range ip.Options {
		if o.OptionType == 148 && o.OptionLength == 4 {
			hasRA = true
		}
	}
	if hasRA != ra {
		t.Errorf("Router Alert present = %v, want %v (options %+v)", hasRA, ra, ip.Options)
	}
}

// igmpReport has one record of each type, with and without sources and
// auxiliary data (RFC 9776 §4.2).
var igmpReport = wire.IGMPv3Report{Records: []wire.GroupRecord{
	{Type: wire.ModeIsInclude, Group: group4, Sources: []netip.Addr{srcA4}},
	{Type: wire.ModeIsExclude, Group: netip.MustParseAddr("239.1.2.4")},
	{Type: wire.ChangeToInclude, Group: netip.MustParseAddr("239.1.2.5"), Sources: []netip.Addr{srcA4, srcB4}},
	{Type: wire.ChangeToExclude, Group: netip.MustParseAddr("239.1.2.6"), Sources: []netip.Addr{srcB4}, AuxData: aux1},
	{Type: wire.AllowNewSources, Group: ssm4, Sources: []netip.Addr{srcA4}},
	{Type: wire.BlockOldSources, Group: ssm4, AuxData: aux2},
}}

func TestGopacketIGMPv3(t *testing.T) {
	q := wire.IGMPv3Query{MaxRespCode: 100, Group: group4, SuppressRouterSide: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{srcA4, srcB4}}
	qb, err := q.Append(nil)
	p := decode(t, frame4(t, wire.ProtoIGMP, group4, true, must(t, qb, err)))
	checkIPv4(t, p, group4, true)
	g, _ := p.Layer(layers.LayerTypeIGMP).(*layers.IGMP)
	if g == nil {
		t.Fatal("no IGMP layer")
	}
	if g.Type != layers.IGMPMembershipQuery || !g.GroupAddress.Equal(ipOf(group4)) || !g.SupressRouterProcessing ||
		g.RobustnessValue != 2 || g.IntervalTime != 125*100*time.Millisecond || g.MaxResponseTime.Seconds() != 10 ||
		len(g.SourceAddresses) != 2 || !g.SourceAddresses[0].Equal(ipOf(srcA4)) || !g.SourceAddresses[1].Equal(ipOf(srcB4)) {
		t.Errorf("IGMPv3 query decoded as %+v", g)
	}
	if refChecksum(p.Layer(layers.LayerTypeIPv4).LayerPayload()) != 0 {
		t.Error("IGMP checksum does not verify")
	}

	rb, err := igmpReport.Append(nil)
	p = decode(t, frame4(t, wire.ProtoIGMP, wire.IGMPv3Routers, true, must(t, rb, err)))
	checkIPv4(t, p, wire.IGMPv3Routers, true)
	g, _ = p.Layer(layers.LayerTypeIGMP).(*layers.IGMP)
	if g == nil || g.Type != layers.IGMPMembershipReportV3 {
		t.Fatalf("IGMP report layer: %+v", g)
	}
	want := igmpReport.Records
	if int(g.NumberOfGroupRecords) != len(want) || len(g.GroupRecords) != len(want) {
		t.Fatalf("records: %d/%d, want %d", g.NumberOfGroupRecords, len(g.GroupRecords), len(want))
	}
	for i, r := range g.GroupRecords {
		w := want[i]
		if uint8(r.Type) != uint8(w.Type) || !r.MulticastAddress.Equal(ipOf(w.Group)) || int(r.NumberOfSources) != len(w.Sources) ||
			int(r.AuxDataLen)*4 != len(w.AuxData) || len(r.SourceAddresses) != len(w.Sources) {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
			continue
		}
		for j, s := range r.SourceAddresses {
			if !s.Equal(ipOf(w.Sources[j])) {
				t.Errorf("record %d source %d: %v want %v", i, j, s, w.Sources[j])
			}
		}
	}
	if refChecksum(p.Layer(layers.LayerTypeIPv4).LayerPayload()) != 0 {
		t.Error("IGMP report checksum does not verify")
	}
}

func checkIPv6(t *testing.T, p gopacket.Packet, src, dst netip.Addr, ra bool) *layers.ICMPv6 {
	t.Helper()
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip == nil {
		t.Fatal("no IPv6 layer")
	}
	if ip.HopLimit != 1 || !ip.SrcIP.Equal(ipOf(src)) || !ip.DstIP.Equal(ipOf(dst)) {
		t.Errorf("IPv6 header %+v", ip)
	}
	hbh, _ := p.Layer(layers.LayerTypeIPv6HopByHop).(*layers.IPv6HopByHop)
	if ra {
		if hbh == nil || len(hbh.Options) == 0 || hbh.Options[0].OptionType != 5 || hbh.Options[0].OptionLength != 2 ||
			string(hbh.Options[0].OptionData) != "\x00\x00" || hbh.NextHeader != layers.IPProtocolICMPv6 {
			t.Errorf("Hop-by-Hop Router Alert (value 0, MLD) missing: %+v", hbh)
		}
	}
	ic, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ic == nil {
		return nil
	}
	if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	if err, res := ic.VerifyChecksum(); err != nil || !res.Valid {
		t.Errorf("ICMPv6 checksum invalid: %+v %v", res, err)
	}
	return ic
}

// mldReport has one record of each type (RFC 9777 §5.2).
var mldReport = wire.MLDv2Report{Records: []wire.GroupRecord{
	{Type: wire.ModeIsInclude, Group: group6, Sources: []netip.Addr{srcA6}},
	{Type: wire.ModeIsExclude, Group: netip.MustParseAddr("ff0e::1:4")},
	{Type: wire.ChangeToInclude, Group: netip.MustParseAddr("ff0e::1:5"), Sources: []netip.Addr{srcA6, srcB6}},
	{Type: wire.ChangeToExclude, Group: netip.MustParseAddr("ff0e::1:6"), AuxData: aux1},
	{Type: wire.AllowNewSources, Group: ssm6, Sources: []netip.Addr{srcB6}},
	{Type: wire.BlockOldSources, Group: ssm6, Sources: []netip.Addr{srcA6}, AuxData: aux2},
}}

func TestGopacketMLDv2(t *testing.T) {
	q := wire.MLDv2Query{MaxRespCode: 10000, Group: group6, SuppressRouterSide: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{srcA6, srcB6}}
	qb, err := q.Append(nil, router6, group6)
	p := decode(t, frame6(t, wire.ProtoICMPv6, router6, group6, true, must(t, qb, err)))
	if ic := checkIPv6(t, p, router6, group6, true); ic == nil || ic.TypeCode.Type() != wire.MLDTypeQuery {
		t.Fatalf("ICMPv6: %+v", ic)
	}
	gq, _ := p.Layer(layers.LayerTypeMLDv2MulticastListenerQuery).(*layers.MLDv2MulticastListenerQueryMessage)
	if gq == nil {
		t.Fatal("no MLDv2 query layer")
	}
	if gq.MaximumResponseCode != 10000 || !gq.MulticastAddress.Equal(ipOf(group6)) || !gq.SuppressRoutersideProcessing ||
		gq.QueriersRobustnessVariable != 2 || gq.QueriersQueryIntervalCode != 125 || gq.NumberOfSources != 2 ||
		len(gq.SourceAddresses) != 2 || !gq.SourceAddresses[1].Equal(ipOf(srcB6)) {
		t.Errorf("MLDv2 query decoded as %+v", gq)
	}

	rb, err := mldReport.Append(nil, host6LL, wire.MLDv2Routers)
	p = decode(t, frame6(t, wire.ProtoICMPv6, host6LL, wire.MLDv2Routers, true, must(t, rb, err)))
	if ic := checkIPv6(t, p, host6LL, wire.MLDv2Routers, true); ic == nil || ic.TypeCode.Type() != wire.MLDTypeV2Report {
		t.Fatalf("ICMPv6: %+v", ic)
	}
	gr, _ := p.Layer(layers.LayerTypeMLDv2MulticastListenerReport).(*layers.MLDv2MulticastListenerReportMessage)
	if gr == nil {
		t.Fatal("no MLDv2 report layer")
	}
	want := mldReport.Records
	if int(gr.NumberOfMulticastAddressRecords) != len(want) || len(gr.MulticastAddressRecords) != len(want) {
		t.Fatalf("records %d/%d want %d", gr.NumberOfMulticastAddressRecords, len(gr.MulticastAddressRecords), len(want))
	}
	for i, r := range gr.MulticastAddressRecords {
		w := want[i]
		if uint8(r.RecordType) != uint8(w.Type) || !r.MulticastAddress.Equal(ipOf(w.Group)) || int(r.N) != len(w.Sources) ||
			int(r.AuxDataLen)*4 != len(w.AuxData) || string(r.AuxiliaryData) != string(w.AuxData) {
			t.Errorf("record %d: %+v want %+v", i, r, w)
			continue
		}
		for j, s := range r.SourceAddresses {
			if !s.Equal(ipOf(w.Sources[j])) {
				t.Errorf("record %d source %d: %v want %v", i, j, s, w.Sources[j])
			}
		}
	}
}

func TestGopacketUDP(t *testing.T) {
	u, err := wire.AppendUDP(nil, host4, group4, 1234, 5000, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, frame4(t, wire.ProtoUDP, group4, false, u))
	checkIPv4(t, p, group4, false)
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	gu, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if gu == nil || gu.SrcPort != 1234 || gu.DstPort != 5000 || gu.Length != 13 || string(gu.Payload) != "hello" {
		t.Fatalf("UDP v4: %+v", gu)
	}
	_ = gu.SetNetworkLayerForChecksum(ip)
	if err, res := gu.VerifyChecksum(); err != nil || !res.Valid || gu.Checksum == 0 {
		t.Errorf("UDP v4 checksum: %+v %v", res, err)
	}

	u, err = wire.AppendUDP(nil, host6, group6, 1234, 5000, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	p = decode(t, frame6(t, wire.ProtoUDP, host6, group6, false, u))
	checkIPv6(t, p, host6, group6, false)
	ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip6.NextHeader != layers.IPProtocolUDP || ip6.Length != 13 {
		t.Errorf("IPv6: nh %v len %d", ip6.NextHeader, ip6.Length)
	}
	gu, _ = p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if gu == nil || gu.SrcPort != 1234 || gu.DstPort != 5000 || string(gu.Payload) != "hello" {
		t.Fatalf("UDP v6: %+v", gu)
	}
	_ = gu.SetNetworkLayerForChecksum(ip6)
	if err, res := gu.VerifyChecksum(); err != nil || !res.Valid {
		t.Errorf("UDP v6 checksum: %+v %v", res, err)
	}
}

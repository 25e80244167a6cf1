package wire

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
)

func ipOf(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func frame4(t *testing.T, proto uint8, dst netip.Addr, ra bool, body []byte) []byte {
	t.Helper()
	mac, _ := MulticastMAC(dst)
	b := AppendEthernet(nil, mac, hostMAC, EtherTypeIPv4)
	b, err := AppendIPv4(b, IPv4{TOS: 0xc0, TTL: 1, Protocol: proto, Src: host4, Dst: dst, RouterAlert: ra}, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func frame6(t *testing.T, nh uint8, src, dst netip.Addr, ra bool, body []byte) []byte {
	t.Helper()
	mac, _ := MulticastMAC(dst)
	b := AppendEthernet(nil, mac, hostMAC, EtherTypeIPv6)
	b, err := AppendIPv6(b, IPv6{HopLimit: 1, NextHeader: nh, Src: src, Dst: dst, RouterAlert: ra}, body)
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

func TestGopacketIGMPv3(t *testing.T) {
	q := IGMPv3Query{MaxRespCode: 100, Group: group4, SuppressRouterSide: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{srcA4, srcB4}}
	p := decode(t, frame4(t, ProtoIGMP, group4, true, mustIGMP(t, q)))
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
	if refCsum(p.Layer(layers.LayerTypeIPv4).LayerPayload()) != 0 {
		t.Error("IGMP checksum does not verify")
	}

	rep, _ := ParseIGMP(igmpGoldens()[8].wire)
	p = decode(t, frame4(t, ProtoIGMP, IGMPv3Routers, true, mustIGMP(t, rep)))
	checkIPv4(t, p, IGMPv3Routers, true)
	g, _ = p.Layer(layers.LayerTypeIGMP).(*layers.IGMP)
	if g == nil || g.Type != layers.IGMPMembershipReportV3 {
		t.Fatalf("IGMP report layer: %+v", g)
	}
	want := rep.(IGMPv3Report).Records
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
	if refCsum(p.Layer(layers.LayerTypeIPv4).LayerPayload()) != 0 {
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
			t.Errorf("Hop-by-Hop Router Alert missing: %+v", hbh)
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

func TestGopacketMLDv2(t *testing.T) {
	q := MLDv2Query{MaxRespCode: 10000, Group: group6, SuppressRouterSide: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{srcA6, srcB6}}
	p := decode(t, frame6(t, ProtoICMPv6, router6, group6, true, mustMLD(t, q, router6, group6)))
	if ic := checkIPv6(t, p, router6, group6, true); ic == nil || ic.TypeCode.Type() != MLDTypeQuery {
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

	rep, _ := ParseMLD(mldGoldens()[5].wire)
	p = decode(t, frame6(t, ProtoICMPv6, host6LL, MLDv2Routers, true, mustMLD(t, rep, host6LL, MLDv2Routers)))
	if ic := checkIPv6(t, p, host6LL, MLDv2Routers, true); ic == nil || ic.TypeCode.Type() != MLDTypeV2Report {
		t.Fatalf("ICMPv6: %+v", ic)
	}
	gr, _ := p.Layer(layers.LayerTypeMLDv2MulticastListenerReport).(*layers.MLDv2MulticastListenerReportMessage)
	if gr == nil {
		t.Fatal("no MLDv2 report layer")
	}
	want := rep.(MLDv2Report).Records
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
	u, err := AppendUDP(nil, host4, group4, 1234, 5000, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, frame4(t, ProtoUDP, group4, false, u))
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

	u, err = AppendUDP(nil, host6, group6, 1234, 5000, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	p = decode(t, frame6(t, ProtoUDP, host6, group6, false, u))
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

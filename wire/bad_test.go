package wire

import (
	"errors"
	"net/netip"
	"testing"
)

func isParseErr(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v does not wrap %v", err, want)
	}
}

// Every strict prefix of a golden packet must be rejected without panic.
func TestTruncatedPrefixes(t *testing.T) {
	check := func(name string, full []byte, parse func([]byte) error) {
		for n := 0; n < len(full); n++ {
			p := append([]byte(nil), full[:n]...) // exact capacity: reads past n would panic
			if err := parse(p); err == nil {
				t.Errorf("%s: prefix of %d/%d bytes parsed without error", name, n, len(full))
			}
		}
	}
	for _, g := range igmpGoldens() {
		check("igmp "+g.name, g.wire, func(b []byte) error { _, err := ParseIGMP(b); return err })
	}
	for _, g := range mldGoldens() {
		// ParseMLD alone accepts a 24-byte prefix of an MLDv2 query as an
		// MLDv1 query (that is the RFC's version rule); the checksum catches it.
		check("mld "+g.name, g.wire, func(b []byte) error {
			_, perr := ParseMLD(b)
			if err := VerifyICMPv6(g.src, g.dst, b); err != nil {
				return err
			}
			return perr
		})
		if _, ok := g.msg.(MLDv2Report); ok {
			check("mld report "+g.name, g.wire, func(b []byte) error { _, err := ParseMLD(b); return err })
		}
	}
	check("ipv4 igmp frame", igmpv3JoinFrame()[EthernetHeaderLen:], func(b []byte) error { _, err := ParseIPv4(b); return err })
	check("ipv4 udp", udp4Packet(), func(b []byte) error { _, err := ParseIPv4(b); return err })
	check("ipv6 mld frame", mldv2JoinFrame()[EthernetHeaderLen:], func(b []byte) error { _, err := ParseIPv6(b); return err })
	check("ipv6 udp", udp6Packet(), func(b []byte) error { _, err := ParseIPv6(b); return err })
	check("udp4", udp4Datagram(), func(b []byte) error { _, err := ParseUDP(b, host4, group4); return err })
	check("udp6", udp6Datagram(), func(b []byte) error { _, err := ParseUDP(b, host6, group6); return err })
	// Ethernet has no length field: only prefixes shorter than the header fail.
	check("ethernet", hx("01005e010203 020000000001 0800"), func(b []byte) error { _, err := ParseEthernet(b); return err })
	check("ethernet vlan", hx("01005e010203 020000000001 8100 0064 0800"), func(b []byte) error { _, err := ParseEthernet(b); return err })
	// And the full IGMP/MLD frames through every layer.
	check("igmp frame all layers", igmpv3JoinFrame(), func(b []byte) error {
		e, err := ParseEthernet(b)
		if err != nil {
			return err
		}
		ip, err := ParseIPv4(e.Payload)
		if err != nil {
			return err
		}
		_, err = ParseIGMP(ip.Payload)
		return err
	})
}

func TestTruncatedErrorsAreTyped(t *testing.T) {
	_, err := ParseIPv4(udp4Packet()[:30])
	isParseErr(t, err, ErrTruncated)
	_, err = ParseIPv6(udp6Packet()[:50])
	isParseErr(t, err, ErrTruncated)
	_, err = ParseUDP(udp4Datagram()[:10], host4, group4)
	isParseErr(t, err, ErrTruncated)
	_, err = ParseEthernet(make([]byte, 13))
	isParseErr(t, err, ErrTruncated)
	_, err = ParseEthernet(hx("01005e010203 020000000001 8100 00"))
	isParseErr(t, err, ErrTruncated)
	_, err = ParseIGMP(make([]byte, 7))
	isParseErr(t, err, ErrTruncated)
	_, err = ParseMLD(make([]byte, 3))
	isParseErr(t, err, ErrTruncated)
}

func TestBadInput(t *testing.T) {
	ipv4 := func(s string) []byte { b := hx(s); return patch(b, 10, b[:int(b[0]&15)*4]) }
	cases := []struct {
		name  string
		parse func() error
		want  error
	}{
		// IPv4
		{"ipv4 version 6", func() error {
			_, err := ParseIPv4(ipv4("65 00 0014 0000 0000 40 11 0000 c0000201 ef010203"))
			return err
		}, ErrMalformed},
		{"ipv4 IHL 4", func() error {
			_, err := ParseIPv4(ipv4("44 00 0014 0000 0000 40 11 0000 c0000201 ef010203"))
			return err
		}, ErrMalformed},
		{"ipv4 IHL beyond data", func() error { _, err := ParseIPv4(hx("4f 00 0014 0000 0000 40 11 0000 c0000201 ef010203")); return err }, ErrTruncated},
		{"ipv4 total below IHL", func() error {
			_, err := ParseIPv4(ipv4("45 00 0010 0000 0000 40 11 0000 c0000201 ef010203"))
			return err
		}, ErrMalformed},
		{"ipv4 total beyond data", func() error {
			_, err := ParseIPv4(ipv4("45 00 0015 0000 0000 40 11 0000 c0000201 ef010203"))
			return err
		}, ErrTruncated},
		{"ipv4 bad checksum", func() error { b := udp4Packet(); b[11] ^= 1; _, err := ParseIPv4(b); return err }, ErrChecksum},
		{"ipv4 RA length 3", func() error {
			_, err := ParseIPv4(ipv4("46 00 0018 0000 0000 01 02 0000 c0000201 e0000016 94030000"))
			return err
		}, ErrMalformed},
		{"ipv4 option length 1", func() error {
			_, err := ParseIPv4(ipv4("46 00 0018 0000 0000 01 02 0000 c0000201 e0000016 07010000"))
			return err
		}, ErrMalformed},
		{"ipv4 option past header", func() error {
			_, err := ParseIPv4(ipv4("46 00 0018 0000 0000 01 02 0000 c0000201 e0000016 01010708"))
			return err
		}, ErrMalformed},
		{"ipv4 option without length", func() error {
			_, err := ParseIPv4(ipv4("46 00 0018 0000 0000 01 02 0000 c0000201 e0000016 01010194"))
			return err
		}, ErrMalformed},
		// IPv6
		{"ipv6 version 4", func() error { b := udp6Packet(); b[0] = 0x42; _, err := ParseIPv6(b); return err }, ErrMalformed},
		{"ipv6 payload length too long", func() error { b := udp6Packet(); b[5]++; _, err := ParseIPv6(b); return err }, ErrTruncated},
		{"ipv6 hbh beyond payload length", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen:]
			b[5] = 4 // payload length 4 < 8-byte HbH
			_, err := ParseIPv6(b)
			return err
		}, ErrTruncated},
		{"ipv6 hbh ext len beyond payload", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen:]
			b[41] = 10
			_, err := ParseIPv6(b)
			return err
		}, ErrTruncated},
		{"ipv6 RA option length 3", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen:]
			copy(b[40:], hx("3a00 0503 000000 00"))
			_, err := ParseIPv6(b)
			return err
		}, ErrMalformed},
		{"ipv6 option past header", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen:]
			copy(b[40:], hx("3a00 0502 0000 0109"))
			_, err := ParseIPv6(b)
			return err
		}, ErrMalformed},
		{"ipv6 unknown option must-discard", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen:]
			copy(b[40:], hx("3a00 c204 00000000")) // jumbo payload
			_, err := ParseIPv6(b)
			return err
		}, ErrUnsupported},
		{"ipv6 hbh not first", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen:]
			b[6] = ProtoDestOptions
			copy(b[40:], hx("00 00 01040000 0000")) // Dest Opts → HbH
			_, err := ParseIPv6(b)
			return err
		}, ErrMalformed},
		// UDP
		{"udp length below 8", func() error { b := udp4Datagram(); b[5] = 7; _, err := ParseUDP(b, host4, group4); return err }, ErrMalformed},
		{"udp length beyond data", func() error { b := udp4Datagram(); b[5] = 14; _, err := ParseUDP(b, host4, group4); return err }, ErrTruncated},
		{"udp bad checksum", func() error { b := udp4Datagram(); b[8] ^= 0x20; _, err := ParseUDP(b, host4, group4); return err }, ErrChecksum},
		{"udp wrong pseudo-header", func() error { _, err := ParseUDP(udp4Datagram(), host4, IPv4AllSystems); return err }, ErrChecksum},
		{"udp6 zero checksum", func() error { b := udp6Datagram(); b[6], b[7] = 0, 0; _, err := ParseUDP(b, host6, group6); return err }, ErrChecksum},
		{"udp mixed families", func() error { _, err := ParseUDP(udp4Datagram(), host4, group6); return err }, ErrMalformed},
		{"udp offloaded length beyond data", func() error {
			b := udp4Datagram()
			b[5] = 14
			_, err := ParseUDPOffloaded(b, host4, group4)
			return err
		}, ErrTruncated},
		{"udp6 offloaded zero checksum", func() error {
			b := udp6Datagram()
			b[6], b[7] = 0, 0
			_, err := ParseUDPOffloaded(b, host6, group6)
			return err
		}, ErrChecksum},
		// Ethernet
		{"ethernet 802.3 length", func() error { _, err := ParseEthernet(hx("01005e010203 020000000001 0040 00")); return err }, ErrUnsupported},
		// IGMP
		{"igmp bad checksum", func() error { b := igmpMsg("16 00 0000 ef010203"); b[7]++; _, err := ParseIGMP(b); return err }, ErrChecksum},
		{"igmp unknown type", func() error { _, err := ParseIGMP(igmpMsg("13 00 0000 ef010203")); return err }, ErrUnsupported},
		{"igmp query of 10 bytes", func() error { _, err := ParseIGMP(igmpMsg("11 64 0000 00000000 0000")); return err }, ErrMalformed},
		{"igmp v3 query sources past end", func() error { _, err := ParseIGMP(igmpMsg("11 64 0000 ef010203 02 7d 0002 c0000264")); return err }, ErrTruncated},
		{"igmp v3 query unicast group", func() error { _, err := ParseIGMP(igmpMsg("11 64 0000 c0000201 02 7d 0000")); return err }, ErrMalformed},
		{"igmp v2 report unicast group", func() error { _, err := ParseIGMP(igmpMsg("16 00 0000 c0000201")); return err }, ErrMalformed},
		{"igmp v3 report record count past end", func() error { _, err := ParseIGMP(igmpMsg("22 00 0000 0000 0002 04 00 0000 ef010203")); return err }, ErrTruncated},
		{"igmp v3 report source count past end", func() error {
			_, err := ParseIGMP(igmpMsg("22 00 0000 0000 0001 01 00 0002 ef010203 c0000264"))
			return err
		}, ErrTruncated},
		{"igmp v3 report aux past end", func() error {
			_, err := ParseIGMP(igmpMsg("22 00 0000 0000 0001 01 02 0001 ef010203 c0000264 deadbeef"))
			return err
		}, ErrTruncated},
		{"igmp v3 report unicast group", func() error { _, err := ParseIGMP(igmpMsg("22 00 0000 0000 0001 01 00 0000 c0000201")); return err }, ErrMalformed},
		// MLD
		{"mld unknown type", func() error { _, err := ParseMLD(mldMsg(host6, group6, "80 00 0000 0000 0001")); return err }, ErrUnsupported},
		{"mld query of 26 bytes", func() error {
			_, err := ParseMLD(mldMsg(router6, IPv6AllNodes, "82 00 0000 2710 0000 00000000000000000000000000000000 0000"))
			return err
		}, ErrMalformed},
		{"mld v2 query sources past end", func() error {
			_, err := ParseMLD(mldMsg(router6, IPv6AllNodes, "82 00 0000 2710 0000 ff0e0000000000000000000000010003 02 7d 0001"))
			return err
		}, ErrTruncated},
		{"mld v1 report non-multicast", func() error {
			_, err := ParseMLD(mldMsg(host6LL, group6, "83 00 0000 0000 0000 20010db8000000000000000000000001"))
			return err
		}, ErrMalformed},
		{"mld v2 report aux past end", func() error {
			_, err := ParseMLD(mldMsg(host6LL, MLDv2Routers, "8f 00 0000 0000 0001 04 01 0000 ff0e0000000000000000000000010003"))
			return err
		}, ErrTruncated},
		{"mld v2 report source count past end", func() error {
			_, err := ParseMLD(mldMsg(host6LL, MLDv2Routers, "8f 00 0000 0000 0001 04 00 0100 ff0e0000000000000000000000010003"))
			return err
		}, ErrTruncated},
		{"mld v2 report huge record count", func() error {
			_, err := ParseMLD(mldMsg(host6LL, MLDv2Routers, "8f 00 0000 0000 ffff"))
			return err
		}, ErrTruncated},
		{"icmpv6 bad checksum", func() error {
			b := mldv2JoinFrame()[EthernetHeaderLen+48:]
			return VerifyICMPv6(host6LL, MLDv2Routers, b[:len(b)-1])
		}, ErrChecksum},
		{"icmpv6 wrong pseudo-header", func() error {
			return VerifyICMPv6(host6, MLDv2Routers, mldv2JoinFrame()[EthernetHeaderLen+48:])
		}, ErrChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { isParseErr(t, c.parse(), c.want) })
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := ParseIPv4(make([]byte, 3))
	if got, want := err.Error(), "wire: ipv4 header: truncated: shorter than 20 bytes"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestEmitRefuses(t *testing.T) {
	many4 := make([]netip.Addr, (IGMPMaxLen-IGMPv3QueryHeaderLen)/4+1)
	for i := range many4 {
		many4[i] = srcA4
	}
	many6 := make([]netip.Addr, (MLDMaxLen-MLDv2QueryHeaderLen)/16+1)
	for i := range many6 {
		many6[i] = srcA6
	}
	big := make([]byte, 0x10000)
	cases := []struct {
		name string
		emit func() ([]byte, error)
	}{
		{"ipv4 v6 address", func() ([]byte, error) { return AppendIPv4(nil, IPv4{Src: host6, Dst: group4}, nil) }},
		{"ipv4 too long", func() ([]byte, error) { return AppendIPv4(nil, IPv4{Src: host4, Dst: group4}, big[:0xffff-19]) }},
		{"ipv4 options too long", func() ([]byte, error) {
			return AppendIPv4(nil, IPv4{Src: host4, Dst: group4, RouterAlert: true, Options: make([]byte, 40)}, nil)
		}},
		{"ipv4 malformed options", func() ([]byte, error) {
			return AppendIPv4(nil, IPv4{Src: host4, Dst: group4, Options: []byte{7, 9}}, nil)
		}},
		{"ipv4 RA in options but flag false", func() ([]byte, error) {
			return AppendIPv4(nil, IPv4{Src: host4, Dst: group4, Options: []byte{0x94, 4, 0, 0}}, nil)
		}},
		{"ipv4 fragment offset", func() ([]byte, error) {
			return AppendIPv4(nil, IPv4{Src: host4, Dst: group4, FragmentOffset: 0x2000}, nil)
		}},
		{"ipv6 v4 address", func() ([]byte, error) { return AppendIPv6(nil, IPv6{Src: host4, Dst: group6}, nil) }},
		{"ipv6 flow label", func() ([]byte, error) { return AppendIPv6(nil, IPv6{Src: host6, Dst: group6, FlowLabel: 1 << 20}, nil) }},
		{"ipv6 too long", func() ([]byte, error) {
			return AppendIPv6(nil, IPv6{Src: host6, Dst: group6, RouterAlert: true}, big[:0xffff-7])
		}},
		{"udp too long", func() ([]byte, error) { return AppendUDP(nil, host4, group4, 1, 2, big[:0xffff-7]) }},
		{"udp mixed family", func() ([]byte, error) { return AppendUDP(nil, host4, group6, 1, 2, nil) }},
		{"igmp v12 bad type", func() ([]byte, error) { return IGMPv12{Type: 0x22, Group: group4}.Append(nil) }},
		{"igmp v2 report unicast", func() ([]byte, error) { return IGMPv12{Type: IGMPTypeV2Report, Group: host4}.Append(nil) }},
		{"igmp v2 report v6 group", func() ([]byte, error) { return IGMPv12{Type: IGMPTypeV2Report, Group: group6}.Append(nil) }},
		{"igmp v3 query QRV 8", func() ([]byte, error) { return IGMPv3Query{Group: group4, QRV: 8}.Append(nil) }},
		{"igmp v3 query unicast group", func() ([]byte, error) { return IGMPv3Query{Group: host4}.Append(nil) }},
		{"igmp v3 query v6 source", func() ([]byte, error) { return IGMPv3Query{Group: group4, Sources: []netip.Addr{srcA6}}.Append(nil) }},
		{"igmp v3 query too many sources", func() ([]byte, error) { return IGMPv3Query{Group: group4, Sources: many4}.Append(nil) }},
		{"igmp v3 report too many sources", func() ([]byte, error) {
			return IGMPv3Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group4, Sources: many4}}}.Append(nil)
		}},
		{"igmp v3 report aux not multiple of 4", func() ([]byte, error) {
			return IGMPv3Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group4, AuxData: []byte{1, 2, 3}}}}.Append(nil)
		}},
		{"igmp v3 report aux too long", func() ([]byte, error) {
			return IGMPv3Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group4, AuxData: make([]byte, 1024)}}}.Append(nil)
		}},
		{"igmp v3 report unicast group", func() ([]byte, error) {
			return IGMPv3Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: host4}}}.Append(nil)
		}},
		{"igmp v3 report v6 group", func() ([]byte, error) {
			return IGMPv3Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group6}}}.Append(nil)
		}},
		{"igmp v3 report v6 source", func() ([]byte, error) {
			return IGMPv3Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group4, Sources: []netip.Addr{srcA6}}}}.Append(nil)
		}},
		{"mld v1 bad type", func() ([]byte, error) { return MLDv1{Type: 143, Group: group6}.Append(nil, host6LL, group6) }},
		{"mld v1 unicast group", func() ([]byte, error) { return MLDv1{Type: MLDTypeV1Report, Group: host6}.Append(nil, host6LL, group6) }},
		{"mld v1 v4 pseudo-header", func() ([]byte, error) { return MLDv1{Type: MLDTypeV1Report, Group: group6}.Append(nil, host4, group4) }},
		{"mld v2 query QRV 9", func() ([]byte, error) { return MLDv2Query{Group: group6, QRV: 9}.Append(nil, router6, group6) }},
		{"mld v2 query too many sources", func() ([]byte, error) { return MLDv2Query{Group: group6, Sources: many6}.Append(nil, router6, group6) }},
		{"mld v2 query v4-mapped source", func() ([]byte, error) {
			return MLDv2Query{Group: group6, Sources: []netip.Addr{mustAddr("::ffff:192.0.2.1")}}.Append(nil, router6, group6)
		}},
		{"mld v2 report v4 group", func() ([]byte, error) {
			return MLDv2Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group4}}}.Append(nil, host6LL, MLDv2Routers)
		}},
		{"mld v2 report aux 6 bytes", func() ([]byte, error) {
			return MLDv2Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group6, AuxData: make([]byte, 6)}}}.Append(nil, host6LL, MLDv2Routers)
		}},
		{"mld v2 report too many sources", func() ([]byte, error) {
			return MLDv2Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: group6, Sources: many6}}}.Append(nil, host6LL, MLDv2Routers)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.emit()
			if err == nil || !errors.Is(err, ErrCannotEncode) {
				t.Fatalf("err = %v, want ErrCannotEncode", err)
			}
			var ee *EncodeError
			if !errors.As(err, &ee) {
				t.Fatalf("%T is not *EncodeError", err)
			}
			if b != nil {
				t.Fatalf("returned %d bytes on error", len(b))
			}
		})
	}
}

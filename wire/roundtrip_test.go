package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestCode8Exhaustive(t *testing.T) {
	prev := uint32(0)
	for c := 0; c < 256; c++ {
		v := DecodeCode8(uint8(c))
		if c > 0 && v <= prev {
			t.Fatalf("DecodeCode8 not strictly increasing at %#x: %d <= %d", c, v, prev)
		}
		prev = v
		if got := EncodeCode8(v); got != uint8(c) {
			t.Fatalf("EncodeCode8(DecodeCode8(%#x)=%d) = %#x", c, v, got)
		}
		// One below the value encodes to the previous code (largest value <= v).
		if c > 0 {
			if got := EncodeCode8(v - 1); got != uint8(c-1) {
				t.Fatalf("EncodeCode8(%d) = %#x, want %#x", v-1, got, c-1)
			}
		}
	}
	// RFC 9776 §4.1.1 layout: 1 | exp | mant → (mant | 0x10) << (exp + 3).
	for _, c := range []struct {
		code uint8
		v    uint32
	}{{0, 0}, {127, 127}, {0x80, 128}, {0x8f, 248}, {0x90, 256}, {0xff, 31744}} {
		if got := DecodeCode8(c.code); got != c.v {
			t.Errorf("DecodeCode8(%#x) = %d, want %d", c.code, got, c.v)
		}
	}
	if EncodeCode8(1<<31) != 0xff || EncodeCode8(31744) != 0xff || EncodeCode8(31743) != 0xfe {
		t.Error("EncodeCode8 does not saturate at 0xff")
	}
	// Truncation picks the largest code whose value is <= v.
	for v := uint32(0); v < 40000; v++ {
		c := EncodeCode8(v)
		if DecodeCode8(c) > v || (c < 0xff && DecodeCode8(c+1) <= v) {
			t.Fatalf("EncodeCode8(%d) = %#x (value %d) is not the largest code <= v", v, c, DecodeCode8(c))
		}
	}
}

func TestCode16Sweep(t *testing.T) {
	prev := uint32(0)
	for c := 0; c < 65536; c++ {
		v := DecodeCode16(uint16(c))
		if c > 0 && v <= prev {
			t.Fatalf("DecodeCode16 not strictly increasing at %#x", c)
		}
		prev = v
		if got := EncodeCode16(v); got != uint16(c) {
			t.Fatalf("EncodeCode16(DecodeCode16(%#x)=%d) = %#x", c, v, got)
		}
		if c > 0 && EncodeCode16(v-1) != uint16(c-1) {
			t.Fatalf("EncodeCode16(%d) != %#x", v-1, c-1)
		}
	}
	for _, c := range []struct {
		code uint16
		v    uint32
	}{{10000, 10000}, {0x7fff, 32767}, {0x8000, 32768}, {0x8123, 35096}, {0xffff, 8387584}} {
		if got := DecodeCode16(c.code); got != c.v {
			t.Errorf("DecodeCode16(%#x) = %d, want %d", c.code, got, c.v)
		}
	}
	if EncodeCode16(1<<31) != 0xffff || EncodeCode16(MaxCode16Value-1) != 0xfffe {
		t.Error("EncodeCode16 does not saturate")
	}
}

func TestRecordTypeString(t *testing.T) {
	want := []string{"RecordType(0)", "IS_IN", "IS_EX", "TO_IN", "TO_EX", "ALLOW", "BLOCK", "RecordType(7)"}
	for i, w := range want {
		if got := RecordType(i).String(); got != w {
			t.Errorf("RecordType(%d).String() = %q, want %q", i, got, w)
		}
	}
}

func TestRoundTripIGMP(t *testing.T) {
	msgs := []IGMPMessage{
		IGMPv3Query{MaxRespCode: EncodeCode8(3000), Group: ssmGrp4, QRV: 7, QQIC: EncodeCode8(600), Sources: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")},
		IGMPv3Report{Records: []GroupRecord{{Type: RecordType(9), Group: group4, AuxData: make([]byte, 1020)}}},
		IGMPv12{Type: IGMPTypeV2Report, MaxRespTime: 7, Group: IPv4AllRouters},
	}
	for _, m := range msgs {
		prefix := []byte{0xaa, 0xbb}
		b, err := m.(igmpAppender).Append(prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:2], prefix) {
			t.Fatal("Append clobbered the prefix")
		}
		got, err := ParseIGMP(b[2:])
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n%+v\n%+v", got, m)
		}
	}
}

func TestRoundTripMLD(t *testing.T) {
	msgs := []MLDMessage{
		MLDv2Query{MaxRespCode: EncodeCode16(100000), Group: ssmGrp6, QRV: 1, QQIC: 10, Sources: []netip.Addr{srcA6}},
		MLDv2Report{Records: []GroupRecord{{Type: ModeIsInclude, Group: mustAddr("ff05::2"), Sources: []netip.Addr{srcA6, srcB6}, AuxData: auxWords}}},
		MLDv1{Type: MLDTypeQuery, MaxRespDelay: 0xffff, Group: group6},
	}
	for _, m := range msgs {
		b := mustMLD(t, m, host6LL, MLDv2Routers)
		if err := VerifyICMPv6(host6LL, MLDv2Routers, b); err != nil {
			t.Fatal(err)
		}
		if c := ICMPv6Checksum(host6LL, MLDv2Routers, b); c != uint16(b[2])<<8|uint16(b[3]) {
			t.Fatalf("ICMPv6Checksum = %#x, stored %#x", c, b[2:4])
		}
		got, err := ParseMLD(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n%+v\n%+v", got, m)
		}
	}
}

func TestRoundTripIPv4Options(t *testing.T) {
	// Raw options kept (NOP + unknown option 0x07 len 3), Router Alert added in front.
	h := IPv4{TOS: 1, ID: 2, MoreFragments: true, FragmentOffset: 0x1fff, TTL: 3, Protocol: 4, Src: host4, Dst: group4,
		RouterAlert: true, Options: []byte{1, 7, 3, 9}}
	b, err := AppendIPv4(nil, h, []byte("xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 28+3 || b[0] != 0x47 || !bytes.Equal(b[20:28], hx("94040000 01070309")) || h.HeaderLen() != 28 {
		t.Fatalf("header % x", b)
	}
	got, err := ParseIPv4(append(b, 0, 0, 0)) // link padding is ignored
	if err != nil {
		t.Fatal(err)
	}
	h.Options = b[20:28]
	h.Payload = []byte("xyz")
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("got %+v\nwant %+v", got, h)
	}
	// Re-emitting the parsed header does not add a second Router Alert.
	b2, err := AppendIPv4(nil, got, got.Payload)
	if err != nil || !bytes.Equal(b2, b) {
		t.Fatalf("re-emit % x, %v", b2, err)
	}
	// Odd option lengths are padded with EOL.
	b3, err := AppendIPv4(nil, IPv4{Src: host4, Dst: group4, Options: []byte{1}}, nil)
	if err != nil || len(b3) != 24 || !bytes.Equal(b3[20:], []byte{1, 0, 0, 0}) {
		t.Fatalf("padding % x %v", b3, err)
	}
}

func TestIPv6ExtensionChain(t *testing.T) {
	udp := udp6Datagram()
	// Hop-by-Hop (Pad1 ×6) → Routing (type 0, segments left 0) → Destination
	// Options (PadN) → UDP.
	chain := hx(`2b 00 000000000000
		3c 00 00 00 00000000
		11 00 01 04 00000000`)
	ip := hx("60000000 0000 00 40 20010db8000000000000000000000001 ff0e0000000000000000000000010003")
	ip[5] = byte(len(chain) + len(udp))
	p, err := ParseIPv6(cat(ip, chain, udp, []byte{0xee})) // trailing padding ignored
	if err != nil {
		t.Fatal(err)
	}
	if p.NextHeader != ProtoUDP || p.RouterAlert || p.Fragment || !bytes.Equal(p.Payload, udp) {
		t.Fatalf("got %+v", p)
	}
	// Fragment header: the walk stops there.
	frag := hx("11 00 0001 00000007")
	ip[6] = ProtoFragment
	ip[5] = byte(len(frag) + len(udp))
	p, err = ParseIPv6(cat(ip, frag, udp))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Fragment || p.NextHeader != ProtoFragment || !bytes.Equal(p.Payload, cat(frag, udp)) {
		t.Fatalf("fragment: %+v", p)
	}
	// Router Alert with a non-zero value; No Next Header.
	ip[6] = ProtoHopByHop
	ip[5] = 8
	p, err = ParseIPv6(cat(ip, hx("3b 00 0502 0001 0100")))
	if err != nil || !p.RouterAlert || p.RouterAlertValue != 1 || p.NextHeader != ProtoNoNext || len(p.Payload) != 0 {
		t.Fatalf("RA value: %+v %v", p, err)
	}
	// Emitting it again gives exactly NH 00 05 02 VV VV 01 00.
	b, err := AppendIPv6(nil, p, nil)
	if err != nil || !bytes.Equal(b[40:], hx("3b 00 0502 0001 0100")) || b[6] != 0 || b[5] != 8 {
		t.Fatalf("emit % x %v", b, err)
	}
}

func TestUDPZeroChecksum(t *testing.T) {
	// IPv4: zero checksum means none (RFC 768).
	b := udp4Datagram()
	b[6], b[7] = 0, 0
	b[8] ^= 0xff // payload changed, unchecked
	if _, err := ParseUDP(b, host4, group4); err != nil {
		t.Fatal(err)
	}
	// A datagram whose computed checksum is 0 is sent as 0xffff. Find a
	// payload making it so: choose the last two bytes to cancel the sum.
	for x := 0; x < 0x10000; x++ {
		p := []byte{byte(x >> 8), byte(x)}
		u, err := AppendUDP(nil, host4, group4, 1, 2, p)
		if err != nil {
			t.Fatal(err)
		}
		if refCsum(pseudo4(host4, group4, 10, 17), u[:6], []byte{0, 0}, p) == 0 {
			if u[6] != 0xff || u[7] != 0xff {
				t.Fatalf("computed zero checksum sent as % x", u[6:8])
			}
			if _, err := ParseUDP(u, host4, group4); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no payload with zero checksum found")
}

func TestAddressHelpers(t *testing.T) {
	cases := []struct {
		a                   string
		reportable, ssm, ll bool
		scope               int
	}{
		{"224.0.0.1", false, false, true, 2},
		{"224.0.0.22", false, false, true, 2},
		{"224.0.1.1", true, false, false, 14},
		{"239.1.2.3", true, false, false, 14},
		{"232.1.1.1", true, true, false, 14},
		{"192.0.2.1", false, false, false, -1},
		{"ff02::1", false, false, true, 2},
		{"ff02::16", true, false, true, 2},
		{"ff12::1", true, false, true, 2},
		{"ff01::5", false, false, false, 1},
		{"ff00::5", false, false, false, 0},
		{"ff05::2", true, false, false, 5},
		{"ff3e::8000:1", true, true, false, 14},
		{"ff32::8000:1", true, true, true, 2},
		{"ff3e:40:2001:db8::1", true, false, false, 14}, // unicast-prefix-based, not SSM
		{"2001:db8::1", false, false, false, -1},
		{"::ffff:239.1.2.3", false, false, false, -1},
	}
	for _, c := range cases {
		a := mustAddr(c.a)
		if IsReportable(a) != c.reportable || IsSSM(a) != c.ssm || IsLinkLocalMulticast(a) != c.ll || MulticastScope(a) != c.scope {
			t.Errorf("%s: reportable %v ssm %v ll %v scope %d; want %v %v %v %d", c.a,
				IsReportable(a), IsSSM(a), IsLinkLocalMulticast(a), MulticastScope(a), c.reportable, c.ssm, c.ll, c.scope)
		}
	}
	if IsReportable(netip.Addr{}) || IsSSM(netip.Addr{}) || MulticastScope(netip.Addr{}) != -1 {
		t.Error("zero Addr")
	}
}

func TestViews(t *testing.T) {
	v := IPv4View(igmpv3JoinFrame()[EthernetHeaderLen:])
	if v.HeaderLen() != 24 || v.TotalLen() != 40 || v.TTL() != 1 || v.Protocol() != ProtoIGMP || v.Src() != host4 || v.Dst() != IGMPv3Routers {
		t.Errorf("IPv4View wrong")
	}
	w := IPv6View(mldv2JoinFrame()[EthernetHeaderLen:])
	if w.PayloadLen() != 36 || w.NextHeader() != 0 || w.HopLimit() != 1 || w.Src() != host6LL || w.Dst() != MLDv2Routers {
		t.Errorf("IPv6View wrong")
	}
}

func TestNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc counts in -short")
	}
	f4, f6 := igmpv3JoinFrame(), mldv2JoinFrame()
	u4, u6 := udp4Packet(), udp6Packet()
	payload := []byte("hello")
	buf := make([]byte, 0, 256)
	var sink int
	check := func(name string, f func()) {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
	check("ParseEthernet", func() { e, _ := ParseEthernet(f4); sink += len(e.Payload) })
	check("ParseIPv4", func() { h, _ := ParseIPv4(f4[14:]); sink += len(h.Payload) })
	check("CheckEthernet", func() { e, _ := CheckEthernet(f4); sink += len(e.Payload()) })
	check("CheckIPv4", func() { v, _ := CheckIPv4(f4[14:]); sink += len(v.Payload()) })
	check("ParseIPv6", func() { h, _ := ParseIPv6(f6[14:]); sink += len(h.Payload) })
	check("ParseUDP v4", func() { u, _ := ParseUDP(u4[20:], host4, group4); sink += len(u.Payload) })
	check("ParseUDP v6", func() { u, _ := ParseUDP(u6[40:], host6, group6); sink += len(u.Payload) })
	check("AppendEthernet", func() { sink += len(AppendEthernet(buf[:0], hostMAC, hostMAC, EtherTypeIPv4)) })
	check("AppendIPv4", func() {
		b, _ := AppendIPv4(buf[:0], IPv4{TTL: 1, Protocol: ProtoUDP, Src: host4, Dst: group4, RouterAlert: true}, payload)
		sink += len(b)
	})
	check("AppendIPv6", func() {
		b, _ := AppendIPv6(buf[:0], IPv6{HopLimit: 1, NextHeader: ProtoUDP, Src: host6, Dst: group6, RouterAlert: true}, payload)
		sink += len(b)
	})
	check("AppendUDP", func() { b, _ := AppendUDP(buf[:0], host6, group6, 1, 2, payload); sink += len(b) })
	rep := IGMPv3Report{Records: []GroupRecord{{Type: ChangeToExclude, Group: group4, Sources: []netip.Addr{srcA4}}}}
	check("IGMPv3Report.Append", func() { b, _ := rep.Append(buf[:0]); sink += len(b) })
	mrep := MLDv2Report{Records: []GroupRecord{{Type: ChangeToExclude, Group: group6, Sources: []netip.Addr{srcA6}}}}
	check("MLDv2Report.Append", func() { b, _ := mrep.Append(buf[:0], host6LL, MLDv2Routers); sink += len(b) })
	_ = sink
}

// The IPv4 view's derived fields on a hand-built packet: Router Alert
// after a NOP, MF with a fragment offset, and link padding after the
// total length, which CheckIPv4 cuts off.
func TestIPv4ViewFields(t *testing.T) {
	b := hx("47 00 0020 0000 2005 01 11 0000 c0000201 ef010203 01 940400 00 000000 cafe babe 0000 0000")
	patch(b, 10, b[:28])
	v, err := CheckIPv4(append(b, 0xee, 0xee))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 32 || v.HeaderLen() != 28 || !v.MoreFragments() || v.FragmentOffset() != 5 || !v.RouterAlert() ||
		!bytes.Equal(v.Options(), hx("01 940400 00 000000")) || !bytes.Equal(v.Payload(), hx("cafe babe")) {
		t.Errorf("view % x: len %d, MF %v, offset %d, RA %v, options % x, payload % x",
			[]byte(v), len(v), v.MoreFragments(), v.FragmentOffset(), v.RouterAlert(), v.Options(), v.Payload())
	}
	// Without options: no Router Alert, empty options, not a fragment.
	v, err = CheckIPv4(udp4Packet())
	if err != nil || v.RouterAlert() || len(v.Options()) != 0 || v.MoreFragments() || v.FragmentOffset() != 0 {
		t.Errorf("plain packet: RA %v, options % x, MF %v, offset %d (%v)", v.RouterAlert(), v.Options(), v.MoreFragments(), v.FragmentOffset(), err)
	}
	// A bad packet is refused with the same error Parse gives.
	b[11] ^= 1
	if _, err := CheckIPv4(b); !errors.Is(err, ErrChecksum) {
		t.Errorf("bad checksum: %v", err)
	}
}

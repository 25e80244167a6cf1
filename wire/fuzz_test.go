package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func FuzzParseEthernet(f *testing.F) {
	f.Add(igmpv3JoinFrame())
	f.Add(mldv2JoinFrame())
	f.Add(hx("333300000016 020000000001 8100 2064 86dd beef"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEthernet(b)
		if err != nil {
			return
		}
		var out []byte
		if e.HasVLAN {
			out = AppendEthernetVLAN(nil, e.Dst, e.Src, e.VLANTag, e.EtherType)
		} else {
			out = AppendEthernet(nil, e.Dst, e.Src, e.EtherType)
		}
		frame := append(out, e.Payload...)
		e2, err := ParseEthernet(frame)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip: %+v → %+v, %v", e, e2, err)
		}
		// The view of the emitted frame reads what was emitted.
		v, err := CheckEthernet(frame)
		if err != nil || v.Dst() != e.Dst || v.Src() != e.Src || v.HasVLAN() != e.HasVLAN ||
			v.VLANTag() != e.VLANTag || v.EtherType() != e.EtherType || !bytes.Equal(v.Payload(), e.Payload) {
			t.Fatalf("view of % x disagrees with %+v (%v)", frame, e, err)
		}
	})
}

func FuzzParseIPv4(f *testing.F) {
	f.Add(igmpv3JoinFrame()[EthernetHeaderLen:])
	f.Add(udp4Packet())
	f.Add(hx("47 00 001c 0000 0000 01 02 bfc5 c0000201 e0000016 94040000 01070309"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseIPv4(b)
		if err != nil {
			return
		}
		out, err := AppendIPv4(nil, h, h.Payload)
		if err != nil {
			t.Fatalf("AppendIPv4(%+v): %v", h, err)
		}
		h2, err := ParseIPv4(out)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip:\n%+v\n%+v, %v", h, h2, err)
		}
		// The view of the emitted packet (AppendIPv4 writes the fields
		// itself) reads what was emitted, and Check trims as Parse does.
		v, err := CheckIPv4(append(out, 0, 0, 0))
		if err != nil || len(v) != len(out) || v.Src() != h.Src || v.Dst() != h.Dst || v.TTL() != h.TTL ||
			v.Protocol() != h.Protocol || v.MoreFragments() != h.MoreFragments || v.FragmentOffset() != h.FragmentOffset ||
			v.RouterAlert() != h.RouterAlert || !bytes.Equal(v.Options(), h.Options) || !bytes.Equal(v.Payload(), h.Payload) {
			t.Fatalf("view of % x disagrees with %+v (%v)", out, h, err)
		}
	})
}

func FuzzParseIPv6(f *testing.F) {
	f.Add(mldv2JoinFrame()[EthernetHeaderLen:])
	f.Add(udp6Packet())
	f.Add(hx("60000000 0010 2c 40 20010db8000000000000000000000001 ff0e0000000000000000000000010003 11 00 0001 00000007 0102030405060708"))
	f.Add(hx("60000000 0018 00 40 20010db8000000000000000000000001 ff0e0000000000000000000000010003 2b00000000000000 3c00000000000000 1100010400000000"))
	// Router Alert with a value other than MLD's 0 (RFC 2711 §2.1), then No
	// Next Header: the value must survive the round trip.
	f.Add(hx("60000000 0008 00 01 fe800000000000000000000000000001 ff020000000000000000000000000016 3b00 0502 0001 0100"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseIPv6(b)
		if err != nil {
			return
		}
		out, err := AppendIPv6(nil, h, h.Payload)
		if err != nil {
			t.Fatalf("AppendIPv6(%+v): %v", h, err)
		}
		h2, err := ParseIPv6(out)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip:\n%+v\n%+v, %v", h, h2, err)
		}
	})
}

func FuzzParseUDP(f *testing.F) {
	f.Add(udp4Datagram(), false)
	f.Add(udp6Datagram(), true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		src, dst := host4, group4
		if v6 {
			src, dst = host6, group6
		}
		u, err := ParseUDP(b, src, dst)
		// The offloaded parse differs only in not checking the
		// checksum's value.
		uo, erro := ParseUDPOffloaded(b, src, dst)
		switch {
		case err == nil && (erro != nil || !reflect.DeepEqual(u, uo)):
			t.Fatalf("ParseUDP accepted (%+v), ParseUDPOffloaded: %+v, %v", u, uo, erro)
		case err != nil && erro == nil && !errors.Is(err, ErrChecksum):
			t.Fatalf("ParseUDPOffloaded accepted what ParseUDP refused with %v", err)
		case err != nil && erro != nil && !errors.Is(err, ErrChecksum) && err.(*ParseError).Err != erro.(*ParseError).Err:
			t.Fatalf("refused for different reasons: %v / %v", err, erro)
		}
		if err != nil {
			return
		}
		out, err := AppendUDP(nil, src, dst, u.SrcPort, u.DstPort, u.Payload)
		if err != nil {
			t.Fatal(err)
		}
		u2, err := ParseUDP(out, src, dst)
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip: %+v → %+v, %v", u, u2, err)
		}
	})
}

func FuzzParseIGMP(f *testing.F) {
	for _, g := range igmpGoldens() {
		f.Add(g.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIGMP(b)
		if err != nil {
			return
		}
		out, err := m.(igmpAppender).Append(nil)
		if err != nil {
			t.Fatalf("Append(%+v): %v", m, err)
		}
		m2, err := ParseIGMP(out)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip:\n%+v\n%+v, %v", m, m2, err)
		}
	})
}

func FuzzParseMLD(f *testing.F) {
	for _, g := range mldGoldens() {
		f.Add(g.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMLD(b)
		if err != nil {
			return
		}
		out, err := m.(mldAppender).Append(nil, host6LL, MLDv2Routers)
		if err != nil {
			t.Fatalf("Append(%+v): %v", m, err)
		}
		if err := VerifyICMPv6(host6LL, MLDv2Routers, out); err != nil {
			t.Fatal(err)
		}
		m2, err := ParseMLD(out)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip:\n%+v\n%+v, %v", m, m2, err)
		}
	})
}

//go:build linux

package afpacket

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/mcstack/mcstack/wire"
)

// FuzzCompleteChecksum: completing a checksum never panics or reads out of
// bounds, changes at most the two checksum bytes, is idempotent, and when
// it reports success for a UDP datagram, that datagram's checksum verifies.
func FuzzCompleteChecksum(f *testing.F) {
	seed := func(dst netip.Addr, vlan bool) {
		u, _ := wire.AppendUDP(nil, src4, dst, 1, 2, []byte("seed payload"))
		if dst.Is6() {
			u, _ = wire.AppendUDP(nil, src6, dst, 1, 2, []byte("seed payload"))
		}
		var fr []byte
		et := uint16(wire.EtherTypeIPv4)
		if dst.Is6() {
			et = wire.EtherTypeIPv6
		}
		if vlan {
			fr = wire.AppendEthernetVLAN(nil, macD, macS, 7, et)
		} else {
			fr = wire.AppendEthernet(nil, macD, macS, et)
		}
		if dst.Is4() {
			fr, _ = wire.AppendIPv4(fr, wire.IPv4{TTL: 1, Protocol: wire.ProtoUDP, Src: src4, Dst: dst}, u)
		} else {
			fr, _ = wire.AppendIPv6(fr, wire.IPv6{HopLimit: 1, NextHeader: wire.ProtoUDP, Src: src6, Dst: dst}, u)
		}
		f.Add(fr)
	}
	seed(dst4, false)
	seed(dst4, true)
	seed(dst6, false)
	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		ok := completeChecksum(frame)
		diff := 0
		for i := range frame {
			if frame[i] != orig[i] {
				diff++
			}
		}
		if diff > 2 {
			t.Fatalf("completeChecksum changed %d bytes", diff)
		}
		once := bytes.Clone(frame)
		if completeChecksum(frame) != ok || !bytes.Equal(frame, once) {
			t.Fatal("completeChecksum is not idempotent")
		}
		if !ok {
			return
		}
		eth, err := wire.ParseEthernet(frame)
		if err != nil {
			t.Fatalf("completed a frame that does not parse: %v", err)
		}
		var src, dst netip.Addr
		var proto uint8
		var seg []byte
		switch eth.EtherType {
		case wire.EtherTypeIPv4:
			ip, err := wire.ParseIPv4(eth.Payload)
			if err != nil {
				return
			}
			src, dst, proto, seg = ip.Src, ip.Dst, ip.Protocol, ip.Payload
		case wire.EtherTypeIPv6:
			ip, err := wire.ParseIPv6(eth.Payload)
			if err != nil {
				return
			}
			src, dst, proto, seg = ip.Src, ip.Dst, ip.NextHeader, ip.Payload
		default:
			return
		}
		if proto != wire.ProtoUDP {
			return
		}
		if _, err := wire.ParseUDP(seg, src, dst); err != nil && bytes.Contains([]byte(err.Error()), []byte("checksum")) {
			t.Fatalf("completed UDP checksum does not verify: %v", err)
		}
	})
}

// FuzzParseAuxdata: any control data parses without panicking.
func FuzzParseAuxdata(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, oob []byte) {
		parseAuxdata(oob)
	})
}

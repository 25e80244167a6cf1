package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// ParseUDPOffloaded takes a datagram with a wrong checksum (the NIC or the
// kernel vouched for it) and parses it as ParseUDP parses a correct one.
func TestParseUDPOffloaded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		b        []byte
		src, dst netip.Addr
	}{
		{"udp4", udp4Datagram(), host4, group4},
		{"udp6", udp6Datagram(), host6, group6},
	} {
		want, err := ParseUDP(tc.b, tc.src, tc.dst)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		bad := bytes.Clone(tc.b)
		bad[6] ^= 0x5a
		if _, err := ParseUDP(bad, tc.src, tc.dst); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%s: ParseUDP of a bad checksum: %v", tc.name, err)
		}
		got, err := ParseUDPOffloaded(bad, tc.src, tc.dst)
		if err != nil || got.SrcPort != want.SrcPort || got.DstPort != want.DstPort || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("%s: ParseUDPOffloaded = %+v, %v; want %+v", tc.name, got, err, want)
		}
	}
}

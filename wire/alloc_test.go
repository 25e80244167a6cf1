package wire

import (
	"net/netip"
	"testing"
)

// Rejecting a frame must not allocate: the stack's receive path sees
// malformed and foreign frames at line rate (each rejection is a
// preallocated *ParseError).
func TestParseErrorsDoNotAllocate(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("239.1.1.1")
	stp := append(make([]byte, 12), 0x00, 0x26) // 802.3 length field (STP)
	badIPv4 := make([]byte, 20)
	badIPv4[0] = 0x45                                 // version 4, IHL 5, total length 0: below header length
	badUDP := []byte{0, 1, 0, 2, 0, 9, 0xde, 0xad, 0} // length 9, checksum wrong
	cases := []struct {
		name string
		f    func() error
	}{
		{"ethernet truncated", func() error { _, err := ParseEthernet(make([]byte, 5)); return err }},
		{"ethernet 802.3 length", func() error { _, err := ParseEthernet(stp); return err }},
		{"ipv4 truncated", func() error { _, err := ParseIPv4(badIPv4[:10]); return err }},
		{"ipv4 total length", func() error { _, err := ParseIPv4(badIPv4); return err }},
		{"ipv6 truncated", func() error { _, err := ParseIPv6(make([]byte, 39)); return err }},
		{"udp checksum", func() error { _, err := ParseUDP(badUDP, src, dst); return err }},
	}
	for _, c := range cases {
		if c.f() == nil {
			t.Fatalf("%s: parsed without error", c.name)
		}
		if n := testing.AllocsPerRun(100, func() { _ = c.f() }); n != 0 {
			t.Errorf("%s: %v allocations per rejection, want 0", c.name, n)
		}
	}
}

package wire

import "encoding/binary"

// Ethernet is a parsed Ethernet II frame header (IEEE 802.3 with an
// EtherType, RFC 894) with at most one IEEE 802.1Q tag removed.
type Ethernet struct {
	Dst, Src  MAC
	HasVLAN   bool
	VLANTag   uint16 // the whole 802.1Q TCI (PCP, DEI and VLAN ID) when HasVLAN
	EtherType uint16
	Payload   []byte // aliases the parsed buffer; may include link padding
}

// VLANID returns the 12-bit VLAN identifier of the tag.
func (e Ethernet) VLANID() uint16 { return e.VLANTag & 0x0fff }

// ParseEthernet parses an Ethernet II header. When the EtherType is 0x8100
// it removes exactly one 802.1Q tag and reports the inner EtherType (a
// second tag stays in place, EtherType 0x8100). EtherType values below
// 0x0600 are IEEE 802.3 length fields and are refused with ErrUnsupported.
// The FCS is not expected. It does not allocate.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetHeaderLen {
		return Ethernet{}, peEthernetHeaderTruncated
	}
	e := Ethernet{Dst: MAC(b[0:6]), Src: MAC(b[6:12]), EtherType: binary.BigEndian.Uint16(b[12:])}
	off := EthernetHeaderLen
	if e.EtherType == EtherTypeVLAN {
		if len(b) < EthernetHeaderLen+VLANTagLen {
			return Ethernet{}, peEthernet8021QTagTruncated
		}
		e.HasVLAN = true
		e.VLANTag = binary.BigEndian.Uint16(b[14:])
		e.EtherType = binary.BigEndian.Uint16(b[16:])
		off += VLANTagLen
	}
	if e.EtherType < 0x0600 {
		return Ethernet{}, peEthernetEthertypeUnsupported
	}
	e.Payload = b[off:]
	return e, nil
}

// AppendEthernet appends a 14-byte Ethernet II header to b; the caller
// appends the payload. It does not allocate when b has room.
func AppendEthernet(b []byte, dst, src MAC, etherType uint16) []byte {
	b, t := grow(b, EthernetHeaderLen)
	copy(t[0:6], dst[:])
	copy(t[6:12], src[:])
	binary.BigEndian.PutUint16(t[12:], etherType)
	return b
}

// AppendEthernetVLAN appends an 18-byte Ethernet II header with one 802.1Q
// tag whose TCI is tci. It does not allocate when b has room.
func AppendEthernetVLAN(b []byte, dst, src MAC, tci, etherType uint16) []byte {
	b, t := grow(b, EthernetHeaderLen+VLANTagLen)
	copy(t[0:6], dst[:])
	copy(t[6:12], src[:])
	binary.BigEndian.PutUint16(t[12:], EtherTypeVLAN)
	binary.BigEndian.PutUint16(t[14:], tci)
	binary.BigEndian.PutUint16(t[16:], etherType)
	return b
}

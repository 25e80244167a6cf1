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

// EthernetView is a zero-copy view of an Ethernet II frame. Accessors
// assume the view was validated by CheckEthernet.
type EthernetView []byte

func (v EthernetView) Dst() MAC { return MAC(v[0:6]) }
func (v EthernetView) Src() MAC { return MAC(v[6:12]) }

// HasVLAN reports an 802.1Q tag; VLANTag is its TCI (0 without a tag).
func (v EthernetView) HasVLAN() bool { return binary.BigEndian.Uint16(v[12:]) == EtherTypeVLAN }
func (v EthernetView) VLANTag() uint16 {
	if !v.HasVLAN() {
		return 0
	}
	return binary.BigEndian.Uint16(v[14:])
}

// EtherType returns the EtherType of the payload (inside the tag, if any).
func (v EthernetView) EtherType() uint16 {
	if v.HasVLAN() {
		return binary.BigEndian.Uint16(v[16:])
	}
	return binary.BigEndian.Uint16(v[12:])
}

// Payload returns what follows the header (and tag); it may include link
// padding.
func (v EthernetView) Payload() []byte {
	if v.HasVLAN() {
		return v[EthernetHeaderLen+VLANTagLen:]
	}
	return v[EthernetHeaderLen:]
}

// CheckEthernet validates an Ethernet II header. When the EtherType is
// 0x8100 the frame must hold exactly one 802.1Q tag's worth more (a second
// tag stays in the payload: EtherType 0x8100). EtherType values below
// 0x0600 are IEEE 802.3 length fields and are refused with ErrUnsupported.
// The FCS is not expected. It does not allocate.
func CheckEthernet(b []byte) (EthernetView, error) {
	if len(b) < EthernetHeaderLen {
		return nil, peEthernetHeaderTruncated
	}
	et := binary.BigEndian.Uint16(b[12:])
	if et == EtherTypeVLAN {
		if len(b) < EthernetHeaderLen+VLANTagLen {
			return nil, peEthernet8021QTagTruncated
		}
		et = binary.BigEndian.Uint16(b[16:])
	}
	if et < 0x0600 {
		return nil, peEthernetEthertypeUnsupported
	}
	return EthernetView(b), nil
}

// ParseEthernet parses an Ethernet II header as CheckEthernet validates it
// and removes at most one 802.1Q tag.
func ParseEthernet(b []byte) (Ethernet, error) {
	v, err := CheckEthernet(b)
	if err != nil {
		return Ethernet{}, err
	}
	return Ethernet{Dst: v.Dst(), Src: v.Src(), HasVLAN: v.HasVLAN(), VLANTag: v.VLANTag(), EtherType: v.EtherType(), Payload: v.Payload()}, nil
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

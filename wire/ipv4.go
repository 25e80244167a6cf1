package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 option types used here (RFC 791 §3.1, RFC 2113 §2.1).
const (
	ipv4OptEOL         = 0
	ipv4OptNOP         = 1
	ipv4OptRouterAlert = 148 // copied flag set, class 0, number 20
	ipv4MaxOptions     = 40  // IHL is at most 15 words
)

// IPv4 is a parsed IPv4 header (RFC 791 §3.1).
//
// Options holds all raw option bytes as they appear in the header (including
// a Router Alert option and trailing padding); RouterAlert reports whether a
// Router Alert option (RFC 2113) is among them. Options and Payload alias the
// parsed buffer.
type IPv4 struct {
	TOS            uint8
	ID             uint16
	DontFragment   bool
	MoreFragments  bool
	FragmentOffset uint16 // in 8-byte units
	TTL            uint8
	Protocol       uint8
	Src, Dst       netip.Addr
	RouterAlert    bool
	Options        []byte
	Payload        []byte
}

// IPv4View is a zero-copy view of an IPv4 packet. Accessors assume the view
// was validated by CheckIPv4 (or is at least 20 bytes; Options and Payload
// also need the header and total lengths to fit, as CheckIPv4 ensures).
//
// The receive path reads packets through views (CheckIPv4) instead of
// building an IPv4 value: the fields it needs are loaded from the packet
// where they are, with no copy of a 120-byte struct per packet.
type IPv4View []byte

func (v IPv4View) HeaderLen() int         { return int(v[0]&0x0f) * 4 }
func (v IPv4View) TotalLen() int          { return int(binary.BigEndian.Uint16(v[2:])) }
func (v IPv4View) TTL() uint8             { return v[8] }
func (v IPv4View) Protocol() uint8        { return v[9] }
func (v IPv4View) Src() netip.Addr        { return netip.AddrFrom4([4]byte(v[12:16])) }
func (v IPv4View) Dst() netip.Addr        { return netip.AddrFrom4([4]byte(v[16:20])) }
func (v IPv4View) HeaderChecksum() uint16 { return binary.BigEndian.Uint16(v[10:]) }

// MoreFragments reports the MF flag; FragmentOffset is in 8-byte units
// (RFC 791 §3.1). A packet with either set is a fragment.
func (v IPv4View) MoreFragments() bool    { return v[6]&0x20 != 0 }
func (v IPv4View) FragmentOffset() uint16 { return binary.BigEndian.Uint16(v[6:]) & 0x1fff }

// Options returns the options area (empty without options).
func (v IPv4View) Options() []byte { h := v.HeaderLen(); return v[IPv4HeaderLen:h:h] }

// Payload returns the payload, trimmed to the total length.
func (v IPv4View) Payload() []byte { t := v.TotalLen(); return v[v.HeaderLen():t:t] }

// RouterAlert reports whether the options carry a Router Alert option
// (RFC 2113); it walks the options, which CheckIPv4 validated.
func (v IPv4View) RouterAlert() bool { return hasIPv4RouterAlert(v.Options()) }

// walkIPv4Options validates an options area (RFC 791 §3.1: EOL, NOP, and
// type-length-value options whose length counts the type and length octets)
// and reports whether a Router Alert option (RFC 2113: type 148, length 4)
// is present. Bytes after EOL are padding and are not examined.
func walkIPv4Options(opts []byte) (ra bool, err error) {
	for i := 0; i < len(opts); {
		switch t := opts[i]; t {
		case ipv4OptEOL:
			return ra, nil
		case ipv4OptNOP:
			i++
		default:
			if i+1 >= len(opts) {
				return ra, peIpv4OptionLengthMalformed
			}
			l := int(opts[i+1])
			if l < 2 || i+l > len(opts) {
				return ra, peIpv4OptionLengthMalformed2
			}
			if t == ipv4OptRouterAlert {
				if l != 4 {
					return ra, peIpv4RouterAlertMalformed
				}
				ra = true
			}
			i += l
		}
	}
	return ra, nil
}

// CheckIPv4 validates an IPv4 header (RFC 791 §3.1) and returns the view
// of the packet trimmed to its total length; link-layer padding after it
// is cut off. It checks version 4, IHL >= 5, the total length against IHL
// and len(b), the header checksum, and the option encoding. It does not
// reassemble and does not allocate.
func CheckIPv4(b []byte) (IPv4View, error) {
	if len(b) < IPv4HeaderLen {
		return nil, peIpv4HeaderTruncated
	}
	if b[0]>>4 != 4 {
		return nil, peIpv4VersionMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return nil, peIpv4IHLMalformed
	}
	if len(b) < ihl {
		return nil, peIpv4OptionsTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total < ihl {
		return nil, peIpv4TotalLengthMalformed
	}
	if total > len(b) {
		return nil, peIpv4TotalLengthTruncated
	}
	if Checksum(b[:ihl], 0) != 0 {
		return nil, peIpv4HeaderChecksumChecksum
	}
	if ihl > IPv4HeaderLen {
		if _, err := walkIPv4Options(b[IPv4HeaderLen:ihl]); err != nil {
			return nil, err
		}
	}
	return IPv4View(b[:total:total]), nil
}

// ParseIPv4 parses an IPv4 header as CheckIPv4 validates it and returns
// its fields and the payload trimmed to the total length.
func ParseIPv4(b []byte) (IPv4, error) {
	v, err := CheckIPv4(b)
	if err != nil {
		return IPv4{}, err
	}
	ff := binary.BigEndian.Uint16(v[6:])
	h := IPv4{
		TOS:            v[1],
		ID:             binary.BigEndian.Uint16(v[4:]),
		DontFragment:   ff&0x4000 != 0,
		MoreFragments:  ff&0x2000 != 0,
		FragmentOffset: ff & 0x1fff,
		TTL:            v.TTL(),
		Protocol:       v.Protocol(),
		Src:            v.Src(),
		Dst:            v.Dst(),
		Payload:        v.Payload(),
	}
	if opts := v.Options(); len(opts) > 0 {
		h.Options = opts
		h.RouterAlert = hasIPv4RouterAlert(opts)
	}
	return h, nil
}

// HeaderLen returns the header length AppendIPv4 would emit for h.
func (h IPv4) HeaderLen() int {
	n := len(h.Options)
	if h.RouterAlert && !hasIPv4RouterAlert(h.Options) {
		n += 4
	}
	return IPv4HeaderLen + (n+3)&^3
}

func hasIPv4RouterAlert(opts []byte) bool {
	ra, err := walkIPv4Options(opts)
	return err == nil && ra
}

// AppendIPv4 appends an IPv4 header for h followed by payload to b and
// returns the extended slice. It fills in IHL, total length and the header
// checksum. When h.RouterAlert is set and h.Options does not already contain
// a Router Alert option, the option 94 04 00 00 (RFC 2113 §2.1) is emitted
// first; h.Options follows as raw bytes, and the options area is padded with
// zero (EOL) octets to a 4-byte boundary. h.Payload is ignored.
//
// It refuses non-IPv4 addresses, malformed or over-long (>40 bytes) options,
// options carrying Router Alert while h.RouterAlert is false, a fragment
// offset over 13 bits and a total length over 65535. b is not extended on
// error. It does not allocate when b has room.
func AppendIPv4(b []byte, h IPv4, payload []byte) ([]byte, error) {
	if !h.Src.Is4() || !h.Dst.Is4() {
		return b, eerr("ipv4", "source and destination must be IPv4 addresses")
	}
	if h.FragmentOffset > 0x1fff {
		return b, eerr("ipv4", "fragment offset %d exceeds 13 bits", h.FragmentOffset)
	}
	ra, err := walkIPv4Options(h.Options)
	if err != nil {
		return b, eerr("ipv4", "invalid options: %v", err)
	}
	if ra && !h.RouterAlert {
		return b, eerr("ipv4", "options contain router alert but RouterAlert is false")
	}
	addRA := h.RouterAlert && !ra
	optLen := len(h.Options)
	if addRA {
		optLen += 4
	}
	optLen = (optLen + 3) &^ 3
	if optLen > ipv4MaxOptions {
		return b, eerr("ipv4", "options of %d bytes exceed 40", optLen)
	}
	hl := IPv4HeaderLen + optLen
	total := hl + len(payload)
	if total > 0xffff {
		return b, eerr("ipv4", "total length %d exceeds 65535", total)
	}
	b, t := grow(b, total)
	t[0] = 0x40 | byte(hl/4)
	t[1] = h.TOS
	binary.BigEndian.PutUint16(t[2:], uint16(total))
	binary.BigEndian.PutUint16(t[4:], h.ID)
	ff := h.FragmentOffset
	if h.DontFragment {
		ff |= 0x4000
	}
	if h.MoreFragments {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(t[6:], ff)
	t[8] = h.TTL
	t[9] = h.Protocol
	t[10], t[11] = 0, 0
	s, d := h.Src.As4(), h.Dst.As4()
	copy(t[12:16], s[:])
	copy(t[16:20], d[:])
	o := t[IPv4HeaderLen:hl]
	n := 0
	if addRA {
		o[0], o[1], o[2], o[3] = ipv4OptRouterAlert, 4, 0, 0
		n = 4
	}
	n += copy(o[n:], h.Options)
	clear(o[n:])
	binary.BigEndian.PutUint16(t[10:], Checksum(t[:hl], 0))
	copy(t[hl:], payload)
	return b, nil
}

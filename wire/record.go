package wire

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// RecordType is the type of an IGMPv3 / MLDv2 group (multicast address)
// record (RFC 9776 §4.2.12, RFC 9777 §5.2.12).
type RecordType uint8

// Record types. 1–2 are Current-State, 3–4 Filter-Mode-Change and 5–6
// Source-List-Change records.
const (
	ModeIsInclude   RecordType = 1
	ModeIsExclude   RecordType = 2
	ChangeToInclude RecordType = 3
	ChangeToExclude RecordType = 4
	AllowNewSources RecordType = 5
	BlockOldSources RecordType = 6
)

func (t RecordType) String() string {
	switch t {
	case ModeIsInclude:
		return "IS_IN"
	case ModeIsExclude:
		return "IS_EX"
	case ChangeToInclude:
		return "TO_IN"
	case ChangeToExclude:
		return "TO_EX"
	case AllowNewSources:
		return "ALLOW"
	case BlockOldSources:
		return "BLOCK"
	}
	return "RecordType(" + strconv.Itoa(int(t)) + ")"
}

// GroupRecord is one IGMPv3 Group Record (RFC 9776 §4.2.4) or MLDv2
// Multicast Address Record (RFC 9777 §5.2.4). Group and Sources are IPv4
// addresses in IGMP and IPv6 addresses in MLD. AuxData is the raw auxiliary
// data; its length must be a multiple of 4 and at most 1020 bytes. Type is
// emitted as given so that tests can build records of unknown types; parsers
// keep unknown types too (receivers ignore them, RFC 9776 §4.2.12).
type GroupRecord struct {
	Type    RecordType
	Group   netip.Addr
	Sources []netip.Addr
	AuxData []byte
}

// Len returns the encoded size of r: 8 bytes of fixed fields including the
// group for IPv4 (4 + 4) or 20 for IPv6 (4 + 16), one address size per
// source, and the aux data. The family is taken from Group: Is4 means IPv4,
// anything else IPv6.
func (r GroupRecord) Len() int {
	as := addrSize(r.Group)
	return 4 + as*(1+len(r.Sources)) + len(r.AuxData)
}

func addrSize(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 16
}

func isMcast4(a netip.Addr) bool { return a.Is4() && a.IsMulticast() }

func isMcast6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() && a.As16()[0] == 0xff }

// checkRecord validates r for emission in layer ("igmp" with v4 true, or "mld").
func checkRecord(layer string, r *GroupRecord, v4 bool) error {
	if v4 && !isMcast4(r.Group) || !v4 && !isMcast6(r.Group) {
		return eerr(layer, "record group %v is not a multicast address of the right family", r.Group)
	}
	if len(r.Sources) > 0xffff {
		return eerr(layer, "record for %v has %d sources, more than 65535", r.Group, len(r.Sources))
	}
	for _, s := range r.Sources {
		if v4 && !s.Is4() || !v4 && (!s.Is6() || s.Is4In6()) {
			return eerr(layer, "record for %v: source %v has the wrong address family", r.Group, s)
		}
	}
	if len(r.AuxData)%4 != 0 {
		return eerr(layer, "record for %v: aux data length %d is not a multiple of 4", r.Group, len(r.AuxData))
	}
	if len(r.AuxData)/4 > 0xff {
		return eerr(layer, "record for %v: aux data length %d exceeds 1020", r.Group, len(r.AuxData))
	}
	return nil
}

// putRecord writes r (already validated) into t, which has r.Len() bytes.
func putRecord(t []byte, r *GroupRecord) {
	t[0] = byte(r.Type)
	t[1] = byte(len(r.AuxData) / 4)
	binary.BigEndian.PutUint16(t[2:], uint16(len(r.Sources)))
	o := 4 + putAddr(t[4:], r.Group)
	for _, s := range r.Sources {
		o += putAddr(t[o:], s)
	}
	copy(t[o:], r.AuxData)
}

func putAddr(t []byte, a netip.Addr) int {
	if a.Is4() {
		v := a.As4()
		return copy(t, v[:])
	}
	v := a.As16()
	return copy(t, v[:])
}

func getAddr(b []byte, size int) netip.Addr {
	if size == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}

// parseRecords parses n records of address size as (4 or 16) from b and
// returns them and the number of bytes consumed. Sources and AuxData are
// freshly allocated (Sources) or alias b (AuxData).
func parseRecords(layer string, b []byte, n int, as int) ([]GroupRecord, int, error) {
	// Each record is at least 4+as bytes; bound the allocation by what fits.
	if n*(4+as) > len(b) {
		return nil, 0, perr(layer, "number of records", ErrTruncated, "record count exceeds message length")
	}
	var recs []GroupRecord
	if n > 0 {
		recs = make([]GroupRecord, n)
	}
	off := 0
	for i := range recs {
		rb := b[off:]
		if len(rb) < 4+as {
			return nil, 0, perr(layer, "group record", ErrTruncated, "record header beyond end of message")
		}
		aux := int(rb[1]) * 4
		ns := int(binary.BigEndian.Uint16(rb[2:]))
		size := 4 + as*(1+ns) + aux
		if size > len(rb) {
			if 4+as*(1+ns) > len(rb) {
				return nil, 0, perr(layer, "number of sources", ErrTruncated, "record source count exceeds message length")
			}
			return nil, 0, perr(layer, "aux data len", ErrTruncated, "record aux data beyond end of message")
		}
		g := getAddr(rb[4:4+as], as)
		if as == 4 && !isMcast4(g) || as == 16 && !isMcast6(g) {
			return nil, 0, perr(layer, "group record", ErrMalformed, "record group is not a multicast address")
		}
		r := GroupRecord{Type: RecordType(rb[0]), Group: g}
		if ns > 0 {
			r.Sources = make([]netip.Addr, ns)
			for j := range r.Sources {
				o := 4 + as*(1+j)
				r.Sources[j] = getAddr(rb[o:o+as], as)
			}
		}
		if aux > 0 {
			o := 4 + as*(1+ns)
			r.AuxData = rb[o : o+aux : o+aux]
		}
		recs[i] = r
		off += size
	}
	return recs, off, nil
}

package wire

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// IGMP message types (RFC 1112 App. I, RFC 2236 §2.1, RFC 9776 §4).
const (
	IGMPTypeQuery    = 0x11
	IGMPTypeV1Report = 0x12
	IGMPTypeV2Report = 0x16
	IGMPTypeV2Leave  = 0x17
	IGMPTypeV3Report = 0x22
)

// IGMP message sizes.
const (
	IGMPv12Len            = 8  // RFC 2236 §2
	IGMPv3QueryHeaderLen  = 12 // RFC 9776 §4.1, without sources
	IGMPv3ReportHeaderLen = 8  // RFC 9776 §4.2, without records
	// IGMPMaxLen is the largest IGMP message Append emits: it must fit
	// in one IPv4 datagram behind a Router Alert header.
	IGMPMaxLen = 0xffff - IPv4RouterAlertHeaderLen
)

// IGMPMessage is one of IGMPv12, IGMPv3Query or IGMPv3Report.
type IGMPMessage interface{ IGMPType() uint8 }

// IGMPv12 is an 8-byte IGMPv1 (RFC 1112 App. I) or IGMPv2 (RFC 2236 §2)
// message: a query (Type 0x11; MaxRespTime 0 marks an IGMPv1 query, RFC 2236
// §4), a v1 or v2 report, or a v2 leave.
type IGMPv12 struct {
	Type        uint8
	MaxRespTime uint8 // in 1/10 s; 0 in IGMPv1 queries
	Group       netip.Addr
}

func (m IGMPv12) IGMPType() uint8 { return m.Type }

// IGMPv3Query is an IGMPv3 Membership Query (RFC 9776 §4.1). Group is the
// unspecified address (0.0.0.0) in a General Query.
type IGMPv3Query struct {
	MaxRespCode        uint8 // §4.1.1, see DecodeCode8
	Group              netip.Addr
	SuppressRouterSide bool  // S flag, §4.1.5
	QRV                uint8 // 0..7, §4.1.6
	QQIC               uint8 // §4.1.7, see DecodeCode8
	Sources            []netip.Addr
}

func (IGMPv3Query) IGMPType() uint8 { return IGMPTypeQuery }

// MaxRespTime is the Max Resp Code decoded, in units of 1/10 s (§4.1.1).
func (q IGMPv3Query) MaxRespTime() time.Duration {
	return time.Duration(DecodeCode8(q.MaxRespCode)) * 100 * time.Millisecond
}

// QueryInterval is the QQIC decoded, in seconds (§4.1.7).
func (q IGMPv3Query) QueryInterval() time.Duration {
	return time.Duration(DecodeCode8(q.QQIC)) * time.Second
}

// Len is the encoded size of q.
func (q IGMPv3Query) Len() int { return IGMPv3QueryHeaderLen + 4*len(q.Sources) }

// IGMPv3Report is an IGMPv3 Membership Report (RFC 9776 §4.2).
type IGMPv3Report struct {
	Records []GroupRecord
}

func (IGMPv3Report) IGMPType() uint8 { return IGMPTypeV3Report }

// Len is the encoded size of r.
func (r IGMPv3Report) Len() int {
	n := IGMPv3ReportHeaderLen
	for i := range r.Records {
		n += r.Records[i].Len()
	}
	return n
}

func validQueryGroup4(g netip.Addr) bool {
	return g.Is4() && (g.IsUnspecified() || g.IsMulticast())
}

// ParseIGMP parses the IGMP message b (the whole IPv4 payload). It verifies
// the checksum over all of b (RFC 9776 §4.1.2, §4.2.2) and tells versions
// apart by type and length (RFC 9776 §7.1): a query of exactly 8 bytes is
// IGMPv1/v2 (IGMPv12), one of 12 or more is IGMPv3, and one of 9–11 bytes is
// rejected with ErrMalformed. v1/v2 messages longer than 8 bytes are
// accepted and the excess ignored (RFC 2236 §2.5); bytes after the sources of
// a v3 query or after the last record of a v3 report are ignored as well.
// Groups must be multicast (or unspecified in queries). Unknown types return
// ErrUnsupported.
func ParseIGMP(b []byte) (IGMPMessage, error) {
	if len(b) < IGMPv12Len {
		return nil, peIgmpHeaderTruncated
	}
	t := b[0]
	switch t {
	case IGMPTypeQuery, IGMPTypeV1Report, IGMPTypeV2Report, IGMPTypeV2Leave, IGMPTypeV3Report:
	default:
		return nil, peIgmpTypeUnsupported
	}
	if t == IGMPTypeQuery && len(b) > IGMPv12Len && len(b) < IGMPv3QueryHeaderLen {
		return nil, peIgmpLengthMalformed
	}
	if Checksum(b, 0) != 0 {
		return nil, peIgmpChecksumChecksum
	}
	switch {
	case t == IGMPTypeQuery && len(b) >= IGMPv3QueryHeaderLen:
		return parseIGMPv3Query(b)
	case t == IGMPTypeV3Report:
		return parseIGMPv3Report(b)
	}
	m := IGMPv12{Type: t, MaxRespTime: b[1], Group: netip.AddrFrom4([4]byte(b[4:8]))}
	if t == IGMPTypeQuery && !validQueryGroup4(m.Group) || t != IGMPTypeQuery && !m.Group.IsMulticast() {
		return nil, peIgmpGroupAddressMalformed
	}
	return m, nil
}

func parseIGMPv3Query(b []byte) (IGMPMessage, error) {
	q := IGMPv3Query{
		MaxRespCode:        b[1],
		Group:              netip.AddrFrom4([4]byte(b[4:8])),
		SuppressRouterSide: b[8]&0x08 != 0,
		QRV:                b[8] & 0x07,
		QQIC:               b[9],
	}
	if !validQueryGroup4(q.Group) {
		return nil, peIgmpGroupAddressMalformed2
	}
	n := int(binary.BigEndian.Uint16(b[10:]))
	if IGMPv3QueryHeaderLen+4*n > len(b) {
		return nil, peIgmpNumberOfSourcesTruncated
	}
	if n > 0 {
		q.Sources = make([]netip.Addr, n)
		for i := range q.Sources {
			o := IGMPv3QueryHeaderLen + 4*i
			q.Sources[i] = netip.AddrFrom4([4]byte(b[o : o+4]))
		}
	}
	return q, nil
}

func parseIGMPv3Report(b []byte) (IGMPMessage, error) {
	n := int(binary.BigEndian.Uint16(b[6:]))
	recs, _, err := parseRecords("igmp", b[IGMPv3ReportHeaderLen:], n, 4)
	if err != nil {
		return nil, err
	}
	return IGMPv3Report{Records: recs}, nil
}

// Append appends the 8-byte message with its checksum to b. It refuses
// unknown types, non-IPv4 groups, and groups that are not multicast (or, in
// a query, unspecified).
func (m IGMPv12) Append(b []byte) ([]byte, error) {
	switch m.Type {
	case IGMPTypeQuery:
		if !validQueryGroup4(m.Group) {
			return b, eerr("igmp", "query group %v is neither 0.0.0.0 nor IPv4 multicast", m.Group)
		}
	case IGMPTypeV1Report, IGMPTypeV2Report, IGMPTypeV2Leave:
		if !isMcast4(m.Group) {
			return b, eerr("igmp", "group %v is not an IPv4 multicast address", m.Group)
		}
	default:
		return b, eerr("igmp", "type %#x is not an IGMPv1/v2 message type", m.Type)
	}
	b, t := grow(b, IGMPv12Len)
	t[0], t[1], t[2], t[3] = m.Type, m.MaxRespTime, 0, 0
	g := m.Group.As4()
	copy(t[4:], g[:])
	binary.BigEndian.PutUint16(t[2:], Checksum(t, 0))
	return b, nil
}

// Append appends the query with its checksum to b. It refuses a group that
// is neither 0.0.0.0 nor IPv4 multicast, non-IPv4 sources, QRV > 7, and more
// sources than fit in one message (IGMPMaxLen).
func (q IGMPv3Query) Append(b []byte) ([]byte, error) {
	if !validQueryGroup4(q.Group) {
		return b, eerr("igmp", "query group %v is neither 0.0.0.0 nor IPv4 multicast", q.Group)
	}
	if q.QRV > 7 {
		return b, eerr("igmp", "QRV %d does not fit in 3 bits", q.QRV)
	}
	if q.Len() > IGMPMaxLen {
		return b, eerr("igmp", "%d sources do not fit in one query", len(q.Sources))
	}
	for _, s := range q.Sources {
		if !s.Is4() {
			return b, eerr("igmp", "source %v is not an IPv4 address", s)
		}
	}
	b, t := grow(b, q.Len())
	t[0], t[1], t[2], t[3] = IGMPTypeQuery, q.MaxRespCode, 0, 0
	g := q.Group.As4()
	copy(t[4:], g[:])
	t[8] = q.QRV
	if q.SuppressRouterSide {
		t[8] |= 0x08
	}
	t[9] = q.QQIC
	binary.BigEndian.PutUint16(t[10:], uint16(len(q.Sources)))
	for i, s := range q.Sources {
		a := s.As4()
		copy(t[IGMPv3QueryHeaderLen+4*i:], a[:])
	}
	binary.BigEndian.PutUint16(t[2:], Checksum(t, 0))
	return b, nil
}

// Append appends the report with its checksum to b. It refuses records
// whose group is not IPv4 multicast, whose sources are not IPv4, whose aux
// data is not a multiple of 4 bytes (or over 1020), more than 65535 records,
// and a report longer than IGMPMaxLen. Callers split large reports using
// GroupRecord.Len and the interface MTU.
func (r IGMPv3Report) Append(b []byte) ([]byte, error) {
	if len(r.Records) > 0xffff {
		return b, eerr("igmp", "%d records exceed 65535", len(r.Records))
	}
	for i := range r.Records {
		if err := checkRecord("igmp", &r.Records[i], true); err != nil {
			return b, err
		}
	}
	n := r.Len()
	if n > IGMPMaxLen {
		return b, eerr("igmp", "report of %d bytes exceeds %d", n, IGMPMaxLen)
	}
	b, t := grow(b, n)
	t[0], t[1], t[2], t[3], t[4], t[5] = IGMPTypeV3Report, 0, 0, 0, 0, 0
	binary.BigEndian.PutUint16(t[6:], uint16(len(r.Records)))
	o := IGMPv3ReportHeaderLen
	for i := range r.Records {
		l := r.Records[i].Len()
		putRecord(t[o:o+l], &r.Records[i])
		o += l
	}
	binary.BigEndian.PutUint16(t[2:], Checksum(t, 0))
	return b, nil
}

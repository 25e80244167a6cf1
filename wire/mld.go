package wire

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// MLD message types, carried in ICMPv6 (RFC 2710 §3, RFC 9777 §5).
const (
	MLDTypeQuery    = 130
	MLDTypeV1Report = 131
	MLDTypeV1Done   = 132
	MLDTypeV2Report = 143
)

// MLD message sizes.
const (
	MLDv1Len             = 24 // RFC 2710 §3
	MLDv2QueryHeaderLen  = 28 // RFC 9777 §5.1, without sources
	MLDv2ReportHeaderLen = 8  // RFC 9777 §5.2, without records
	// MLDMaxLen is the largest MLD message Append emits: the IPv6 payload
	// length (65535) less the 8-byte Hop-by-Hop header.
	MLDMaxLen = 0xffff - (IPv6RouterAlertHeadersLen - IPv6HeaderLen)
)

// MLDMessage is one of MLDv1, MLDv2Query or MLDv2Report.
type MLDMessage interface{ MLDType() uint8 }

// MLDv1 is a 24-byte MLDv1 message (RFC 2710 §3): Multicast Listener Query
// (Type 130), Report (131) or Done (132).
type MLDv1 struct {
	Type         uint8
	MaxRespDelay uint16 // milliseconds
	Group        netip.Addr
}

func (m MLDv1) MLDType() uint8 { return m.Type }

// MLDv2Query is an MLDv2 Multicast Listener Query (RFC 9777 §5.1). Group is
// :: in a General Query.
type MLDv2Query struct {
	MaxRespCode        uint16 // §5.1.3, see DecodeCode16
	Group              netip.Addr
	SuppressRouterSide bool  // S flag, §5.1.7
	QRV                uint8 // 0..7, §5.1.8
	QQIC               uint8 // §5.1.9, see DecodeCode8
	Sources            []netip.Addr
}

func (MLDv2Query) MLDType() uint8 { return MLDTypeQuery }

// MaxRespDelay is the Maximum Response Code decoded, in milliseconds (§5.1.3).
func (q MLDv2Query) MaxRespDelay() time.Duration {
	return time.Duration(DecodeCode16(q.MaxRespCode)) * time.Millisecond
}

// QueryInterval is the QQIC decoded, in seconds (§5.1.9).
func (q MLDv2Query) QueryInterval() time.Duration {
	return time.Duration(DecodeCode8(q.QQIC)) * time.Second
}

// Len is the encoded size of q.
func (q MLDv2Query) Len() int { return MLDv2QueryHeaderLen + 16*len(q.Sources) }

// MLDv2Report is an MLDv2 Multicast Listener Report (RFC 9777 §5.2) whose
// records carry IPv6 groups and sources.
type MLDv2Report struct {
	Records []GroupRecord
}

func (MLDv2Report) MLDType() uint8 { return MLDTypeV2Report }

// Len is the encoded size of r.
func (r MLDv2Report) Len() int {
	n := MLDv2ReportHeaderLen
	for i := range r.Records {
		n += r.Records[i].Len()
	}
	return n
}

func validQueryGroup6(g netip.Addr) bool {
	return g.Is6() && !g.Is4In6() && (g.IsUnspecified() || g.As16()[0] == 0xff)
}

// ParseMLD parses the MLD message b (the whole ICMPv6 message). It does not
// verify the checksum, which needs the pseudo-header: call VerifyICMPv6
// first. Versions are told apart by type and length (RFC 9777 §8.1): a
// query of exactly 24 bytes is MLDv1, one of 28 or more is MLDv2, and one of
// 25–27 bytes is rejected with ErrMalformed. MLDv1 messages longer than 24
// bytes are accepted, as is data after the sources of a query or after the
// last record of a report. The Code field is ignored. Groups must be
// multicast (or :: in queries). Other ICMPv6 types return ErrUnsupported.
func ParseMLD(b []byte) (MLDMessage, error) {
	if len(b) < 4 {
		return nil, peMldHeaderTruncated
	}
	t := b[0]
	switch t {
	case MLDTypeV2Report:
		if len(b) < MLDv2ReportHeaderLen {
			return nil, peMldHeaderTruncated2
		}
		n := int(binary.BigEndian.Uint16(b[6:]))
		recs, _, err := parseRecords("mld", b[MLDv2ReportHeaderLen:], n, 16)
		if err != nil {
			return nil, err
		}
		return MLDv2Report{Records: recs}, nil
	case MLDTypeQuery, MLDTypeV1Report, MLDTypeV1Done:
	default:
		return nil, peMldTypeUnsupported
	}
	if len(b) < MLDv1Len {
		return nil, peMldHeaderTruncated3
	}
	if t == MLDTypeQuery && len(b) > MLDv1Len {
		if len(b) < MLDv2QueryHeaderLen {
			return nil, peMldLengthMalformed
		}
		return parseMLDv2Query(b)
	}
	m := MLDv1{Type: t, MaxRespDelay: binary.BigEndian.Uint16(b[4:]), Group: netip.AddrFrom16([16]byte(b[8:24]))}
	if t == MLDTypeQuery && !validQueryGroup6(m.Group) || t != MLDTypeQuery && !isMcast6(m.Group) {
		return nil, peMldMulticastAddressMalformed
	}
	return m, nil
}

func parseMLDv2Query(b []byte) (MLDMessage, error) {
	q := MLDv2Query{
		MaxRespCode:        binary.BigEndian.Uint16(b[4:]),
		Group:              netip.AddrFrom16([16]byte(b[8:24])),
		SuppressRouterSide: b[24]&0x08 != 0,
		QRV:                b[24] & 0x07,
		QQIC:               b[25],
	}
	if !validQueryGroup6(q.Group) {
		return nil, peMldMulticastAddressMalformed2
	}
	n := int(binary.BigEndian.Uint16(b[26:]))
	if MLDv2QueryHeaderLen+16*n > len(b) {
		return nil, peMldNumberOfSourcesTruncated
	}
	if n > 0 {
		q.Sources = make([]netip.Addr, n)
		for i := range q.Sources {
			o := MLDv2QueryHeaderLen + 16*i
			q.Sources[i] = netip.AddrFrom16([16]byte(b[o : o+16]))
		}
	}
	return q, nil
}

func checkPseudo(src, dst netip.Addr) error {
	if !src.Is6() || !dst.Is6() {
		return eerr("mld", "source and destination must be IPv6 addresses")
	}
	return nil
}

// Append appends the message to b with the ICMPv6 checksum for the
// pseudo-header src, dst. It refuses unknown types, non-IPv6 addresses and
// groups that are not multicast (or, in a query, ::).
func (m MLDv1) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := checkPseudo(src, dst); err != nil {
		return b, err
	}
	switch m.Type {
	case MLDTypeQuery:
		if !validQueryGroup6(m.Group) {
			return b, eerr("mld", "query group %v is neither :: nor IPv6 multicast", m.Group)
		}
	case MLDTypeV1Report, MLDTypeV1Done:
		if !isMcast6(m.Group) {
			return b, eerr("mld", "group %v is not an IPv6 multicast address", m.Group)
		}
	default:
		return b, eerr("mld", "type %d is not an MLDv1 message type", m.Type)
	}
	b, t := grow(b, MLDv1Len)
	t[0], t[1], t[2], t[3] = m.Type, 0, 0, 0
	binary.BigEndian.PutUint16(t[4:], m.MaxRespDelay)
	t[6], t[7] = 0, 0
	g := m.Group.As16()
	copy(t[8:], g[:])
	binary.BigEndian.PutUint16(t[2:], ICMPv6Checksum(src, dst, t))
	return b, nil
}

// Append appends the query to b with the ICMPv6 checksum for src, dst. It
// refuses a group that is neither :: nor IPv6 multicast, non-IPv6 sources,
// QRV > 7 and more sources than fit (MLDMaxLen).
func (q MLDv2Query) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := checkPseudo(src, dst); err != nil {
		return b, err
	}
	if !validQueryGroup6(q.Group) {
		return b, eerr("mld", "query group %v is neither :: nor IPv6 multicast", q.Group)
	}
	if q.QRV > 7 {
		return b, eerr("mld", "QRV %d does not fit in 3 bits", q.QRV)
	}
	if q.Len() > MLDMaxLen {
		return b, eerr("mld", "%d sources do not fit in one query", len(q.Sources))
	}
	for _, s := range q.Sources {
		if !s.Is6() || s.Is4In6() {
			return b, eerr("mld", "source %v is not an IPv6 address", s)
		}
	}
	b, t := grow(b, q.Len())
	t[0], t[1], t[2], t[3] = MLDTypeQuery, 0, 0, 0
	binary.BigEndian.PutUint16(t[4:], q.MaxRespCode)
	t[6], t[7] = 0, 0
	g := q.Group.As16()
	copy(t[8:], g[:])
	t[24] = q.QRV
	if q.SuppressRouterSide {
		t[24] |= 0x08
	}
	t[25] = q.QQIC
	binary.BigEndian.PutUint16(t[26:], uint16(len(q.Sources)))
	for i, s := range q.Sources {
		a := s.As16()
		copy(t[MLDv2QueryHeaderLen+16*i:], a[:])
	}
	binary.BigEndian.PutUint16(t[2:], ICMPv6Checksum(src, dst, t))
	return b, nil
}

// Append appends the report to b with the ICMPv6 checksum for src, dst. It
// refuses non-IPv6 addresses, records whose group is not IPv6 multicast,
// whose sources are not IPv6 or whose aux data is not a multiple of 4 bytes
// (or over 1020), more than 65535 records and reports over MLDMaxLen.
func (r MLDv2Report) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := checkPseudo(src, dst); err != nil {
		return b, err
	}
	if len(r.Records) > 0xffff {
		return b, eerr("mld", "%d records exceed 65535", len(r.Records))
	}
	for i := range r.Records {
		if err := checkRecord("mld", &r.Records[i], false); err != nil {
			return b, err
		}
	}
	n := r.Len()
	if n > MLDMaxLen {
		return b, eerr("mld", "report of %d bytes exceeds %d", n, MLDMaxLen)
	}
	b, t := grow(b, n)
	t[0], t[1], t[2], t[3], t[4], t[5] = MLDTypeV2Report, 0, 0, 0, 0, 0
	binary.BigEndian.PutUint16(t[6:], uint16(len(r.Records)))
	o := MLDv2ReportHeaderLen
	for i := range r.Records {
		l := r.Records[i].Len()
		putRecord(t[o:o+l], &r.Records[i])
		o += l
	}
	binary.BigEndian.PutUint16(t[2:], ICMPv6Checksum(src, dst, t))
	return b, nil
}

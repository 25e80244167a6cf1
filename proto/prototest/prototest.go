// Package prototest helps test code that drives or observes the IGMP and
// MLD engines of package proto: it builds queries and other hosts' reports
// as the stack's receive path hands them to an engine (proto.Received), and
// decodes the packets an engine emits (proto.Packet) into a Report that is
// easy to assert on.
//
// Received messages come from a fixed querier (IGMPQuerier, MLDQuerier) or
// other host (IGMPHost, MLDHost), with hop limit 1 and Router Alert set, and
// are sent to the destination the RFCs prescribe: General Queries to
// 224.0.0.1 / ff02::1, specific queries and older-version reports to their
// group. Tests that need a bad message change the returned value's fields.
package prototest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/wire"
)

// Addresses the builders use as message sources.
var (
	IGMPQuerier = netip.MustParseAddr("192.0.2.1")
	IGMPHost    = netip.MustParseAddr("192.0.2.77")
	MLDQuerier  = netip.MustParseAddr("fe80::1")
	MLDHost     = netip.MustParseAddr("fe80::77")
)

func received(src, dst netip.Addr, payload []byte) proto.Received {
	return proto.Received{Src: src, Dst: dst, HopLimit: 1, RouterAlert: true, Payload: payload}
}

func queryDst(group, all netip.Addr) netip.Addr {
	if group.IsUnspecified() || !group.IsValid() {
		return all
	}
	return group
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(fmt.Sprintf("prototest: cannot encode: %v", err))
	}
	return b
}

// IGMPv3Query returns an IGMPv3 query (RFC 9776 §4.1): General when group is
// 0.0.0.0 (or the zero Addr), Group-Specific, or Group-and-Source-Specific
// with sources. maxResp is encoded with wire.EncodeCode8 (rounding down to a
// representable value); QRV is 2 and QQIC 125 s. It panics when the query
// cannot be encoded (a test bug).
func IGMPv3Query(group netip.Addr, maxResp time.Duration, sources ...netip.Addr) proto.Received {
	if !group.IsValid() {
		group = netip.IPv4Unspecified()
	}
	return IGMPv3QueryMsg(wire.IGMPv3Query{
		MaxRespCode: wire.EncodeCode8(uint32(maxResp / (100 * time.Millisecond))),
		Group:       group, QRV: 2, QQIC: 125, Sources: sources,
	})
}

// IGMPv3QueryMsg returns q as received from IGMPQuerier, for tests that set
// the S flag, QRV or QQIC; a zero Group means 0.0.0.0. It panics when q
// cannot be encoded.
func IGMPv3QueryMsg(q wire.IGMPv3Query) proto.Received {
	if !q.Group.IsValid() {
		q.Group = netip.IPv4Unspecified()
	}
	return received(IGMPQuerier, queryDst(q.Group, wire.IPv4AllSystems), must(q.Append(nil)))
}

// IGMPv2Query returns an IGMPv2 query (RFC 2236 §2) with Max Response Time
// maxResp in tenths of a second (at least 1, at most 25.5 s); group 0.0.0.0
// or the zero Addr makes it a General Query.
func IGMPv2Query(group netip.Addr, maxResp time.Duration) proto.Received {
	if !group.IsValid() {
		group = netip.IPv4Unspecified()
	}
	code := min(max(maxResp/(100*time.Millisecond), 1), 255)
	m := wire.IGMPv12{Type: wire.IGMPTypeQuery, MaxRespTime: uint8(code), Group: group}
	return received(IGMPQuerier, queryDst(group, wire.IPv4AllSystems), must(m.Append(nil)))
}

// IGMPv1Query returns an IGMPv1 General Query (RFC 1112 App. I: Max Resp
// Code 0). As IGMPv1 routers did, it carries no Router Alert option.
func IGMPv1Query() proto.Received {
	m := wire.IGMPv12{Type: wire.IGMPTypeQuery, Group: netip.IPv4Unspecified()}
	r := received(IGMPQuerier, wire.IPv4AllSystems, must(m.Append(nil)))
	r.RouterAlert = false
	return r
}

// IGMPReport returns another host's IGMPv1 (version 1) or IGMPv2 report for
// group, sent to the group.
func IGMPReport(version int, group netip.Addr) proto.Received {
	t := uint8(wire.IGMPTypeV2Report)
	if version == 1 {
		t = wire.IGMPTypeV1Report
	}
	m := wire.IGMPv12{Type: t, Group: group}
	return received(IGMPHost, group, must(m.Append(nil)))
}

// MLDv2Query returns an MLDv2 query (RFC 9777 §5.1) from MLDQuerier: General
// when group is :: (or the zero Addr), Multicast Address Specific, or
// Multicast Address and Source Specific with sources. maxResp is encoded with
// wire.EncodeCode16 in milliseconds; QRV is 2 and QQIC 125 s. It panics when
// the query cannot be encoded.
func MLDv2Query(group netip.Addr, maxResp time.Duration, sources ...netip.Addr) proto.Received {
	if !group.IsValid() {
		group = netip.IPv6Unspecified()
	}
	return MLDv2QueryMsg(wire.MLDv2Query{
		MaxRespCode: wire.EncodeCode16(uint32(maxResp / time.Millisecond)),
		Group:       group, QRV: 2, QQIC: 125, Sources: sources,
	})
}

// MLDv2QueryMsg returns q as received from MLDQuerier, with a correct
// ICMPv6 checksum; a zero Group means ::. It panics when q cannot be
// encoded.
func MLDv2QueryMsg(q wire.MLDv2Query) proto.Received {
	if !q.Group.IsValid() {
		q.Group = netip.IPv6Unspecified()
	}
	dst := queryDst(q.Group, wire.IPv6AllNodes)
	return received(MLDQuerier, dst, must(q.Append(nil, MLDQuerier, dst)))
}

// MLDv1Query returns an MLDv1 query (RFC 2710 §3) with Maximum Response
// Delay maxResp (milliseconds, at most 65.535 s); group :: or the zero Addr
// makes it a General Query.
func MLDv1Query(group netip.Addr, maxResp time.Duration) proto.Received {
	if !group.IsValid() {
		group = netip.IPv6Unspecified()
	}
	dst := queryDst(group, wire.IPv6AllNodes)
	m := wire.MLDv1{Type: wire.MLDTypeQuery, MaxRespDelay: uint16(min(maxResp/time.Millisecond, 0xffff)), Group: group}
	return received(MLDQuerier, dst, must(m.Append(nil, MLDQuerier, dst)))
}

// MLDReport returns another host's MLDv1 report for group, sent to the group.
func MLDReport(group netip.Addr) proto.Received {
	m := wire.MLDv1{Type: wire.MLDTypeV1Report, Group: group}
	return received(MLDHost, group, must(m.Append(nil, MLDHost, group)))
}

// Sentinel errors of Decode; other failures wrap the wire package's parse
// errors.
var (
	// ErrNotReport: the packet is not an IGMP/MLD report, leave or done.
	ErrNotReport = errors.New("prototest: not a group membership report")
	// ErrDstMismatch: Packet.Dst differs from the IP destination address.
	ErrDstMismatch = errors.New("prototest: packet Dst differs from the IP destination")
)

// Record is one group record of an IGMPv3 / MLDv2 report, with its sources
// sorted.
type Record struct {
	Type    wire.RecordType
	Group   netip.Addr
	Sources []netip.Addr
}

// String formats r like "TO_EX(239.1.1.1){192.0.2.9,192.0.2.10}".
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v(%v){", r.Type, r.Group)
	for i, s := range r.Sources {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.String())
	}
	b.WriteByte('}')
	return b.String()
}

// Report is a decoded emitted packet.
type Report struct {
	Family string // "igmp" or "mld"
	// Version of the message: IGMP 1, 2 or 3, MLD 1 or 2. A Leave is
	// version 2 (IGMP) and a Done version 1 (MLD).
	Version int
	// Leave is set for an IGMPv2 Leave Group or MLDv1 Done message.
	Leave bool
	// Group of an IGMPv1/v2 or MLDv1 message; zero for version 3 / MLDv2.
	Group netip.Addr
	// Records of an IGMPv3 / MLDv2 report, in message order.
	Records []Record
	Src     netip.Addr
	Dst     netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit; TOS the IPv4 type of service.
	TTL         uint8
	TOS         uint8
	RouterAlert bool
	// Size is the length of the whole IP packet.
	Size int
}

// String summarizes r, e.g. "igmpv3 224.0.0.22 [TO_EX(239.1.1.1){}]" or
// "mldv1-done ff02::2 ff15::1".
func (r Report) String() string {
	kind := fmt.Sprintf("%sv%d", r.Family, r.Version)
	if r.Leave {
		if r.Family == "mld" {
			kind += "-done"
		} else {
			kind += "-leave"
		}
	}
	if r.Records == nil && r.Group.IsValid() {
		return fmt.Sprintf("%s %v %v", kind, r.Dst, r.Group)
	}
	recs := make([]string, len(r.Records))
	for i, x := range r.Records {
		recs[i] = x.String()
	}
	return fmt.Sprintf("%s %v [%s]", kind, r.Dst, strings.Join(recs, " "))
}

// Decode parses an emitted packet: the IPv4 header (and IGMP message, whose
// checksum it verifies) or the IPv6 headers (and MLD message, verifying the
// ICMPv6 checksum). Queries and other messages return ErrNotReport.
func Decode(p proto.Packet) (Report, error) {
	if len(p.Data) == 0 {
		return Report{}, fmt.Errorf("prototest: empty packet: %w", ErrNotReport)
	}
	var r Report
	var err error
	switch p.Data[0] >> 4 {
	case 4:
		r, err = decodeIGMP(p.Data)
	case 6:
		r, err = decodeMLD(p.Data)
	default:
		return Report{}, fmt.Errorf("prototest: IP version %d: %w", p.Data[0]>>4, ErrNotReport)
	}
	if err != nil {
		return Report{}, err
	}
	if r.Dst != p.Dst {
		return Report{}, fmt.Errorf("prototest: Dst %v, IP destination %v: %w", p.Dst, r.Dst, ErrDstMismatch)
	}
	r.Size = len(p.Data)
	return r, nil
}

func records(recs []wire.GroupRecord) []Record {
	out := make([]Record, len(recs))
	for i, x := range recs {
		srcs := slices.Clone(x.Sources)
		slices.SortFunc(srcs, netip.Addr.Compare)
		out[i] = Record{Type: x.Type, Group: x.Group, Sources: srcs}
	}
	return out
}

func decodeIGMP(b []byte) (Report, error) {
	ip, err := wire.ParseIPv4(b)
	if err != nil {
		return Report{}, fmt.Errorf("prototest: IPv4 header: %w", err)
	}
	if ip.Protocol != wire.ProtoIGMP {
		return Report{}, fmt.Errorf("prototest: IP protocol %d: %w", ip.Protocol, ErrNotReport)
	}
	r := Report{Family: "igmp", Src: ip.Src, Dst: ip.Dst, TTL: ip.TTL, TOS: ip.TOS, RouterAlert: ip.RouterAlert}
	m, err := wire.ParseIGMP(ip.Payload)
	if err != nil {
		return Report{}, fmt.Errorf("prototest: IGMP message: %w", err)
	}
	switch m := m.(type) {
	case wire.IGMPv3Report:
		r.Version, r.Records = 3, records(m.Records)
	case wire.IGMPv12:
		switch m.Type {
		case wire.IGMPTypeV1Report:
			r.Version = 1
		case wire.IGMPTypeV2Report:
			r.Version = 2
		case wire.IGMPTypeV2Leave:
			r.Version, r.Leave = 2, true
		default:
			return Report{}, fmt.Errorf("prototest: IGMP type %#x: %w", m.Type, ErrNotReport)
		}
		r.Group = m.Group
	default:
		return Report{}, fmt.Errorf("prototest: IGMP type %#x: %w", m.IGMPType(), ErrNotReport)
	}
	return r, nil
}

func decodeMLD(b []byte) (Report, error) {
	ip, err := wire.ParseIPv6(b)
	if err != nil {
		return Report{}, fmt.Errorf("prototest: IPv6 headers: %w", err)
	}
	if ip.NextHeader != wire.ProtoICMPv6 {
		return Report{}, fmt.Errorf("prototest: next header %d: %w", ip.NextHeader, ErrNotReport)
	}
	r := Report{Family: "mld", Src: ip.Src, Dst: ip.Dst, TTL: ip.HopLimit,
		RouterAlert: ip.RouterAlert && ip.RouterAlertValue == 0}
	if err := wire.VerifyICMPv6(ip.Src, ip.Dst, ip.Payload); err != nil {
		return Report{}, fmt.Errorf("prototest: ICMPv6: %w", err)
	}
	m, err := wire.ParseMLD(ip.Payload)
	if err != nil {
		return Report{}, fmt.Errorf("prototest: MLD message: %w", err)
	}
	switch m := m.(type) {
	case wire.MLDv2Report:
		r.Version, r.Records = 2, records(m.Records)
	case wire.MLDv1:
		switch m.Type {
		case wire.MLDTypeV1Report:
			r.Version = 1
		case wire.MLDTypeV1Done:
			r.Version, r.Leave = 1, true
		default:
			return Report{}, fmt.Errorf("prototest: MLD type %d: %w", m.Type, ErrNotReport)
		}
		r.Group = m.Group
	default:
		return Report{}, fmt.Errorf("prototest: MLD type %d: %w", m.MLDType(), ErrNotReport)
	}
	return r, nil
}

// DecodeAll decodes every packet, stopping at the first error.
func DecodeAll(ps []proto.Packet) ([]Report, error) {
	out := make([]Report, 0, len(ps))
	for i, p := range ps {
		r, err := Decode(p)
		if err != nil {
			return nil, fmt.Errorf("packet %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

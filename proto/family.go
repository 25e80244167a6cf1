package proto

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mcstack/mcstack/wire"
)

// level is a protocol generation shared by IGMP and MLD: levelV1 is IGMPv1
// (no Leave), levelV2 is IGMPv2 or MLDv1 (RFC 2236, RFC 2710), levelV3 is
// IGMPv3 or MLDv2 (RFC 9776, RFC 9777). MLD has no levelV1.
type level int

const (
	levelV1 level = 1
	levelV2 level = 2
	levelV3 level = 3
)

// msgKind classifies a received message.
type msgKind int

const (
	kindQuery    msgKind = iota + 1
	kindReport           // IGMPv1/v2 report or MLDv1 report (suppression input)
	kindLeave            // IGMPv2 Leave or MLDv1 Done (ignored by hosts)
	kindV3Report         // IGMPv3 or MLDv2 report (ignored by hosts)
)

// inMsg is a received message in a family-neutral form.
type inMsg struct {
	kind  msgKind
	level level      // of a query: the version it was sent as (RFC 9776 §7.1, RFC 9777 §8.1)
	group netip.Addr // unspecified in a General Query
	// Queries only.
	maxResp time.Duration
	sources []netip.Addr
	qrv     uint8
	qqi     time.Duration
	sFlag   bool
}

// family holds what differs between IGMP and MLD.
type family struct {
	name       string
	v6         bool
	addrSize   int
	ipHdrLen   int // IP header(s) with Router Alert
	minLevel   level
	allSystems netip.Addr // General Query destination
	allRouters netip.Addr // Leave / Done destination
	v3Dst      netip.Addr // IGMPv3 / MLDv2 report destination
	minMTU     int
}

var (
	igmpFamily = &family{
		name: "igmp", addrSize: 4, ipHdrLen: wire.IPv4RouterAlertHeaderLen, minLevel: levelV1,
		allSystems: wire.IPv4AllSystems, allRouters: wire.IPv4AllRouters, v3Dst: wire.IGMPv3Routers,
		minMTU: 68, // RFC 791: every IPv4 module forwards 68-octet datagrams
	}
	mldFamily = &family{
		name: "mld", v6: true, addrSize: 16, ipHdrLen: wire.IPv6RouterAlertHeadersLen, minLevel: levelV2,
		allSystems: wire.IPv6AllNodes, allRouters: wire.IPv6AllRouters, v3Dst: wire.MLDv2Routers,
		minMTU: 1280, // RFC 8200 §5
	}
)

// version converts a level to the family's version number (IGMP 1–3, MLD 1–2).
func (f *family) version(l level) int {
	if f.v6 {
		return int(l) - 1
	}
	return int(l)
}

// levelOf converts a family version number to a level; ok is false for a
// version the family does not have.
func (f *family) levelOf(v int) (level, bool) {
	if f.v6 {
		if v == 1 || v == 2 {
			return level(v + 1), true
		}
		return 0, false
	}
	if v >= 1 && v <= 3 {
		return level(v), true
	}
	return 0, false
}

// normAddr returns a in the family's form (IPv4 unmapped, IPv6 without
// zone) and whether it belongs to the family at all.
func (f *family) normAddr(a netip.Addr) (netip.Addr, bool) {
	if f.v6 {
		if !a.Is6() || a.Is4In6() {
			return netip.Addr{}, false
		}
		return a.WithZone(""), true
	}
	a = a.Unmap()
	return a, a.Is4()
}

func (f *family) unspecified() netip.Addr {
	if f.v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Input classification errors; Receive maps them to counters.
var (
	errBadChecksum = errors.New("bad checksum")
	errMalformed   = errors.New("malformed message")
	errUnsupported = errors.New("unsupported message type")
)

// classify maps a wire parse error to one of the input classification errors.
func classify(err error) error {
	switch {
	case errors.Is(err, wire.ErrChecksum):
		return fmt.Errorf("%w: %w", errBadChecksum, err)
	case errors.Is(err, wire.ErrUnsupported):
		return fmt.Errorf("%w: %w", errUnsupported, err)
	default:
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
}

// parse decodes a received IGMP message (verifying its checksum, RFC 9776
// §4.1.2) or MLD message (checksum verified by the stack) into an inMsg.
func (f *family) parse(b []byte) (inMsg, error) {
	if f.v6 {
		return parseMLD(b)
	}
	return parseIGMP(b)
}

func parseIGMP(b []byte) (inMsg, error) {
	m, err := wire.ParseIGMP(b)
	if err != nil {
		return inMsg{}, classify(err)
	}
	switch m := m.(type) {
	case wire.IGMPv12:
		switch m.Type {
		case wire.IGMPTypeQuery:
			if m.MaxRespTime == 0 {
				// RFC 9776 §7.1: length 8 and Max Resp Code 0 is IGMPv1; the
				// code MUST be taken as 100 (10 s), RFC 9776 §7.2.1.
				return inMsg{kind: kindQuery, level: levelV1, group: m.Group, maxResp: 10 * time.Second}, nil
			}
			return inMsg{kind: kindQuery, level: levelV2, group: m.Group,
				maxResp: time.Duration(m.MaxRespTime) * 100 * time.Millisecond}, nil
		case wire.IGMPTypeV1Report, wire.IGMPTypeV2Report:
			return inMsg{kind: kindReport, group: m.Group}, nil
		case wire.IGMPTypeV2Leave:
			return inMsg{kind: kindLeave, group: m.Group}, nil
		}
	case wire.IGMPv3Query:
		if m.Group.IsUnspecified() && len(m.Sources) > 0 {
			return inMsg{}, fmt.Errorf("%w: general query with %d sources (RFC 9776 §4.1.9)", errMalformed, len(m.Sources))
		}
		return inMsg{kind: kindQuery, level: levelV3, group: m.Group, maxResp: m.MaxRespTime(),
			sources: m.Sources, qrv: m.QRV, qqi: m.QueryInterval(), sFlag: m.SuppressRouterSide}, nil
	case wire.IGMPv3Report:
		return inMsg{kind: kindV3Report}, nil
	}
	return inMsg{}, fmt.Errorf("%w: IGMP type %#x", errUnsupported, m.IGMPType())
}

func parseMLD(b []byte) (inMsg, error) {
	m, err := wire.ParseMLD(b)
	if err != nil {
		return inMsg{}, classify(err)
	}
	switch m := m.(type) {
	case wire.MLDv1:
		switch m.Type {
		case wire.MLDTypeQuery:
			return inMsg{kind: kindQuery, level: levelV2, group: m.Group,
				maxResp: time.Duration(m.MaxRespDelay) * time.Millisecond}, nil
		case wire.MLDTypeV1Report:
			return inMsg{kind: kindReport, group: m.Group}, nil
		case wire.MLDTypeV1Done:
			return inMsg{kind: kindLeave, group: m.Group}, nil
		}
	case wire.MLDv2Query:
		if m.Group.IsUnspecified() && len(m.Sources) > 0 {
			return inMsg{}, fmt.Errorf("%w: general query with %d sources (RFC 9777 §5.1.10)", errMalformed, len(m.Sources))
		}
		return inMsg{kind: kindQuery, level: levelV3, group: m.Group, maxResp: m.MaxRespDelay(),
			sources: m.Sources, qrv: m.QRV, qqi: m.QueryInterval(), sFlag: m.SuppressRouterSide}, nil
	case wire.MLDv2Report:
		return inMsg{kind: kindV3Report}, nil
	}
	return inMsg{}, fmt.Errorf("%w: MLD type %d", errUnsupported, m.MLDType())
}

// packet builds a complete IP packet carrying msg from src to dst: IPv4 with
// TTL 1, precedence Internetwork Control and Router Alert (RFC 9776 §4), or
// IPv6 with hop limit 1 and the Hop-by-Hop Router Alert (RFC 9777 §5).
// appendMsg appends the IGMP/MLD message; for MLD it computes the ICMPv6
// checksum over the pseudo-header of src and dst.
func (f *family) packet(src, dst netip.Addr, id uint16, size int,
	appendMsg func(b []byte, src, dst netip.Addr) ([]byte, error)) ([]byte, error) {
	msg, err := appendMsg(make([]byte, 0, size), src, dst)
	if err != nil {
		return nil, err
	}
	if f.v6 {
		return wire.AppendIPv6(make([]byte, 0, f.ipHdrLen+len(msg)), wire.IPv6{
			HopLimit: 1, NextHeader: wire.ProtoICMPv6, Src: src, Dst: dst, RouterAlert: true,
		}, msg)
	}
	return wire.AppendIPv4(make([]byte, 0, f.ipHdrLen+len(msg)), wire.IPv4{
		TOS: 0xc0, ID: id, TTL: 1, Protocol: wire.ProtoIGMP, Src: src, Dst: dst, RouterAlert: true,
	}, msg)
}

// v3Report returns the appender of an IGMPv3 / MLDv2 report with recs.
func (f *family) v3Report(recs []wire.GroupRecord) func(b []byte, src, dst netip.Addr) ([]byte, error) {
	if f.v6 {
		return func(b []byte, src, dst netip.Addr) ([]byte, error) {
			return wire.MLDv2Report{Records: recs}.Append(b, src, dst)
		}
	}
	return func(b []byte, _, _ netip.Addr) ([]byte, error) {
		return wire.IGMPv3Report{Records: recs}.Append(b)
	}
}

// v12Message returns the appender of an older-version message: a report
// (IGMPv1, IGMPv2 or MLDv1 by l) or, with leave set, an IGMPv2 Leave / MLDv1
// Done.
func (f *family) v12Message(l level, leave bool, group netip.Addr) func(b []byte, src, dst netip.Addr) ([]byte, error) {
	if f.v6 {
		t := uint8(wire.MLDTypeV1Report)
		if leave {
			t = wire.MLDTypeV1Done
		}
		return func(b []byte, src, dst netip.Addr) ([]byte, error) {
			return wire.MLDv1{Type: t, Group: group}.Append(b, src, dst)
		}
	}
	t := uint8(wire.IGMPTypeV2Report)
	switch {
	case leave:
		t = wire.IGMPTypeV2Leave
	case l == levelV1:
		t = wire.IGMPTypeV1Report
	}
	return func(b []byte, _, _ netip.Addr) ([]byte, error) {
		return wire.IGMPv12{Type: t, Group: group}.Append(b)
	}
}

// v12Len is the size of an IGMPv1/v2 or MLDv1 message.
func (f *family) v12Len() int {
	if f.v6 {
		return wire.MLDv1Len
	}
	return wire.IGMPv12Len
}

package proto

import "github.com/mcstack/mcstack/wire"

// reportHeaderLen is the IGMPv3 / MLDv2 report header (RFC 9776 §4.2, RFC
// 9777 §5.2): type, reserved, checksum, reserved, number of records.
const reportHeaderLen = 8

// recordSpace is the room for group records in one report packet.
func (f *family) recordSpace(mtu int) int { return mtu - f.ipHdrLen - reportHeaderLen }

// maxSources is the largest source list one record can carry in a packet
// of mtu bytes (at least 1 since the MTU is clamped to the family minimum).
func (f *family) maxSources(mtu int) int {
	return (f.recordSpace(mtu) - 4 - f.addrSize) / f.addrSize
}

// pack splits recs into the record lists of successive report packets no
// larger than mtu (RFC 9776 §4.2.16, RFC 9777 §5.2.16): records are packed
// greedily in order; a record too large for a packet of its own is, for
// IS_EX and TO_EX, sent once with as many sources as fit (the rest are not
// reported), and otherwise split into records with disjoint parts of the
// source list, each in a separate packet (the last part may share its
// packet with the records that follow).
func (f *family) pack(recs []wire.GroupRecord, mtu int) [][]wire.GroupRecord {
	space := f.recordSpace(mtu)
	maxSrc := f.maxSources(mtu)
	var pkts [][]wire.GroupRecord
	var cur []wire.GroupRecord
	used := 0
	flush := func() {
		if len(cur) > 0 {
			pkts = append(pkts, cur)
			cur, used = nil, 0
		}
	}
	add := func(r wire.GroupRecord) {
		cur = append(cur, r)
		used += r.Len()
	}
	for _, r := range recs {
		n := r.Len()
		switch {
		case n <= space-used:
			add(r)
		case n <= space:
			flush()
			add(r)
		case r.Type == wire.ModeIsExclude || r.Type == wire.ChangeToExclude:
			flush()
			r.Sources = r.Sources[:maxSrc]
			add(r)
		default:
			flush()
			srcs := r.Sources
			for len(srcs) > maxSrc {
				part := r
				part.Sources = srcs[:maxSrc:maxSrc]
				pkts = append(pkts, []wire.GroupRecord{part})
				srcs = srcs[maxSrc:]
			}
			r.Sources = srcs
			add(r)
		}
	}
	flush()
	return pkts
}

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
	p := f.newPacker(mtu)
	for _, r := range recs {
		p.add(r)
	}
	return p.packets()
}

// packer packs records one at a time as pack does, so that a caller can
// stop once a number of packets is reached (the paced General Query
// response) and undo the last record with mark and reset.
type packer struct {
	space, maxSrc int
	pkts          [][]wire.GroupRecord
	cur           []wire.GroupRecord
	used          int
}

// packMark is a packer state saved by mark.
type packMark struct {
	npkts int
	cur   []wire.GroupRecord
	used  int
}

func (f *family) newPacker(mtu int) *packer {
	return &packer{space: f.recordSpace(mtu), maxSrc: f.maxSources(mtu)}
}

// count is the number of packets the records added so far fill.
func (p *packer) count() int {
	if len(p.cur) > 0 {
		return len(p.pkts) + 1
	}
	return len(p.pkts)
}

// mark saves the packer state; reset returns to it, dropping the records
// added since (add only appends, so the saved slices stay intact).
func (p *packer) mark() packMark { return packMark{len(p.pkts), p.cur, p.used} }

func (p *packer) reset(m packMark) {
	clear(p.pkts[m.npkts:])
	p.pkts, p.cur, p.used = p.pkts[:m.npkts], m.cur, m.used
}

// packets returns the packed record lists.
func (p *packer) packets() [][]wire.GroupRecord {
	p.flush()
	return p.pkts
}

func (p *packer) flush() {
	if len(p.cur) > 0 {
		p.pkts = append(p.pkts, p.cur)
		p.cur, p.used = nil, 0
	}
}

func (p *packer) put(r wire.GroupRecord) {
	p.cur = append(p.cur, r)
	p.used += r.Len()
}

func (p *packer) add(r wire.GroupRecord) {
	n := r.Len()
	switch {
	case n <= p.space-p.used:
		p.put(r)
	case n <= p.space:
		p.flush()
		p.put(r)
	case r.Type == wire.ModeIsExclude || r.Type == wire.ChangeToExclude:
		p.flush()
		r.Sources = r.Sources[:p.maxSrc]
		p.put(r)
	default:
		p.flush()
		srcs := r.Sources
		for len(srcs) > p.maxSrc {
			part := r
			part.Sources = srcs[:p.maxSrc:p.maxSrc]
			p.pkts = append(p.pkts, []wire.GroupRecord{part})
			srcs = srcs[p.maxSrc:]
		}
		r.Sources = srcs
		p.put(r)
	}
}

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
// response) and undo the last record with mark and reset. A counting
// packer (newCounter) makes the same decisions but keeps no records: it
// only counts the packets, without allocating.
type packer struct {
	space, maxSrc int
	keep          bool // store the records; false: only count packets
	pkts          [][]wire.GroupRecord
	n             int // packets completed (len(pkts) when keep)
	cur           []wire.GroupRecord
	used          int // bytes of the records in the current packet
}

// packMark is a packer state saved by mark.
type packMark struct {
	n    int
	cur  []wire.GroupRecord
	used int
}

func (f *family) newPacker(mtu int) *packer {
	return &packer{space: f.recordSpace(mtu), maxSrc: f.maxSources(mtu), keep: true}
}

// newCounter returns a packer that only counts packets.
func (f *family) newCounter(mtu int) packer {
	return packer{space: f.recordSpace(mtu), maxSrc: f.maxSources(mtu)}
}

// count is the number of packets the records added so far fill.
func (p *packer) count() int {
	if p.used > 0 {
		return p.n + 1
	}
	return p.n
}

// mark saves the packer state; reset returns to it, dropping the records
// added since (add only appends, so the saved slices stay intact).
func (p *packer) mark() packMark { return packMark{p.n, p.cur, p.used} }

func (p *packer) reset(m packMark) {
	if p.keep {
		clear(p.pkts[m.n:])
		p.pkts = p.pkts[:m.n]
	}
	p.n, p.cur, p.used = m.n, m.cur, m.used
}

// packets returns the packed record lists.
func (p *packer) packets() [][]wire.GroupRecord {
	p.flush()
	return p.pkts
}

func (p *packer) flush() {
	if p.used > 0 {
		p.emit(p.cur)
		p.cur, p.used = nil, 0
	}
}

// emit completes one packet.
func (p *packer) emit(recs []wire.GroupRecord) {
	if p.keep {
		p.pkts = append(p.pkts, recs)
	}
	p.n++
}

func (p *packer) put(r wire.GroupRecord) {
	if p.keep {
		p.cur = append(p.cur, r)
	}
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
			if p.keep {
				p.emit([]wire.GroupRecord{part})
			} else {
				p.emit(nil)
			}
			srcs = srcs[p.maxSrc:]
		}
		r.Sources = srcs
		p.put(r)
	}
}

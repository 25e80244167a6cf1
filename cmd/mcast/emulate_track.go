package main

import (
	"net/netip"
	"sync"
	"time"

	"github.com/mcstack/mcstack/wire"
)

// The tracker turns what crosses the emulator's port into per-event
// measurements. It sees three things: the scenario's membership calls
// (join, leave), each host's transmitted reports (through the host's
// endpoint wrapper) and every datagram the port receives (through the
// mux's Observe hook, before the hosts' filters).
//
// All hosts sit behind one port, so what the device under test controls is
// the port's union: an (S,G) is wanted while at least one host wants it
// (an INCLUDE host that lists S, an EXCLUDE host that does not exclude it;
// an IGMPv1/v2 or MLDv1 host announces no sources and so wants every
// source). Per datagram of (S,G) arriving at the port:
//
//   - wanted: it ends the join latency of every join of (S,G) whose report
//     was sent and that saw no datagram yet;
//   - not wanted, but the last host stopped wanting it less than
//     leaveWindow ago: it is a leave tail and moves the leave latency of
//     those leaves (report → last datagram);
//   - otherwise not wanted: "excluded" when some host is a member of G (the
//     device forwards a source the hosts' filters exclude), "flood" when no
//     host is (the device forwards a group nobody joined).
//
// Resolution: a latency is known to within the gap between two datagrams
// of the (S,G) (1/pps of the sender).

// evKind is what an event measures.
type evKind uint8

const (
	evJoin evKind = iota + 1
	evLeave
)

func (k evKind) String() string {
	if k == evJoin {
		return "join"
	}
	return "leave"
}

// event is one host's join or leave of one (S,G).
type event struct {
	kind   evKind
	phase  string // scenario phase: "setup", "ramp", "zap"
	host   int
	group  netip.Addr
	source netip.Addr
	call   time.Time // the membership call
	report time.Time // the host's first report after the call; zero: none seen
	data   time.Time // join: first datagram after the report; leave: last datagram after the report
	// shared: a leave while other hosts still want the (S,G): the device
	// must keep forwarding, there is no leave latency.
	shared bool
	// notPruned: datagrams still came leaveWindow after the leave report.
	notPruned bool
	// done: a join got its datagram, a leave's window closed.
	done bool
}

// latency is the measured latency and whether there is one.
func (e *event) latency() (time.Duration, bool) {
	if e.report.IsZero() {
		return 0, false
	}
	switch e.kind {
	case evJoin:
		if e.data.IsZero() {
			return 0, false
		}
		return e.data.Sub(e.report), true
	default:
		if e.shared || e.notPruned {
			return 0, false
		}
		if e.data.Before(e.report) {
			return 0, true // no datagram after the report
		}
		return e.data.Sub(e.report), true
	}
}

func (e *event) status() string {
	switch {
	case e.report.IsZero():
		return "no-report"
	case e.kind == evJoin && e.data.IsZero():
		return "no-data"
	case e.shared:
		return "shared"
	case e.notPruned:
		return "not-pruned"
	}
	return "ok"
}

type sgKey struct{ s, g netip.Addr }

type hostGroup struct {
	host  int
	group netip.Addr
}

// sgState is the port's view of one (S,G).
type sgState struct {
	want    int      // hosts wanting it now
	waiting []*event // joins whose report went out, awaiting the first datagram
	leaves  []*event // leaves of the last wanting hosts, in their window
	n       uint64   // datagrams received
}

// tracker records events; its methods are safe for concurrent use.
type tracker struct {
	sources     []netip.Addr // the sender's sources: the universe of EXCLUDE filters
	leaveWindow time.Duration
	now         func() time.Time

	// mu guards everything below; held for map updates only, never
	// across a call into the stack or a write.
	mu        sync.Mutex
	sg        map[sgKey]*sgState
	members   map[netip.Addr]int         // hosts that are members of G (any filter)
	pending   map[hostGroup][]*event     // events awaiting the host's report
	wanted    map[hostGroup][]netip.Addr // what each (host, group) membership wants
	events    []*event
	datagrams uint64
	flood     uint64
	excluded  uint64
	reports   uint64                // report messages the hosts sent
	floodBy   map[netip.Addr]uint64 // flooded datagrams per group
}

func newTracker(sources []netip.Addr, leaveWindow time.Duration, now func() time.Time) *tracker {
	return &tracker{
		sources:     sources,
		leaveWindow: leaveWindow,
		now:         now,
		sg:          map[sgKey]*sgState{},
		members:     map[netip.Addr]int{},
		pending:     map[hostGroup][]*event{},
		wanted:      map[hostGroup][]netip.Addr{},
		floodBy:     map[netip.Addr]uint64{},
	}
}

func (t *tracker) state(k sgKey) *sgState {
	st := t.sg[k]
	if st == nil {
		st = &sgState{}
		t.sg[k] = st
	}
	return st
}

// join records that host is about to join group wanting the given
// sources. Call it before the membership call, so that the report cannot
// come first.
func (t *tracker) join(phase string, host int, group netip.Addr, wants []netip.Addr) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	hg := hostGroup{host, group}
	t.wanted[hg] = wants
	t.members[group]++
	for _, s := range wants {
		st := t.state(sgKey{s, group})
		st.want++
		if st.want == 1 && len(st.leaves) > 0 {
			// Wanted again before the device pruned: those leaves end here.
			t.closeLeaves(st, false)
		}
		ev := &event{kind: evJoin, phase: phase, host: host, group: group, source: s, call: now}
		t.events = append(t.events, ev)
		t.pending[hg] = append(t.pending[hg], ev)
	}
}

// leave records that host is about to leave group.
func (t *tracker) leave(phase string, host int, group netip.Addr) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	hg := hostGroup{host, group}
	wants := t.wanted[hg]
	delete(t.wanted, hg)
	if t.members[group]--; t.members[group] <= 0 {
		delete(t.members, group)
	}
	for _, s := range wants {
		st := t.state(sgKey{s, group})
		st.want--
		ev := &event{kind: evLeave, phase: phase, host: host, group: group, source: s, call: now, shared: st.want > 0}
		if ev.shared {
			ev.done = true
		} else {
			st.leaves = append(st.leaves, ev)
		}
		t.events = append(t.events, ev)
		t.pending[hg] = append(t.pending[hg], ev)
	}
}

// closeLeaves ends the leave windows of st.
func (t *tracker) closeLeaves(st *sgState, notPruned bool) {
	for _, ev := range st.leaves {
		ev.done = true
		ev.notPruned = notPruned && !ev.report.IsZero()
	}
	clear(st.leaves)
	st.leaves = st.leaves[:0]
}

// observeTx looks at a frame host transmitted: an IGMP or MLD report
// stamps the pending events of the groups it names.
func (t *tracker) observeTx(host int, frame []byte) {
	recs, ok := reportRecords(frame)
	if !ok {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reports++
	for _, r := range recs {
		hg := hostGroup{host, r.group}
		evs := t.pending[hg]
		if len(evs) == 0 {
			continue
		}
		kept := evs[:0]
		for _, ev := range evs {
			if (ev.kind == evLeave) != r.leave {
				kept = append(kept, ev)
				continue
			}
			ev.report = now
			if ev.kind == evJoin {
				st := t.state(sgKey{ev.source, ev.group})
				st.waiting = append(st.waiting, ev)
			}
		}
		clear(evs[len(kept):])
		if len(kept) == 0 {
			delete(t.pending, hg)
		} else {
			t.pending[hg] = kept
		}
	}
}

// observeRx classifies a batch of frames the port received.
func (t *tracker) observeRx(frames [][]byte) {
	var now time.Time
	for _, f := range frames {
		src, group, ok := multicastUDP(f)
		if !ok {
			continue
		}
		if now.IsZero() {
			now = t.now()
			t.mu.Lock()
		}
		t.datagram(sgKey{src, group}, now)
	}
	if !now.IsZero() {
		t.mu.Unlock()
	}
}

func (t *tracker) datagram(k sgKey, now time.Time) {
	t.datagrams++
	st := t.sg[k]
	if st != nil {
		st.n++
		if st.want > 0 {
			for _, ev := range st.waiting {
				if ev.data.IsZero() {
					ev.data, ev.done = now, true
				}
			}
			clear(st.waiting)
			st.waiting = st.waiting[:0]
			return
		}
		if len(st.leaves) > 0 {
			inWindow := false
			for _, ev := range st.leaves {
				if ev.report.IsZero() || now.Sub(ev.report) <= t.leaveWindow {
					inWindow = true
				}
			}
			if inWindow {
				for _, ev := range st.leaves {
					ev.data = now
				}
				return
			}
			t.closeLeaves(st, true)
		}
	}
	if t.members[k.g] > 0 {
		t.excluded++
	} else {
		t.flood++
		t.floodBy[k.g]++
	}
}

// finish closes every open leave window and returns the events.
func (t *tracker) finish() []*event {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.sg {
		t.closeLeaves(st, false)
	}
	return t.events
}

// progress is a snapshot for the live line.
type progress struct {
	joins, joinsDone, leaves, reports, datagrams, flood, excluded int
	joinLat                                                       []time.Duration
}

func (t *tracker) progress() progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := progress{reports: int(t.reports), datagrams: int(t.datagrams), flood: int(t.flood), excluded: int(t.excluded)}
	// The latest 1,000 join latencies are enough for a live percentile.
	for i := len(t.events) - 1; i >= 0; i-- {
		ev := t.events[i]
		if ev.kind == evJoin {
			p.joins++
			if ev.done {
				p.joinsDone++
				if d, ok := ev.latency(); ok && len(p.joinLat) < 1000 {
					p.joinLat = append(p.joinLat, d)
				}
			}
		} else {
			p.leaves++
		}
	}
	return p
}

// openJoins counts joins still waiting for a report or a datagram.
func (t *tracker) openJoins() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, ev := range t.events {
		if ev.kind == evJoin && !ev.done {
			n++
		}
	}
	return n
}

// record is one group record of a report, reduced to what the tracker
// needs: the group and whether it stops reception.
type record struct {
	group netip.Addr
	leave bool
}

// reportRecords parses an IGMP or MLD report frame. Leaves are IGMPv2
// Leave, MLDv1 Done, and v3/v2 records TO_IN {} / IS_IN {} / BLOCK.
func reportRecords(frame []byte) ([]record, bool) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		return nil, false
	}
	var v3 []wire.GroupRecord
	switch eth.EtherType {
	case wire.EtherTypeIPv4:
		ip, err := wire.ParseIPv4(eth.Payload)
		if err != nil || ip.Protocol != wire.ProtoIGMP {
			return nil, false
		}
		msg, err := wire.ParseIGMP(ip.Payload)
		if err != nil {
			return nil, false
		}
		switch m := msg.(type) {
		case wire.IGMPv3Report:
			v3 = m.Records
		case wire.IGMPv12:
			switch m.Type {
			case wire.IGMPTypeV1Report, wire.IGMPTypeV2Report:
				return []record{{group: m.Group}}, true
			case wire.IGMPTypeV2Leave:
				return []record{{group: m.Group, leave: true}}, true
			}
			return nil, false
		default:
			return nil, false
		}
	case wire.EtherTypeIPv6:
		ip, err := wire.ParseIPv6(eth.Payload)
		if err != nil || ip.NextHeader != wire.ProtoICMPv6 {
			return nil, false
		}
		msg, err := wire.ParseMLD(ip.Payload)
		if err != nil {
			return nil, false
		}
		switch m := msg.(type) {
		case wire.MLDv2Report:
			v3 = m.Records
		case wire.MLDv1:
			switch m.Type {
			case wire.MLDTypeV1Report:
				return []record{{group: m.Group}}, true
			case wire.MLDTypeV1Done:
				return []record{{group: m.Group, leave: true}}, true
			}
			return nil, false
		default:
			return nil, false
		}
	default:
		return nil, false
	}
	out := make([]record, 0, len(v3))
	for _, r := range v3 {
		leave := r.Type == wire.BlockOldSources ||
			((r.Type == wire.ChangeToInclude || r.Type == wire.ModeIsInclude) && len(r.Sources) == 0)
		out = append(out, record{group: r.Group, leave: leave})
	}
	return out, true
}

// multicastUDP returns the source and group of a UDP datagram to a
// multicast group (IPv4 or IPv6, no extension headers), without a full
// parse: this runs for every frame the port receives.
func multicastUDP(f []byte) (src, group netip.Addr, ok bool) {
	if len(f) < wire.EthernetHeaderLen+20 {
		return src, group, false
	}
	et := uint16(f[12])<<8 | uint16(f[13])
	p := f[wire.EthernetHeaderLen:]
	switch et {
	case wire.EtherTypeIPv4:
		if p[0]>>4 != 4 || p[9] != wire.ProtoUDP || p[16]&0xf0 != 0xe0 {
			return src, group, false
		}
		return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), true
	case wire.EtherTypeIPv6:
		if len(p) < 40 || p[0]>>4 != 6 || p[6] != wire.ProtoUDP || p[24] != 0xff {
			return src, group, false
		}
		return netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), true
	}
	return src, group, false
}

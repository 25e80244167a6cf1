package proto

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// v3Change records the change of g's interface state to nw as
// retransmission state (RFC 9776 §5.1, RFC 9777 §6.1) and reports whether a
// State-Change Report is due. The old state is the one last reported, so a
// group new to the engine starts from INCLUDE {} ("non-existent" state).
//
// A filter-mode change sets the Filter Mode Retransmission Counter to the
// Robustness Variable; the Filter-Mode-Change record carries the complete
// new source list, so the sources' retransmission state is dropped (it is
// superseded). A source-list change sets the Source Retransmission Counter
// of every source in the difference (ALLOW and BLOCK alike) to the
// Robustness Variable; whether a source goes in ALLOW or BLOCK is decided
// from the interface state when each report is built (Table 4 of RFC 9777).
func (e *engine) v3Change(g *group, nw membership.State) bool {
	old := g.state
	g.state = nw
	e.addGroup(g)
	if old.Mode != nw.Mode {
		g.fmCount = e.robustness
		g.srcRtx = nil
		return true
	}
	n := 0
	forEachDiff(old.Sources, nw.Sources, func(s netip.Addr) {
		if g.srcRtx == nil {
			g.srcRtx = make(map[netip.Addr]int)
		}
		g.srcRtx[s] = e.robustness
		n++
	})
	return n > 0
}

// forEachDiff calls fn for every address in exactly one of the sorted
// lists a and b.
func forEachDiff(a, b []netip.Addr, fn func(netip.Addr)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Less(b[j]):
			fn(a[i])
			i++
		case i == len(a) || b[j].Less(a[i]):
			fn(b[j])
			j++
		default:
			i++
			j++
		}
	}
}

// changeRecords builds the State-Change records of g for one transmission
// and counts the transmission down (RFC 9776 §5.1, RFC 9777 §6.1 and
// §6.3): while the Filter Mode Retransmission Counter is positive a TO_IN
// (current mode INCLUDE) or TO_EX record with the current source list;
// otherwise ALLOW with the retransmission-list sources the state forwards
// and BLOCK with those it blocks, each omitted when empty. Every source
// included has its counter decreased and leaves the list at zero.
func (e *engine) changeRecords(g *group, recs []wire.GroupRecord) []wire.GroupRecord {
	if g.fmCount > 0 {
		g.fmCount--
		t := wire.ChangeToInclude
		if g.state.Mode == membership.Exclude {
			t = wire.ChangeToExclude
		}
		return append(recs, wire.GroupRecord{Type: t, Group: g.addr, Sources: g.state.Sources})
	}
	if len(g.srcRtx) == 0 {
		return recs
	}
	srcs := make([]netip.Addr, 0, len(g.srcRtx))
	for s := range g.srcRtx {
		srcs = append(srcs, s)
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	var allow, block []netip.Addr
	for _, s := range srcs {
		if g.state.Accepts(s) {
			allow = append(allow, s)
		} else {
			block = append(block, s)
		}
		if g.srcRtx[s]--; g.srcRtx[s] <= 0 {
			delete(g.srcRtx, s)
		}
	}
	if len(g.srcRtx) == 0 {
		g.srcRtx = nil
	}
	if len(allow) > 0 {
		recs = append(recs, wire.GroupRecord{Type: wire.AllowNewSources, Group: g.addr, Sources: allow})
	}
	if len(block) > 0 {
		recs = append(recs, wire.GroupRecord{Type: wire.BlockOldSources, Group: g.addr, Sources: block})
	}
	return recs
}

// sendChanges transmits a State-Change Report for gs at once (RFC 9776
// §5.1: each change triggers the immediate transmission of a new report,
// merged with the pending one) and arms the retransmission timer.
//
// Retransmissions of all groups share one interface timer: when it fires,
// every group with retransmission state is reported in one packed report
// and the timer is re-armed at a random delay in (0, [Unsolicited Report
// Interval]]. Each group thus sees [Robustness Variable] transmissions, each
// at most one Unsolicited Report Interval after the previous one.
func (e *engine) sendChanges(now time.Time, gs []*group) {
	var recs []wire.GroupRecord
	for _, g := range gs {
		recs = e.changeRecords(g, recs)
	}
	e.sendRecords(recs)
	e.afterChanges(now, gs)
}

// afterChanges arms the retransmission timer when a group still has
// retransmission state and forgets groups that are left and done.
func (e *engine) afterChanges(now time.Time, gs []*group) {
	pending := false
	for _, g := range gs {
		if g.changePending() {
			pending = true
		} else {
			e.forgetIfIdle(g)
		}
	}
	if pending && e.rtxAt.IsZero() {
		e.rtxAt = now.Add(e.randDelay(e.cfg.UnsolicitedReportInterval))
	}
}

// forgetIfIdle deletes a group that is not a member and has nothing pending.
func (e *engine) forgetIfIdle(g *group) {
	if !g.state.IsMember() && !g.changePending() && g.timerAt.IsZero() && g.repeats == 0 {
		delete(e.groups, g.addr)
	}
}

// currentRecord returns g's Current-State record (RFC 9776 §5.2, RFC 9777
// §6.3): IS_IN or IS_EX with the interface's source list.
func currentRecord(g *group) wire.GroupRecord {
	t := wire.ModeIsInclude
	if g.state.Mode == membership.Exclude {
		t = wire.ModeIsExclude
	}
	return wire.GroupRecord{Type: t, Group: g.addr, Sources: g.state.Sources}
}

// sourceRecord answers a Group-and-Source-Specific Query with recorded
// sources b (RFC 9776 §5.2 Table 3, RFC 9777 §6.3 Table 3): INCLUDE (A)
// gives IS_IN (A*B), EXCLUDE (A) gives IS_IN (B-A); ok is false when the
// source list is empty (no response is sent).
func sourceRecord(g *group, b []netip.Addr) (wire.GroupRecord, bool) {
	var srcs []netip.Addr
	for _, s := range b {
		if g.state.Accepts(s) {
			srcs = append(srcs, s)
		}
	}
	return wire.GroupRecord{Type: wire.ModeIsInclude, Group: g.addr, Sources: srcs}, len(srcs) > 0
}

// v3Query schedules the response to an IGMPv3/MLDv2 query (RFC 9776 §5.2,
// RFC 9777 §6.2) following the five rules for pending responses:
//
//  1. a pending General Query response due no later than the new delay
//     covers the query;
//  2. a General Query (re)arms the Interface Timer, replacing an earlier
//     pending General Query response;
//  3. a specific query for a group without a pending response arms its
//     Group Timer, recording the queried sources of a source-specific one;
//  4. a Group-Specific Query, or any query while the pending response is
//     group-specific, clears the recorded sources: one response at the
//     earlier of the two times;
//  5. a Group-and-Source-Specific Query while a source-specific response
//     is pending adds its sources to the recorded ones: one response at
//     the earlier of the two times.
//
// The General Query response is paced (see v3GeneralBurst), so rules 1
// and 2 apply to its next burst, and the response also keeps the earliest
// end of the Max Resp Times it must meet: a General Query while a response
// is pending moves the next burst to the new delay if that is earlier
// (rule 2) and otherwise leaves it (rule 1), and in both cases the rest of
// the response ends within the new query's Max Resp Time too. A response
// already under way is not started over from the first group: the groups
// it reported are not reported again, the rest is brought forward. That
// bounds a query storm (every group is reported once per response, and a
// response starts at most once per ResponsePace) and lets a response end
// under any storm; the groups reported before the new query were reported
// moments before it. For a specific query the pending General Query
// response cannot say when a paced burst will reach the group, so rule 1
// is applied when the response is sent: the Group Timer is armed as by
// rules 3–5, and a burst carrying the group's Current-State record answers
// the query and stops it (no additional response is sent when the General
// Query response reaches the group first).
//
// The recorded sources are kept bounded: for INCLUDE (A) only B*A is
// recorded (bounded by the state), for EXCLUDE (A) only B-A, and when that
// exceeds what one record can carry the response becomes group-specific (a
// complete Current-State record, which answers the query with no less
// information). Queries for a group without listening state are ignored.
func (e *engine) v3Query(now time.Time, grp netip.Addr, srcs []netip.Addr, maxResp time.Duration) {
	at := now.Add(e.randDelay(maxResp))
	if grp.IsUnspecified() {
		if !e.anyMember() {
			e.cnt.QueriesIgnored++
			return
		}
		e.v3GeneralQuery(now, at, now.Add(maxResp))
		return
	}
	g := e.groups[grp]
	if g == nil || !g.state.IsMember() {
		e.cnt.QueriesIgnored++
		return
	}
	at = g.notBefore(at)
	pending := !g.timerAt.IsZero()
	if pending && g.timerAt.Before(at) {
		at = g.timerAt
	}
	if len(srcs) == 0 {
		g.qSources = nil // rules 3 and 4
		e.setTimer(g, at)
		return
	}
	rec, overflow := e.recordQuerySources(g, srcs)
	switch {
	case pending && g.qSources == nil:
		// rule 4: a group-specific response is pending
	case overflow:
		g.qSources = nil
	case pending:
		g.qSources = unionSorted(g.qSources, rec) // rule 5
		if len(g.qSources) > e.fam.maxSources(e.cfg.MTU) {
			g.qSources = nil
		}
	case len(rec) == 0:
		e.cnt.QueriesIgnored++ // none of the queried sources would be reported
		return
	default:
		g.qSources = rec // rule 3
	}
	e.setTimer(g, at)
}

// recordQuerySources returns the queried sources that matter for g (sorted,
// unique) and whether they exceed one record's capacity.
func (e *engine) recordQuerySources(g *group, srcs []netip.Addr) ([]netip.Addr, bool) {
	var rec []netip.Addr
	for _, s := range srcs {
		if s, ok := e.fam.normAddr(s); ok && g.state.Accepts(s) {
			rec = append(rec, s)
		}
	}
	slices.SortFunc(rec, netip.Addr.Compare)
	rec = slices.Compact(rec)
	return rec, len(rec) > e.fam.maxSources(e.cfg.MTU)
}

// unionSorted merges two sorted unique lists.
func unionSorted(a, b []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := a[i].Compare(b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func (e *engine) anyMember() bool {
	for _, g := range e.groups {
		if g.state.IsMember() {
			return true
		}
	}
	return false
}

// v3Tick runs the IGMPv3/MLDv2 timers due at now (RFC 9776 §5.2 and §5.1,
// RFC 9777 §6.3): the state-change retransmission timer, the Interface
// Timer (or the pacing of its response) and the Group Timers. A Group
// Timer due at the same time as a General Query response burst is
// answered by the burst when it carries the group, and by a report of its
// own otherwise.
func (e *engine) v3Tick(now time.Time) {
	if !e.rtxAt.IsZero() && !e.rtxAt.After(now) {
		e.rtxAt = time.Time{}
		gs := e.sortedGroups((*group).changePending)
		var recs []wire.GroupRecord
		for _, g := range gs {
			recs = e.changeRecords(g, recs)
		}
		e.sendRecords(recs)
		e.afterChanges(now, gs)
	}
	if !e.genAt.IsZero() && !e.genAt.After(now) {
		e.v3GeneralBurst(now)
	}
	due := e.popDue(now)
	sortGroups(due)
	var recs []wire.GroupRecord
	for _, g := range due {
		q := g.qSources
		g.qSources = nil
		if g.state.IsMember() {
			g.respondedAt = now
			if q == nil {
				recs = append(recs, currentRecord(g))
			} else if r, ok := sourceRecord(g, q); ok {
				recs = append(recs, r)
			}
		}
		e.forgetIfIdle(g)
	}
	e.sendRecords(recs)
}

// v3GeneralQuery schedules the response to a General Query whose Interface
// Timer delay ends at at and whose Max Resp Time ends at end (see v3Query
// for the rules). A response that has not sent its first burst yet starts
// no sooner than ResponsePace after the previous response started.
func (e *engine) v3GeneralQuery(now, at, end time.Time) {
	started := e.genAfter.IsValid()
	if !started && !e.genStarted.IsZero() {
		if floor := e.genStarted.Add(ResponsePace); at.Before(floor) {
			at = floor
		}
	}
	if e.genAt.IsZero() || at.Before(e.genAt) {
		e.genAt = at // rule 2 (or a new response)
	} // else rule 1: the pending response is due sooner
	if e.genEnd.IsZero() || end.Before(e.genEnd) {
		e.genEnd = end
	}
}

// v3GeneralBurst sends the next part of the response to a General Query
// (RFC 9776 §5.2, RFC 9777 §6.3): one Current-State record per group with
// listening state, packed, in group address order, starting after the
// last group the response has reported so far.
//
// RFC 9776 §5.2 and RFC 9777 §6.3 call a single burst of all records at
// the Interface Timer naive and recommend spreading the Report messages
// over the Max Resp Time. So a burst stops at ResponseBurst packets, and
// the rest follows in bursts spread evenly over what is left of the
// response's time: with b bursts still needed and the response due to end
// at genEnd, the next one goes out (genEnd - now) / (b + 1) later, so the
// last is sent before genEnd. Nothing is sent on the reception of the
// query: the first burst waits for the Interface Timer. A record split
// over several packets (RFC 9776 §4.2.16) is never cut by a burst: a group
// needing more than ResponseBurst packets on its own is sent whole in its
// burst. Once genEnd is reached the rest is sent in one burst.
//
// Each burst reports the state when it is sent: a group joined meanwhile
// is included when its address is still ahead of the response, a group
// left before its turn is not. A pending Group Timer of a group the burst
// reports is stopped, its query being answered by the Current-State record.
func (e *engine) v3GeneralBurst(now time.Time) {
	if !e.genAfter.IsValid() {
		e.genStarted = now
	}
	gs := e.genList
	if gs == nil {
		after := e.genAfter
		for _, g := range e.groups {
			if g.state.IsMember() && (!after.IsValid() || after.Less(g.addr)) {
				gs = append(gs, g)
			}
		}
		sortGroups(gs)
		c := e.fam.newCounter(e.cfg.MTU)
		for _, g := range gs {
			c.add(currentRecord(g))
		}
		e.genLeft = c.count()
	}
	limit := ResponseBurst
	if !now.Before(e.genEnd) {
		limit = math.MaxInt // the Max Resp Time is over: send the rest
	}
	p := e.fam.newPacker(e.cfg.MTU)
	var last *group
	i := 0
	for ; i < len(gs); i++ {
		g := gs[i]
		if !g.state.IsMember() || e.groups[g.addr] != g {
			continue // left since the list was built
		}
		m := p.mark()
		p.add(currentRecord(g))
		if last != nil && p.count() > limit {
			p.reset(m)
			break
		}
		last = g
		if !g.timerAt.IsZero() {
			// the Current-State record answers the pending specific query
			e.stopTimer(g)
			g.qSources = nil
		}
	}
	pkts := p.packets()
	e.sendPackets(pkts)
	if i == len(gs) {
		e.cancelGeneral()
		return
	}
	clear(gs[:i])
	e.genAfter, e.genList = last.addr, gs[i:]
	e.genLeft = max(e.genLeft-len(pkts), 1)
	bursts := (e.genLeft + ResponseBurst - 1) / ResponseBurst
	e.genAt = now.Add(e.genEnd.Sub(now) / time.Duration(bursts+1))
}

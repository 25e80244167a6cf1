package proto

import (
	"net/netip"
	"time"

	"github.com/mcstack/mcstack/membership"
)

// v12Change applies a state change in IGMPv1, IGMPv2 or MLDv1 mode, where
// only membership is reported (RFC 9776 §7.2.1, RFC 9777 §8.2.1): any state
// but INCLUDE {} is a join of the whole group (an INCLUDE state with sources
// is reported as a join, since the older protocols cannot express sources),
// and a change between member states sends nothing.
func (e *engine) v12Change(now time.Time, g *group, nw membership.State) {
	was := g.state.IsMember()
	g.state = nw
	switch {
	case !was && nw.IsMember():
		e.addGroup(g)
		e.v12Join(now, g)
	case was && !nw.IsMember():
		e.v12Leave(now, g)
	case nw.IsMember():
		e.addGroup(g)
	}
}

// v12Join sends the unsolicited report of a join at once and schedules
// [Robustness Variable] - 1 repetitions, each at a random delay in (0,
// [Unsolicited Report Interval]] (RFC 2236 §3 and §8.10, RFC 2710 §4 and
// §7.10: "repeated once or twice after short delays").
func (e *engine) v12Join(now time.Time, g *group) {
	e.sendV12(g.addr, false)
	g.lastReporter = true
	g.repeats = e.robustness - 1
	if g.repeats > 0 {
		e.setTimer(g, now.Add(e.randDelay(e.cfg.V1UnsolicitedReportInterval)))
	} else {
		e.stopTimer(g)
	}
}

// v12Leave leaves g. In IGMPv2 / MLDv1 mode a Leave Group (Done) message
// goes to all-routers if we sent the last report for the group (RFC 2236
// §3, RFC 2710 §4: a host that was not the last reporter MAY send nothing,
// and Linux's igmp_group_dropped / igmp6_leave_group send nothing then;
// another member answered the last query, so the router must keep the
// group, and a switch with immediate leave would cut that member off). The
// Leave is repeated like the join: see v12SendLeave. IGMPv1 has no Leave
// (RFC 1112 App. I).
func (e *engine) v12Leave(now time.Time, g *group) {
	e.stopTimer(g)
	g.repeats = 0
	if e.mode == levelV2 && g.lastReporter {
		e.v12SendLeave(now, g)
		return
	}
	delete(e.groups, g.addr)
}

// v12SendLeave sends g's Leave (Done) at once and schedules [Robustness
// Variable] - 1 repetitions, each at a random delay in (0, [Unsolicited
// Report Interval]] (the IGMPv3/MLDv2 interval, 1 s by default). RFC 2236
// §3 and RFC 2710 §4 send the Leave once, but a lost Leave keeps the
// traffic flowing until the router's membership times out, and RFC 2236
// §8.1 makes the protocol robust to [Robustness Variable] - 1 losses: the
// Leave is repeated as IGMPv3 repeats its leave (and as a join's reports
// are). Another host's report for the group stops the repetitions (see
// receiveReport), a new join replaces them.
func (e *engine) v12SendLeave(now time.Time, g *group) {
	e.sendV12(g.addr, true)
	g.repeats = e.robustness - 1
	if g.repeats <= 0 {
		g.repeats = 0
		e.stopTimer(g)
		delete(e.groups, g.addr)
		return
	}
	e.setTimer(g, now.Add(e.randDelay(e.cfg.UnsolicitedReportInterval)))
}

// v12Query schedules reports for an IGMPv1/v2 or MLDv1 query (RFC 2236
// §3, RFC 2710 §4): for each joined group queried, a report timer at a
// random delay in (0, Max Response Time]; a running timer is reset only
// when the Max Response Time is less than its remaining time.
func (e *engine) v12Query(now time.Time, grp netip.Addr, maxResp time.Duration) {
	if grp.IsUnspecified() {
		gs := e.sortedGroups(func(g *group) bool { return g.state.IsMember() })
		if len(gs) == 0 {
			e.cnt.QueriesIgnored++
			return
		}
		for _, g := range gs {
			e.v12Schedule(now, g, maxResp)
		}
		return
	}
	g := e.groups[grp]
	if g == nil || !g.state.IsMember() {
		e.cnt.QueriesIgnored++
		return
	}
	e.v12Schedule(now, g, maxResp)
}

func (e *engine) v12Schedule(now time.Time, g *group, maxResp time.Duration) {
	if !g.timerAt.IsZero() && g.timerAt.Sub(now) <= maxResp {
		return
	}
	e.setTimer(g, g.notBefore(now.Add(e.randDelay(maxResp))))
}

// v12Tick sends the reports whose timers are due: one IGMPv1/v2 or MLDv1
// report per joined group, to the group, or a repeated Leave (Done) for a
// group being left; a repetition left after it is scheduled again.
func (e *engine) v12Tick(now time.Time) {
	due := e.popDue(now)
	sortGroups(due)
	for _, g := range due {
		if !g.state.IsMember() {
			if g.repeats > 0 && e.mode == levelV2 {
				e.sendV12(g.addr, true)
				g.repeats--
			}
			if g.repeats > 0 {
				e.setTimer(g, now.Add(e.randDelay(e.cfg.UnsolicitedReportInterval)))
			} else {
				e.forgetIfIdle(g)
			}
			continue
		}
		e.sendV12(g.addr, false)
		g.lastReporter = true
		if g.repeats > 0 {
			g.repeats--
		} else {
			g.respondedAt = now // a query response, not a join's repetition
		}
		if g.repeats > 0 {
			e.setTimer(g, now.Add(e.randDelay(e.cfg.V1UnsolicitedReportInterval)))
		}
	}
}

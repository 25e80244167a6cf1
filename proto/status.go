package proto

import (
	"slices"
	"time"
)

// Status implements Engine. It builds every part afresh: the map, the
// group list and each group's source list are copies.
func (e *engine) Status() Status {
	st := Status{
		Family:                e.fam.name,
		Version:               e.fam.version(e.mode),
		Robustness:            e.robustness,
		QueryInterval:         e.queryInterval,
		QueryResponseInterval: e.queryRespInterval,
		Counters:              e.cnt,
		Querier:               e.querier,
	}
	if e.forced != 0 {
		st.Forced = e.fam.version(e.forced)
	}
	for l := e.fam.minLevel; l < levelV3; l++ {
		if t := e.olderUntil[l]; !t.IsZero() {
			if st.OlderQuerierUntil == nil {
				st.OlderQuerierUntil = make(map[int]time.Time)
			}
			st.OlderQuerierUntil[e.fam.version(l)] = t
		}
	}
	gs := e.sortedGroups(anyGroup)
	if len(gs) > 0 {
		st.Groups = make([]GroupStatus, len(gs))
	}
	for i, g := range gs {
		gst := GroupStatus{Group: g.addr, State: g.state}
		gst.State.Sources = slices.Clone(g.state.Sources)
		if e.mode == levelV3 {
			gst.Retransmissions = g.fmCount
			n := 0
			for _, c := range g.srcRtx {
				n = max(n, c)
			}
			gst.Retransmissions += n
		} else {
			gst.Retransmissions = g.repeats
			gst.LastReporter = g.lastReporter
		}
		if gst.Retransmissions > 0 {
			st.PendingStateChanges++
		}
		if !g.timerAt.IsZero() && g.repeats == 0 {
			gst.ResponseAt = g.timerAt
			st.PendingQueryResponses++
		}
		st.Groups[i] = gst
	}
	if !e.genAt.IsZero() {
		st.PendingQueryResponses++
	}
	return st
}

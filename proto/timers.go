package proto

import (
	"container/heap"
	"time"
)

// timerEntry is a per-group timer deadline in the heap. An entry is stale
// when its group's timer was stopped or moved since it was pushed (seq
// differs); stale entries are skipped when popped and dropped when the heap
// is rebuilt, so the heap stays proportional to the running timers.
type timerEntry struct {
	at  time.Time
	g   *group
	seq uint64
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

func (e timerEntry) live() bool { return e.g.timerSeq == e.seq && !e.g.timerAt.IsZero() }

// setTimer (re)starts g's per-group timer: the IGMPv3/MLDv2 Group Timer of a
// pending query response (RFC 9776 §5.2), or the IGMPv1/v2/MLDv1 report
// delay timer (RFC 2236 §3, RFC 2710 §4).
func (e *engine) setTimer(g *group, at time.Time) {
	if g.timerAt.Equal(at) && !at.IsZero() {
		return
	}
	if g.timerAt.IsZero() {
		e.nTimers++
	}
	g.timerSeq++
	g.timerAt = at
	heap.Push(&e.timers, timerEntry{at: at, g: g, seq: g.timerSeq})
	if len(e.timers) > 2*e.nTimers+64 {
		e.rebuildTimers()
	}
}

// stopTimer stops g's per-group timer if it runs.
func (e *engine) stopTimer(g *group) {
	if g.timerAt.IsZero() {
		return
	}
	e.nTimers--
	g.timerSeq++
	g.timerAt = time.Time{}
}

// rebuildTimers drops stale heap entries.
func (e *engine) rebuildTimers() {
	live := e.timers[:0]
	for _, t := range e.timers {
		if t.live() {
			live = append(live, t)
		}
	}
	clear(e.timers[len(live):])
	e.timers = live
	heap.Init(&e.timers)
}

// peekTimer returns the earliest running per-group deadline, discarding
// stale entries on top of the heap.
func (e *engine) peekTimer() (time.Time, bool) {
	for len(e.timers) > 0 {
		if t := e.timers[0]; t.live() {
			return t.at, true
		}
		heap.Pop(&e.timers)
	}
	e.timers = nil // an idle engine keeps no heap
	return time.Time{}, false
}

// popDue removes and returns the groups whose timers are due at now,
// stopping those timers.
func (e *engine) popDue(now time.Time) []*group {
	var due []*group
	for len(e.timers) > 0 && !e.timers[0].at.After(now) {
		t := heap.Pop(&e.timers).(timerEntry)
		if t.live() {
			e.stopTimer(t.g)
			due = append(due, t.g)
		}
	}
	return due
}

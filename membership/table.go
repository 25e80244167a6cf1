package membership

import (
	"net/netip"
	"slices"
)

// GroupInfo describes one interface group record.
type GroupInfo struct {
	Group netip.Addr
	State State // merged filter
	Refs  int   // number of member sockets
}

// Table is one interface's group records. Each record is reference-counted
// by member sockets and keeps per-source counters, from which its merged
// filter follows (RFC 9776 §3.2, RFC 9777 §4.2): if any socket is in
// EXCLUDE mode the merge is EXCLUDE with the intersection of the EXCLUDE
// sets minus the union of the INCLUDE sets; otherwise it is INCLUDE with the
// union of the INCLUDE sets. It is not safe for concurrent use.
//
// Merged source slices are never modified in place, so the States in a
// Delta or returned by Get/Groups stay valid and unchanged.
type Table struct {
	lim    Limits
	groups map[netip.Addr]*groupRec

	// For tests: noFast forces every call through the general path; nFast
	// counts the calls the single-source fast path served.
	noFast bool
	nFast  int
}

type groupRec struct {
	refs   int // member sockets
	nExcl  int // member sockets in EXCLUDE mode
	counts map[netip.Addr]srcCount
	merged State
}

// srcCount is one source's counters; a source with both zero is deleted.
type srcCount struct {
	incl int32 // INCLUDE-mode sockets listing the source
	excl int32 // EXCLUDE-mode sockets listing the source
}

// NewTable returns an empty table bounded by lim (zero fields mean the
// defaults; only SourcesPerInterfaceGroup is used).
func NewTable(lim Limits) *Table {
	return &Table{lim: lim.WithDefaults(), groups: make(map[netip.Addr]*groupRec)}
}

// Apply replaces one socket's contribution to group from old to new. old
// INCLUDE {} means the socket was not a member; new INCLUDE {} means it
// leaves. old must be exactly what was last applied for that socket (Apply
// panics if the counters show otherwise: that is a caller bug, and the
// table is then unusable). Both must have sorted, unique sources.
//
// d is the group's merged state before and after; changed reports whether
// it differs. The record is created on the first member and removed when
// the last one leaves.
//
// If the update is not a leave (new is a membership) and the merged state
// would exceed SourcesPerInterfaceGroup sources while growing (a mode change,
// or more sources than before in the same mode), Apply returns
// ErrTooManyIfcSources and changes nothing. A leave never fails, even when
// it pushes the merged state over the limit (e.g. the last socket that
// excluded a set of sources leaves another EXCLUDE socket's larger set
// exposed). The last member's leave does not allocate.
//
// Cost: when old and new are memberships in the same mode and new is old
// with exactly one source added or removed (the per-source calls of RFC
// 3678: join-source, leave-source, block, unblock), one comparison pass
// over the two lists, one counter update and, only if the merged list
// changes, one copy of it. Otherwise O(|old.Sources|+|new.Sources|)
// counter updates; when the number of EXCLUDE-mode sockets is unchanged
// only the touched sources are re-evaluated (plus a copy of the merged
// list if it changed); when it changes the merged list is rebuilt from the
// counters.
func (t *Table) Apply(group netip.Addr, old, new State) (d Delta, changed bool, err error) {
	return t.apply(group, old, new, true)
}

// Revert undoes a successful Apply(group, prev, applied), for rolling back
// when a later step of the transaction fails. It skips the limit check, so
// it never fails (restoring a merged state that was over the limit is
// allowed). It returns the delta back to the earlier merged state.
func (t *Table) Revert(group netip.Addr, applied, prev State) (d Delta, changed bool) {
	d, changed, _ = t.apply(group, applied, prev, false)
	return d, changed
}

func (t *Table) apply(group netip.Addr, old, new State, limit bool) (d Delta, changed bool, err error) {
	r := t.groups[group]
	created := false
	if r == nil {
		if old.IsMember() {
			panic("membership: Table.Apply: old state for a group with no record")
		}
		if !new.IsMember() {
			return Delta{Group: group}, false, nil
		}
		r = &groupRec{}
		created = true
	}
	if !t.noFast && old.IsMember() && new.IsMember() && old.Mode == new.Mode {
		if a, added, ok := oneSourceDelta(old.Sources, new.Sources); ok {
			t.nFast++
			return t.applyOne(r, group, new.Mode, a, added, limit)
		}
	}
	before := r.merged
	nExclBefore := r.nExcl
	r.add(old, -1)
	r.add(new, +1)
	var after State
	switch {
	case r.refs == 0:
		after = State{}
		changed = before.IsMember()
	case r.nExcl != nExclBefore:
		after = r.rebuild()
		changed = !after.Equal(before)
	default:
		after, changed = r.patch(before, old.Sources, new.Sources)
	}
	if limit && changed && new.IsMember() && len(after.Sources) > t.lim.SourcesPerInterfaceGroup &&
		(after.Mode != before.Mode || len(after.Sources) > len(before.Sources)) {
		r.add(new, -1)
		r.add(old, +1)
		return Delta{Group: group, Old: before, New: before}, false, ErrTooManyIfcSources
	}
	if r.refs == 0 {
		delete(t.groups, group)
	} else {
		r.merged = after
		if created {
			t.groups[group] = r
		}
	}
	return Delta{Group: group, Old: before, New: after}, changed, nil
}

// oneSourceDelta reports whether new is old with exactly one source added
// (added true) or removed, and which source. Both lists are sorted and
// unique. It is one comparison pass and does not allocate.
func oneSourceDelta(old, new []netip.Addr) (a netip.Addr, added, ok bool) {
	long, short := new, old
	switch {
	case len(new) == len(old)+1:
		added = true
	case len(old) == len(new)+1:
		long, short = old, new
	default:
		return netip.Addr{}, false, false
	}
	i := 0
	for i < len(short) && short[i] == long[i] {
		i++
	}
	if !slices.Equal(short[i:], long[i+1:]) {
		return netip.Addr{}, false, false
	}
	return long[i], added, true
}

// applyOne is Apply for a socket that stays a member in mode and adds
// (added) or removes source a: refs and nExcl are unchanged, so only a's
// counter and a's place in the merged list can change.
func (t *Table) applyOne(r *groupRec, group netip.Addr, mode Mode, a netip.Addr, added, limit bool) (Delta, bool, error) {
	excl := mode == Exclude
	if excl && r.nExcl == 0 || !excl && r.refs == r.nExcl {
		panic("membership: Table.Apply: old state was never applied")
	}
	before := r.merged
	was := r.in(a)
	prev := r.counts[a]
	c := prev
	d := int32(-1)
	if added {
		d = +1
	}
	if excl {
		c.excl += d
	} else {
		c.incl += d
	}
	if c.incl < 0 || c.excl < 0 {
		panic("membership: Table.Apply: old state was never applied")
	}
	r.setCount(a, c)
	now := r.in(a)
	if was == now {
		return Delta{Group: group, Old: before, New: before}, false, nil
	}
	var after State
	if now {
		if limit && len(before.Sources)+1 > t.lim.SourcesPerInterfaceGroup {
			r.setCount(a, prev)
			return Delta{Group: group, Old: before, New: before}, false, ErrTooManyIfcSources
		}
		after = State{Mode: before.Mode, Sources: insertSorted(before.Sources, a)}
	} else {
		after = State{Mode: before.Mode, Sources: removeSorted(before.Sources, a)}
	}
	r.merged = after
	return Delta{Group: group, Old: before, New: after}, true, nil
}

// setCount stores a's counters, deleting the entry when both are zero.
func (r *groupRec) setCount(a netip.Addr, c srcCount) {
	if c == (srcCount{}) {
		delete(r.counts, a)
		return
	}
	if r.counts == nil {
		r.counts = make(map[netip.Addr]srcCount)
	}
	r.counts[a] = c
}

// add adds (d=+1) or removes (d=-1) one socket state's counts.
func (r *groupRec) add(st State, d int) {
	if !st.IsMember() {
		return
	}
	r.refs += d
	excl := st.Mode == Exclude
	if excl {
		r.nExcl += d
	}
	if r.refs < 0 || r.nExcl < 0 {
		panic("membership: Table.Apply: old state was never applied")
	}
	if len(st.Sources) == 0 {
		return
	}
	if r.counts == nil {
		r.counts = make(map[netip.Addr]srcCount, len(st.Sources))
	}
	for _, a := range st.Sources {
		c := r.counts[a]
		if excl {
			c.excl += int32(d)
		} else {
			c.incl += int32(d)
		}
		switch {
		case c.incl < 0 || c.excl < 0:
			panic("membership: Table.Apply: old state was never applied")
		case c == srcCount{}:
			delete(r.counts, a)
		default:
			r.counts[a] = c
		}
	}
}

// in reports whether a is in the merged source list under current counts.
func (r *groupRec) in(a netip.Addr) bool {
	c := r.counts[a]
	if r.nExcl > 0 {
		return int(c.excl) == r.nExcl && c.incl == 0
	}
	return c.incl > 0
}

// rebuild computes the merged state from the counters alone.
func (r *groupRec) rebuild() State {
	var out []netip.Addr
	if r.nExcl > 0 {
		for a, c := range r.counts {
			if int(c.excl) == r.nExcl && c.incl == 0 {
				out = append(out, a)
			}
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return State{Mode: Exclude, Sources: out}
	}
	for a, c := range r.counts {
		if c.incl > 0 {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return State{Mode: Include, Sources: out}
}

// patch recomputes the merged state when the EXCLUDE-socket count (hence
// the mode and the meaning of every untouched counter) did not change: only
// sources in x or y can have entered or left the merged list.
func (r *groupRec) patch(before State, x, y []netip.Addr) (State, bool) {
	n := len(before.Sources)
	delta := false
	for u := (union{a: x, b: y}); ; {
		a, ok := u.next()
		if !ok {
			break
		}
		was, now := contains(before.Sources, a), r.in(a)
		if was != now {
			delta = true
			if now {
				n++
			} else {
				n--
			}
		}
	}
	if !delta {
		return before, false
	}
	if n == 0 {
		return State{Mode: before.Mode}, true
	}
	out := make([]netip.Addr, 0, n)
	cur := before.Sources
	u := union{a: x, b: y}
	t, tok := u.next()
	for len(cur) > 0 || tok {
		switch {
		case tok && (len(cur) == 0 || t.Less(cur[0])):
			if r.in(t) {
				out = append(out, t)
			}
			t, tok = u.next()
		case tok && t == cur[0]:
			if r.in(t) {
				out = append(out, t)
			}
			cur = cur[1:]
			t, tok = u.next()
		default:
			out = append(out, cur[0])
			cur = cur[1:]
		}
	}
	return State{Mode: before.Mode, Sources: out}, true
}

// union iterates over the sorted union of two sorted unique lists.
type union struct{ a, b []netip.Addr }

func (u *union) next() (netip.Addr, bool) {
	switch {
	case len(u.a) == 0 && len(u.b) == 0:
		return netip.Addr{}, false
	case len(u.b) == 0 || (len(u.a) > 0 && u.a[0].Less(u.b[0])):
		v := u.a[0]
		u.a = u.a[1:]
		return v, true
	case len(u.a) == 0 || u.b[0].Less(u.a[0]):
		v := u.b[0]
		u.b = u.b[1:]
		return v, true
	default:
		v := u.a[0]
		u.a, u.b = u.a[1:], u.b[1:]
		return v, true
	}
}

// Get returns group's merged state and reference count, and whether the
// interface is a member.
func (t *Table) Get(group netip.Addr) (st State, refs int, ok bool) {
	r := t.groups[group]
	if r == nil {
		return State{}, 0, false
	}
	return r.merged, r.refs, true
}

// Groups returns every record sorted by group.
func (t *Table) Groups() []GroupInfo {
	out := make([]GroupInfo, 0, len(t.groups))
	for g, r := range t.groups {
		out = append(out, GroupInfo{Group: g, State: r.merged, Refs: r.refs})
	}
	slices.SortFunc(out, func(a, b GroupInfo) int { return a.Group.Compare(b.Group) })
	return out
}

// Len returns the number of group records.
func (t *Table) Len() int { return len(t.groups) }

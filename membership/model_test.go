package membership

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// The model: plain maps, merged state recomputed from scratch, and its own
// statement of the RFC 3678 rules. It shares no logic with the package
// beyond the State type used for comparison.

type mFilter struct {
	mode Mode
	set  map[netip.Addr]bool
}

func (f mFilter) state() State {
	var s []netip.Addr
	for a := range f.set {
		s = append(s, a)
	}
	slices.SortFunc(s, func(a, b netip.Addr) int { return a.Compare(b) })
	return State{Mode: f.mode, Sources: s}
}

func (f mFilter) member() bool { return f.mode == Exclude || len(f.set) > 0 }

type mSocket map[Key]mFilter

// srcCase is a candidate source with its expected classification.
type srcCase struct {
	addr  netip.Addr
	canon netip.Addr // stored form when valid
	err   error      // expected error, nil when valid
}

type modelRun struct {
	t       *testing.T
	r       *rand.Rand
	lim     Limits
	socks   []*SocketFilters
	model   []mSocket
	tables  map[int]*Table
	groups  []netip.Addr
	srcs    map[bool][]srcCase // by group is IPv4
	nvalid  int                // valid sources per family (the first nvalid of srcs)
	perSrc  int                // percent of ops forced to a per-source op fitting the current mode
	kept    []State            // published states that must stay unchanged
	keptStr []string
	stats   map[string]int
}

func newModelRun(t *testing.T, seed uint64, lim Limits, nsock, nvalid int) *modelRun {
	m := &modelRun{
		t: t, r: rand.New(rand.NewPCG(seed, seed*7+1)), lim: lim, nvalid: nvalid,
		tables: map[int]*Table{1: NewTable(lim), 2: NewTable(lim)},
		groups: addrs("232.1.1.1", "239.2.2.2", "ff3e::1", "ff05::2"),
		srcs:   map[bool][]srcCase{},
		stats:  map[string]int{},
	}
	for range nsock {
		m.socks = append(m.socks, NewSocketFilters(lim))
		m.model = append(m.model, mSocket{})
	}
	good := func(s string) srcCase { a := netip.MustParseAddr(s); return srcCase{a, a, nil} }
	bad := func(s string, err error) srcCase { return srcCase{netip.MustParseAddr(s), netip.Addr{}, err} }
	for i := 1; i <= nvalid; i++ {
		m.srcs[true] = append(m.srcs[true], good(fmt.Sprintf("192.0.2.%d", i)))
		m.srcs[false] = append(m.srcs[false], good(fmt.Sprintf("2001:db8::%d", i)))
	}
	m.srcs[true] = append(m.srcs[true],
		srcCase{netip.MustParseAddr("::ffff:192.0.2.2"), netip.MustParseAddr("192.0.2.2"), nil},
		bad("224.0.0.1", ErrBadSource), bad("0.0.0.0", ErrBadSource),
		bad("255.255.255.255", ErrBadSource), bad("2001:db8::1", ErrFamilyMismatch))
	m.srcs[false] = append(m.srcs[false],
		bad("ff02::1", ErrBadSource), bad("::", ErrBadSource),
		bad("192.0.2.1", ErrFamilyMismatch), bad("::ffff:192.0.2.1", ErrFamilyMismatch))
	return m
}

func (m *modelRun) pickSrc(v4 bool) srcCase {
	l := m.srcs[v4]
	if m.r.IntN(10) == 0 { // mostly valid sources
		return l[m.r.IntN(len(l))]
	}
	return l[m.r.IntN(m.nvalid)]
}

// merged computes an interface group's merged state from all sockets.
func (m *modelRun) merged(k Key) (State, int) {
	refs, anyExcl := 0, false
	var filters []mFilter
	for _, ms := range m.model {
		if f, ok := ms[k]; ok {
			refs++
			filters = append(filters, f)
			anyExcl = anyExcl || f.mode == Exclude
		}
	}
	if refs == 0 {
		return State{}, 0
	}
	out := map[netip.Addr]bool{}
	if anyExcl {
		first := true
		for _, f := range filters {
			if f.mode != Exclude {
				continue
			}
			if first {
				for a := range f.set {
					out[a] = true
				}
				first = false
				continue
			}
			for a := range out {
				if !f.set[a] {
					delete(out, a)
				}
			}
		}
		for _, f := range filters {
			if f.mode == Include {
				for a := range f.set {
					delete(out, a)
				}
			}
		}
		return mFilter{Exclude, out}.state(), refs
	}
	for _, f := range filters {
		for a := range f.set {
			out[a] = true
		}
	}
	return mFilter{Include, out}.state(), refs
}

// propose is the model's statement of the RFC 3678 rules.
func (m *modelRun) propose(i int, k Key, op Op, srcs []srcCase, mode Mode) (mFilter, error) {
	cur, joined := m.model[i][k]
	if !k.Group.IsMulticast() {
		return cur, ErrNotMulticast
	}
	if op.Kind == OpSetFilter && mode > Exclude {
		return cur, ErrBadOp
	}
	for _, s := range srcs {
		if s.err != nil {
			return cur, s.err
		}
	}
	set := map[netip.Addr]bool{}
	for a := range cur.set {
		set[a] = true
	}
	var n mFilter
	var src netip.Addr
	if len(srcs) > 0 {
		src = srcs[0].canon
	}
	switch op.Kind {
	case OpJoin:
		if joined {
			return cur, ErrAlreadyJoined
		}
		n = mFilter{Exclude, nil}
	case OpLeave:
		if !joined {
			return cur, ErrNotJoined
		}
		n = mFilter{Include, nil}
	case OpJoinSource:
		if joined && cur.mode == Exclude {
			return cur, ErrModeMismatch
		}
		if set[src] {
			return cur, ErrSourceExists
		}
		set[src] = true
		n = mFilter{Include, set}
	case OpLeaveSource, OpUnblock:
		want := Include
		if op.Kind == OpUnblock {
			want = Exclude
		}
		if !joined {
			return cur, ErrNotJoined
		}
		if cur.mode != want {
			return cur, ErrModeMismatch
		}
		if !set[src] {
			return cur, ErrSourceNotFound
		}
		delete(set, src)
		n = mFilter{want, set}
	case OpBlock:
		if !joined {
			return cur, ErrNotJoined
		}
		if cur.mode != Exclude {
			return cur, ErrModeMismatch
		}
		if set[src] {
			return cur, ErrSourceExists
		}
		set[src] = true
		n = mFilter{Exclude, set}
	case OpSetFilter:
		set = map[netip.Addr]bool{}
		for _, s := range srcs {
			set[s.canon] = true
		}
		n = mFilter{mode, set}
		if !n.member() && !joined {
			return cur, ErrNotJoined
		}
	}
	if !joined && n.member() && len(m.model[i]) >= m.lim.WithDefaults().GroupsPerSocket {
		return cur, ErrTooManyGroups
	}
	if len(n.set) > m.lim.WithDefaults().SourcesPerSocketFilter {
		return cur, ErrTooManySources
	}
	return n, nil
}

func (m *modelRun) randomOp(i int) (Op, []srcCase, Mode, Key) {
	g := m.groups[m.r.IntN(len(m.groups))]
	if m.r.IntN(200) == 0 {
		g = netip.MustParseAddr("10.1.1.1")
	}
	k := Key{IfIndex: 1 + m.r.IntN(2), Group: g}
	v4 := g.Is4()
	kind := OpKind(m.r.IntN(7))
	if m.r.IntN(100) < m.perSrc {
		// Grow or shrink the current filter by one source (mostly grow).
		add := m.r.IntN(10) < 6
		cur, joined := m.model[i][k]
		switch {
		case joined && cur.mode == Exclude && add:
			kind = OpBlock
		case joined && cur.mode == Exclude:
			kind = OpUnblock
		case add:
			kind = OpJoinSource
		default:
			kind = OpLeaveSource
		}
	}
	op := Op{Kind: kind}
	var srcs []srcCase
	mode := Mode(0)
	switch kind {
	case OpJoinSource, OpLeaveSource, OpBlock, OpUnblock:
		s := m.pickSrc(v4)
		op.Source = s.addr
		srcs = []srcCase{s}
	case OpSetFilter:
		mode = Mode(m.r.IntN(2))
		if m.r.IntN(100) == 0 {
			mode = 5
		}
		for range m.r.IntN(6) {
			s := m.pickSrc(v4)
			srcs = append(srcs, s)
			op.Sources = append(op.Sources, s.addr)
		}
		op.Mode = mode
	}
	return op, srcs, mode, k
}

// applyIfc applies one socket's change to the table and checks the delta
// against the model; it returns the table error.
func (m *modelRun) applyIfc(step int, i int, k Key, old State, n mFilter, mustSucceed bool) error {
	before, _ := m.merged(k)
	saved, had := m.model[i][k]
	if n.member() {
		m.model[i][k] = n
	} else {
		delete(m.model[i], k)
	}
	after, _ := m.merged(k)
	changed := !after.Equal(before)
	wantErr := n.member() && changed && len(after.Sources) > m.lim.WithDefaults().SourcesPerInterfaceGroup &&
		(after.Mode != before.Mode || len(after.Sources) > len(before.Sources))
	tab := m.tables[k.IfIndex]
	nFast := tab.nFast
	d, ch, err := tab.Apply(k.Group, old, n.state())
	path := "general"
	if tab.nFast != nFast {
		path = "fast"
	}
	m.stats["path:"+path]++
	if wantErr {
		m.stats[path+"-ifc-limit"]++
		if had {
			m.model[i][k] = saved
		} else {
			delete(m.model[i], k)
		}
		if !errors.Is(err, ErrTooManyIfcSources) {
			m.t.Fatalf("step %d: Apply err = %v, want ErrTooManyIfcSources (%v -> %v)", step, err, before, after)
		}
		if mustSucceed {
			m.t.Fatalf("step %d: model expects a leave to fail", step)
		}
		m.stats["ifc-limit"]++
		return err
	}
	if err != nil {
		m.t.Fatalf("step %d: Apply err = %v, model expected success", step, err)
	}
	if ch != changed || !d.Old.Equal(before) || !d.New.Equal(after) || d.Group != k.Group {
		m.t.Fatalf("step %d: delta %v->%v changed %v, model %v->%v changed %v", step, d.Old, d.New, ch, before, after, changed)
	}
	if ch {
		m.kept = append(m.kept, d.Old, d.New)
		m.keptStr = append(m.keptStr, d.Old.String(), d.New.String())
		if len(m.kept) > 64 {
			m.kept, m.keptStr = m.kept[2:], m.keptStr[2:]
		}
	}
	return nil
}

func (m *modelRun) step(step int) {
	i := m.r.IntN(len(m.socks))
	s := m.socks[i]
	switch x := m.r.IntN(100); {
	case x == 0: // socket close
		for _, e := range s.All() {
			m.applyIfc(step, i, e.Key, e.State, mFilter{}, true) //nolint:errcheck
			s.Commit(e.Key, State{})
		}
		m.stats["close"]++
	case x == 1: // interface removal
		ifc := 1 + m.r.IntN(2)
		for j, sj := range m.socks {
			for _, e := range sj.RemoveInterface(ifc) {
				m.applyIfc(step, j, e.Key, e.State, mFilter{}, true) //nolint:errcheck
			}
		}
		if n := m.tables[ifc].Len(); n != 0 {
			m.t.Fatalf("step %d: interface %d still has %d groups after removal", step, ifc, n)
		}
		m.stats["ifdown"]++
	default:
		op, srcs, mode, k := m.randomOp(i)
		cur, _ := m.model[i][k]
		want, wantErr := m.propose(i, k, op, srcs, mode)
		old, n, err := s.Propose(k, op)
		if !old.Equal(cur.state()) {
			m.t.Fatalf("step %d: %v old = %v, model %v", step, op, old, cur.state())
		}
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				m.t.Fatalf("step %d: %v on %v: err = %v, model %v (state %v)", step, op, k, err, wantErr, cur.state())
			}
			m.stats["err:"+wantErr.Error()]++
			return
		}
		if err != nil {
			m.t.Fatalf("step %d: %v on %v: err = %v, model expected %v", step, op, k, err, want.state())
		}
		if !n.Equal(want.state()) {
			m.t.Fatalf("step %d: %v on %v: new = %v, model %v", step, op, k, n, want.state())
		}
		if m.applyIfc(step, i, k, old, want, !n.IsMember()) == nil {
			s.Commit(k, n)
			m.stats["ok:"+op.Kind.String()]++
			switch op.Kind {
			case OpJoinSource, OpLeaveSource, OpBlock, OpUnblock:
				if old.IsMember() && n.IsMember() {
					m.stats["ok-one:"+op.Kind.String()]++ // a single-source delta
				}
			}
		}
	}
	m.check(step)
}

func (m *modelRun) check(step int) {
	for i, s := range m.socks {
		all := s.All()
		if len(all) != len(m.model[i]) || s.Len() != len(all) {
			m.t.Fatalf("step %d: socket %d has %d entries, model %d", step, i, len(all), len(m.model[i]))
		}
		for j, e := range all {
			f, ok := m.model[i][e.Key]
			if !ok || !e.State.Equal(f.state()) {
				m.t.Fatalf("step %d: socket %d %v = %v, model %v (%v)", step, i, e.Key, e.State, f.state(), ok)
			}
			if j > 0 && (all[j-1].Key.IfIndex > e.Key.IfIndex ||
				all[j-1].Key.IfIndex == e.Key.IfIndex && !all[j-1].Key.Group.Less(e.Key.Group)) {
				m.t.Fatalf("step %d: All not sorted", step)
			}
		}
	}
	for ifc, tab := range m.tables {
		n := 0
		for _, g := range m.groups {
			want, refs := m.merged(Key{ifc, g})
			got, grefs, ok := tab.Get(g)
			if ok != (refs > 0) || grefs != refs || !got.Equal(want) {
				m.t.Fatalf("step %d: if %d %v = %v refs %d (%v), model %v refs %d", step, ifc, g, got, grefs, ok, want, refs)
			}
			if ok {
				n++
			}
		}
		if tab.Len() != n || len(tab.Groups()) != n {
			m.t.Fatalf("step %d: if %d Len %d, model %d", step, ifc, tab.Len(), n)
		}
	}
	for j, st := range m.kept {
		if st.String() != m.keptStr[j] {
			m.t.Fatalf("step %d: published state changed from %s to %s", step, m.keptStr[j], st)
		}
	}
}

func TestModel(t *testing.T) {
	runs := []struct {
		name   string
		lim    Limits
		nvalid int  // valid sources per family
		perSrc int  // percent of ops forced to grow or shrink a filter by one source
		limits bool // the limit paths must be exercised
	}{
		{"default", Limits{}, 6, 0, false},
		{"small", Limits{GroupsPerSocket: 3, SourcesPerSocketFilter: 3, SourcesPerInterfaceGroup: 4}, 6, 0, true},
		{"tiny-ifc", Limits{SourcesPerSocketFilter: 4, SourcesPerInterfaceGroup: 2}, 6, 0, true},
		// Long filters built mostly one source at a time (the Table fast
		// path), with and without limits in reach.
		{"many-sources", Limits{}, 40, 85, false},
		{"many-sources-limits", Limits{SourcesPerSocketFilter: 6, SourcesPerInterfaceGroup: 10}, 40, 85, true},
	}
	const steps = 5000 // cheap (~50 ms per run); the coverage checks below need it
	for _, run := range runs {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", run.name, seed), func(t *testing.T) {
				m := newModelRun(t, seed, run.lim, 4, run.nvalid)
				m.perSrc = run.perSrc
				for i := range steps {
					m.step(i)
				}
				// Make sure the interesting paths ran.
				for _, k := range []string{"ok:join", "ok:block", "ok:set-filter", "ok:leave-source", "ok:unblock",
					"ok-one:join-source", "ok-one:leave-source", "ok-one:block", "ok-one:unblock",
					"path:fast", "path:general",
					"err:" + ErrModeMismatch.Error(), "err:" + ErrSourceExists.Error(), "close"} {
					if m.stats[k] == 0 {
						t.Errorf("path %q never exercised: %v", k, m.stats)
					}
				}
				// With per-source ops forced, most Apply calls take the fast path.
				if f, g := m.stats["path:fast"], m.stats["path:general"]; run.perSrc > 0 && 2*f < g {
					t.Errorf("fast path served %d Apply calls, general %d: %v", f, g, m.stats)
				}
				if run.limits {
					want := []string{"ifc-limit", "err:" + ErrTooManySources.Error()}
					if run.perSrc > 0 {
						want = append(want, "fast-ifc-limit", "general-ifc-limit")
					}
					for _, k := range want {
						if m.stats[k] == 0 {
							t.Errorf("path %q never exercised: %v", k, m.stats)
						}
					}
				}
				if run.name == "small" && m.stats["err:"+ErrTooManyGroups.Error()] == 0 {
					t.Errorf("ErrTooManyGroups never exercised: %v", m.stats)
				}
			})
		}
	}
}

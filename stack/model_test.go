package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mcstack/mcstack/membership"
)

// The model-based test: random sequences of RFC 3678 operations on a stack
// with two interfaces and several udp4 and udp6 sockets, checked after
// every operation against a naive reference model (per-socket filters as
// maps, the merged interface state computed from scratch per RFC 9776
// §3.2): the error, every socket's filter, every interface's group records,
// which sockets a datagram reaches, the deltas the engines were handed and
// the driver filter.

// Few groups and sources so that operations collide. 239.1.1.1 and
// 239.129.1.1 share a MAC, as do ff3e::1:1 and ff15::1:1; ff05::1 shares
// all-nodes' MAC, which the driver filter always holds.
var (
	mGroups4 = addrs("232.1.1.1", "239.1.1.1", "239.129.1.1")
	mGroups6 = addrs("ff3e::1:1", "ff15::1:1", "ff05::1")
	mSrcs4   = addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")
	mSrcs6   = addrs("2001:db8:9::1", "2001:db8:9::2", "2001:db8:9::3")
	// Sources no filter lists, used only as senders.
	mOther4, mOther6 = netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("2001:db8:9::9")
	mUnicast4        = netip.MustParseAddr("192.0.2.50")
	mUnicast6        = netip.MustParseAddr("2001:db8::50")
	mBadSrcs4        = addrs("0.0.0.0", "224.0.0.5")
	mBadSrcs6        = addrs("::", "ff02::5")
)

const mPort = 7000

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

type mKey struct {
	ifc   int // 0 or 1
	group netip.Addr
}

type mFilter struct {
	mode membership.Mode
	srcs map[netip.Addr]bool
}

func (f *mFilter) state() membership.State {
	var l []netip.Addr
	for a := range f.srcs {
		l = append(l, a)
	}
	slices.SortFunc(l, netip.Addr.Compare)
	return membership.State{Mode: f.mode, Sources: l}
}

func (f *mFilter) accepts(src netip.Addr) bool {
	if f.mode == membership.Exclude {
		return !f.srcs[src]
	}
	return f.srcs[src]
}

type mSock struct {
	id     int
	c      *Conn
	is4    bool
	closed bool
	f      map[mKey]*mFilter
}

type mOpKind int

const (
	mJoin mOpKind = iota
	mLeave
	mJoinSrc
	mLeaveSrc
	mBlock
	mUnblock
	mSetFilter
	mClose
	mNewSock
)

var mOpNames = [...]string{"join", "leave", "join-source", "leave-source", "block", "unblock", "set-filter", "close", "new-socket"}

type mOp struct {
	kind  mOpKind
	sock  *mSock
	ifc   int // -1: nil interface
	group netip.Addr
	src   netip.Addr
	mode  membership.Mode
	srcs  []netip.Addr
	is4   bool // mNewSock
}

func (o mOp) String() string {
	var b strings.Builder
	b.WriteString(mOpNames[o.kind])
	if o.sock != nil {
		fmt.Fprintf(&b, " sock%d", o.sock.id)
	}
	switch o.kind {
	case mNewSock:
		fmt.Fprintf(&b, " udp4=%v", o.is4)
	case mClose:
	default:
		fmt.Fprintf(&b, " ifc=%d %v", o.ifc, o.group)
		switch o.kind {
		case mJoinSrc, mLeaveSrc, mBlock, mUnblock:
			fmt.Fprintf(&b, " %v", o.src)
		case mSetFilter:
			fmt.Fprintf(&b, " %v%v", o.mode, o.srcs)
		}
	}
	return b.String()
}

type model struct {
	socks  []*mSock
	nextID int
}

func (m *model) open() []*mSock {
	var out []*mSock
	for _, s := range m.socks {
		if !s.closed {
			out = append(out, s)
		}
	}
	return out
}

// expect returns the sentinel op must fail with (nil on success) and, on
// success, applies it to the model. The order of the checks is the
// documented one: closed socket, interface, group family, group, sources,
// filter state (limits are the defaults, never reached here).
func (m *model) expect(o mOp) error {
	s := o.sock
	switch o.kind {
	case mNewSock:
		return nil
	case mClose:
		if s.closed {
			return net.ErrClosed
		}
		s.closed = true
		s.f = map[mKey]*mFilter{}
		return nil
	}
	if s.closed {
		return net.ErrClosed
	}
	if o.ifc < 0 {
		return ErrUnknownInterface
	}
	g := o.group
	if g.Is4() != s.is4 {
		return membership.ErrFamilyMismatch
	}
	if !g.IsMulticast() {
		return membership.ErrNotMulticast
	}
	checkSrc := func(a netip.Addr) error {
		if a.Is4() != g.Is4() {
			return membership.ErrFamilyMismatch
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return membership.ErrBadSource
		}
		return nil
	}
	switch o.kind {
	case mJoinSrc, mLeaveSrc, mBlock, mUnblock:
		if err := checkSrc(o.src); err != nil {
			return err
		}
	case mSetFilter:
		for _, a := range o.srcs {
			if err := checkSrc(a); err != nil {
				return err
			}
		}
	}
	k := mKey{o.ifc, g}
	f := s.f[k]
	switch o.kind {
	case mJoin:
		if f != nil {
			return membership.ErrAlreadyJoined
		}
		s.f[k] = &mFilter{mode: membership.Exclude, srcs: map[netip.Addr]bool{}}
	case mLeave:
		if f == nil {
			return membership.ErrNotJoined
		}
		delete(s.f, k)
	case mJoinSrc:
		switch {
		case f == nil:
			s.f[k] = &mFilter{mode: membership.Include, srcs: map[netip.Addr]bool{o.src: true}}
		case f.mode == membership.Exclude:
			return membership.ErrModeMismatch
		case f.srcs[o.src]:
			return membership.ErrSourceExists
		default:
			f.srcs[o.src] = true
		}
	case mLeaveSrc, mUnblock:
		want := membership.Include
		if o.kind == mUnblock {
			want = membership.Exclude
		}
		switch {
		case f == nil:
			return membership.ErrNotJoined
		case f.mode != want:
			return membership.ErrModeMismatch
		case !f.srcs[o.src]:
			return membership.ErrSourceNotFound
		}
		delete(f.srcs, o.src)
		if f.mode == membership.Include && len(f.srcs) == 0 {
			delete(s.f, k)
		}
	case mBlock:
		switch {
		case f == nil:
			return membership.ErrNotJoined
		case f.mode != membership.Exclude:
			return membership.ErrModeMismatch
		case f.srcs[o.src]:
			return membership.ErrSourceExists
		}
		f.srcs[o.src] = true
	case mSetFilter:
		set := map[netip.Addr]bool{}
		for _, a := range o.srcs {
			set[a] = true
		}
		if o.mode == membership.Include && len(set) == 0 {
			if f == nil {
				return membership.ErrNotJoined
			}
			delete(s.f, k)
			return nil
		}
		s.f[k] = &mFilter{mode: o.mode, srcs: set}
	}
	return nil
}

// merged computes an interface group's state naively (RFC 9776 §3.2): any
// EXCLUDE member makes it EXCLUDE with the intersection of the EXCLUDE sets
// minus the union of the INCLUDE sets; otherwise INCLUDE with the union.
func (m *model) merged(k mKey) (membership.State, int) {
	var excl []map[netip.Addr]bool
	incl := map[netip.Addr]bool{}
	refs := 0
	for _, s := range m.open() {
		f := s.f[k]
		if f == nil {
			continue
		}
		refs++
		if f.mode == membership.Exclude {
			excl = append(excl, f.srcs)
			continue
		}
		for a := range f.srcs {
			incl[a] = true
		}
	}
	var out []netip.Addr
	mode := membership.Include
	if len(excl) > 0 {
		mode = membership.Exclude
		for a := range excl[0] {
			in := !incl[a]
			for _, e := range excl[1:] {
				in = in && e[a]
			}
			if in {
				out = append(out, a)
			}
		}
	} else {
		for a := range incl {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return membership.State{Mode: mode, Sources: out}, refs
}

func (m *model) groups(ifc int) []membership.GroupInfo {
	var out []membership.GroupInfo
	for _, fam := range [][]netip.Addr{mGroups4, mGroups6} {
		var part []membership.GroupInfo
		for _, g := range fam {
			st, refs := m.merged(mKey{ifc, g})
			if refs > 0 {
				part = append(part, membership.GroupInfo{Group: g, State: st, Refs: refs})
			}
		}
		slices.SortFunc(part, func(a, b membership.GroupInfo) int { return a.Group.Compare(b.Group) })
		out = append(out, part...)
	}
	return out
}

// genOp draws a random operation, mostly valid, sometimes invalid in one
// way.
func (m *model) genOp(r *rand.Rand) mOp {
	open := m.open()
	w := r.IntN(100)
	switch {
	case w < 4 || len(open) == 0:
		if len(open) < 7 {
			return mOp{kind: mNewSock, is4: r.IntN(2) == 0}
		}
	case w < 8:
		return mOp{kind: mClose, sock: m.socks[r.IntN(len(m.socks))]}
	}
	open = m.open()
	o := mOp{sock: open[r.IntN(len(open))], ifc: r.IntN(2)}
	if r.IntN(100) < 3 && len(m.socks) > len(open) {
		// An operation on a closed socket.
		for _, s := range m.socks {
			if s.closed {
				o.sock = s
				break
			}
		}
	}
	if r.IntN(100) < 3 {
		o.ifc = -1
	}
	is4 := o.sock.is4
	if r.IntN(100) < 4 {
		is4 = !is4 // group of the other family
	}
	groups, srcs, other, uni, bad := mGroups6, mSrcs6, mSrcs4, mUnicast6, mBadSrcs6
	if is4 {
		groups, srcs, other, uni, bad = mGroups4, mSrcs4, mSrcs6, mUnicast4, mBadSrcs4
	}
	o.group = groups[r.IntN(len(groups))]
	if r.IntN(100) < 3 {
		o.group = uni
	}
	pickSrc := func() netip.Addr {
		switch x := r.IntN(100); {
		case x < 3:
			return bad[r.IntN(len(bad))]
		case x < 5:
			return other[r.IntN(len(other))]
		}
		return srcs[r.IntN(len(srcs))]
	}
	switch x := r.IntN(100); {
	case x < 16:
		o.kind = mJoin
	case x < 26:
		o.kind = mLeave
	case x < 46:
		o.kind = mJoinSrc
	case x < 58:
		o.kind = mLeaveSrc
	case x < 72:
		o.kind = mBlock
	case x < 82:
		o.kind = mUnblock
	default:
		o.kind = mSetFilter
		o.mode = membership.Mode(r.IntN(2))
		for range r.IntN(4) {
			o.srcs = append(o.srcs, pickSrc()) // duplicates allowed
		}
	}
	o.src = pickSrc()
	return o
}

func TestModel(t *testing.T) {
	ops := 2500
	seeds := []uint64{1, 2}
	if testing.Short() {
		ops = 500
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed, ops) })
	}
}

func runModel(t *testing.T, seed uint64, nops int) {
	// No coalescing delay: the test syncs after every operation.
	cfg := Config{CoalesceDelay: -1}
	rec := newRecorder(&cfg)
	s, ifcs, eps := newTwoIfcStack(t, cfg)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	m := &model{}
	folders := map[string]*folder{}
	for _, ifc := range ifcs {
		for _, fam := range []string{"igmp", "mld"} {
			folders[ifc.Name()+"/"+fam] = newFolder()
		}
	}
	newSock := func(is4 bool) {
		network, laddr := "udp6", fmt.Sprintf("[::]:%d", mPort)
		if is4 {
			network, laddr = "udp4", fmt.Sprintf("0.0.0.0:%d", mPort)
		}
		m.nextID++
		m.socks = append(m.socks, &mSock{id: m.nextID, c: mustListen(t, s, network, laddr), is4: is4, f: map[mKey]*mFilter{}})
	}
	for _, is4 := range []bool{true, true, false, false} {
		newSock(is4)
	}
	var history []string
	fail := func(format string, args ...any) {
		t.Helper()
		start := max(0, len(history)-15)
		t.Fatalf("seed %d after %d ops (last: %s):\n%s", seed, len(history), strings.Join(history[start:], "\n  "), fmt.Sprintf(format, args...))
	}
	for i := range nops {
		o := m.genOp(r)
		history = append(history, o.String())
		var ifc *Interface
		if o.ifc >= 0 {
			ifc = ifcs[o.ifc]
		}
		var err error
		switch o.kind {
		case mNewSock:
			newSock(o.is4)
		case mClose:
			err = o.sock.c.Close()
		case mJoin:
			err = o.sock.c.JoinGroup(ifc, o.group)
		case mLeave:
			err = o.sock.c.LeaveGroup(ifc, o.group)
		case mJoinSrc:
			err = o.sock.c.JoinSourceSpecificGroup(ifc, o.group, o.src)
		case mLeaveSrc:
			err = o.sock.c.LeaveSourceSpecificGroup(ifc, o.group, o.src)
		case mBlock:
			err = o.sock.c.ExcludeSourceSpecificGroup(ifc, o.group, o.src)
		case mUnblock:
			err = o.sock.c.IncludeSourceSpecificGroup(ifc, o.group, o.src)
		case mSetFilter:
			err = o.sock.c.SetSourceFilter(ifc, o.group, o.mode, o.srcs)
		}
		want := m.expect(o)
		switch {
		case want == nil && err != nil:
			fail("got error %v, want success", err)
		case want != nil && !errors.Is(err, want):
			fail("got error %v, want %v", err, want)
		}
		if len(m.socks) > 12 {
			// Forget closed sockets, keeping the list short.
			m.socks = slices.DeleteFunc(m.socks, func(s *mSock) bool { return s.closed })
		}
		checkModelFilters(t, m, ifcs, fail)
		for x, ifc := range ifcs {
			if got, want := ifc.Status().Groups, m.groups(x); !sameGroups(got, want) {
				fail("%s groups:\n got  %v\n want %v", ifc.Name(), got, want)
			}
		}
		checkModelDelivery(t, m, r, ifcs, eps, i, fail)
		if r.IntN(3) > 0 {
			// Let changes pile up between syncs, so that the workers
			// coalesce some of them.
			continue
		}
		for x, ifc := range ifcs {
			syncIfc(t, ifc)
			checkModelEngines(m, x, ifc, rec, folders, fail)
			var member []netip.Addr
			for _, gi := range m.groups(x) {
				member = append(member, gi.Group)
			}
			want := macSet(member...)
			if got := eps[x].lastFilter(); !slices.Equal(got, want) {
				fail("%s driver filter %v, want %v", ifc.Name(), got, want)
			}
			if got := ifc.Status().Driver.Exact; !slices.Equal(got, want) {
				fail("%s Status().Driver.Exact %v, want %v", ifc.Name(), got, want)
			}
		}
	}
	// Closing everything leaves nothing behind.
	for _, ms := range m.open() {
		if err := ms.c.Close(); err != nil {
			t.Fatal(err)
		}
		m.expect(mOp{kind: mClose, sock: ms})
	}
	for x, ifc := range ifcs {
		syncIfc(t, ifc)
		checkModelEngines(m, x, ifc, rec, folders, fail)
		if g := ifc.Status().Groups; len(g) != 0 {
			t.Fatalf("%s groups after closing every socket: %v", ifc.Name(), g)
		}
		if got := eps[x].lastFilter(); !slices.Equal(got, alwaysMACs) {
			t.Fatalf("%s driver filter after closing every socket: %v", ifc.Name(), got)
		}
	}
}

func checkModelFilters(t *testing.T, m *model, ifcs [2]*Interface, fail func(string, ...any)) {
	t.Helper()
	for _, ms := range m.socks {
		groups := mGroups6
		if ms.is4 {
			groups = mGroups4
		}
		for x, ifc := range ifcs {
			for _, g := range groups {
				mode, srcs, err := ms.c.SourceFilter(ifc, g)
				f := ms.f[mKey{x, g}]
				switch {
				case ms.closed:
					if !errors.Is(err, net.ErrClosed) {
						fail("sock%d (closed) SourceFilter(%s, %v) = %v %v %v, want net.ErrClosed", ms.id, ifc.Name(), g, mode, srcs, err)
					}
				case f == nil:
					if !errors.Is(err, membership.ErrNotJoined) {
						fail("sock%d SourceFilter(%s, %v) = %v %v %v, want ErrNotJoined", ms.id, ifc.Name(), g, mode, srcs, err)
					}
				default:
					want := f.state()
					if err != nil || mode != want.Mode || !slices.Equal(srcs, want.Sources) {
						fail("sock%d SourceFilter(%s, %v) = %v %v %v, want %v", ms.id, ifc.Name(), g, mode, srcs, err, want)
					}
				}
			}
		}
	}
}

func sameGroups(a, b []membership.GroupInfo) bool {
	return slices.EqualFunc(a, b, func(x, y membership.GroupInfo) bool {
		return x.Group == y.Group && x.Refs == y.Refs && x.State.Equal(y.State)
	})
}

// checkModelDelivery injects one datagram from a random source to a random
// group on a random interface and checks exactly which sockets get it.
func checkModelDelivery(t *testing.T, m *model, r *rand.Rand, ifcs [2]*Interface, eps [2]*testEndpoint, seq int, fail func(string, ...any)) {
	t.Helper()
	x := r.IntN(2)
	groups, srcs, other := mGroups6, mSrcs6, mOther6
	if r.IntN(2) == 0 {
		groups, srcs, other = mGroups4, mSrcs4, mOther4
	}
	g := groups[r.IntN(len(groups))]
	src := other
	if r.IntN(4) > 0 {
		src = srcs[r.IntN(len(srcs))]
	}
	payload := fmt.Sprint("dgram", seq)
	eps[x].inject(udpFrame(t, src, g, 1234, mPort, []byte(payload)))
	for _, ms := range m.socks {
		got := drainConn(ms.c)
		f := ms.f[mKey{x, g}]
		want := !ms.closed && ms.is4 == g.Is4() && f != nil && f.accepts(src)
		switch {
		case want && len(got) != 1:
			fail("sock%d got %d datagrams from %v to %v on %s, want 1 (filter %v)", ms.id, len(got), src, g, ifcs[x].Name(), f.state())
		case want && (got[0].payload != payload || got[0].cm.Src.Addr() != src || got[0].cm.Dst != g || got[0].cm.IfIndex != ifcs[x].Index()):
			fail("sock%d got %+v, want %q from %v to %v on %s", ms.id, got[0], payload, src, g, ifcs[x].Name())
		case !want && len(got) != 0:
			fail("sock%d got %+v from %v to %v on %s, want nothing", ms.id, got, src, g, ifcs[x].Name())
		}
	}
}

// checkModelEngines folds the deltas the engines received since the last
// check and compares the folded state with the model's merged state.
func checkModelEngines(m *model, x int, ifc *Interface, rec *recorder, folders map[string]*folder, fail func(string, ...any)) {
	for _, fam := range []string{"igmp", "mld"} {
		e := rec.engine(ifc.Name(), fam)
		ds, _ := e.snapshot()
		f := folders[ifc.Name()+"/"+fam]
		if err := f.fold(ds); err != nil {
			fail("%s %s: %v", ifc.Name(), fam, err)
		}
		groups := mGroups6
		if fam == "igmp" {
			groups = mGroups4
		}
		for _, g := range groups {
			want, _ := m.merged(mKey{x, g})
			if got := f.state[g]; !got.Equal(want) {
				fail("%s %s: folded deltas give %v for %v, model %v", ifc.Name(), fam, got, g, want)
			}
		}
		for g := range f.state {
			if !slices.Contains(groups, g) {
				fail("%s %s: delta for unexpected group %v", ifc.Name(), fam, g)
			}
		}
	}
}

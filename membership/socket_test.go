package membership

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	g4   = netip.MustParseAddr("232.1.1.1")
	g6   = netip.MustParseAddr("ff3e::1234")
	srcA = netip.MustParseAddr("192.0.2.1")
	srcB = netip.MustParseAddr("192.0.2.2")
	srcC = netip.MustParseAddr("192.0.2.3")
	s6A  = netip.MustParseAddr("2001:db8::1")
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// apply proposes and commits, failing the test on error.
func apply(t *testing.T, s *SocketFilters, k Key, op Op) State {
	t.Helper()
	_, n, err := s.Propose(k, op)
	if err != nil {
		t.Fatalf("setup %v: %v", op, err)
	}
	s.Commit(k, n)
	return n
}

func TestProposeRules(t *testing.T) {
	k4 := Key{IfIndex: 1, Group: g4}
	join := Op{Kind: OpJoin}
	inclA := Op{Kind: OpJoinSource, Source: srcA}
	blockA := Op{Kind: OpBlock, Source: srcA}
	type tc struct {
		name  string
		key   Key
		setup []Op
		op    Op
		want  State // on success
		err   error
		lim   Limits
		prior []Key // any-source joined before setup
	}
	cases := []tc{
		// address validation
		{name: "unicast group", key: Key{1, srcA}, op: join, err: ErrNotMulticast},
		{name: "invalid group", key: Key{1, netip.Addr{}}, op: join, err: ErrNotMulticast},
		{name: "zoned group", key: Key{1, netip.MustParseAddr("ff02::1%eth0")}, op: join, err: ErrNotMulticast},
		{name: "mapped group", key: Key{1, netip.MustParseAddr("::ffff:232.1.1.1")}, op: join, err: ErrFamilyMismatch},
		{name: "multicast source", key: k4, op: Op{Kind: OpJoinSource, Source: g4}, err: ErrBadSource},
		{name: "unspecified source", key: k4, op: Op{Kind: OpJoinSource, Source: netip.IPv4Unspecified()}, err: ErrBadSource},
		{name: "broadcast source", key: k4, op: Op{Kind: OpJoinSource, Source: netip.MustParseAddr("255.255.255.255")}, err: ErrBadSource},
		{name: "invalid source", key: k4, op: Op{Kind: OpJoinSource}, err: ErrBadSource},
		{name: "v6 source v4 group", key: k4, op: Op{Kind: OpJoinSource, Source: s6A}, err: ErrFamilyMismatch},
		{name: "v4 source v6 group", key: Key{1, g6}, op: Op{Kind: OpJoinSource, Source: srcA}, err: ErrFamilyMismatch},
		{name: "mapped source v6 group", key: Key{1, g6}, op: Op{Kind: OpJoinSource, Source: netip.MustParseAddr("::ffff:192.0.2.1")}, err: ErrFamilyMismatch},
		{name: "v6 unspecified source", key: Key{1, g6}, op: Op{Kind: OpJoinSource, Source: netip.IPv6Unspecified()}, err: ErrBadSource},
		{name: "mapped source unmapped", key: k4, op: Op{Kind: OpJoinSource, Source: netip.MustParseAddr("::ffff:192.0.2.1")},
			want: State{Include, []netip.Addr{srcA}}},
		{name: "zoned v6 source stripped", key: Key{1, g6}, op: Op{Kind: OpJoinSource, Source: netip.MustParseAddr("fe80::1%eth0")},
			want: State{Include, addrs("fe80::1")}},
		{name: "setfilter bad source", key: k4, op: Op{Kind: OpSetFilter, Mode: Exclude, Sources: []netip.Addr{srcA, g4}}, err: ErrBadSource},
		{name: "setfilter bad mode", key: k4, op: Op{Kind: OpSetFilter, Mode: 7}, err: ErrBadOp},
		{name: "bad kind", key: k4, op: Op{Kind: 99}, err: ErrBadOp},
		// OpJoin
		{name: "join", key: k4, op: join, want: State{Mode: Exclude}},
		{name: "join twice", key: k4, setup: []Op{join}, op: join, err: ErrAlreadyJoined},
		{name: "join include", key: k4, setup: []Op{inclA}, op: join, err: ErrAlreadyJoined},
		{name: "join exclude{A}", key: k4, setup: []Op{join, blockA}, op: join, err: ErrAlreadyJoined},
		// OpLeave
		{name: "leave", key: k4, setup: []Op{join, blockA}, op: Op{Kind: OpLeave}, want: State{}},
		{name: "leave include", key: k4, setup: []Op{inclA}, op: Op{Kind: OpLeave}, want: State{}},
		{name: "leave unjoined", key: k4, op: Op{Kind: OpLeave}, err: ErrNotJoined},
		{name: "leave other ifindex", key: Key{2, g4}, prior: []Key{k4}, op: Op{Kind: OpLeave}, err: ErrNotJoined},
		// OpJoinSource
		{name: "joinsource new", key: k4, op: inclA, want: State{Include, []netip.Addr{srcA}}},
		{name: "joinsource add", key: k4, setup: []Op{{Kind: OpJoinSource, Source: srcC}, inclA}, op: Op{Kind: OpJoinSource, Source: srcB},
			want: State{Include, []netip.Addr{srcA, srcB, srcC}}},
		{name: "joinsource exists", key: k4, setup: []Op{inclA}, op: inclA, err: ErrSourceExists},
		{name: "joinsource exclude", key: k4, setup: []Op{join}, op: inclA, err: ErrModeMismatch},
		// OpLeaveSource
		{name: "leavesource", key: k4, setup: []Op{inclA, {Kind: OpJoinSource, Source: srcB}}, op: Op{Kind: OpLeaveSource, Source: srcA},
			want: State{Include, []netip.Addr{srcB}}},
		{name: "leavesource last", key: k4, setup: []Op{inclA}, op: Op{Kind: OpLeaveSource, Source: srcA}, want: State{}},
		{name: "leavesource missing", key: k4, setup: []Op{inclA}, op: Op{Kind: OpLeaveSource, Source: srcB}, err: ErrSourceNotFound},
		{name: "leavesource exclude", key: k4, setup: []Op{join, blockA}, op: Op{Kind: OpLeaveSource, Source: srcA}, err: ErrModeMismatch},
		{name: "leavesource unjoined", key: k4, op: Op{Kind: OpLeaveSource, Source: srcA}, err: ErrNotJoined},
		// OpBlock
		{name: "block", key: k4, setup: []Op{join}, op: blockA, want: State{Exclude, []netip.Addr{srcA}}},
		{name: "block exists", key: k4, setup: []Op{join, blockA}, op: blockA, err: ErrSourceExists},
		{name: "block include", key: k4, setup: []Op{{Kind: OpJoinSource, Source: srcB}}, op: blockA, err: ErrModeMismatch},
		{name: "block unjoined", key: k4, op: blockA, err: ErrNotJoined},
		// OpUnblock
		{name: "unblock", key: k4, setup: []Op{join, blockA}, op: Op{Kind: OpUnblock, Source: srcA}, want: State{Mode: Exclude}},
		{name: "unblock missing", key: k4, setup: []Op{join, blockA}, op: Op{Kind: OpUnblock, Source: srcB}, err: ErrSourceNotFound},
		{name: "unblock include", key: k4, setup: []Op{inclA}, op: Op{Kind: OpUnblock, Source: srcA}, err: ErrModeMismatch},
		{name: "unblock unjoined", key: k4, op: Op{Kind: OpUnblock, Source: srcA}, err: ErrNotJoined},
		// OpSetFilter
		{name: "setfilter joins", key: k4, op: Op{Kind: OpSetFilter, Mode: Exclude, Sources: []netip.Addr{srcC, srcA, srcC}},
			want: State{Exclude, []netip.Addr{srcA, srcC}}},
		{name: "setfilter replaces", key: k4, setup: []Op{join, blockA}, op: Op{Kind: OpSetFilter, Mode: Include, Sources: []netip.Addr{srcB}},
			want: State{Include, []netip.Addr{srcB}}},
		{name: "setfilter include{} leaves", key: k4, setup: []Op{join}, op: Op{Kind: OpSetFilter, Mode: Include}, want: State{}},
		{name: "setfilter include{} unjoined", key: k4, op: Op{Kind: OpSetFilter, Mode: Include}, err: ErrNotJoined},
		{name: "setfilter mapped unmapped", key: k4, op: Op{Kind: OpSetFilter, Mode: Include, Sources: addrs("::ffff:192.0.2.2", "192.0.2.2")},
			want: State{Include, []netip.Addr{srcB}}},
		// limits
		{name: "too many groups", key: k4, lim: Limits{GroupsPerSocket: 1},
			prior: []Key{{1, netip.MustParseAddr("232.9.9.9")}}, op: join, err: ErrTooManyGroups},
		{name: "too many sources block", key: k4, lim: Limits{SourcesPerSocketFilter: 1}, setup: []Op{join, blockA},
			op: Op{Kind: OpBlock, Source: srcB}, err: ErrTooManySources},
		{name: "too many sources setfilter", key: k4, lim: Limits{SourcesPerSocketFilter: 2},
			op: Op{Kind: OpSetFilter, Mode: Include, Sources: []netip.Addr{srcA, srcB, srcC}}, err: ErrTooManySources},
		{name: "setfilter dedup under limit", key: k4, lim: Limits{SourcesPerSocketFilter: 2},
			op:   Op{Kind: OpSetFilter, Mode: Include, Sources: []netip.Addr{srcA, srcB, srcA}},
			want: State{Include, []netip.Addr{srcA, srcB}}},
		{name: "limit groups existing ok", key: k4, lim: Limits{GroupsPerSocket: 1}, setup: []Op{join}, op: blockA,
			want: State{Exclude, []netip.Addr{srcA}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewSocketFilters(c.lim)
			for _, k := range c.prior {
				apply(t, s, k, join)
			}
			for _, op := range c.setup {
				apply(t, s, c.key, op)
			}
			before, wasJoined := s.Get(c.key)
			beforeAll := s.All()
			old, n, err := s.Propose(c.key, c.op)
			if !old.Equal(before) {
				t.Errorf("old = %v, want %v", old, before)
			}
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				if !strings.Contains(err.Error(), c.op.Kind.String()) || !strings.Contains(err.Error(), c.key.Group.String()) {
					t.Errorf("error %q lacks op or group context", err)
				}
				if !n.Equal(old) {
					t.Errorf("on error new = %v, want old %v", n, old)
				}
			} else {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if !n.Equal(c.want) {
					t.Fatalf("new = %v, want %v", n, c.want)
				}
			}
			// Propose changes nothing, success or failure.
			after, joined := s.Get(c.key)
			if joined != wasJoined || !after.Equal(before) || len(s.All()) != len(beforeAll) {
				t.Fatalf("Propose changed state: %v -> %v", before, after)
			}
			if c.err == nil {
				s.Commit(c.key, n)
				got, ok := s.Get(c.key)
				if ok != n.IsMember() || !got.Equal(n) {
					t.Fatalf("after commit Get = %v,%v want %v", got, ok, n)
				}
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	s := NewSocketFilters(Limits{})
	_, _, err := s.Propose(Key{1, g4}, Op{Kind: OpBlock, Source: srcA})
	want := "block 192.0.2.1 on 232.1.1.1 (ifindex 1): group not joined"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if got := (Op{Kind: OpSetFilter, Mode: Exclude, Sources: []netip.Addr{srcB, srcA}}).String(); got != "set-filter exclude{192.0.2.2,192.0.2.1}" {
		t.Fatalf("Op.String = %q", got)
	}
}

// States handed out must not change when the filters change later.
func TestSnapshotsImmutable(t *testing.T) {
	s := NewSocketFilters(Limits{})
	k := Key{1, g4}
	s1 := apply(t, s, k, Op{Kind: OpJoinSource, Source: srcB})
	got1, _ := s.Get(k)
	s2 := apply(t, s, k, Op{Kind: OpJoinSource, Source: srcA})
	apply(t, s, k, Op{Kind: OpJoinSource, Source: srcC})
	apply(t, s, k, Op{Kind: OpLeaveSource, Source: srcB})
	if s1.String() != "include{192.0.2.2}" || got1.String() != "include{192.0.2.2}" {
		t.Fatalf("first snapshot changed: %v %v", s1, got1)
	}
	if s2.String() != "include{192.0.2.1,192.0.2.2}" {
		t.Fatalf("second snapshot changed: %v", s2)
	}
	// Commit normalises an unsorted state.
	s.Commit(k, State{Exclude, []netip.Addr{srcC, srcA, srcC}})
	if got, _ := s.Get(k); got.String() != "exclude{192.0.2.1,192.0.2.3}" {
		t.Fatalf("Commit did not normalise: %v", got)
	}
}

func TestAllAndRemoveInterface(t *testing.T) {
	s := NewSocketFilters(Limits{})
	ga, gb := netip.MustParseAddr("239.1.1.1"), netip.MustParseAddr("224.0.1.1")
	for _, k := range []Key{{2, ga}, {1, g6}, {1, ga}, {2, gb}, {1, gb}} {
		apply(t, s, k, Op{Kind: OpJoin})
	}
	var got []string
	for _, e := range s.All() {
		got = append(got, e.Key.Group.String()+"@"+string(rune('0'+e.Key.IfIndex)))
	}
	want := "224.0.1.1@1 239.1.1.1@1 ff3e::1234@1 224.0.1.1@2 239.1.1.1@2"
	if strings.Join(got, " ") != want {
		t.Fatalf("All order = %v, want %v", got, want)
	}
	rm := s.RemoveInterface(2)
	if len(rm) != 2 || rm[0].Key.Group != gb || rm[1].Key.Group != ga || rm[0].State.Mode != Exclude {
		t.Fatalf("RemoveInterface = %v", rm)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d after removal", s.Len())
	}
	if _, ok := s.Get(Key{2, ga}); ok {
		t.Fatal("entry on removed interface still present")
	}
	if rm := s.RemoveInterface(2); len(rm) != 0 {
		t.Fatalf("second RemoveInterface = %v", rm)
	}
}

func TestLimitsDefaults(t *testing.T) {
	d := DefaultLimits()
	if d != (Limits{4096, 1024, 4096}) {
		t.Fatalf("DefaultLimits = %+v", d)
	}
	if got := (Limits{GroupsPerSocket: 5}).WithDefaults(); got != (Limits{5, 1024, 4096}) {
		t.Fatalf("WithDefaults = %+v", got)
	}
	if got := (Limits{-1, 0, 7}).WithDefaults(); got != (Limits{4096, 1024, 7}) {
		t.Fatalf("WithDefaults = %+v", got)
	}
}

package stack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mcstack/mcstack/membership"
)

// Every RFC 3678 misuse fails with its sentinel and changes nothing: not
// the socket's filters, not the interfaces' group records, not the driver
// filter, not the deltas handed to the engines.

var (
	eg4  = netip.MustParseAddr("232.1.1.1")
	eg4b = netip.MustParseAddr("239.2.2.2")
	eg4c = netip.MustParseAddr("239.3.3.3")
	eg6  = netip.MustParseAddr("ff3e::1")
	es1  = netip.MustParseAddr("10.0.0.1")
	es2  = netip.MustParseAddr("10.0.0.2")
	es3  = netip.MustParseAddr("10.0.0.3")
	es4  = netip.MustParseAddr("10.0.0.4")
	es6  = netip.MustParseAddr("2001:db8:9::1")
)

type errEnv struct {
	t    *testing.T
	s    *Stack
	ifcs [2]*Interface
	eps  [2]*testEndpoint
	rec  *recorder
	// a and b are udp4 sockets, v6 a udp6 socket.
	a, b, v6 *Conn
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot describes everything an operation could change.
func (e *errEnv) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	for _, ifc := range e.ifcs {
		if ifc.removed.Load() {
			continue
		}
		for _, c := range []*Conn{e.a, e.b, e.v6} {
			for _, g := range []netip.Addr{eg4, eg4b, eg4c, eg6} {
				mode, srcs, err := c.SourceFilter(ifc, g)
				fmt.Fprintf(&b, "%s %v %v %v %v\n", ifc.Name(), g, mode, srcs, err)
			}
		}
		syncIfc(e.t, ifc)
		st := ifc.Status()
		fmt.Fprintf(&b, "%s groups %v driver %v calls %d\n", ifc.Name(), st.Groups, st.Driver.Exact, e.eps[ifc.Index()-1].filterCalls())
		for _, fam := range []string{"igmp", "mld"} {
			ds, _ := e.rec.engine(ifc.Name(), fam).snapshot()
			fmt.Fprintf(&b, "%s %s deltas %d\n", ifc.Name(), fam, len(ds))
		}
	}
	return b.String()
}

func TestRFC3678Errors(t *testing.T) {
	other := New(Config{})
	otherIfc, err := other.AddInterface(newTestEndpoint("other0", 9), InterfaceConfig{Addrs: []netip.Prefix{hostAddr}})
	must(t, err)
	t.Cleanup(func() { other.Close() })

	limits := membership.Limits{GroupsPerSocket: 2, SourcesPerSocketFilter: 2, SourcesPerInterfaceGroup: 3}
	cases := []struct {
		name  string
		setup func(e *errEnv)
		op    func(e *errEnv) error
		want  error
	}{
		{"source join on any-source group",
			func(e *errEnv) { must(e.t, e.a.JoinGroup(e.ifcs[0], eg4)) },
			func(e *errEnv) error { return e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1) },
			membership.ErrModeMismatch},
		{"leave source on any-source group",
			func(e *errEnv) { must(e.t, e.a.JoinGroup(e.ifcs[0], eg4)) },
			func(e *errEnv) error { return e.a.LeaveSourceSpecificGroup(e.ifcs[0], eg4, es1) },
			membership.ErrModeMismatch},
		{"block on INCLUDE group",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error { return e.a.ExcludeSourceSpecificGroup(e.ifcs[0], eg4, es2) },
			membership.ErrModeMismatch},
		{"unblock on INCLUDE group",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error { return e.a.UnblockSource(e.ifcs[0], eg4, es1) },
			membership.ErrModeMismatch},
		{"any-source join on INCLUDE group",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], eg4) },
			membership.ErrAlreadyJoined},
		{"duplicate join",
			func(e *errEnv) { must(e.t, e.a.JoinGroup(e.ifcs[0], eg4)) },
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], eg4) },
			membership.ErrAlreadyJoined},
		{"duplicate source join",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error { return e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1) },
			membership.ErrSourceExists},
		{"duplicate block",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.BlockSource(e.ifcs[0], eg4, es1))
			},
			func(e *errEnv) error { return e.a.ExcludeSourceSpecificGroup(e.ifcs[0], eg4, es1) },
			membership.ErrSourceExists},
		{"leave not joined",
			func(e *errEnv) { must(e.t, e.b.JoinGroup(e.ifcs[0], eg4)) },
			func(e *errEnv) error { return e.a.LeaveGroup(e.ifcs[0], eg4) },
			membership.ErrNotJoined},
		{"leave joined on the other interface",
			func(e *errEnv) { must(e.t, e.a.JoinGroup(e.ifcs[1], eg4)) },
			func(e *errEnv) error { return e.a.LeaveGroup(e.ifcs[0], eg4) },
			membership.ErrNotJoined},
		{"block not joined",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.BlockSource(e.ifcs[0], eg4, es1) },
			membership.ErrNotJoined},
		{"set-filter INCLUDE{} not joined",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.SetSourceFilter(e.ifcs[0], eg4, membership.Include, nil) },
			membership.ErrNotJoined},
		{"leave a source not in the filter",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error { return e.a.LeaveSourceSpecificGroup(e.ifcs[0], eg4, es2) },
			membership.ErrSourceNotFound},
		{"unblock a source not blocked",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.BlockSource(e.ifcs[0], eg4, es1))
			},
			func(e *errEnv) error { return e.a.IncludeSourceSpecificGroup(e.ifcs[0], eg4, es2) },
			membership.ErrSourceNotFound},
		{"non-multicast group",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], netip.MustParseAddr("192.0.2.5")) },
			membership.ErrNotMulticast},
		{"invalid group",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], netip.Addr{}) },
			membership.ErrNotMulticast},
		{"IPv4-mapped group",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.v6.JoinGroup(e.ifcs[0], netip.MustParseAddr("::ffff:232.1.1.1")) },
			membership.ErrFamilyMismatch},
		{"interface of another stack",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinGroup(otherIfc, eg4) },
			ErrUnknownInterface},
		{"nil interface with two interfaces",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinGroup(nil, eg4) },
			ErrUnknownInterface},
		{"nil interface SourceFilter with two interfaces",
			func(e *errEnv) { must(e.t, e.a.JoinGroup(e.ifcs[0], eg4)) },
			func(e *errEnv) error { _, _, err := e.a.SourceFilter(nil, eg4); return err },
			ErrUnknownInterface},
		{"removed interface",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[1], eg4))
				must(e.t, e.s.RemoveInterface(e.ifcs[1]))
			},
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[1], eg4) },
			ErrUnknownInterface},
		{"IPv6 group on udp4 socket",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], eg6) },
			membership.ErrFamilyMismatch},
		{"IPv4 group on udp6 socket",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.v6.JoinGroup(e.ifcs[0], eg4) },
			membership.ErrFamilyMismatch},
		{"unspecified source",
			func(e *errEnv) {},
			func(e *errEnv) error {
				return e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, netip.IPv4Unspecified())
			},
			membership.ErrBadSource},
		{"multicast source",
			func(e *errEnv) { must(e.t, e.a.JoinGroup(e.ifcs[0], eg4)) },
			func(e *errEnv) error { return e.a.BlockSource(e.ifcs[0], eg4, eg4b) },
			membership.ErrBadSource},
		{"invalid source",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, netip.Addr{}) },
			membership.ErrBadSource},
		{"IPv6 source for IPv4 group",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es6) },
			membership.ErrFamilyMismatch},
		{"bad source in set-filter",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error {
				return e.a.SetSourceFilter(e.ifcs[0], eg4, membership.Include, []netip.Addr{es2, netip.IPv4Unspecified()})
			},
			membership.ErrBadSource},
		{"bad set-filter mode",
			func(e *errEnv) {},
			func(e *errEnv) error { return e.a.SetSourceFilter(e.ifcs[0], eg4, membership.Mode(7), nil) },
			membership.ErrBadOp},
		{"join on closed socket",
			func(e *errEnv) { must(e.t, e.a.Close()) },
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], eg4) },
			net.ErrClosed},
		{"leave on closed socket",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.Close())
			},
			func(e *errEnv) error { return e.a.LeaveGroup(e.ifcs[0], eg4) },
			net.ErrClosed},
		{"SourceFilter on closed socket",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.Close())
			},
			func(e *errEnv) error { _, _, err := e.a.SourceFilter(e.ifcs[0], eg4); return err },
			net.ErrClosed},
		{"set-filter on closed socket",
			func(e *errEnv) { must(e.t, e.a.Close()) },
			func(e *errEnv) error {
				return e.a.SetSourceFilter(e.ifcs[0], eg4, membership.Exclude, nil)
			},
			net.ErrClosed},
		{"SetMulticastInterface on closed socket",
			func(e *errEnv) { must(e.t, e.a.Close()) },
			func(e *errEnv) error { return e.a.SetMulticastInterface(e.ifcs[0]) },
			net.ErrClosed},
		{"GroupsPerSocket exceeded",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[1], eg4b, es1))
			},
			func(e *errEnv) error { return e.a.JoinGroup(e.ifcs[0], eg4c) },
			membership.ErrTooManyGroups},
		{"GroupsPerSocket exceeded by set-filter",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4b))
			},
			func(e *errEnv) error {
				return e.a.SetSourceFilter(e.ifcs[0], eg4c, membership.Include, []netip.Addr{es1})
			},
			membership.ErrTooManyGroups},
		{"SourcesPerSocketFilter exceeded by join-source",
			func(e *errEnv) {
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1))
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es2))
			},
			func(e *errEnv) error { return e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es3) },
			membership.ErrTooManySources},
		{"SourcesPerSocketFilter exceeded by block",
			func(e *errEnv) {
				must(e.t, e.a.JoinGroup(e.ifcs[0], eg4))
				must(e.t, e.a.BlockSource(e.ifcs[0], eg4, es1))
				must(e.t, e.a.BlockSource(e.ifcs[0], eg4, es2))
			},
			func(e *errEnv) error { return e.a.BlockSource(e.ifcs[0], eg4, es3) },
			membership.ErrTooManySources},
		{"SourcesPerSocketFilter exceeded by set-filter",
			func(e *errEnv) { must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1)) },
			func(e *errEnv) error {
				return e.a.SetSourceFilter(e.ifcs[0], eg4, membership.Include, []netip.Addr{es2, es3, es4})
			},
			membership.ErrTooManySources},
		{"SourcesPerInterfaceGroup exceeded by join-source",
			func(e *errEnv) {
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1))
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es2))
				must(e.t, e.b.JoinSourceSpecificGroup(e.ifcs[0], eg4, es3))
			},
			func(e *errEnv) error { return e.b.JoinSourceSpecificGroup(e.ifcs[0], eg4, es4) },
			membership.ErrTooManyIfcSources},
		{"SourcesPerInterfaceGroup exceeded by set-filter",
			func(e *errEnv) {
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1))
				must(e.t, e.a.JoinSourceSpecificGroup(e.ifcs[0], eg4, es2))
				must(e.t, e.b.JoinSourceSpecificGroup(e.ifcs[0], eg4, es1))
			},
			func(e *errEnv) error {
				return e.b.SetSourceFilter(e.ifcs[0], eg4, membership.Include, []netip.Addr{es3, es4})
			},
			membership.ErrTooManyIfcSources},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Limits: limits}
			rec := newRecorder(&cfg)
			s, ifcs, eps := newTwoIfcStack(t, cfg)
			e := &errEnv{t: t, s: s, ifcs: ifcs, eps: eps, rec: rec,
				a:  mustListen(t, s, "udp4", "0.0.0.0:5000"),
				b:  mustListen(t, s, "udp4", "0.0.0.0:5000"),
				v6: mustListen(t, s, "udp6", "[::]:5000"),
			}
			tc.setup(e)
			before := e.snapshot()
			err := tc.op(e)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("the failed operation changed state:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// The sentinels come wrapped with context: the operation, the group and
// the interface.
func TestErrorContext(t *testing.T) {
	s, ifc, _ := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	err := c.JoinGroup(ifc, eg4)
	if !errors.Is(err, membership.ErrAlreadyJoined) {
		t.Fatal(err)
	}
	for _, want := range []string{"join", eg4.String(), ifc.Name()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	err = c.SetSourceFilter(ifc, eg4, membership.Include, []netip.Addr{es1, es2, es3})
	must(t, err)
	// With one interface, nil means that interface.
	mode, srcs, err := c.SourceFilter(nil, eg4)
	if err != nil || mode != membership.Include || len(srcs) != 3 {
		t.Fatalf("SourceFilter(nil) = %v %v %v", mode, srcs, err)
	}
}

// SetSourceFilter to INCLUDE {} is a leave: the membership, the group
// record and the driver filter entry go away, and a later JoinGroup works.
func TestSetSourceFilterIncludeEmptyLeaves(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinSourceSpecificGroup(ifc, eg4, es1))
	syncIfc(t, ifc)
	if got := ep.lastFilter(); !slices.Equal(got, macSet(eg4)) {
		t.Fatalf("filter after join %v", got)
	}
	must(t, c.SetSourceFilter(ifc, eg4, membership.Include, []netip.Addr{}))
	if _, _, err := c.SourceFilter(ifc, eg4); !errors.Is(err, membership.ErrNotJoined) {
		t.Fatalf("SourceFilter after INCLUDE{}: %v", err)
	}
	syncIfc(t, ifc)
	if g := ifc.Status().Groups; len(g) != 0 {
		t.Fatalf("groups after INCLUDE{}: %v", g)
	}
	if got := ep.lastFilter(); !slices.Equal(got, alwaysMACs) {
		t.Fatalf("filter after INCLUDE{} %v", got)
	}
	must(t, c.JoinGroup(ifc, eg4))
	// EXCLUDE {} via set-filter on a group joined INCLUDE switches mode.
	must(t, c.SetSourceFilter(ifc, eg4, membership.Exclude, []netip.Addr{es2, es2}))
	mode, srcs, err := c.SourceFilter(ifc, eg4)
	if err != nil || mode != membership.Exclude || len(srcs) != 1 || srcs[0] != es2 {
		t.Fatalf("SourceFilter = %v %v %v, want exclude [%v]", mode, srcs, err, es2)
	}
}

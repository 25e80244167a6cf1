package stack_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/mcstack/mcstack/clock"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

// The LAN tests put two or three stacks with the real IGMP and MLD engines
// on one memlan.LAN together with testQuerier, and check what the hosts
// tell the router: state-change reports and their retransmissions, query
// responses, the older-version compatibility modes, the final reports of
// an interface shutdown, and the data path they configure.
//
// Every stack has its own clock.Fake, so engine timers move only when a
// test advances them; Interface.Sync then lets the protocol worker run
// them and transmit. Reports go through the LAN synchronously (memlan
// calls the capture observer from WriteFrame), so once Sync returns the
// querier has heard everything the worker sent. Frames reaching a host
// (queries, other hosts' reports) are delivered by memlan's goroutine;
// the tests wait for them on the engine's counters, not on real time.

// lanFamily is what differs between the IGMP and MLD runs.
type lanFamily struct {
	name    string
	v6      bool
	network string // "udp4" or "udp6"
	group   netip.Addr
	// s1, s2 and s3 are the sender's addresses (data sources).
	s1, s2, s3 netip.Addr
	// oldVersion is the older protocol (IGMPv2, MLDv1) and newVersion the
	// current one (IGMPv3, MLDv2), as proto.Status.Version numbers them.
	oldVersion, newVersion int
}

var lanFamilies = []lanFamily{
	{
		name: "igmp", network: "udp4",
		group: netip.MustParseAddr("239.1.2.3"),
		s1:    netip.MustParseAddr("192.0.2.101"), s2: netip.MustParseAddr("192.0.2.102"), s3: netip.MustParseAddr("192.0.2.103"),
		oldVersion: 2, newVersion: 3,
	},
	{
		name: "mld", v6: true, network: "udp6",
		group: netip.MustParseAddr("ff15::db8:1"),
		s1:    netip.MustParseAddr("2001:db8::101"), s2: netip.MustParseAddr("2001:db8::102"), s3: netip.MustParseAddr("2001:db8::103"),
		oldVersion: 1, newVersion: 2,
	},
}

// The expected reports, formatted as prototest.Report.String does.

func (f lanFamily) v3(recs ...string) string {
	if f.v6 {
		return fmt.Sprintf("mldv2 ff02::16 %v", recs)
	}
	return fmt.Sprintf("igmpv3 224.0.0.22 %v", recs)
}

func (f lanFamily) rec(typ wire.RecordType, srcs ...netip.Addr) string {
	return prototest.Record{Type: typ, Group: f.group, Sources: srcs}.String()
}

// oldReport is the IGMPv2 / MLDv1 report for the group, oldLeave the
// Leave / Done.
func (f lanFamily) oldReport() string {
	if f.v6 {
		return fmt.Sprintf("mldv1 %v %v", f.group, f.group)
	}
	return fmt.Sprintf("igmpv2 %v %v", f.group, f.group)
}

func (f lanFamily) oldLeave() string {
	if f.v6 {
		return fmt.Sprintf("mldv1-done ff02::2 %v", f.group)
	}
	return fmt.Sprintf("igmpv2-leave 224.0.0.2 %v", f.group)
}

// lanHost is one stack on the LAN, with one interface.
type lanHost struct {
	name string
	s    *stack.Stack
	ifc  *stack.Interface
	clk  *clock.Fake
	fam  lanFamily
	gone bool // interface removed or stack closed
}

// lanTest is a LAN with a querier for one family and the hosts on it.
type lanTest struct {
	t     *testing.T
	fam   lanFamily
	lan   *memlan.LAN
	q     *testQuerier
	hosts []*lanHost
}

var lanEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newLANTest(t *testing.T, fam lanFamily) *lanTest {
	lan := memlan.New(memlan.Options{Seed: 1})
	lt := &lanTest{t: t, fam: fam, lan: lan, q: newTestQuerier(lan, fam.v6)}
	t.Cleanup(func() {
		for _, h := range lt.hosts {
			h.drain(h.s.Close)
		}
		lan.Close()
	})
	return lt
}

// host adds a stack named name whose interface has addrs, plus the IPv4
// address 192.0.2.<n>/24 and the link-local fe80::<n>/64 (the report
// sources), where n is the host's number on the LAN (10, 11, ...).
func (lt *lanTest) host(name string, addrs ...netip.Addr) *lanHost {
	lt.t.Helper()
	n := byte(10 + len(lt.hosts))
	clk := clock.NewFake(lanEpoch)
	s := stack.New(stack.Config{
		Clock: clk,
		IGMP:  proto.Config{Rand: rand.New(rand.NewPCG(uint64(n), 4))},
		MLD:   proto.Config{Rand: rand.New(rand.NewPCG(uint64(n), 6))},
	})
	ep := lt.lan.NewEndpoint(name, memlan.EndpointConfig{MAC: wire.MAC{0x02, 0, 0, 0, 0, n}})
	v4 := netip.AddrFrom4([4]byte{192, 0, 2, n})
	ll := netip.AddrFrom16([16]byte{0xfe, 0x80, 15: n})
	prefixes := []netip.Prefix{netip.PrefixFrom(v4, 24), netip.PrefixFrom(ll, 64)}
	for _, a := range addrs {
		bits := 24
		if a.Is6() {
			bits = 64
		}
		prefixes = append(prefixes, netip.PrefixFrom(a, bits))
	}
	ifc, err := s.AddInterface(ep, stack.InterfaceConfig{Addrs: prefixes})
	if err != nil {
		s.Close()
		lt.t.Fatal(err)
	}
	h := &lanHost{name: name, s: s, ifc: ifc, clk: clk, fam: lt.fam}
	lt.hosts = append(lt.hosts, h)
	lt.q.expectHost(name, v4)
	lt.q.expectHost(name, ll)
	h.sync(lt.t) // the all-systems / all-nodes filter is programmed
	return h
}

func (h *lanHost) sync(t *testing.T) {
	t.Helper()
	if h.gone {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.ifc.Sync(ctx); err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
}

// engine returns the status of the host's engine of the test's family.
func (h *lanHost) engine() proto.Status {
	st := h.ifc.Status()
	if h.fam.v6 {
		return st.MLD
	}
	return st.IGMP
}

// advance moves the host's clock by d and lets its protocol worker run the
// timers that fell due and transmit.
func (h *lanHost) advance(t *testing.T, d time.Duration) {
	t.Helper()
	h.clk.Advance(d)
	h.sync(t)
}

// advance advances every host's clock by d.
func (lt *lanTest) advance(d time.Duration) {
	lt.t.Helper()
	for _, h := range lt.hosts {
		if !h.gone {
			h.advance(lt.t, d)
		}
	}
}

// await waits until the host's engine status satisfies cond: a frame the
// host receives is delivered by memlan's goroutine and queued for the
// protocol worker, so the test polls the status the worker publishes.
func (h *lanHost) await(t *testing.T, what string, cond func(proto.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.sync(t)
		st := h.engine()
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s; engine status %+v", h.name, what, st)
		}
		runtime.Gosched()
	}
}

// query injects a query with send and waits until every host in to has
// processed it.
func (lt *lanTest) query(send func(), to ...*lanHost) {
	lt.t.Helper()
	before := make([]uint64, len(to))
	for i, h := range to {
		before[i] = h.engine().Counters.QueriesReceived
	}
	send()
	for i, h := range to {
		h.await(lt.t, "the query", func(st proto.Status) bool {
			if st.Counters.QueriesReceived > before[i]+1 {
				lt.t.Fatalf("%s: %d queries received, want %d", h.name, st.Counters.QueriesReceived, before[i]+1)
			}
			return st.Counters.QueriesReceived == before[i]+1
		})
	}
}

// listen opens a socket on port 5000 of the family.
func (h *lanHost) listen(t *testing.T) *stack.Conn {
	t.Helper()
	c, err := h.s.ListenUDP(h.fam.network, netip.AddrPortFrom(netip.Addr{}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// filter gives a new socket of h the filter (mode, srcs) on the group and
// lets the worker send the state-change report.
func (h *lanHost) filter(t *testing.T, mode membership.Mode, srcs ...netip.Addr) *stack.Conn {
	t.Helper()
	c := h.listen(t)
	if err := c.SetSourceFilter(h.ifc, h.fam.group, mode, srcs); err != nil {
		t.Fatalf("%s: set source filter: %v", h.name, err)
	}
	h.sync(t)
	return c
}

func (h *lanHost) closeConn(t *testing.T, c *stack.Conn) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	h.sync(t)
}

// removeInterface removes the host's interface; closeStack closes its stack.
func (h *lanHost) removeInterface(t *testing.T) {
	t.Helper()
	if err := h.drain(func() error { return h.s.RemoveInterface(h.ifc) }); err != nil {
		t.Fatalf("%s: remove interface: %v", h.name, err)
	}
	h.gone = true
}

func (h *lanHost) closeStack(t *testing.T) {
	t.Helper()
	if err := h.drain(h.s.Close); err != nil {
		t.Fatalf("%s: close: %v", h.name, err)
	}
	h.gone = true
}

// drain runs a removal (RemoveInterface or Close) while moving the host's
// fake clock on, so that the final reports' retransmissions (timed on
// that clock) are sent and the drain ends.
func (h *lanHost) drain(remove func() error) error {
	done := make(chan error, 1)
	go func() { done <- remove() }()
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Millisecond):
			h.clk.Advance(50 * time.Millisecond)
		}
	}
}

// standardHosts sets up scenario 1: host a joins INCLUDE {S1} on the group,
// host b EXCLUDE {S2}, each with one socket, and checks the first
// state-change report of each.
func (lt *lanTest) standardHosts() (a, b *lanHost) {
	t, f := lt.t, lt.fam
	a, b = lt.host("a"), lt.host("b")
	a.filter(t, membership.Include, f.s1)
	b.filter(t, membership.Exclude, f.s2)
	lt.q.expect(t, "joins", map[string][]string{
		"a": {f.v3(f.rec(wire.AllowNewSources, f.s1))},
		"b": {f.v3(f.rec(wire.ChangeToExclude, f.s2))},
	})
	return a, b
}

// settle advances the clocks past the retransmissions of the joins and
// checks them (robustness 2: one retransmission each).
func (lt *lanTest) settle() {
	t, f := lt.t, lt.fam
	lt.advance(time.Second) // Unsolicited Report Interval: the last retransmission
	lt.q.expect(t, "retransmissions", map[string][]string{
		"a": {f.v3(f.rec(wire.AllowNewSources, f.s1))},
		"b": {f.v3(f.rec(wire.ChangeToExclude, f.s2))},
	})
	lt.advance(time.Minute)
	lt.q.expect(t, "after the retransmissions", nil)
	lt.q.expectState(t, "after the joins", f.group, map[string]string{
		"a": "include{" + f.s1.String() + "}",
		"b": "exclude{" + f.s2.String() + "}",
	})
}

func forFamilies(t *testing.T, fn func(t *testing.T, lt *lanTest)) {
	for _, f := range lanFamilies {
		t.Run(f.name, func(t *testing.T) { fn(t, newLANTest(t, f)) })
	}
}

// TestLANStateChangeAndGeneralQuery: scenario 1. The querier learns the
// hosts' filters from their state-change reports, hears each repeated
// once (robustness 2) within the Unsolicited Report Interval, and after a
// General Query hears the Current-State records of both, which leave its
// state unchanged.
func TestLANStateChangeAndGeneralQuery(t *testing.T) {
	forFamilies(t, func(t *testing.T, lt *lanTest) {
		f := lt.fam
		a, b := lt.standardHosts()
		for _, h := range []*lanHost{a, b} {
			if st := h.engine(); st.Version != f.newVersion || st.PendingStateChanges != 1 || st.Counters.ReportsSent != 1 {
				t.Errorf("%s after the join: %+v", h.name, st)
			}
		}
		lt.q.expectState(t, "after the first reports", f.group, map[string]string{
			"a": "include{" + f.s1.String() + "}",
			"b": "exclude{" + f.s2.String() + "}",
		})
		lt.settle()
		for _, h := range []*lanHost{a, b} {
			if st := h.engine(); st.PendingStateChanges != 0 || st.Counters.ReportsSent != 2 {
				t.Errorf("%s after the retransmission: %+v", h.name, st)
			}
		}

		lt.query(func() { lt.q.queryV3(t, netip.Addr{}, 2*time.Second) }, a, b)
		lt.q.expect(t, "before the response delay", nil)
		for _, h := range []*lanHost{a, b} {
			if st := h.engine(); st.PendingQueryResponses != 1 || st.QueryResponseInterval != 2*time.Second {
				t.Errorf("%s after the General Query: %+v", h.name, st)
			}
		}
		lt.advance(2 * time.Second)
		lt.q.expect(t, "General Query responses", map[string][]string{
			"a": {f.v3(f.rec(wire.ModeIsInclude, f.s1))},
			"b": {f.v3(f.rec(wire.ModeIsExclude, f.s2))},
		})
		lt.q.expectState(t, "after the General Query", f.group, map[string]string{
			"a": "include{" + f.s1.String() + "}",
			"b": "exclude{" + f.s2.String() + "}",
		})
		lt.advance(time.Minute)
		lt.q.expect(t, "after the responses", nil)
	})
}

// TestLANSpecificQueries: scenario 2. A Group-and-Source-Specific Query
// for {S1, S3} is answered with the sources each host wants among them
// (RFC 9776 §5.2 Table 3: IS_IN (A*B) for INCLUDE (A), IS_IN (B-A) for
// EXCLUDE (A)); one for {S2} alone is answered by nobody; a Group-Specific
// Query is answered with the Current-State records.
func TestLANSpecificQueries(t *testing.T) {
	forFamilies(t, func(t *testing.T, lt *lanTest) {
		f := lt.fam
		a, b := lt.standardHosts()
		lt.settle()

		lt.query(func() { lt.q.queryV3(t, f.group, time.Second, f.s1, f.s3) }, a, b)
		lt.advance(time.Second)
		lt.q.expect(t, "source-specific query {S1,S3}", map[string][]string{
			"a": {f.v3(f.rec(wire.ModeIsInclude, f.s1))},
			"b": {f.v3(f.rec(wire.ModeIsInclude, f.s1, f.s3))},
		})

		ignored := func(h *lanHost) uint64 { return h.engine().Counters.QueriesIgnored }
		ia, ib := ignored(a), ignored(b)
		lt.query(func() { lt.q.queryV3(t, f.group, time.Second, f.s2) }, a, b)
		lt.advance(time.Second)
		lt.q.expect(t, "source-specific query {S2}", nil)
		if ignored(a) != ia+1 || ignored(b) != ib+1 {
			t.Errorf("queries ignored: a %d→%d, b %d→%d; want one more each", ia, ignored(a), ib, ignored(b))
		}

		lt.query(func() { lt.q.queryV3(t, f.group, time.Second) }, a, b)
		lt.advance(time.Second)
		lt.q.expect(t, "group-specific query", map[string][]string{
			"a": {f.v3(f.rec(wire.ModeIsInclude, f.s1))},
			"b": {f.v3(f.rec(wire.ModeIsExclude, f.s2))},
		})
		lt.q.expectState(t, "after the specific queries", f.group, map[string]string{
			"a": "include{" + f.s1.String() + "}",
			"b": "exclude{" + f.s2.String() + "}",
		})
	})
}

// TestLANCompatibility: scenario 3. An IGMPv2 (MLDv1) General Query puts
// both hosts in the older mode (RFC 9776 §7.2.1, RFC 9777 §8.2.1) for
// [Robustness Variable] × [Query Interval] + the query's Max Response
// Time; they answer with older reports, the second host suppressed by the
// first's; the last socket of the reporting host leaving sends a Leave
// (Done), the suppressed host's leaving sends nothing (RFC 2236 §3, RFC
// 2710 §4); when the Older Version Querier Present timer expires the hosts
// report in the current version again.
func TestLANCompatibility(t *testing.T) {
	forFamilies(t, func(t *testing.T, lt *lanTest) {
		f := lt.fam
		a, b := lt.host("a"), lt.host("b")
		a1 := a.filter(t, membership.Exclude)
		a2 := a.filter(t, membership.Include, f.s1)
		b1 := b.filter(t, membership.Exclude, f.s2)
		lt.q.expect(t, "joins", map[string][]string{
			"a": {f.v3(f.rec(wire.ChangeToExclude))}, // the second socket changes nothing
			"b": {f.v3(f.rec(wire.ChangeToExclude, f.s2))},
		})
		lt.advance(time.Minute)
		lt.q.take(t) // the retransmissions, checked by TestLANStateChangeAndGeneralQuery

		const maxResp = 2 * time.Second
		lt.query(func() { lt.q.queryOld(t, netip.Addr{}, maxResp) }, a, b)
		until := lanEpoch.Add(time.Minute + 2*125*time.Second + maxResp)
		for _, h := range []*lanHost{a, b} {
			st := h.engine()
			if st.Version != f.oldVersion || !maps.Equal(st.OlderQuerierUntil, map[int]time.Time{f.oldVersion: until}) ||
				st.PendingQueryResponses != 1 {
				t.Errorf("%s after the v%d query: version %d, older querier until %v, pending responses %d; want v%d until %v, 1 pending",
					h.name, f.oldVersion, st.Version, st.OlderQuerierUntil, st.PendingQueryResponses, f.oldVersion, until)
			}
		}

		// a's delay runs out first; b hears a's report and suppresses its own.
		a.advance(t, maxResp)
		lt.q.expect(t, "a's response", map[string][]string{"a": {f.oldReport()}})
		b.await(t, "a's report", func(st proto.Status) bool { return st.Counters.ReportsReceived == 1 })
		if st := b.engine(); st.PendingQueryResponses != 0 {
			t.Errorf("b: report not suppressed: %+v", st)
		}
		b.advance(t, maxResp)
		lt.q.expect(t, "b suppressed", nil)
		lt.q.expectState(t, "after the older reports", f.group, map[string]string{
			"a": "exclude{}",
			"b": "exclude{" + f.s2.String() + "}",
		})

		a.closeConn(t, a1)
		lt.q.expect(t, "a's first socket leaving", nil)
		a.closeConn(t, a2)
		lt.q.expect(t, "a's last socket leaving", map[string][]string{"a": {f.oldLeave()}})
		// The Leave (Done) is repeated, [Robustness Variable] times in all.
		a.advance(t, proto.DefaultV1UnsolicitedReportInterval)
		lt.q.expect(t, "a's repeated leave", map[string][]string{"a": {f.oldLeave()}})
		b.closeConn(t, b1)
		lt.q.expect(t, "b (not the last reporter) leaving", nil)
		// b left silently: the querier still lists it (a router would
		// find out with its Last Member Queries and membership timeout).
		lt.q.expectState(t, "after the leaves", f.group, map[string]string{"b": "exclude{" + f.s2.String() + "}"})
		for _, h := range []*lanHost{a, b} {
			if st := h.engine(); st.Version != f.oldVersion {
				t.Errorf("%s: version %d before the timeout", h.name, st.Version)
			}
		}

		// Just before the timer expires the hosts are still in the older
		// mode; at its expiry they are back to the current version.
		for _, h := range []*lanHost{a, b} {
			h.advance(t, until.Sub(h.clk.Now())-time.Millisecond)
			if st := h.engine(); st.Version != f.oldVersion {
				t.Errorf("%s: version %d 1 ms before the timeout", h.name, st.Version)
			}
			h.advance(t, time.Millisecond)
			if st := h.engine(); st.Version != f.newVersion || st.OlderQuerierUntil != nil {
				t.Errorf("%s after the timeout: version %d, older querier until %v", h.name, st.Version, st.OlderQuerierUntil)
			}
		}
		lt.q.expect(t, "the timeout", nil)
		a.filter(t, membership.Exclude)
		b.filter(t, membership.Include, f.s3)
		lt.q.expect(t, "joins after the timeout", map[string][]string{
			"a": {f.v3(f.rec(wire.ChangeToExclude))},
			"b": {f.v3(f.rec(wire.AllowNewSources, f.s3))},
		})
	})
}

// TestLANShutdown: scenario 4. Removing an interface, or closing the
// stack, while its sockets are joined sends the final reports before the
// call returns: in IGMPv3/MLDv2 each group's leave as RFC 9776 Table 1
// says (BLOCK(A) from INCLUDE(A), TO_IN {} from EXCLUDE), transmitted
// [Robustness Variable] (2) times like every state change. The querier has
// forgotten the host as soon as the call returns.
func TestLANShutdown(t *testing.T) {
	forFamilies(t, func(t *testing.T, lt *lanTest) {
		f := lt.fam
		a, b := lt.standardHosts()
		lt.settle()

		// Removal drops the sockets' pending releases and lets the engine's
		// Shutdown leave every group it has joined, with retransmission.
		a.removeInterface(t)
		// No waiting: the reports are on the LAN before RemoveInterface returns.
		lt.q.expect(t, "a's interface removed", map[string][]string{
			"a": {f.v3(f.rec(wire.BlockOldSources, f.s1)), f.v3(f.rec(wire.BlockOldSources, f.s1))},
		})
		lt.q.expectState(t, "after a's removal", f.group, map[string]string{"b": "exclude{" + f.s2.String() + "}"})

		b.closeStack(t)
		lt.q.expect(t, "b's stack closed", map[string][]string{
			"b": {f.v3(f.rec(wire.ChangeToInclude)), f.v3(f.rec(wire.ChangeToInclude))},
		})
		lt.q.expectState(t, "after b's close", f.group, map[string]string{})
	})
}

// TestLANShutdownOlderVersion: scenario 4 in IGMPv2 / MLDv1 mode. The host
// that sent the last report (a) sends its Leave (Done), repeated
// [Robustness Variable] times, before its interface removal or stack close
// returns; a host that did not (b) sends none (RFC 2236 §3, RFC 2710 §4),
// as an ordinary leave.
func TestLANShutdownOlderVersion(t *testing.T) {
	for _, how := range []string{"RemoveInterface", "Close"} {
		t.Run(how, func(t *testing.T) {
			forFamilies(t, func(t *testing.T, lt *lanTest) {
				f := lt.fam
				a, b := lt.standardHosts()
				lt.settle()
				lt.query(func() { lt.q.queryOld(t, netip.Addr{}, time.Second) }, a, b)
				a.advance(t, time.Second)
				lt.q.expect(t, "a's response", map[string][]string{"a": {f.oldReport()}})
				b.await(t, "a's report", func(st proto.Status) bool { return st.Counters.ReportsReceived == 1 })

				if how == "Close" {
					a.closeStack(t)
				} else {
					a.removeInterface(t)
				}
				lt.q.expect(t, "a shut down", map[string][]string{"a": {f.oldLeave(), f.oldLeave()}})
				lt.q.expectState(t, "after a's shutdown", f.group, map[string]string{"b": "exclude{" + f.s2.String() + "}"})

				t.Run("not the last reporter", func(t *testing.T) {
					if how == "Close" {
						b.closeStack(t)
					} else {
						b.removeInterface(t)
					}
					lt.q.expect(t, "b shut down", nil)
					// The querier still lists b: a router finds out with its
					// Last Member Queries.
					lt.q.expectState(t, "after b's shutdown", f.group, map[string]string{"b": "exclude{" + f.s2.String() + "}"})
				})
			})
		})
	}
}

// TestLANData: scenario 5. A third stack sends datagrams to the group from
// S1, S2 and S3; host a (INCLUDE {S1}) receives only S1's, host b
// (EXCLUDE {S2}) all but S2's, and each counts the rest as filtered.
func TestLANData(t *testing.T) {
	forFamilies(t, func(t *testing.T, lt *lanTest) {
		f := lt.fam
		a, b := lt.host("a"), lt.host("b")
		ra := a.filter(t, membership.Include, f.s1)
		rb := b.filter(t, membership.Exclude, f.s2)
		sender := lt.host("c", f.s1, f.s2, f.s3)
		var senders []*stack.Conn
		for _, src := range []netip.Addr{f.s1, f.s2, f.s3} {
			c, err := sender.s.ListenUDP(f.network, netip.AddrPortFrom(src, 0))
			if err != nil {
				t.Fatal(err)
			}
			senders = append(senders, c)
		}
		const rounds = 5
		dst := netip.AddrPortFrom(f.group, 5000)
		for i := range rounds {
			for j, c := range senders {
				if _, err := c.WriteToAddrPort(fmt.Appendf(nil, "s%d-%d", j+1, i), dst); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Frames reach each receiver in order: once the end marker (from
		// S1, accepted by both) is read, every earlier datagram has been
		// delivered or filtered.
		if _, err := senders[0].WriteToAddrPort([]byte("end"), dst); err != nil {
			t.Fatal(err)
		}
		read := func(h *lanHost, c *stack.Conn) map[netip.Addr]int {
			got := map[netip.Addr]int{}
			buf := make([]byte, 100)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				n, cm, err := c.ReadMsg(buf)
				if err != nil {
					t.Fatalf("%s: read after %v: %v", h.name, got, err)
				}
				if cm.Dst != f.group || cm.IfIndex != h.ifc.Index() {
					t.Errorf("%s: datagram %q with %+v", h.name, buf[:n], cm)
				}
				if string(buf[:n]) == "end" {
					return got
				}
				got[cm.Src.Addr()]++
			}
		}
		if got, want := read(a, ra), map[netip.Addr]int{f.s1: rounds}; !maps.Equal(got, want) {
			t.Errorf("a received %v, want %v", got, want)
		}
		if got, want := read(b, rb), map[netip.Addr]int{f.s1: rounds, f.s3: rounds}; !maps.Equal(got, want) {
			t.Errorf("b received %v, want %v", got, want)
		}
		for _, x := range []struct {
			h                  *lanHost
			received, filtered uint64
		}{{a, rounds + 1, 2 * rounds}, {b, 2*rounds + 1, rounds}} {
			// The receive path counts a datagram just after queueing it:
			// the end marker's count may lag its read a little.
			c := x.h.ifc.Status().Counters
			for deadline := time.Now().Add(10 * time.Second); c["datagrams_received"] < x.received && time.Now().Before(deadline); {
				runtime.Gosched()
				c = x.h.ifc.Status().Counters
			}
			if c["datagrams_received"] != x.received || c["filtered"] != x.filtered {
				t.Errorf("%s: datagrams_received %d, filtered %d; want %d, %d",
					x.h.name, c["datagrams_received"], c["filtered"], x.received, x.filtered)
			}
		}
		for _, c := range senders {
			c.Close()
		}
		if ra.Dropped() != 0 || rb.Dropped() != 0 {
			t.Errorf("queue drops: a %d, b %d", ra.Dropped(), rb.Dropped())
		}
		// The sender joined nothing: the querier heard only a and b.
		lt.q.expect(t, "joins", map[string][]string{
			"a": {f.v3(f.rec(wire.AllowNewSources, f.s1))},
			"b": {f.v3(f.rec(wire.ChangeToExclude, f.s2))},
		})
	})
}

package proto_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
)

// TestStatusQuerierAndGroups: Status names the querier last heard (address,
// version, time, Max Resp Time) and each group's protocol state, sorted by
// address: the state, the pending response, the transmissions left and,
// in the older modes, the last-reporter flag.
func TestStatusQuerierAndGroups(t *testing.T) {
	h := newIGMP(t)
	if s := h.e.Status(); s.Querier != (proto.Querier{}) || s.Groups != nil {
		t.Errorf("fresh engine: querier %+v, groups %+v", s.Querier, s.Groups)
	}
	h.setMany(map[string]membership.State{g2: st(inc, "192.0.2.10"), g1: st(exc)})
	h.recv(prototest.IGMPv3Query(ip(g1), 5*time.Second))
	s := h.e.Status()
	if want := (proto.Querier{Addr: prototest.IGMPQuerier, Version: 3, LastQuery: h.now, MaxResp: 5 * time.Second}); s.Querier != want {
		t.Errorf("querier %+v, want %+v", s.Querier, want)
	}
	if len(s.Groups) != 2 || s.Groups[0].Group != ip(g1) || s.Groups[1].Group != ip(g2) {
		t.Fatalf("groups %+v, want %s and %s in that order", s.Groups, g1, g2)
	}
	g := s.Groups[0]
	if !g.State.Equal(st(exc)) || g.Retransmissions != 1 || g.ResponseAt.IsZero() ||
		!g.ResponseAt.After(h.now) || g.ResponseAt.After(h.now.Add(5*time.Second)) || g.LastReporter {
		t.Errorf("group %s: %+v", g1, g)
	}
	if g := s.Groups[1]; !g.State.Equal(st(inc, "192.0.2.10")) || g.Retransmissions != 1 || !g.ResponseAt.IsZero() {
		t.Errorf("group %s: %+v", g2, g)
	}

	// The copy is not the engine's: changing it changes nothing reported.
	s.Groups[1].State.Sources[0] = ip("192.0.2.99")
	h.drain()
	h.recv(prototest.IGMPv3Query(any4, time.Second))
	wantReports(t, h.drain(), "igmpv3 224.0.0.22 [IS_EX(239.1.2.3){} IS_IN(239.9.9.9){192.0.2.10}]")

	// A bridge querier without an address, in IGMPv2: the querier and the
	// last-reporter flags.
	h.now = h.now.Add(time.Second)
	q := prototest.IGMPv2Query(any4, 2*time.Second)
	q.Src = any4
	h.recv(q)
	s = h.e.Status()
	if want := (proto.Querier{Addr: any4, Version: 2, LastQuery: h.now, MaxResp: 2 * time.Second}); s.Querier != want {
		t.Errorf("querier %+v, want %+v", s.Querier, want)
	}
	h.runUntil(h.now.Add(3 * time.Second)) // the reports, still in IGMPv2 mode
	if s := h.e.Status(); !s.Groups[0].LastReporter || !s.Groups[1].LastReporter {
		t.Errorf("after answering the IGMPv2 query: %+v", s.Groups)
	}

	m := newMLD(t)
	m.set(m1, st(exc))
	m.recv(prototest.MLDv1Query(any6, 3*time.Second))
	if want := (proto.Querier{Addr: prototest.MLDQuerier, Version: 1, LastQuery: m.now, MaxResp: 3 * time.Second}); m.e.Status().Querier != want {
		t.Errorf("MLD querier %+v, want %+v", m.e.Status().Querier, want)
	}
	// Invalid queries are not the querier.
	bad := prototest.MLDv2Query(any6, time.Second)
	bad.Src = netip.MustParseAddr("2001:db8::1")
	m.recv(bad)
	if got := m.e.Status().Querier.Addr; got != prototest.MLDQuerier {
		t.Errorf("querier %v after an invalid query", got)
	}
}

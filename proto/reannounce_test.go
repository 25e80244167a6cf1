package proto_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto/prototest"
)

// TestReannounce: when the link comes back up every group is reported
// again as a new join from INCLUDE {} (RFC 9776 §5.1 Table 1: TO_EX(B) for
// EXCLUDE(B), ALLOW(A) for INCLUDE(A)), with [Robustness Variable]
// transmissions, the first at once; sources whose BLOCK was still being
// repeated and leaves still being repeated are sent again; pending query
// responses are cancelled and the learned Robustness Variable returns to
// the configured one (Linux ip_mc_up: ip_mc_reset, igmp_group_added).
func TestReannounce(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			g3 := "239.3.3.3"
			if f.v6 {
				g3 = "ff15::3:3:3"
			}
			h.setMany(map[string]membership.State{f.g: f.st(exc, "c"), f.g2: f.st(inc, "a", "b"), g3: f.st(exc)})
			h.drain()
			h.recv(f.query(f.g, 20*time.Second))
			h.recv(f.queryQRV(3))                                                    // learned: Robustness 3
			h.setMany(map[string]membership.State{f.g2: f.st(inc, "a"), g3: nonMem}) // BLOCK(g2){b}, TO_IN(g3){}
			h.takeAt()
			if s := h.e.Status(); s.Robustness != 3 || s.PendingQueryResponses != 2 || s.PendingStateChanges != 2 {
				t.Fatalf("before: %+v", s)
			}
			start := h.now.Sub(t0)
			h.e.Reannounce(h.now)
			s := h.e.Status()
			if s.Robustness != 2 || s.QueryInterval != 125*time.Second || s.QueryResponseInterval != 10*time.Second {
				t.Errorf("learned values after Reannounce: robustness %d, qi %v, qri %v; want the configured 2, 125s, 10s", s.Robustness, s.QueryInterval, s.QueryResponseInterval)
			}
			if s.PendingQueryResponses != 0 || s.PendingStateChanges != 3 {
				t.Errorf("after Reannounce: pending responses %d, changes %d; want 0, 3", s.PendingQueryResponses, s.PendingStateChanges)
			}
			// in address order: g < g3 < g2
			want := f.prefix + " [TO_EX(" + f.g + "){" + f.c + "} TO_IN(" + g3 + "){} ALLOW(" + f.g2 + "){" + f.a + "} BLOCK(" + f.g2 + "){" + f.b + "}]"
			evs := h.drain()
			wantReports(t, evs, want, want)
			if len(evs) == 2 {
				if evs[0].at != start {
					t.Errorf("first report at %v, want at once (%v)", evs[0].at, start)
				}
				wantWithin(t, evs[1:], start, start+time.Second)
			}
		})
	}
}

// TestReannounceOlderModes: in IGMPv2 / MLDv1 mode a joined group gets the
// unsolicited reports of a join again and a group still being left its
// Leave (Done) repetitions again; pending query responses are replaced.
func TestReannounceOlderModes(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		force := map[bool]int{false: 2, true: 1}[v6]
		a, b := g1, g2
		if v6 {
			a, b = m1, m2
		}
		h := newH(t, v6, withForce(force))
		h.setMany(map[string]membership.State{a: st(exc), b: st(exc)})
		h.drain()
		if v6 {
			h.recv(prototest.MLDv1Query(any6, 20*time.Second))
		} else {
			h.recv(prototest.IGMPv2Query(any4, 20*time.Second))
		}
		h.set(b, nonMem)
		first := h.takeAt() // b's Leave
		h.e.Reannounce(h.now)
		evs := append(first, h.drain()...)
		var got []string
		for _, e := range evs {
			got = append(got, e.r.String())
		}
		slices.Sort(got)
		rep, leave := "igmpv2 239.1.2.3 239.1.2.3", "igmpv2-leave 224.0.0.2 239.9.9.9"
		if v6 {
			rep, leave = "mldv1 ff15::1:2:3 ff15::1:2:3", "mldv1-done ff02::2 ff15::9:9:9"
		}
		want := []string{rep, rep, leave, leave, leave}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("v6 %v: got %v, want %v (the query response replaced by the join's reports)", v6, got, want)
		}
	}
}

// TestReannounceIdle: an engine with no group sends nothing.
func TestReannounceIdle(t *testing.T) {
	h := newMLD(t)
	h.e.Reannounce(h.now)
	if evs := h.drain(); len(evs) != 0 {
		t.Errorf("sent %v", strs(evs))
	}
}

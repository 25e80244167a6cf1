package proto_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/wire"
)

// TestShutdown: Shutdown reports the departure of every joined group with
// the records an ordinary leave gets (RFC 9776 §5.1 Table 1, RFC 9777 §6.1:
// BLOCK(A) for INCLUDE(A), TO_IN {} for EXCLUDE), repeated [Robustness
// Variable] times like every state change: at once, then within the
// Unsolicited Report Interval; a leave already being repeated goes on.
// IGMPv2 / MLDv1 send a Leave (Done) by the last reporter only, repeated
// the same way; IGMPv1 sends nothing. Pending query responses are
// cancelled, input is ignored, NextTimer reports only the repetitions and
// returns false once they are sent.
func TestShutdown(t *testing.T) {
	cases := []struct {
		name  string
		v6    bool
		opts  []opt
		first []string // at Shutdown
		rest  []string // the repetitions
	}{
		{"igmpv3", false, nil,
			[]string{"igmpv3 224.0.0.22 [TO_IN(239.1.2.3){} BLOCK(239.9.9.9){192.0.2.10}]"},
			[]string{"igmpv3 224.0.0.22 [TO_IN(239.1.2.3){} TO_IN(239.5.5.5){} BLOCK(239.9.9.9){192.0.2.10}]"}},
		{"igmpv2", false, []opt{withForce(2)},
			[]string{"igmpv2-leave 224.0.0.2 239.1.2.3", "igmpv2-leave 224.0.0.2 239.9.9.9"},
			[]string{"igmpv2-leave 224.0.0.2 239.1.2.3", "igmpv2-leave 224.0.0.2 239.5.5.5", "igmpv2-leave 224.0.0.2 239.9.9.9"}},
		{"igmpv1", false, []opt{withForce(1)}, nil, nil},
		{"mldv2", true, nil,
			[]string{"mldv2 ff02::16 [TO_IN(ff15::1:2:3){} BLOCK(ff15::9:9:9){2001:db8::a}]"},
			[]string{"mldv2 ff02::16 [TO_IN(ff15::1:2:3){} TO_IN(ff15::5:5:5){} BLOCK(ff15::9:9:9){2001:db8::a}]"}},
		{"mldv1", true, []opt{withForce(1)},
			[]string{"mldv1-done ff02::2 ff15::1:2:3", "mldv1-done ff02::2 ff15::9:9:9"},
			[]string{"mldv1-done ff02::2 ff15::1:2:3", "mldv1-done ff02::2 ff15::5:5:5", "mldv1-done ff02::2 ff15::9:9:9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newH(t, tc.v6, tc.opts...)
			a, b, c := g1, g2, "239.5.5.5"
			src := "192.0.2.10"
			if tc.v6 {
				a, b, c, src = m1, m2, "ff15::5:5:5", "2001:db8::a"
			}
			h.setMany(map[string]membership.State{a: st(exc), b: st(inc, src), c: st(exc)})
			h.drain()
			h.set(c, nonMem) // its leave is still being repeated at shutdown
			h.takeAt()
			if tc.v6 {
				h.recv(prototest.MLDv2Query(any6, 10*time.Second))
			} else {
				h.recv(prototest.IGMPv3Query(any4, 10*time.Second))
			}
			start := h.now
			h.e.Shutdown(h.now)
			wantReports(t, h.takeAt(), tc.first...)
			s := h.e.Status()
			if s.PendingQueryResponses != 0 {
				t.Errorf("PendingQueryResponses = %d after Shutdown", s.PendingQueryResponses)
			}
			wantPending := 0
			if tc.rest != nil {
				wantPending = 3 // a, b and c, whose leave was being repeated
			}
			if s.PendingStateChanges != wantPending {
				t.Errorf("PendingStateChanges = %d after Shutdown, want %d", s.PendingStateChanges, wantPending)
			}
			// Input is ignored from now on.
			h.set(a, st(exc))
			h.recv(prototest.IGMPv1Query())
			h.e.Reannounce(h.now)
			h.e.SetSource(ip("192.0.2.99"))
			if evs := h.takeAt(); len(evs) != 0 {
				t.Errorf("input after Shutdown sent %v", strs(evs))
			}
			next, ok := h.e.NextTimer()
			if ok != (tc.rest != nil) {
				t.Fatalf("NextTimer after Shutdown: %v, want %v", ok, tc.rest != nil)
			}
			if ok && (!next.After(start) || next.After(start.Add(time.Second))) {
				t.Errorf("repetition due %v after Shutdown, want within (0, 1s]", next.Sub(start))
			}
			rest := h.drain()
			if len(tc.first) == 2 {
				// one Leave (Done) per group, each at its own random delay
				slices.SortFunc(rest, func(x, y event) int { return strings.Compare(x.r.String(), y.r.String()) })
			}
			wantReports(t, rest, tc.rest...)
			wantWithin(t, rest, start.Sub(t0), start.Sub(t0)+time.Second)
			if _, ok := h.e.NextTimer(); ok {
				t.Error("a timer runs after the repetitions")
			}
			if s := h.e.Status(); s.PendingQueryResponses != 0 || s.PendingStateChanges != 0 || len(s.Groups) != 0 {
				t.Errorf("status after the drain: %+v", s)
			}
			h.e.Shutdown(h.now)
			h.e.Tick(h.now.Add(time.Hour))
			if evs := h.takeAt(); len(evs) != 0 {
				t.Errorf("after the drain: %v", strs(evs))
			}
		})
	}
}

// TestShutdownDrainBound: with the Robustness Variable learned from a
// query (QRV 7) the final reports take Robustness transmissions and end
// within (Robustness - 1) × Unsolicited Report Interval.
func TestShutdownDrainBound(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t, withURI(300*time.Millisecond))
			h.set(f.g, f.st(exc))
			h.drain()
			h.recv(f.queryQRV(7))
			h.drain()
			start := h.now
			h.e.Shutdown(h.now)
			evs := append(h.takeAt(), h.drain()...)
			want := f.rep("TO_IN(g){}")
			wantReports(t, evs, want, want, want, want, want, want, want)
			wantWithin(t, evs[1:], start.Sub(t0), start.Sub(t0)+6*300*time.Millisecond)
		})
	}
}

// TestShutdownPacked: the final records of many groups are packed, in
// every transmission.
func TestShutdownPacked(t *testing.T) {
	h := newIGMP(t)
	m := map[string]membership.State{}
	for i := range 500 {
		m[fmt.Sprintf("239.7.%d.%d", i/256, i%256)] = st(exc)
	}
	h.setMany(m)
	h.drain()
	h.e.Shutdown(h.now)
	checkRecordCounts(t, append(h.takeAt(), h.drain()...), 183, 183, 134, 183, 183, 134)
}

// TestShutdownNotLastReporter: in IGMPv2 / MLDv1 mode a host whose report
// was suppressed by another host's leaves silently, at Shutdown as on an
// ordinary leave (RFC 2236 §3, RFC 2710 §4).
func TestShutdownNotLastReporter(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		h := newH(t, v6, withForce(map[bool]int{false: 2, true: 1}[v6]))
		g, other := g1, prototest.IGMPReport(2, ip(g1))
		if v6 {
			g, other = m1, prototest.MLDReport(ip(m1))
		}
		h.set(g, st(exc))
		h.drain()
		if v6 {
			h.recv(prototest.MLDv1Query(any6, time.Second))
		} else {
			h.recv(prototest.IGMPv2Query(any4, time.Second))
		}
		h.recv(other)
		if s := h.e.Status(); len(s.Groups) != 1 || s.Groups[0].LastReporter {
			t.Fatalf("v6 %v: status after suppression %+v", v6, s.Groups)
		}
		h.e.Shutdown(h.now)
		if evs := append(h.takeAt(), h.drain()...); len(evs) != 0 {
			t.Errorf("v6 %v: shutdown of a host that was not the last reporter sent %v", v6, strs(evs))
		}
	}
}

// queryQRV is a General Query with QRV q.
func (f fam) queryQRV(q uint8) proto.Received {
	if f.v6 {
		return prototest.MLDv2QueryMsg(wire.MLDv2Query{MaxRespCode: 1000, QRV: q, QQIC: 125})
	}
	return prototest.IGMPv3QueryMsg(wire.IGMPv3Query{MaxRespCode: 10, QRV: q, QQIC: 125})
}

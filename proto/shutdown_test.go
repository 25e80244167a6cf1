package proto_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto/prototest"
)

// TestShutdown: Shutdown queues the final reports of every joined group —
// TO_IN {} records packed into IGMPv3/MLDv2 reports, IGMPv2 Leave and MLDv1
// Done messages, nothing in IGMPv1 — and cancels every timer; afterwards
// the engine ignores input.
func TestShutdown(t *testing.T) {
	cases := []struct {
		name string
		v6   bool
		opts []opt
		want []string
	}{
		{"igmpv3", false, nil, []string{"igmpv3 224.0.0.22 [TO_IN(239.1.2.3){} TO_IN(239.5.5.5){} TO_IN(239.9.9.9){}]"}},
		{"igmpv2", false, []opt{withForce(2)}, []string{"igmpv2-leave 224.0.0.2 239.1.2.3", "igmpv2-leave 224.0.0.2 239.9.9.9"}},
		{"igmpv1", false, []opt{withForce(1)}, nil},
		{"mldv2", true, nil, []string{"mldv2 ff02::16 [TO_IN(ff15::1:2:3){} TO_IN(ff15::5:5:5){} TO_IN(ff15::9:9:9){}]"}},
		{"mldv1", true, []opt{withForce(1)}, []string{"mldv1-done ff02::2 ff15::1:2:3", "mldv1-done ff02::2 ff15::9:9:9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newH(t, tc.v6, tc.opts...)
			a, b, c := g1, g2, "239.5.5.5"
			if tc.v6 {
				a, b, c = m1, m2, "ff15::5:5:5"
			}
			src := "192.0.2.10"
			if tc.v6 {
				src = "2001:db8::a"
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
			h.e.Shutdown(h.now)
			var want []string
			want = append(want, tc.want...)
			wantReports(t, h.takeAt(), want...)
			if _, ok := h.e.NextTimer(); ok {
				t.Error("a timer runs after Shutdown")
			}
			h.set(a, nonMem)
			h.recv(prototest.IGMPv1Query())
			h.e.Tick(h.now.Add(time.Hour))
			h.e.Shutdown(h.now)
			if evs := h.takeAt(); len(evs) != 0 {
				t.Errorf("after Shutdown: %v", strs(evs))
			}
			if s := h.e.Status(); s.PendingQueryResponses != 0 || s.PendingStateChanges != 0 {
				t.Errorf("status after Shutdown: %+v", s)
			}
		})
	}
}

// TestShutdownPacked: the final TO_IN {} records of many groups are packed.
func TestShutdownPacked(t *testing.T) {
	h := newIGMP(t)
	m := map[string]membership.State{}
	for i := range 500 {
		m[fmt.Sprintf("239.7.%d.%d", i/256, i%256)] = st(exc)
	}
	h.setMany(m)
	h.drain()
	h.e.Shutdown(h.now)
	checkRecordCounts(t, h.takeAt(), 183, 183, 134)
}

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
)

// groupName returns the i-th (0-based) group of a large test set: ascending
// addresses 239.1.0.1… for IGMP, ff15::1… for MLD.
func (f fam) groupName(i int) string {
	if f.v6 {
		return fmt.Sprintf("ff15::%x", i+1)
	}
	return fmt.Sprintf("239.1.%d.%d", (i+1)/256, (i+1)%256)
}

// paceMTU is an MTU at which 500 groups need more than one burst: IGMP 576,
// (576 - 24 - 8) / 8 = 68 records per packet, 8 packets; MLD 1280 (its
// minimum), (1280 - 48 - 8) / 20 = 61 records per packet, 9 packets.
func (f fam) paceMTU() (mtu, perPacket int) {
	if f.v6 {
		return 1280, 61
	}
	return 576, 68
}

// joinMany joins n groups (EXCLUDE {}) and lets the state-change reports
// run out.
func (h *harness) joinMany(f fam, n int) {
	h.t.Helper()
	m := map[string]membership.State{}
	for i := range n {
		m[f.groupName(i)] = st(exc)
	}
	h.setMany(m)
	h.drain()
}

// step runs the next timer and returns what it sent.
func (h *harness) step() []event {
	h.t.Helper()
	next, ok := h.e.NextTimer()
	if !ok {
		h.t.Fatal("no timer pending")
	}
	if next.After(h.now) {
		h.now = next
	}
	h.e.Tick(h.now)
	return h.takeAt()
}

// records lists the records of evs as strings, in order.
func records(evs []event) []string {
	var out []string
	for _, e := range evs {
		for _, r := range e.r.Records {
			out = append(out, r.String())
		}
	}
	return out
}

// isEx lists the IS_EX {} records of groups i in [from, to).
func (f fam) isEx(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, "IS_EX("+f.groupName(i)+"){}")
	}
	return out
}

// burstTimes groups the offsets of evs: how many packets at each time.
func burstTimes(evs []event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 && e.at == evs[i-1].at {
			continue
		}
		n := 0
		for _, x := range evs[i:] {
			if x.at == e.at {
				n++
			}
		}
		fmt.Fprintf(&b, "%v:%d ", e.at-evs[0].at, n)
	}
	return strings.TrimSpace(b.String())
}

// bursts formats n bursts of k packets for burstTimes.
func bursts(n, k int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%v:%d", time.Duration(i)*500*time.Millisecond, k)
	}
	return strings.Join(out, " ")
}

// TestGeneralQueryPaced: the response to a General Query is sent in bursts
// of at most proto.ResponseBurst packets, proto.ResponsePace apart, the
// first at the Interface Timer (RFC 9776 §5.2, RFC 9777 §6.3 recommend
// spreading the Report messages). The packets are those of the unpaced
// response: every group once, in address order, packed as full as the MTU
// allows.
func TestGeneralQueryPaced(t *testing.T) {
	if proto.ResponseBurst != 4 || proto.ResponsePace != 500*time.Millisecond {
		t.Fatalf("pacing %d per %v; the expectations below assume 4 per 500ms", proto.ResponseBurst, proto.ResponsePace)
	}
	cases := []struct {
		f      fam
		groups int
		opts   []opt
		counts []int  // records per packet, as the unpaced response packs them
		bursts string // packets per burst, by offset from the first
	}{
		// (576 - 24 - 8) / 8 = 68 records per packet
		{fams[0], 500, []opt{withMTU(576)}, []int{68, 68, 68, 68, 68, 68, 68, 24}, "0s:4 500ms:4"},
		// (1500 - 24 - 8) / 8 = 183 records per packet
		{fams[0], 500, nil, []int{183, 183, 134}, "0s:3"},
		// (1500 - 48 - 8) / 20 = 72 records per packet
		{fams[1], 500, nil, []int{72, 72, 72, 72, 72, 72, 68}, "0s:4 500ms:3"},
		{fams[1], 500, []opt{withMTU(1280)}, []int{61, 61, 61, 61, 61, 61, 61, 61, 12}, "0s:4 500ms:4 1s:1"},
		// the scale benchmark's case: 55 packets in 14 bursts over 6.5 s
		{fams[0], 10000, nil, append(slices.Repeat([]int{183}, 54), 118), bursts(13, 4) + " 6.5s:3"},
		{fams[1], 2000, nil, append(slices.Repeat([]int{72}, 27), 56), "0s:4 500ms:4 1s:4 1.5s:4 2s:4 2.5s:4 3s:4"},
	}
	for _, tc := range cases {
		f := tc.f
		t.Run(fmt.Sprintf("%s/%d groups/%d packets", f.name, tc.groups, len(tc.counts)), func(t *testing.T) {
			h := f.new(t, tc.opts...)
			h.joinMany(f, tc.groups)
			base := h.now.Sub(t0)
			h.recv(f.query("", time.Second))
			first := h.step()
			wantWithin(t, first, base, base+time.Second)
			if len(tc.counts) > proto.ResponseBurst {
				if st := h.e.Status(); st.PendingQueryResponses != 1 {
					t.Errorf("between bursts: PendingQueryResponses = %d, want 1", st.PendingQueryResponses)
				}
			}
			evs := append(first, h.drain()...)
			if got := burstTimes(evs); got != tc.bursts {
				t.Errorf("bursts %q, want %q", got, tc.bursts)
			}
			checkRecordCounts(t, evs, tc.counts...)
			if got, want := records(evs), f.isEx(0, tc.groups); !slices.Equal(got, want) {
				t.Errorf("%d records, want %d IS_EX {} in address order", len(got), len(want))
			}
			for _, e := range evs {
				if e.r.Dst.String() != strings.Fields(f.prefix)[1] {
					t.Errorf("report to %v", e.r.Dst)
				}
			}
			if st := h.e.Status(); st.PendingQueryResponses != 0 || st.Counters.ReportsSent != uint64(len(evs)+len(tc.counts)*2) {
				t.Errorf("after the response: pending %d, sent %d; want 0, %d", st.PendingQueryResponses, st.Counters.ReportsSent, len(evs)+len(tc.counts)*2)
			}
		})
	}
}

// TestGeneralQueryPacedSplitRecord: a record split over several packets
// (RFC 9776 §4.2.16) is never cut by a burst; a group needing more than
// ResponseBurst packets is sent whole and the next group waits for the next
// burst.
func TestGeneralQueryPacedSplitRecord(t *testing.T) {
	h := newIGMP(t)
	srcs := make([]string, 2000)
	for i := range srcs {
		srcs[i] = fmt.Sprintf("10.%d.%d.1", i/256, i%256)
	}
	h.setMany(map[string]membership.State{"239.1.0.1": st(inc, srcs...), "239.1.0.2": st(exc)})
	h.drain()
	h.recv(prototest.IGMPv3Query(any4, time.Second))
	evs := h.drain()
	// (1500 - 24 - 8 - 8) / 4 = 365 sources per record: 5 × 365 + 175
	if got := burstTimes(evs); got != "0s:6 500ms:1" {
		t.Errorf("bursts %q, want %q", got, "0s:6 500ms:1")
	}
	checkSourceCountsAny(t, evs, []int{365, 365, 365, 365, 365, 175}, []int{0})
}

func checkSourceCountsAny(t *testing.T, evs []event, want ...[]int) {
	t.Helper()
	var got [][]int
	for _, e := range evs {
		var n []int
		for _, r := range e.r.Records {
			n = append(n, len(r.Sources))
		}
		got = append(got, n)
	}
	var flat, wantFlat []int
	for _, g := range got {
		flat = append(flat, g...)
	}
	for _, w := range want {
		wantFlat = append(wantFlat, w...)
	}
	if !slices.Equal(flat, wantFlat) || len(got) != 7 {
		t.Errorf("sources per record per packet %v, want records %v in 7 packets", got, wantFlat)
	}
}

// TestGeneralQueryPacedStateChange: each burst reports the state when it is
// sent; state changes during a paced response are reported at once as
// usual (RFC 9777 §6.1) and the rest of the response follows the new state:
// a group left is not reported, a group changed is reported as it now is,
// a group joined ahead of the response is included, one behind it is not
// reported again.
func TestGeneralQueryPacedStateChange(t *testing.T) {
	f := fams[1]
	h := f.new(t)
	h.joinMany(f, 500)
	h.recv(f.query("", time.Second))
	first := h.step()
	checkRecordCounts(t, first, 72, 72, 72, 72) // groups 0–287
	burst1 := first[0].at
	h.now = h.now.Add(100 * time.Millisecond)
	h.setMany(map[string]membership.State{
		f.groupName(0):   nonMem,              // already reported
		f.groupName(499): nonMem,              // ahead
		f.groupName(300): f.st(inc, "a"),      // ahead, changed
		"ff14::1":        st(exc),             // joined behind the response
		"ff15::ffff":     st(exc),             // joined ahead of it
		f.groupName(100): f.st(exc, "b", "c"), // behind, changed
	})
	changes := h.takeAt()
	if len(changes) != 1 || strings.Contains(changes[0].r.String(), "IS_") {
		t.Fatalf("state change sent %v, want one state-change report at once", strs(changes))
	}
	rest := h.drain()
	var resp []event
	for _, e := range rest {
		if strings.Contains(e.r.String(), "IS_") {
			resp = append(resp, e)
			if e.at != burst1+500*time.Millisecond {
				t.Errorf("%v at %v, want the second burst at %v", e.r, e.at, burst1+500*time.Millisecond)
			}
		}
	}
	var want []string
	want = append(want, f.isEx(288, 300)...)
	want = append(want, "IS_IN("+f.groupName(300)+"){"+f.a+"}")
	want = append(want, f.isEx(301, 499)...)
	want = append(want, "IS_EX(ff15::ffff){}")
	if got := records(resp); !slices.Equal(got, want) {
		t.Errorf("second burst records:\n got  %v\n want %v", got, want)
	}
	if len(resp) > proto.ResponseBurst {
		t.Errorf("second burst of %d packets", len(resp))
	}
}

// TestGeneralQueryDuringPacing: a General Query arriving while a paced
// response is under way follows the pending-response rules (RFC 9776 §5.2,
// RFC 9777 §6.2): rule 1, the next burst is due no later than the new
// delay, so the query is covered; rule 2, the new delay is earlier, so the
// response starts over from the first group at the new delay.
func TestGeneralQueryDuringPacing(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name+"/rule1 covered", func(t *testing.T) {
			mtu, per := f.paceMTU()
			h := f.new(t, withMTU(mtu))
			h.joinMany(f, 500)
			h.recv(f.query("", time.Second))
			evs := h.step()
			h.now = h.now.Add(100 * time.Millisecond)
			// delay in (0, 25 s]; the seeded draw is past the next burst (400 ms away)
			h.recv(f.query("", 25*time.Second))
			if st := h.e.Status(); st.PendingQueryResponses != 1 {
				t.Errorf("PendingQueryResponses = %d, want 1", st.PendingQueryResponses)
			}
			evs = append(evs, h.drain()...)
			want := "0s:4 500ms:4"
			if f.v6 {
				want = "0s:4 500ms:4 1s:1"
			}
			if got := burstTimes(evs); got != want {
				t.Errorf("bursts %q, want %q", got, want)
			}
			if n := len(records(evs[:4])); n != 4*per {
				t.Errorf("first burst of %d records, want %d", n, 4*per)
			}
			if got, want := records(evs), f.isEx(0, 500); !slices.Equal(got, want) {
				t.Errorf("%d records, want each of the 500 groups once", len(got))
			}
		})
		t.Run(f.name+"/rule2 restarts", func(t *testing.T) {
			mtu, per := f.paceMTU()
			h := f.new(t, withMTU(mtu))
			h.joinMany(f, 500)
			h.recv(f.query("", time.Second))
			evs := h.step()
			start := evs[0].at
			h.now = h.now.Add(100 * time.Millisecond)
			h.recv(f.query("", 100*time.Millisecond)) // due within 200 ms, before the next burst
			evs = append(evs, h.drain()...)
			var perBurst []int
			var times []time.Duration
			for i, e := range evs {
				if i == 0 || e.at != evs[i-1].at {
					perBurst = append(perBurst, 0)
					times = append(times, e.at)
				}
				perBurst[len(perBurst)-1]++
			}
			// the first burst, then the whole response again: IGMP 8
			// packets, MLD 9
			wantBursts := []int{4, 4, 4}
			if f.v6 {
				wantBursts = []int{4, 4, 4, 1}
			}
			if !slices.Equal(perBurst, wantBursts) {
				t.Fatalf("packets per burst %v, want %v", perBurst, wantBursts)
			}
			restart := times[1]
			if restart <= start+100*time.Millisecond || restart > start+200*time.Millisecond {
				t.Errorf("restarted burst at %v, want in (%v, %v]", restart, start+100*time.Millisecond, start+200*time.Millisecond)
			}
			for i := 2; i < len(times); i++ {
				if times[i] != restart+time.Duration(i-1)*proto.ResponsePace {
					t.Errorf("burst %d at %v, want %v", i, times[i], restart+time.Duration(i-1)*proto.ResponsePace)
				}
			}
			recs := records(evs)
			n1 := 4 * per
			if got, want := recs[:n1], f.isEx(0, n1); !slices.Equal(got, want) {
				t.Errorf("first burst is not the first %d groups", n1)
			}
			if got, want := recs[n1:], f.isEx(0, 500); !slices.Equal(got, want) {
				t.Errorf("restarted response has %d records, want every group once from the first", len(got))
			}
		})
	}
}

// TestSpecificQueryDuringPacing: a Group-Specific Query while a paced
// General Query response is pending is answered by the burst that carries
// the group when it comes first (RFC 9776 §5.2 rule 1: no additional
// response), and by its own response when the paced response already
// passed the group.
func TestSpecificQueryDuringPacing(t *testing.T) {
	f := fams[1]
	h := f.new(t)
	h.joinMany(f, 500)
	h.recv(f.query("", time.Second))
	first := h.step() // groups 0–287
	burst1 := first[0].at
	h.recv(f.query(f.groupName(10), 100*time.Millisecond)) // behind the response
	h.recv(f.query(f.groupName(400), 10*time.Second))      // ahead: the next burst answers it
	if st := h.e.Status(); st.PendingQueryResponses != 3 {
		t.Errorf("PendingQueryResponses = %d, want 3 (two groups, the paced response)", st.PendingQueryResponses)
	}
	evs := h.drain()
	if len(evs) != 4 {
		t.Fatalf("%d packets, want the group response and the second burst of 3", len(evs))
	}
	wantReports(t, evs[:1], f.prefix+" [IS_EX("+f.groupName(10)+"){}]")
	wantWithin(t, evs[:1], burst1, burst1+100*time.Millisecond)
	if got, want := records(evs[1:]), f.isEx(288, 500); !slices.Equal(got, want) {
		t.Errorf("second burst: %d records, want groups 288–499", len(got))
	}
	if st := h.e.Status(); st.PendingQueryResponses != 0 {
		t.Errorf("PendingQueryResponses = %d after the response, want 0", st.PendingQueryResponses)
	}
}

// TestShutdownDuringPacing: Shutdown cancels the rest of a paced response.
func TestShutdownDuringPacing(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			mtu, _ := f.paceMTU()
			h := f.new(t, withMTU(mtu))
			h.joinMany(f, 500)
			h.recv(f.query("", time.Second))
			if evs := h.step(); len(evs) != proto.ResponseBurst {
				t.Fatalf("first burst of %d packets", len(evs))
			}
			h.now = h.now.Add(100 * time.Millisecond)
			h.e.Shutdown(h.now)
			evs := h.takeAt()
			for _, e := range evs {
				for _, r := range e.r.Records {
					if !strings.HasPrefix(r.String(), "TO_IN(") {
						t.Errorf("shutdown sent %v", r)
					}
				}
			}
			if got := len(records(evs)); got != 500 {
				t.Errorf("shutdown sent %d records, want 500 TO_IN {}", got)
			}
			if _, ok := h.e.NextTimer(); ok {
				t.Error("a timer runs after Shutdown")
			}
			if evs := h.drain(); len(evs) != 0 {
				t.Errorf("after Shutdown: %d packets", len(evs))
			}
			if st := h.e.Status(); st.PendingQueryResponses != 0 {
				t.Errorf("PendingQueryResponses = %d after Shutdown", st.PendingQueryResponses)
			}
		})
	}
}

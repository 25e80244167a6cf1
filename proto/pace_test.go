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

// burst is the packets of a response sent at one instant.
type burst struct {
	at time.Duration // from t0
	n  int
}

// bursts groups evs (in time order) by send time.
func bursts(evs []event) []burst {
	var out []burst
	for _, e := range evs {
		if len(out) > 0 && out[len(out)-1].at == e.at {
			out[len(out)-1].n++
			continue
		}
		out = append(out, burst{e.at, 1})
	}
	return out
}

func burstSizes(bs []burst) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = b.n
	}
	return out
}

// checkSpread checks that the bursts after the first one are spread evenly
// between the first and end, the last one before end: burst k at
// first + k × (end - first) / len(bs), within a nanosecond per burst (the
// engine divides what is left at each burst).
func checkSpread(t *testing.T, bs []burst, end time.Duration) {
	t.Helper()
	first := bs[0].at
	step := (end - first) / time.Duration(len(bs))
	for k, b := range bs {
		want := first + time.Duration(k)*step
		if d := b.at - want; d < -time.Duration(len(bs)) || d > time.Duration(len(bs)) {
			t.Errorf("burst %d at %v, want %v (first %v, end %v, %d bursts)", k, b.at, want, first, end, len(bs))
		}
	}
	if last := bs[len(bs)-1].at; last >= end && len(bs) > 1 {
		t.Errorf("last burst at %v, not before the end of the Max Resp Time %v", last, end)
	}
}

// TestGeneralQueryPaced: the response to a General Query starts when the
// Interface Timer fires, at a random delay within the Max Resp Time, and
// goes out in bursts of at most proto.ResponseBurst packets spread evenly
// from there to the end of the Max Resp Time (RFC 9776 §5.2, RFC 9777
// §6.3 recommend spreading the Report messages over it), so that it always
// ends within it. The packets are those of the unpaced response: every
// group once, in address order, packed as full as the MTU allows.
func TestGeneralQueryPaced(t *testing.T) {
	if proto.ResponseBurst != 4 {
		t.Fatalf("bursts of %d; the expectations below assume 4", proto.ResponseBurst)
	}
	cases := []struct {
		f      fam
		groups int
		opts   []opt
		mrt    time.Duration
		counts []int // records per packet, as the unpaced response packs them
		sizes  []int // packets per burst
	}{
		// (576 - 24 - 8) / 8 = 68 records per packet
		{fams[0], 500, []opt{withMTU(576)}, time.Second, []int{68, 68, 68, 68, 68, 68, 68, 24}, []int{4, 4}},
		// (1500 - 24 - 8) / 8 = 183 records per packet
		{fams[0], 500, nil, time.Second, []int{183, 183, 134}, []int{3}},
		// (1500 - 48 - 8) / 20 = 72 records per packet
		{fams[1], 500, nil, time.Second, []int{72, 72, 72, 72, 72, 72, 68}, []int{4, 3}},
		{fams[1], 500, []opt{withMTU(1280)}, time.Second, []int{61, 61, 61, 61, 61, 61, 61, 61, 12}, []int{4, 4, 1}},
		// the case: 13 MLDv2 packets for a 0.1-s Max Resp Time
		// (they took 1.5 s at a fixed 4 packets per 500 ms)
		{fams[1], 750, []opt{withMTU(1280)}, 100 * time.Millisecond, append(slices.Repeat([]int{61}, 12), 18), []int{4, 4, 4, 1}},
		// the scale benchmark's case: 55 packets in 14 bursts within 1 s
		// (6.5 s at the fixed pace)
		{fams[0], 10000, nil, time.Second, append(slices.Repeat([]int{183}, 54), 118), append(slices.Repeat([]int{4}, 13), 3)},
		{fams[0], 10000, nil, 10 * time.Second, append(slices.Repeat([]int{183}, 54), 118), append(slices.Repeat([]int{4}, 13), 3)},
		{fams[1], 2000, nil, 2 * time.Second, append(slices.Repeat([]int{72}, 27), 56), []int{4, 4, 4, 4, 4, 4, 4}},
	}
	for _, tc := range cases {
		f := tc.f
		t.Run(fmt.Sprintf("%s/%d groups/%d packets/%v", f.name, tc.groups, len(tc.counts), tc.mrt), func(t *testing.T) {
			h := f.new(t, tc.opts...)
			h.joinMany(f, tc.groups)
			base := h.now.Sub(t0)
			h.recv(f.query("", tc.mrt))
			if evs := h.takeAt(); len(evs) != 0 {
				t.Fatalf("sent %d packets on the reception of the query", len(evs))
			}
			first := h.step()
			wantWithin(t, first, base, base+tc.mrt)
			if len(tc.sizes) > 1 {
				if st := h.e.Status(); st.PendingQueryResponses != 1 {
					t.Errorf("between bursts: PendingQueryResponses = %d, want 1", st.PendingQueryResponses)
				}
			}
			evs := append(first, h.drain()...)
			bs := bursts(evs)
			if got := burstSizes(bs); !slices.Equal(got, tc.sizes) {
				t.Errorf("packets per burst %v, want %v", got, tc.sizes)
			}
			checkSpread(t, bs, base+tc.mrt)
			wantWithin(t, evs, base, base+tc.mrt)
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

// TestGeneralQueryLateTimer: when the Interface Timer fires at the very end
// of the Max Resp Time the whole response goes out at once: it never ends
// after the Max Resp Time.
func TestGeneralQueryLateTimer(t *testing.T) {
	f := fams[1]
	h := f.new(t, withMTU(1280))
	h.joinMany(f, 750)
	// MLD's Maximum Response Code 0: a Max Resp Time of 0 ms, so the
	// Interface Timer fires at once.
	h.recv(prototest.MLDv2QueryMsg(wire.MLDv2Query{MaxRespCode: 0, QRV: 2, QQIC: 125}))
	evs := h.takeAt()
	evs = append(evs, h.runUntil(h.now)...)
	if got := burstSizes(bursts(evs)); !slices.Equal(got, []int{13}) {
		t.Errorf("packets per burst %v, want all 13 at once", got)
	}
	if got, want := records(evs), f.isEx(0, 750); !slices.Equal(got, want) {
		t.Errorf("%d records, want %d", len(got), len(want))
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
	base := h.now.Sub(t0)
	h.recv(prototest.IGMPv3Query(any4, time.Second))
	evs := h.drain()
	// (1500 - 24 - 8 - 8) / 4 = 365 sources per record: 5 × 365 + 175
	bs := bursts(evs)
	if got := burstSizes(bs); !slices.Equal(got, []int{6, 1}) {
		t.Errorf("packets per burst %v, want [6 1]", got)
	}
	checkSpread(t, bs, base+time.Second)
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
	base := h.now.Sub(t0)
	h.recv(f.query("", time.Second))
	first := h.step()
	checkRecordCounts(t, first, 72, 72, 72, 72) // groups 0–287
	burst1 := first[0].at
	h.now = h.now.Add(time.Millisecond)
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
	// 4 of 7 packets sent: one burst left, half-way to the end
	second := burst1 + (base+time.Second-burst1)/2
	rest := h.drain()
	var resp []event
	for _, e := range rest {
		if strings.Contains(e.r.String(), "IS_") {
			resp = append(resp, e)
			if d := e.at - second; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("%v at %v, want the second burst at %v", e.r, e.at, second)
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
// RFC 9777 §6.2) for the rest of the response. Rule 1: the next burst is
// due before the new delay, and the new Max Resp Time ends later, so
// nothing changes. Rule 2: the new delay is earlier and its Max Resp Time
// ends sooner: the rest of the response (not the groups already reported)
// is brought forward and ends within the new Max Resp Time.
func TestGeneralQueryDuringPacing(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name+"/rule1 covered", func(t *testing.T) {
			mtu, per := f.paceMTU()
			h := f.new(t, withMTU(mtu))
			h.joinMany(f, 500)
			base := h.now.Sub(t0)
			h.recv(f.query("", time.Second))
			evs := h.step()
			next, _ := h.e.NextTimer()
			h.now = h.now.Add(time.Millisecond)
			// delay in (0, 25 s]; the seeded draw is past the next burst
			h.recv(f.query("", 25*time.Second))
			if at, _ := h.e.NextTimer(); !at.Equal(next) {
				t.Errorf("next burst moved from %v to %v", next.Sub(t0), at.Sub(t0))
			}
			if st := h.e.Status(); st.PendingQueryResponses != 1 {
				t.Errorf("PendingQueryResponses = %d, want 1", st.PendingQueryResponses)
			}
			evs = append(evs, h.drain()...)
			want := []int{4, 4}
			if f.v6 {
				want = []int{4, 4, 1}
			}
			bs := bursts(evs)
			if got := burstSizes(bs); !slices.Equal(got, want) {
				t.Errorf("packets per burst %v, want %v", got, want)
			}
			checkSpread(t, bs, base+time.Second)
			if n := len(records(evs[:4])); n != 4*per {
				t.Errorf("first burst of %d records, want %d", n, 4*per)
			}
			if got, want := records(evs), f.isEx(0, 500); !slices.Equal(got, want) {
				t.Errorf("%d records, want each of the 500 groups once", len(got))
			}
		})
		t.Run(f.name+"/rule2 brought forward", func(t *testing.T) {
			mtu, per := f.paceMTU()
			h := f.new(t, withMTU(mtu), withRand(7))
			h.joinMany(f, 500)
			h.recv(f.query("", 10*time.Second))
			evs := h.step()
			start := evs[0].at
			h.now = h.now.Add(time.Millisecond)
			q2 := h.now.Sub(t0)
			h.recv(f.query("", 100*time.Millisecond))
			next, _ := h.e.NextTimer()
			if next.Sub(t0) > q2+100*time.Millisecond {
				t.Fatalf("next burst at %v, want within the new Max Resp Time (by %v)", next.Sub(t0), q2+100*time.Millisecond)
			}
			rest := h.drain()
			wantWithin(t, rest, q2, q2+100*time.Millisecond)
			want := []int{4}
			if f.v6 {
				want = []int{4, 1}
			}
			if got := burstSizes(bursts(rest)); !slices.Equal(got, want) {
				t.Errorf("packets per burst after the second query %v, want %v", got, want)
			}
			if start > q2 {
				t.Errorf("first burst at %v after the second query at %v", start, q2)
			}
			recs := records(append(evs, rest...))
			if got, want := recs, f.isEx(0, 500); !slices.Equal(got, want) {
				t.Errorf("%d records, want each group once (%d in the first burst)", len(got), 4*per)
			}
		})
	}
}

// storm hands the engine q every millisecond for d, running its timers,
// and then lets every timer run out; it returns what the engine sent.
func (h *harness) storm(q proto.Received, d time.Duration) []event {
	h.t.Helper()
	start := h.now
	var evs []event
	for h.now.Sub(start) < d {
		h.recv(q)
		evs = append(evs, h.runUntil(h.now.Add(time.Millisecond))...)
	}
	return append(evs, h.drain()...)
}

// TestGeneralQueryStorm: a storm of General Queries (one every
// millisecond for 10 s, with the shortest Max Resp Time) draws at most one
// complete response per ResponsePace, and every response reports every
// group: the rate is bounded and no group starves.
func TestGeneralQueryStorm(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			mtu, _ := f.paceMTU()
			h := f.new(t, withMTU(mtu))
			const groups = 500
			h.joinMany(f, groups)
			perResponse := 8
			q := prototest.IGMPv3QueryMsg(wire.IGMPv3Query{MaxRespCode: 1, QRV: 2, QQIC: 125}) // 100 ms
			if f.v6 {
				perResponse = 9
				q = prototest.MLDv2QueryMsg(wire.MLDv2Query{MaxRespCode: 0, QRV: 2, QQIC: 125}) // 0 ms
			}
			const storm = 10 * time.Second
			evs := h.storm(q, storm)
			maxResponses := int(storm/proto.ResponsePace) + 1
			if len(evs) > maxResponses*perResponse {
				t.Errorf("%d packets for a %v storm, want at most %d (%d responses of %d)", len(evs), storm, maxResponses*perResponse, maxResponses, perResponse)
			}
			n := map[string]int{}
			for _, r := range records(evs) {
				n[r]++
			}
			responses := n[f.isEx(0, 1)[0]]
			if responses < maxResponses/2 {
				t.Errorf("%d responses to the storm, want at least %d", responses, maxResponses/2)
			}
			for _, r := range f.isEx(0, groups) {
				if n[r] != responses {
					t.Errorf("%s reported %d times, want %d like every group", r, n[r], responses)
					break
				}
			}
		})
	}
}

// TestSpecificQueryStorm: a storm of Group-Specific Queries for one group
// (IGMPv3/MLDv2) or of General Queries in IGMPv2/MLDv1 mode draws at most
// one response per group per ResponsePace.
func TestSpecificQueryStorm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v6    bool
		force int
	}{{"igmpv3", false, 0}, {"mldv2", true, 0}, {"igmpv2", false, 2}, {"mldv1", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newH(t, tc.v6, withForce(tc.force))
			g := g1
			if tc.v6 {
				g = m1
			}
			h.set(g, st(exc))
			h.drain()
			var q proto.Received
			switch {
			case tc.force == 0 && tc.v6:
				q = prototest.MLDv2Query(ip(g), time.Millisecond)
			case tc.force == 0:
				q = prototest.IGMPv3Query(ip(g), 100*time.Millisecond)
			case tc.v6:
				q = prototest.MLDv1Query(any6, time.Millisecond)
			default:
				q = prototest.IGMPv2Query(any4, 100*time.Millisecond)
			}
			const storm = 10 * time.Second
			evs := h.storm(q, storm)
			if max := int(storm/proto.ResponsePace) + 1; len(evs) > max || len(evs) < max/2 {
				t.Errorf("%d responses for a %v storm, want %d at most (and not much fewer)", len(evs), storm, max)
			}
			for i := 1; i < len(evs); i++ {
				if d := evs[i].at - evs[i-1].at; d < proto.ResponsePace {
					t.Errorf("responses %v apart", d)
					break
				}
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
	h.recv(f.query("", 10*time.Second))
	first := h.step() // groups 0–287
	burst1 := first[0].at
	h.recv(f.query(f.groupName(10), 100*time.Millisecond)) // behind the response
	h.recv(f.query(f.groupName(400), 25*time.Second))      // ahead: the next burst answers it
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

// TestShutdownDuringPacing: Shutdown cancels the rest of a paced response;
// only the final reports (TO_IN {} for every group, twice) follow.
func TestShutdownDuringPacing(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			mtu, _ := f.paceMTU()
			h := f.new(t, withMTU(mtu))
			h.joinMany(f, 500)
			h.recv(f.query("", 10*time.Second))
			if evs := h.step(); len(evs) != proto.ResponseBurst {
				t.Fatalf("first burst of %d packets", len(evs))
			}
			h.now = h.now.Add(time.Millisecond)
			h.e.Shutdown(h.now)
			if st := h.e.Status(); st.PendingQueryResponses != 0 {
				t.Errorf("PendingQueryResponses = %d after Shutdown", st.PendingQueryResponses)
			}
			evs := append(h.takeAt(), h.drain()...)
			for _, e := range evs {
				for _, r := range e.r.Records {
					if !strings.HasPrefix(r.String(), "TO_IN(") {
						t.Errorf("shutdown sent %v", r)
					}
				}
			}
			if got := len(records(evs)); got != 1000 {
				t.Errorf("shutdown sent %d records, want 500 TO_IN {}, twice", got)
			}
			if _, ok := h.e.NextTimer(); ok {
				t.Error("a timer runs after the final reports")
			}
		})
	}
}

// TestResponseMargin: with Config.ResponseMargin the response to a query
// (General or group-specific, in IGMPv3/MLDv2 and in IGMPv2/MLDv1 modes)
// is sent within the Max Resp Time less the margin, and still spread over
// that window; a margin above half the MRT is capped there.
func TestResponseMargin(t *testing.T) {
	for _, f := range fams {
		older := 2
		if f.v6 {
			older = 1
		}
		for _, tc := range []struct {
			name     string
			margin   time.Duration
			mrt      time.Duration
			window   time.Duration
			force    int
			specific bool
		}{
			{"v3 general", 150 * time.Millisecond, time.Second, 850 * time.Millisecond, 0, false},
			{"v3 specific", 150 * time.Millisecond, time.Second, 850 * time.Millisecond, 0, true},
			{"older version", 150 * time.Millisecond, time.Second, 850 * time.Millisecond, older, true},
			{"capped at half", 5 * time.Second, time.Second, 500 * time.Millisecond, 0, false},
			{"none", 0, time.Second, time.Second, 0, false},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				opts := []opt{func(c *proto.Config) { c.ResponseMargin = tc.margin }}
				if tc.force != 0 {
					opts = append(opts, withForce(tc.force))
				}
				h := f.new(t, opts...)
				h.joinMany(f, 1)
				var latest time.Duration
				for range 200 {
					base := h.now.Sub(t0)
					g := ""
					if tc.specific {
						g = f.groupName(0)
					}
					h.recv(f.query(g, tc.mrt))
					evs := h.step()
					if len(evs) == 0 {
						t.Fatal("no response")
					}
					wantWithin(t, evs, base, base+tc.window)
					latest = max(latest, evs[0].at-base)
					h.drain()
					h.now = h.now.Add(tc.mrt) // the next query comes later
				}
				if latest < tc.window*9/10 {
					t.Errorf("latest response after %v: not spread over the %v window", latest, tc.window)
				}
			})
		}
	}
}

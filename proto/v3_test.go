package proto_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/wire"
)

// fam names the addresses of one family for table tests.
type fam struct {
	name    string
	v6      bool
	g, g2   string // reportable groups
	a, b, c string // sources
	prefix  string // report prefix: "igmpv3 224.0.0.22" or "mldv2 ff02::16"
}

var fams = []fam{
	{name: "igmp", g: "239.1.2.3", g2: "239.9.9.9", a: "192.0.2.10", b: "192.0.2.11", c: "192.0.2.12", prefix: "igmpv3 224.0.0.22"},
	{name: "mld", v6: true, g: "ff15::1:2:3", g2: "ff15::9:9:9", a: "2001:db8::a", b: "2001:db8::b", c: "2001:db8::c", prefix: "mldv2 ff02::16"},
}

func (f fam) new(t *testing.T, opts ...opt) *harness { return newH(t, f.v6, opts...) }

// rep formats the expected report carrying recs ("TO_EX(g){a}" with the
// placeholders g, g2, a, b, c replaced).
func (f fam) rep(recs ...string) string {
	r := strings.NewReplacer("(g2)", "("+f.g2+")", "(g)", "("+f.g+")", "a", f.a, "b", f.b, "c", f.c)
	out := make([]string, len(recs))
	for i, x := range recs {
		// replace only inside the braces and the group parentheses
		head, body, _ := strings.Cut(x, "{")
		head = strings.NewReplacer("(g2)", "("+f.g2+")", "(g)", "("+f.g+")").Replace(head)
		body = r.Replace(body)
		out[i] = head + "{" + body
	}
	return f.prefix + " [" + strings.Join(out, " ") + "]"
}

func (f fam) st(m membership.Mode, srcs ...string) membership.State {
	var as []string
	for _, s := range srcs {
		switch s {
		case "a":
			as = append(as, f.a)
		case "b":
			as = append(as, f.b)
		case "c":
			as = append(as, f.c)
		default:
			as = append(as, s)
		}
	}
	return st(m, as...)
}

func (f fam) query(group string, maxResp time.Duration, srcs ...string) proto.Received {
	var g = any4
	if f.v6 {
		g = any6
	}
	if group != "" {
		g = ip(group)
	}
	var as []string
	for _, s := range srcs {
		as = append(as, map[string]string{"a": f.a, "b": f.b, "c": f.c}[s])
	}
	if f.v6 {
		return prototest.MLDv2Query(g, maxResp, ips(as...)...)
	}
	return prototest.IGMPv3Query(g, maxResp, ips(as...)...)
}

// TestStateChangeRecords checks the State-Change records of RFC 9776 §5.1
// Table 1 (RFC 9777 §6.1 Table 1), including the non-existent state as
// INCLUDE {}, and that each report goes out [Robustness Variable] = 2
// times: at once and once more within the Unsolicited Report Interval.
func TestStateChangeRecords(t *testing.T) {
	cases := []struct {
		name     string
		old, new func(f fam) membership.State
		want     []string
	}{
		{"join any-source", func(f fam) membership.State { return nonMem }, func(f fam) membership.State { return f.st(exc) }, []string{"TO_EX(g){}"}},
		{"join include", func(f fam) membership.State { return nonMem }, func(f fam) membership.State { return f.st(inc, "a", "b") }, []string{"ALLOW(g){a,b}"}},
		{"join exclude", func(f fam) membership.State { return nonMem }, func(f fam) membership.State { return f.st(exc, "a") }, []string{"TO_EX(g){a}"}},
		{"leave exclude", func(f fam) membership.State { return f.st(exc) }, func(f fam) membership.State { return nonMem }, []string{"TO_IN(g){}"}},
		{"leave include", func(f fam) membership.State { return f.st(inc, "a", "b") }, func(f fam) membership.State { return nonMem }, []string{"BLOCK(g){a,b}"}},
		{"include change", func(f fam) membership.State { return f.st(inc, "a", "b") }, func(f fam) membership.State { return f.st(inc, "b", "c") }, []string{"ALLOW(g){c}", "BLOCK(g){a}"}},
		{"include add", func(f fam) membership.State { return f.st(inc, "a") }, func(f fam) membership.State { return f.st(inc, "a", "b") }, []string{"ALLOW(g){b}"}},
		{"exclude change", func(f fam) membership.State { return f.st(exc, "a", "b") }, func(f fam) membership.State { return f.st(exc, "b", "c") }, []string{"ALLOW(g){a}", "BLOCK(g){c}"}},
		{"include to exclude", func(f fam) membership.State { return f.st(inc, "a") }, func(f fam) membership.State { return f.st(exc, "b") }, []string{"TO_EX(g){b}"}},
		{"exclude to include", func(f fam) membership.State { return f.st(exc, "a") }, func(f fam) membership.State { return f.st(inc, "b") }, []string{"TO_IN(g){b}"}},
	}
	for _, f := range fams {
		for _, tc := range cases {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				h := f.new(t)
				if old := tc.old(f); old.IsMember() {
					h.set(f.g, old)
					h.drain()
				}
				start := h.now.Sub(t0)
				h.set(f.g, tc.new(f))
				evs := h.drain()
				want := f.rep(tc.want...)
				wantReports(t, evs, want, want)
				if len(evs) == 2 {
					if evs[0].at != start {
						t.Errorf("first report at %v, want at once (%v)", evs[0].at, start)
					}
					wantWithin(t, evs[1:], start, start+time.Second)
				}
				if s := h.e.Status(); s.PendingStateChanges != 0 || s.PendingQueryResponses != 0 {
					t.Errorf("pending after drain: %+v", s)
				}
			})
		}
	}
}

// TestRetransmissionCount: with Robustness 3 a state change is sent 3
// times, each retransmission within (0, 1 s] of the previous one, and a
// group with nothing pending is never reported again.
func TestRetransmissionCount(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t, withRobustness(3), withURI(500*time.Millisecond))
			h.set(f.g, f.st(exc))
			evs := h.drain()
			want := f.rep("TO_EX(g){}")
			wantReports(t, evs, want, want, want)
			for i := 1; i < len(evs); i++ {
				if d := evs[i].at - evs[i-1].at; d <= 0 || d > 500*time.Millisecond {
					t.Errorf("retransmission %d after %v, want in (0, 500ms]", i, d)
				}
			}
			if st := h.e.Status(); st.Counters.ReportsSent != 3 {
				t.Errorf("ReportsSent = %d, want 3", st.Counters.ReportsSent)
			}
		})
	}
}

// TestMergeSourceChanges: a second source-list change before the first
// one's retransmission is sent at once, merged with the pending report; each
// source is reported exactly [Robustness Variable] times (per-source
// retransmission counters, RFC 9776 §5.1).
func TestMergeSourceChanges(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(inc, "a"))
			evs := h.takeAt()
			h.now = h.now.Add(time.Millisecond)
			h.set(f.g, f.st(inc, "a", "b"))
			evs = append(evs, h.drain()...)
			wantReports(t, evs, f.rep("ALLOW(g){a}"), f.rep("ALLOW(g){a,b}"), f.rep("ALLOW(g){b}"))
			if evs[1].at != time.Millisecond {
				t.Errorf("merged report at %v, want at once (1ms)", evs[1].at)
			}
		})
	}
}

// TestMergeAllowBlock: a source allowed and then blocked again before its
// retransmission is reported as BLOCK from then on (ALLOW/BLOCK follow the
// current state, RFC 9777 §6.1 Table 2).
func TestMergeAllowBlock(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(inc, "a"))
			h.drain()
			h.set(f.g, f.st(inc, "a", "b"))
			evs := h.takeAt()
			h.set(f.g, f.st(inc, "a"))
			evs = append(evs, h.drain()...)
			wantReports(t, evs, f.rep("ALLOW(g){b}"), f.rep("BLOCK(g){b}"), f.rep("BLOCK(g){b}"))
		})
	}
}

// TestMergeFilterModeChange: a filter-mode change supersedes the pending
// source-list changes; while the Filter Mode Retransmission Counter is
// positive the reports carry TO_EX/TO_IN with the current sources, and a
// source-list change made meanwhile is reported with ALLOW/BLOCK once the
// counter reaches zero (RFC 9776 §5.1, RFC 9777 §6.1).
func TestMergeFilterModeChange(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(inc, "a"))
			evs := h.takeAt()
			h.set(f.g, f.st(exc))
			evs = append(evs, h.takeAt()...)
			h.set(f.g, f.st(exc, "b"))
			evs = append(evs, h.drain()...)
			wantReports(t, evs,
				f.rep("ALLOW(g){a}"),
				f.rep("TO_EX(g){}"),
				f.rep("TO_EX(g){b}"),
				f.rep("BLOCK(g){b}"),
				f.rep("BLOCK(g){b}"),
			)
		})
	}
}

// TestLeaveDuringJoinRetransmission: leaving while the join is still being
// repeated replaces it with the leave (TO_IN {}), sent twice.
func TestLeaveDuringJoinRetransmission(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(exc))
			h.set(f.g, nonMem)
			evs := h.drain()
			wantReports(t, evs, f.rep("TO_EX(g){}"), f.rep("TO_IN(g){}"), f.rep("TO_IN(g){}"))
			if _, ok := h.e.NextTimer(); ok {
				t.Error("a timer is still running after the leave was repeated")
			}
		})
	}
}

// TestManyGroupsOneChangeReport: one StateChanged with several groups sends
// one packed report, and the retransmissions of all groups share it.
func TestManyGroupsOneChangeReport(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.setMany(map[string]membership.State{f.g: f.st(exc), f.g2: f.st(inc, "a")})
			evs := h.drain()
			want := f.rep("TO_EX(g){}", "ALLOW(g2){a}")
			wantReports(t, evs, want, want)
		})
	}
}

// TestNotReportable: link-local control groups (224.0.0.0/24), ff02::1 and
// scopes 0 and 1 are never reported (RFC 9776 §5, RFC 9777 §6); other
// link-scope IPv6 groups are.
func TestNotReportable(t *testing.T) {
	h := newIGMP(t)
	h.setMany(map[string]membership.State{"224.0.0.1": st(exc), "224.0.0.251": st(exc), "224.0.0.22": st(exc)})
	if evs := h.drain(); len(evs) != 0 {
		t.Errorf("IGMP reported %v", strs(evs))
	}
	h.recv(prototest.IGMPv3Query(any4, time.Second))
	if evs := h.drain(); len(evs) != 0 {
		t.Errorf("IGMP answered a query with %v", strs(evs))
	}
	m := newMLD(t)
	m.setMany(map[string]membership.State{"ff02::1": st(exc), "ff01::5": st(exc), "ff00::5": st(exc), "ff02::fb": st(exc)})
	want := "mldv2 ff02::16 [TO_EX(ff02::fb){}]"
	wantReports(t, m.drain(), want, want)
}

// TestGeneralQueryResponse: a General Query is answered after a random
// delay within Max Resp Time with one Current-State record (IS_IN / IS_EX)
// per group with listening state (RFC 9776 §5.2, RFC 9777 §6.3).
func TestGeneralQueryResponse(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name, func(t *testing.T) {
			h := f.new(t)
			h.setMany(map[string]membership.State{f.g: f.st(exc, "a"), f.g2: f.st(inc, "b", "c")})
			h.drain()
			h.set(f.g2, nonMem) // leaving: BLOCK pending, no listening state
			h.takeAt()
			base := h.now.Sub(t0)
			h.recv(f.query("", 2*time.Second))
			evs := h.drain()
			var resp []event
			for _, e := range evs {
				if strings.Contains(e.r.String(), "IS_") {
					resp = append(resp, e)
				}
			}
			wantReports(t, resp, f.rep("IS_EX(g){a}"))
			wantWithin(t, resp, base, base+2*time.Second)
			if st := h.e.Status(); st.Counters.QueriesReceived != 1 {
				t.Errorf("QueriesReceived = %d", st.Counters.QueriesReceived)
			}
		})
	}
}

// TestSpecificQueryResponses checks Group-Specific and
// Group-and-Source-Specific responses, with the source intersections of RFC
// 9776 §5.2 Table 3 (RFC 9777 §6.3 Table 3).
func TestSpecificQueryResponses(t *testing.T) {
	cases := []struct {
		name  string
		state func(f fam) membership.State
		srcs  []string
		want  []string // records; nil: no response
	}{
		{"group include", func(f fam) membership.State { return f.st(inc, "a", "b") }, nil, []string{"IS_IN(g){a,b}"}},
		{"group exclude", func(f fam) membership.State { return f.st(exc, "a") }, nil, []string{"IS_EX(g){a}"}},
		{"include A*B", func(f fam) membership.State { return f.st(inc, "a", "b") }, []string{"b", "c"}, []string{"IS_IN(g){b}"}},
		{"include empty", func(f fam) membership.State { return f.st(inc, "a") }, []string{"b", "c"}, nil},
		{"exclude B-A", func(f fam) membership.State { return f.st(exc, "a") }, []string{"a", "c"}, []string{"IS_IN(g){c}"}},
		{"exclude empty", func(f fam) membership.State { return f.st(exc, "a", "b") }, []string{"a", "b"}, nil},
		{"any-source", func(f fam) membership.State { return f.st(exc) }, []string{"c", "a"}, []string{"IS_IN(g){a,c}"}},
	}
	for _, f := range fams {
		for _, tc := range cases {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				h := f.new(t)
				h.set(f.g, tc.state(f))
				h.set(f.g2, f.st(exc)) // another group, never in the response
				h.drain()
				base := h.now.Sub(t0)
				h.recv(f.query(f.g, time.Second, tc.srcs...))
				evs := h.drain()
				if tc.want == nil {
					wantReports(t, evs)
					if st := h.e.Status(); st.Counters.QueriesIgnored != 1 {
						t.Errorf("QueriesIgnored = %d, want 1", st.Counters.QueriesIgnored)
					}
					return
				}
				wantReports(t, evs, f.rep(tc.want...))
				wantWithin(t, evs, base, base+time.Second)
			})
		}
	}
}

// TestPendingResponseRules exercises the five rules of RFC 9776 §5.2 (RFC
// 9777 §6.2) for a second query arriving while a response is pending.
func TestPendingResponseRules(t *testing.T) {
	for _, f := range fams {
		t.Run(f.name+"/rule1 earlier general covers", func(t *testing.T) {
			h := f.new(t)
			h.setMany(map[string]membership.State{f.g: f.st(exc), f.g2: f.st(exc)})
			h.drain()
			h.recv(f.query("", 100*time.Millisecond))
			h.recv(f.query(f.g, 30*time.Second))
			// The Group Timer runs too (a paced General Query response
			// cannot tell in advance when it reaches the group); the
			// response carrying the group stops it, so no additional
			// response is sent.
			if st := h.e.Status(); st.PendingQueryResponses != 2 {
				t.Errorf("PendingQueryResponses = %d, want 2 (the interface timer and the group timer)", st.PendingQueryResponses)
			}
			base := h.now.Sub(t0)
			evs := h.drain()
			wantReports(t, evs, f.rep("IS_EX(g){}", "IS_EX(g2){}"))
			wantWithin(t, evs, base, base+100*time.Millisecond)
			if st := h.e.Status(); st.PendingQueryResponses != 0 {
				t.Errorf("PendingQueryResponses = %d after the response, want 0", st.PendingQueryResponses)
			}
		})
		t.Run(f.name+"/rule2 general replaces later general", func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(exc))
			h.drain()
			base := h.now.Sub(t0)
			h.recv(f.query("", 30*time.Second))
			h.recv(f.query("", 100*time.Millisecond))
			evs := h.drain()
			wantReports(t, evs, f.rep("IS_EX(g){}"))
			wantWithin(t, evs, base, base+100*time.Millisecond)
		})
		t.Run(f.name+"/rule4 group query clears sources", func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(exc, "b"))
			h.drain()
			base := h.now.Sub(t0)
			h.recv(f.query(f.g, 100*time.Millisecond, "a"))
			h.recv(f.query(f.g, 30*time.Second))
			evs := h.drain()
			wantReports(t, evs, f.rep("IS_EX(g){b}"))
			wantWithin(t, evs, base, base+100*time.Millisecond) // the earlier of the two
		})
		t.Run(f.name+"/rule4 source query on pending group query", func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(exc, "b"))
			h.drain()
			h.recv(f.query(f.g, 30*time.Second))
			h.recv(f.query(f.g, 100*time.Millisecond, "a"))
			base := h.now.Sub(t0)
			evs := h.drain()
			wantReports(t, evs, f.rep("IS_EX(g){b}"))
			wantWithin(t, evs, base, base+100*time.Millisecond)
		})
		t.Run(f.name+"/rule5 source lists merge", func(t *testing.T) {
			h := f.new(t)
			h.set(f.g, f.st(exc))
			h.drain()
			h.recv(f.query(f.g, 5*time.Second, "c"))
			h.recv(f.query(f.g, 5*time.Second, "a"))
			if st := h.e.Status(); st.PendingQueryResponses != 1 {
				t.Errorf("PendingQueryResponses = %d, want 1", st.PendingQueryResponses)
			}
			wantReports(t, h.drain(), f.rep("IS_IN(g){a,c}"))
		})
		t.Run(f.name+"/group query after general is pending later", func(t *testing.T) {
			h := f.new(t)
			h.setMany(map[string]membership.State{f.g: f.st(exc), f.g2: f.st(exc)})
			h.drain()
			base := h.now.Sub(t0)
			h.recv(f.query("", 30*time.Second))
			h.recv(f.query(f.g, 100*time.Millisecond))
			evs := h.drain()
			wantReports(t, evs, f.rep("IS_EX(g){}"), f.rep("IS_EX(g){}", "IS_EX(g2){}"))
			wantWithin(t, evs[:1], base, base+100*time.Millisecond)
		})
	}
}

// TestSFlagAnswered: the S flag only suppresses router-side processing; a
// host answers the query (RFC 9776 §4.1.5, RFC 9777 §5.1.7).
func TestSFlagAnswered(t *testing.T) {
	h := newIGMP(t)
	h.set("239.1.1.1", st(exc))
	h.drain()
	h.recv(prototest.IGMPv3QueryMsg(wire.IGMPv3Query{MaxRespCode: 10, Group: ip("239.1.1.1"), SuppressRouterSide: true, QRV: 2, QQIC: 125}))
	wantReports(t, h.drain(), "igmpv3 224.0.0.22 [IS_EX(239.1.1.1){}]")
	m := newMLD(t)
	m.set("ff15::1", st(exc))
	m.drain()
	m.recv(prototest.MLDv2QueryMsg(wire.MLDv2Query{MaxRespCode: 1000, Group: ip("ff15::1"), SuppressRouterSide: true}))
	wantReports(t, m.drain(), "mldv2 ff02::16 [IS_EX(ff15::1){}]")
}

// TestLearnQRVAndQQIC: the Robustness Variable and Query Interval are
// adopted from a query's QRV and QQIC, and revert to the configured values
// when a query carries zero (RFC 9776 §4.1.6–4.1.7, RFC 9777 §5.1.8–5.1.9).
func TestLearnQRVAndQQIC(t *testing.T) {
	h := newIGMP(t)
	h.recv(prototest.IGMPv3QueryMsg(wire.IGMPv3Query{MaxRespCode: 50, QRV: 4, QQIC: 0x8f})) // QQIC 0x8f = 31<<3 = 248 s
	s := h.e.Status()
	if s.Robustness != 4 || s.QueryInterval != 248*time.Second || s.QueryResponseInterval != 5*time.Second {
		t.Fatalf("learned robustness %d, interval %v, response interval %v; want 4, 248s, 5s", s.Robustness, s.QueryInterval, s.QueryResponseInterval)
	}
	h.set("239.1.1.1", st(exc))
	want := "igmpv3 224.0.0.22 [TO_EX(239.1.1.1){}]"
	wantReports(t, h.drain(), want, want, want, want)

	h.recv(prototest.IGMPv3QueryMsg(wire.IGMPv3Query{MaxRespCode: 50}))
	if st := h.e.Status(); st.Robustness != 2 || st.QueryInterval != 125*time.Second {
		t.Errorf("after QRV 0 / QQIC 0: robustness %d, interval %v; want the configured 2, 125s", st.Robustness, st.QueryInterval)
	}

	m := newMLD(t)
	m.recv(prototest.MLDv2QueryMsg(wire.MLDv2Query{MaxRespCode: 2000, QRV: 3, QQIC: 60}))
	if st := m.e.Status(); st.Robustness != 3 || st.QueryInterval != time.Minute || st.QueryResponseInterval != 2*time.Second {
		t.Errorf("MLD learned %d, %v, %v; want 3, 1m, 2s", st.Robustness, st.QueryInterval, st.QueryResponseInterval)
	}
}

// TestMTUPacking: reports are packed into packets no larger than the MTU
// and records too large for one packet are split (ALLOW, IS_IN) or
// truncated (TO_EX, IS_EX), RFC 9776 §4.2.16, RFC 9777 §5.2.16.
func TestMTUPacking(t *testing.T) {
	t.Run("igmp 500 groups", func(t *testing.T) {
		h := newIGMP(t)
		m := map[string]membership.State{}
		for i := range 500 {
			m[fmt.Sprintf("239.1.%d.%d", i/256, i%256)] = st(exc)
		}
		h.setMany(m)
		evs := h.takeAt()
		// (1500 - 24 - 8) / 8 = 183 records per packet
		checkRecordCounts(t, evs, 183, 183, 134)
		h.drain()
		h.recv(prototest.IGMPv3Query(any4, time.Second))
		checkRecordCounts(t, h.drain(), 183, 183, 134)
	})
	t.Run("mld 500 groups", func(t *testing.T) {
		h := newMLD(t)
		m := map[string]membership.State{}
		for i := range 500 {
			m[fmt.Sprintf("ff15::%x", i+1)] = st(exc)
		}
		h.setMany(m)
		// (1500 - 48 - 8) / 20 = 72 records per packet
		checkRecordCounts(t, h.takeAt(), 72, 72, 72, 72, 72, 72, 68)
	})
	srcs4 := make([]string, 400)
	srcs6 := make([]string, 400)
	for i := range srcs4 {
		srcs4[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		srcs6[i] = fmt.Sprintf("2001:db8::%x", i+1)
	}
	t.Run("igmp 400 sources split", func(t *testing.T) {
		h := newIGMP(t)
		h.set("239.2.2.2", st(inc, srcs4...))
		evs := h.takeAt()
		// (1500 - 24 - 8 - 8) / 4 = 365 sources per record
		checkSourceCounts(t, evs, wire.AllowNewSources, 365, 35)
		checkSourcesCover(t, evs, 400)
		h.drain()
		h.recv(prototest.IGMPv3Query(ip("239.2.2.2"), time.Second))
		checkSourceCounts(t, h.drain(), wire.ModeIsInclude, 365, 35)
	})
	t.Run("igmp 400 sources exclude truncated", func(t *testing.T) {
		h := newIGMP(t)
		h.set("239.2.2.2", st(exc, srcs4...))
		checkSourceCounts(t, h.takeAt(), wire.ChangeToExclude, 365)
	})
	t.Run("mld 400 sources split", func(t *testing.T) {
		h := newMLD(t)
		h.set("ff15::2", st(inc, srcs6...))
		// (1500 - 48 - 8 - 20) / 16 = 89 sources per record
		evs := h.takeAt()
		checkSourceCounts(t, evs, wire.AllowNewSources, 89, 89, 89, 89, 44)
		checkSourcesCover(t, evs, 400)
	})
	t.Run("small mtu", func(t *testing.T) {
		h := newIGMP(t, withMTU(576))
		h.set("239.2.2.2", st(inc, srcs4[:200]...))
		// (576 - 24 - 8 - 8) / 4 = 134
		checkSourceCounts(t, h.takeAt(), wire.AllowNewSources, 134, 66)
	})
	t.Run("records after a split share the last packet", func(t *testing.T) {
		h := newIGMP(t)
		h.setMany(map[string]membership.State{"239.2.2.2": st(inc, srcs4...), "239.3.3.3": st(exc)})
		evs := h.takeAt()
		wantN := []int{1, 2}
		if len(evs) != 2 {
			t.Fatalf("%d packets, want 2", len(evs))
		}
		for i, e := range evs {
			if len(e.r.Records) != wantN[i] {
				t.Errorf("packet %d has %d records, want %d", i, len(e.r.Records), wantN[i])
			}
		}
	})
}

func checkRecordCounts(t *testing.T, evs []event, want ...int) {
	t.Helper()
	var got []int
	for _, e := range evs {
		got = append(got, len(e.r.Records))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records per packet %v, want %v", got, want)
	}
}

func checkSourceCounts(t *testing.T, evs []event, typ wire.RecordType, want ...int) {
	t.Helper()
	var got []int
	for _, e := range evs {
		for _, r := range e.r.Records {
			if r.Type != typ {
				t.Errorf("record type %v, want %v", r.Type, typ)
			}
			got = append(got, len(r.Sources))
		}
		if len(e.r.Records) != 1 {
			t.Errorf("packet with %d records, want 1", len(e.r.Records))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sources per record %v, want %v", got, want)
	}
}

// checkSourcesCover checks the split records carry n distinct sources.
func checkSourcesCover(t *testing.T, evs []event, n int) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range evs {
		for _, r := range e.r.Records {
			for _, s := range r.Sources {
				if seen[s.String()] {
					t.Errorf("source %v reported twice", s)
				}
				seen[s.String()] = true
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct sources reported, want %d", len(seen), n)
	}
}

package proto_test

import (
	"testing"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
)

const (
	g1 = "239.1.2.3"
	g2 = "239.9.9.9"
	m1 = "ff15::1:2:3"
	m2 = "ff15::9:9:9"
)

func wantVersion(t *testing.T, h *harness, v int) {
	t.Helper()
	if s := h.e.Status(); s.Version != v {
		t.Fatalf("at %v: version %d, want %d", h.now.Sub(t0), s.Version, v)
	}
}

// TestIGMPv1Fallback: an IGMPv1 query switches the interface to IGMPv1
// mode for the Older Version Querier Present Interval (2 * 125 s + 10 s);
// it answers with v1 reports, joins are v1 reports repeated once within the
// [Unsolicited Report Interval] of 10 s, a leave sends nothing, and the
// host returns to IGMPv3 when the timer expires (RFC 9776 §7.2.1).
func TestIGMPv1Fallback(t *testing.T) {
	h := newIGMP(t)
	h.set(g1, st(exc))
	h.drain()
	base := h.now.Sub(t0)
	h.recv(prototest.IGMPv1Query())
	wantVersion(t, h, 1)
	until := h.e.Status().OlderQuerierUntil[1]
	if want := h.now.Add(260 * time.Second); !until.Equal(want) {
		t.Errorf("IGMPv1 querier present until %v, want %v", until.Sub(t0), want.Sub(t0))
	}
	evs := h.at(base + 20*time.Second)
	wantReports(t, evs, "igmpv1 239.1.2.3 239.1.2.3")
	wantWithin(t, evs, base, base+10*time.Second)

	h.set(g2, st(inc, "192.0.2.10")) // INCLUDE with sources is a join in v1 (RFC 9776 §7.2)
	start := h.now.Sub(t0)
	evs = h.at(start + 11*time.Second)
	wantReports(t, evs, "igmpv1 239.9.9.9 239.9.9.9", "igmpv1 239.9.9.9 239.9.9.9")
	if len(evs) == 2 {
		wantWithin(t, evs[1:], start, start+10*time.Second)
	}
	h.set(g2, nonMem)
	if evs := h.takeAt(); len(evs) != 0 {
		t.Errorf("leave in IGMPv1 mode sent %v", strs(evs))
	}
	h.at(base + 259*time.Second)
	wantVersion(t, h, 1)
	h.at(base + 260*time.Second)
	wantVersion(t, h, 3)
	if s := h.e.Status(); s.OlderQuerierUntil != nil {
		t.Errorf("OlderQuerierUntil %v after expiry", s.OlderQuerierUntil)
	}
	h.set(g2, st(exc))
	want := "igmpv3 224.0.0.22 [TO_EX(239.9.9.9){}]"
	wantReports(t, h.drain(), want, want)
}

// TestIGMPv2Fallback: an IGMPv2 General Query switches to IGMPv2 mode;
// a leave then sends a Leave Group to 224.0.0.2 (RFC 2236 §3) and the host
// returns to IGMPv3 after 2 * 125 s + the query's Max Response Time.
func TestIGMPv2Fallback(t *testing.T) {
	h := newIGMP(t)
	h.set(g1, st(exc))
	base := h.now.Sub(t0)
	h.takeAt() // the first TO_EX; its retransmission is cancelled by the mode change
	h.recv(prototest.IGMPv2Query(any4, 5*time.Second))
	wantVersion(t, h, 2)
	evs := h.at(base + 6*time.Second)
	wantReports(t, evs, "igmpv2 239.1.2.3 239.1.2.3")
	wantWithin(t, evs, base, base+5*time.Second)
	h.set(g1, nonMem)
	wantReports(t, h.takeAt(), "igmpv2-leave 224.0.0.2 239.1.2.3")
	if s := h.e.Status(); s.Counters.LeavesSent != 1 {
		t.Errorf("LeavesSent = %d", s.Counters.LeavesSent)
	}
	h.at(base + 255*time.Second - 1)
	wantVersion(t, h, 2)
	h.at(base + 255*time.Second)
	wantVersion(t, h, 3)
}

// TestOlderQuerierOrder: the IGMPv1 timer wins while it runs; when it
// expires with the IGMPv2 timer still running the mode becomes IGMPv2, then
// IGMPv3 (RFC 9776 §7.2.1 Table 11).
func TestOlderQuerierOrder(t *testing.T) {
	h := newIGMP(t)
	h.recv(prototest.IGMPv1Query())
	h.at(100 * time.Second)
	h.recv(prototest.IGMPv2Query(any4, 10*time.Second))
	wantVersion(t, h, 1)
	s := h.e.Status()
	if len(s.OlderQuerierUntil) != 2 || !s.OlderQuerierUntil[2].Equal(t0.Add(360*time.Second)) {
		t.Errorf("OlderQuerierUntil = %v", s.OlderQuerierUntil)
	}
	h.at(260 * time.Second)
	wantVersion(t, h, 2)
	h.at(360 * time.Second)
	wantVersion(t, h, 3)
}

// TestOlderGroupQueryKeepsMode: an older-version Group-Specific Query MUST
// NOT change the compatibility mode (RFC 9776 §7.2.1); in IGMPv3 mode it is
// answered with a Current-State record.
func TestOlderGroupQueryKeepsMode(t *testing.T) {
	h := newIGMP(t)
	h.set(g1, st(exc, "192.0.2.10"))
	h.drain()
	h.recv(prototest.IGMPv2Query(ip(g1), time.Second))
	wantVersion(t, h, 3)
	wantReports(t, h.drain(), "igmpv3 224.0.0.22 [IS_EX(239.1.2.3){192.0.2.10}]")
	m := newMLD(t)
	m.set(m1, st(exc))
	m.drain()
	m.recv(prototest.MLDv1Query(ip(m1), time.Second))
	wantVersion(t, m, 2)
	wantReports(t, m.drain(), "mldv2 ff02::16 [IS_EX(ff15::1:2:3){}]")
}

// TestMLDv1Fallback: an MLDv1 General Query switches to MLDv1 mode (RFC
// 9777 §8.2.1): reports go to the group, a leave sends Done to ff02::2, and
// MLDv2 resumes after 2 * 125 s + the Maximum Response Delay.
func TestMLDv1Fallback(t *testing.T) {
	h := newMLD(t)
	h.set(m1, st(exc))
	h.drain()
	base := h.now.Sub(t0)
	h.recv(prototest.MLDv1Query(any6, 10*time.Second))
	wantVersion(t, h, 1)
	if until := h.e.Status().OlderQuerierUntil[1]; !until.Equal(h.now.Add(260 * time.Second)) {
		t.Errorf("MLDv1 querier present until %v", until.Sub(t0))
	}
	evs := h.at(base + 10*time.Second)
	wantReports(t, evs, "mldv1 ff15::1:2:3 ff15::1:2:3")
	wantWithin(t, evs, base, base+10*time.Second)
	h.set(m2, st(exc))
	evs = h.at(base + 21*time.Second)
	wantReports(t, evs, "mldv1 ff15::9:9:9 ff15::9:9:9", "mldv1 ff15::9:9:9 ff15::9:9:9")
	h.set(m1, nonMem)
	wantReports(t, h.takeAt(), "mldv1-done ff02::2 ff15::1:2:3")
	h.at(base + 260*time.Second)
	wantVersion(t, h, 2)
}

// TestModeChangeCancelsPending: a mode change cancels pending state-change
// retransmissions and query responses (RFC 9776 §7.2.1).
func TestModeChangeCancelsPending(t *testing.T) {
	h := newIGMP(t)
	h.set(g1, st(exc))
	h.recv(prototest.IGMPv3Query(ip(g1), 20*time.Second))
	if s := h.e.Status(); s.PendingStateChanges != 1 || s.PendingQueryResponses != 1 {
		t.Fatalf("before: %+v", s)
	}
	h.takeAt()
	h.recv(prototest.IGMPv2Query(any4, 10*time.Second))
	if s := h.e.Status(); s.PendingStateChanges != 0 || s.PendingQueryResponses != 1 {
		t.Errorf("after switching: pending changes %d, responses %d; want 0, 1 (the v2 report)", s.PendingStateChanges, s.PendingQueryResponses)
	}
	wantReports(t, h.at(30*time.Second), "igmpv2 239.1.2.3 239.1.2.3")
}

// TestForcedVersion: ForceVersion pins the protocol: older queries do not
// move it, and newer queries are answered in the forced version.
func TestForcedVersion(t *testing.T) {
	t.Run("igmp 1", func(t *testing.T) {
		h := newIGMP(t, withForce(1))
		wantVersion(t, h, 1)
		if s := h.e.Status(); s.Forced != 1 {
			t.Errorf("Forced = %d", s.Forced)
		}
		h.set(g1, st(exc))
		wantReports(t, h.drain(), "igmpv1 239.1.2.3 239.1.2.3", "igmpv1 239.1.2.3 239.1.2.3")
		h.recv(prototest.IGMPv3Query(ip(g1), time.Second, ip("192.0.2.10")))
		wantReports(t, h.drain(), "igmpv1 239.1.2.3 239.1.2.3")
		h.set(g1, nonMem)
		wantReports(t, h.drain())
	})
	t.Run("igmp 2", func(t *testing.T) {
		h := newIGMP(t, withForce(2))
		h.set(g1, st(inc, "192.0.2.10"))
		wantReports(t, h.drain(), "igmpv2 239.1.2.3 239.1.2.3", "igmpv2 239.1.2.3 239.1.2.3")
		h.recv(prototest.IGMPv3Query(any4, time.Second))
		wantReports(t, h.drain(), "igmpv2 239.1.2.3 239.1.2.3")
		h.recv(prototest.IGMPv1Query())
		wantVersion(t, h, 2)
		h.drain()
		h.set(g1, nonMem)
		wantReports(t, h.drain(), "igmpv2-leave 224.0.0.2 239.1.2.3", "igmpv2-leave 224.0.0.2 239.1.2.3")
	})
	t.Run("igmp 3", func(t *testing.T) {
		h := newIGMP(t, withForce(3))
		h.set(g1, st(exc))
		h.drain()
		h.recv(prototest.IGMPv1Query())
		wantVersion(t, h, 3)
		if s := h.e.Status(); s.OlderQuerierUntil != nil || s.Forced != 3 {
			t.Errorf("status %+v", s)
		}
		wantReports(t, h.drain(), "igmpv3 224.0.0.22 [IS_EX(239.1.2.3){}]")
	})
	t.Run("mld 1", func(t *testing.T) {
		h := newMLD(t, withForce(1))
		h.set(m1, st(exc))
		wantReports(t, h.drain(), "mldv1 ff15::1:2:3 ff15::1:2:3", "mldv1 ff15::1:2:3 ff15::1:2:3")
		h.recv(prototest.MLDv2Query(ip(m1), time.Second))
		wantReports(t, h.drain(), "mldv1 ff15::1:2:3 ff15::1:2:3")
		h.set(m1, nonMem)
		wantReports(t, h.drain(), "mldv1-done ff02::2 ff15::1:2:3", "mldv1-done ff02::2 ff15::1:2:3")
	})
	t.Run("mld 2", func(t *testing.T) {
		h := newMLD(t, withForce(2))
		h.recv(prototest.MLDv1Query(any6, time.Second))
		wantVersion(t, h, 2)
	})
	t.Run("invalid", func(t *testing.T) {
		wantVersion(t, newMLD(t, withForce(3)), 2)
		wantVersion(t, newIGMP(t, withForce(7)), 3)
		if s := newIGMP(t, withForce(7)).e.Status(); s.Forced != 0 {
			t.Errorf("Forced = %d for an invalid ForceVersion", s.Forced)
		}
	})
}

// TestSuppressionAndLastReporter: in IGMPv2 / MLDv1 mode another host's
// report cancels our pending report (RFC 2236 §3, RFC 2710 §4); a host that
// did not send the last report leaves without a Leave / Done.
func TestSuppressionAndLastReporter(t *testing.T) {
	t.Run("igmp join repeat suppressed, no leave", func(t *testing.T) {
		h := newIGMP(t, withForce(2))
		h.set(g1, st(exc))
		wantReports(t, h.takeAt(), "igmpv2 239.1.2.3 239.1.2.3")
		h.recv(prototest.IGMPReport(2, ip(g1)))
		wantReports(t, h.drain()) // the repetition is suppressed
		h.set(g1, nonMem)
		wantReports(t, h.takeAt())
		if s := h.e.Status(); s.Counters.ReportsReceived != 1 || s.Counters.LeavesSent != 0 {
			t.Errorf("counters %+v", s.Counters)
		}
	})
	t.Run("igmp query response suppressed by a v1 report", func(t *testing.T) {
		h := newIGMP(t, withForce(2))
		h.set(g1, st(exc))
		h.set(g2, st(exc))
		h.drain()
		h.recv(prototest.IGMPv2Query(any4, 10*time.Second))
		h.recv(prototest.IGMPReport(1, ip(g1)))
		wantReports(t, h.drain(), "igmpv2 239.9.9.9 239.9.9.9")
		h.set(g1, nonMem)
		h.set(g2, nonMem)
		wantReports(t, h.takeAt(), "igmpv2-leave 224.0.0.2 239.9.9.9")
	})
	t.Run("mld", func(t *testing.T) {
		h := newMLD(t, withForce(1))
		h.set(m1, st(exc))
		h.drain()
		h.recv(prototest.MLDv1Query(ip(m1), 10*time.Second))
		h.recv(prototest.MLDReport(ip(m1)))
		wantReports(t, h.drain())
		h.set(m1, nonMem)
		wantReports(t, h.takeAt())
	})
	t.Run("not in v3 mode", func(t *testing.T) {
		h := newIGMP(t)
		h.set(g1, st(exc))
		h.drain()
		h.recv(prototest.IGMPv3Query(ip(g1), 10*time.Second))
		h.recv(prototest.IGMPReport(2, ip(g1)))
		wantReports(t, h.drain(), "igmpv3 224.0.0.22 [IS_EX(239.1.2.3){}]")
	})
	t.Run("own looped report ignored", func(t *testing.T) {
		h := newIGMP(t, withForce(2))
		h.set(g1, st(exc))
		h.takeAt()
		own := prototest.IGMPReport(2, ip(g1))
		own.Src = src4
		h.recv(own)
		wantReports(t, h.drain(), "igmpv2 239.1.2.3 239.1.2.3")
	})
}

// TestV2QueryTimerReset: a running report timer is reset only when the
// query's Max Response Time is below its remaining time (RFC 2236 §3).
func TestV2QueryTimerReset(t *testing.T) {
	h := newIGMP(t, withForce(2))
	h.set(g1, st(exc))
	h.drain()
	base := h.now.Sub(t0)
	h.recv(prototest.IGMPv2Query(any4, 20*time.Second))
	first, _ := h.e.NextTimer()
	h.recv(prototest.IGMPv2Query(any4, 25*time.Second)) // longer: kept
	if next, _ := h.e.NextTimer(); !next.Equal(first) {
		t.Errorf("timer moved from %v to %v by a longer query", first.Sub(t0), next.Sub(t0))
	}
	h.recv(prototest.IGMPv2Query(ip(g1), 100*time.Millisecond)) // shorter: reset
	evs := h.drain()
	wantReports(t, evs, "igmpv2 239.1.2.3 239.1.2.3")
	wantWithin(t, evs, base, base+100*time.Millisecond)
}

// TestV12JoinRepeatWindow: in IGMPv2 / MLDv1 mode a join is reported at
// once and repeated [Robustness Variable] - 1 times, each repetition within
// (0, [Unsolicited Report Interval]] of the previous report.
func TestV12JoinRepeatWindow(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		h := newH(t, v6, withForce(map[bool]int{false: 2, true: 1}[v6]), withRobustness(3), withV1URI(3*time.Second))
		g := map[bool]string{false: g1, true: m1}[v6]
		h.set(g, st(exc))
		evs := h.drain()
		want := map[bool]string{false: "igmpv2 239.1.2.3 239.1.2.3", true: "mldv1 ff15::1:2:3 ff15::1:2:3"}[v6]
		wantReports(t, evs, want, want, want)
		if len(evs) == 3 && evs[0].at != 0 {
			t.Errorf("first report at %v, want at once", evs[0].at)
		}
		for i := 1; i < len(evs); i++ {
			if d := evs[i].at - evs[i-1].at; d <= 0 || d > 3*time.Second {
				t.Errorf("repetition %d after %v, want in (0, 3s]", i, d)
			}
		}
	}
}

// TestV12LeaveRepeated: in IGMPv2 / MLDv1 mode the last reporter's Leave
// (Done) goes out at once and is repeated [Robustness Variable] - 1 times,
// each within the (IGMPv3) Unsolicited Report Interval of the previous one,
// like an IGMPv3 leave. Another host's report for the group (another member
// answered) stops the repetitions, and so does a new join.
func TestV12LeaveRepeated(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		force := map[bool]int{false: 2, true: 1}[v6]
		g := map[bool]string{false: g1, true: m1}[v6]
		leave := map[bool]string{false: "igmpv2-leave 224.0.0.2 239.1.2.3", true: "mldv1-done ff02::2 ff15::1:2:3"}[v6]
		report := map[bool]string{false: "igmpv2 239.1.2.3 239.1.2.3", true: "mldv1 ff15::1:2:3 ff15::1:2:3"}[v6]
		other := map[bool]proto.Received{false: prototest.IGMPReport(2, ip(g1)), true: prototest.MLDReport(ip(m1))}[v6]

		h := newH(t, v6, withForce(force), withRobustness(3), withURI(200*time.Millisecond))
		h.set(g, st(exc))
		h.drain()
		start := h.now.Sub(t0)
		h.set(g, nonMem)
		evs := h.drain()
		wantReports(t, evs, leave, leave, leave)
		if len(evs) == 3 && evs[0].at != start {
			t.Errorf("v6 %v: first Leave at %v, want at once", v6, evs[0].at)
		}
		for i := 1; i < len(evs); i++ {
			if d := evs[i].at - evs[i-1].at; d <= 0 || d > 200*time.Millisecond {
				t.Errorf("v6 %v: repetition %d after %v, want in (0, 200ms]", v6, i, d)
			}
		}
		if s := h.e.Status(); s.Counters.LeavesSent != 3 || len(s.Groups) != 0 {
			t.Errorf("v6 %v: after the leave: %+v", v6, s)
		}

		// another member's report stops the repetitions
		h.set(g, st(exc))
		h.drain()
		h.set(g, nonMem)
		wantReports(t, h.takeAt(), leave)
		if s := h.e.Status(); s.PendingStateChanges != 1 || len(s.Groups) != 1 || s.Groups[0].Retransmissions != 2 {
			t.Errorf("v6 %v: status while the Leave is repeated: %+v", v6, s)
		}
		h.recv(other)
		if evs := h.drain(); len(evs) != 0 {
			t.Errorf("v6 %v: after another host's report: %v", v6, strs(evs))
		}
		if s := h.e.Status(); s.PendingStateChanges != 0 || len(s.Groups) != 0 {
			t.Errorf("v6 %v: status after another host's report: %+v", v6, s)
		}

		// a join replaces them
		h.set(g, st(exc))
		h.drain()
		h.set(g, nonMem)
		h.takeAt()
		h.set(g, st(exc))
		wantReports(t, h.drain(), report, report, report)
	}
}

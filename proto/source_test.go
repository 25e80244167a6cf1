package proto_test

import (
	"testing"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
)

// TestSourceAddress: reports are sent from the configured source, from
// 0.0.0.0 / :: when there is none, and from the address given by SetSource
// afterwards (RFC 9776 §4.2.13, RFC 9777 §5.2.14).
func TestSourceAddress(t *testing.T) {
	h := newIGMP(t, withSource(netipZero))
	h.set(g1, st(exc))
	h.takeAt() // the harness checks the source is 0.0.0.0
	h.e.SetSource(ip("198.51.100.7"))
	h.src = ip("198.51.100.7")
	h.drain()

	h = newIGMP(t, withSource(ip("fe80::1"))) // wrong family: unspecified
	h.src = any4
	h.set(g1, st(exc))
	h.drain()
}

var netipZero = proto.Config{}.Source

// TestMLDReannounce: when a link-local address appears after groups were
// joined from ::, every joined group is reported again (RFC 9777 §5.2.14).
func TestMLDReannounce(t *testing.T) {
	for _, force := range []int{0, 1} {
		h := newMLD(t, withSource(netipZero), withForce(force))
		h.src = any6
		h.set(m1, st(exc))
		h.set(m2, st(inc, "2001:db8::a"))
		h.drain()
		h.e.SetSource(ip("fe80::2%eth0"))
		h.src = src6
		next, ok := h.e.NextTimer()
		if !ok || next.After(h.now) {
			t.Fatalf("force %d: NextTimer %v %v, want due now", force, next.Sub(t0), ok)
		}
		evs := h.drain()
		if force == 0 {
			want := "mldv2 ff02::16 [TO_EX(ff15::1:2:3){} ALLOW(ff15::9:9:9){2001:db8::a}]"
			wantReports(t, evs, want, want)
		} else {
			wantReports(t, evs,
				"mldv1 ff15::1:2:3 ff15::1:2:3", "mldv1 ff15::9:9:9 ff15::9:9:9",
				"mldv1 ff15::1:2:3 ff15::1:2:3", "mldv1 ff15::9:9:9 ff15::9:9:9")
		}
		// A later address change is no reason to report again.
		h.e.SetSource(ip("fe80::3"))
		h.src = ip("fe80::3")
		if evs := h.drain(); len(evs) != 0 {
			t.Errorf("force %d: reported again on an address change: %v", force, strs(evs))
		}
	}
}

// TestStatus checks every Status field of fresh and configured engines.
func TestStatus(t *testing.T) {
	s := newIGMP(t).e.Status()
	want := proto.Status{Family: "igmp", Version: 3, Robustness: 2, QueryInterval: 125 * time.Second, QueryResponseInterval: 10 * time.Second}
	if s.Family != want.Family || s.Version != want.Version || s.Forced != 0 || s.Robustness != want.Robustness ||
		s.QueryInterval != want.QueryInterval || s.QueryResponseInterval != want.QueryResponseInterval ||
		s.OlderQuerierUntil != nil || s.PendingQueryResponses != 0 || s.PendingStateChanges != 0 || s.Counters != (proto.Counters{}) {
		t.Errorf("fresh IGMP status %+v", s)
	}
	m := newMLD(t, withRobustness(3), withInterval(time.Minute))
	m.set(m1, st(exc))
	m.recv(prototest.MLDv2Query(ip(m1), 5*time.Second))
	s = m.e.Status()
	if s.Family != "mld" || s.Version != 2 || s.Robustness != 2 || s.QueryInterval != 125*time.Second ||
		s.PendingStateChanges != 1 || s.PendingQueryResponses != 1 || s.Counters.ReportsSent != 1 || s.Counters.QueriesReceived != 1 {
		t.Errorf("MLD status after join and query %+v", s)
	}
	m.recv(prototest.MLDv1Query(any6, 3*time.Second))
	s = m.e.Status()
	if s.Version != 1 || s.QueryResponseInterval != 3*time.Second || !s.OlderQuerierUntil[1].Equal(m.now.Add(253*time.Second)) {
		t.Errorf("MLD status after an MLDv1 query %+v", s)
	}
}

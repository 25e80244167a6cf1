package proto_test

import (
	"testing"
	"time"

	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/proto/prototest"
	"github.com/mcstack/mcstack/wire"
)

// FuzzEngineReceive feeds arbitrary messages to IGMP and MLD engines joined
// to two groups: no panic, at most one pending response per group plus the
// interface timer even when the message is repeated, and whatever the
// engine emits is a valid report within the MTU (the harness checks).
// Then, whatever the messages did, a re-announcement and Shutdown end: the
// final reports are sent within (Robustness - 1) × the Unsolicited Report
// Interval (Robustness at most 7) and no timer is left.
func FuzzEngineReceive(f *testing.F) {
	for _, r := range []proto.Received{
		prototest.IGMPv3Query(any4, time.Second),
		prototest.IGMPv3Query(ip(g1), time.Second, ip("192.0.2.10"), ip("192.0.2.11")),
		prototest.IGMPv2Query(ip(g1), time.Second),
		prototest.IGMPv1Query(),
		prototest.IGMPReport(2, ip(g1)),
		prototest.MLDv2Query(any6, time.Second),
		prototest.MLDv2Query(ip(m1), time.Second, ip("2001:db8::a")),
		prototest.MLDv1Query(any6, time.Second),
		prototest.MLDReport(ip(m1)),
	} {
		f.Add(r.Payload, r.Src.Is6(), true, uint16(0), uint8(1), uint8(0))
	}
	f.Fuzz(func(t *testing.T, payload []byte, v6, ra bool, raVal uint16, hops, dstSel uint8) {
		h := newH(t, v6)
		grp, other := g1, g2
		src := prototest.IGMPQuerier
		if v6 {
			grp, other, src = m1, m2, prototest.MLDQuerier
		}
		h.set(grp, st(exc))
		h.set(other, st(inc, map[bool]string{false: "192.0.2.10", true: "2001:db8::a"}[v6]))
		h.drain()
		dsts := []string{grp, other, "224.0.0.1", "ff02::1"}
		dst := ip(dsts[int(dstSel)%len(dsts)])
		msg := proto.Received{Src: src, Dst: dst, HopLimit: hops, RouterAlert: ra, RouterAlertValue: raVal, Payload: payload}
		if v6 && len(payload) >= 4 {
			// give the MLD engine messages with a valid checksum, as the
			// stack does, half of the time
			if dstSel&0x80 != 0 {
				b := append([]byte(nil), payload...)
				b[2], b[3] = 0, 0
				c := wire.ICMPv6Checksum(src, dst, b)
				b[2], b[3] = byte(c>>8), byte(c)
				msg.Payload = b
			}
		}
		for range 20 {
			h.recv(msg)
			if s := h.e.Status(); s.PendingQueryResponses > 3 {
				t.Fatalf("%d pending responses", s.PendingQueryResponses)
			}
		}
		h.at(h.now.Sub(t0) + 2*time.Hour)
		if _, ok := h.e.NextTimer(); ok {
			s := h.e.Status()
			if s.PendingQueryResponses > 0 || s.PendingStateChanges > 0 {
				t.Fatalf("timers still pending after 2 h: %+v", s)
			}
		}
		h.recv(msg)
		h.e.Reannounce(h.now)
		h.recv(msg)
		h.e.Shutdown(h.now)
		bound := h.now.Add(6 * time.Second) // (7 - 1) × 1 s
		h.runUntil(bound)
		if next, ok := h.e.NextTimer(); ok {
			t.Fatalf("a timer at %v after Shutdown's bound %v: %+v", next.Sub(t0), bound.Sub(t0), h.e.Status())
		}
	})
}

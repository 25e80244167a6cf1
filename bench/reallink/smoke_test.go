//go:build linux

package reallink

import (
	"testing"
	"time"
)

// TestSmoke runs every receiver kind briefly with 4 sockets against trafgen
// and checks that each one runs, that every one of its sockets delivers
// datagrams, and that it sees one frame per frame offered: GRO on the
// receiving veth (-reallink.napi) must not merge the datagrams into
// super-frames, which would show as fewer frames seen than offered, as
// frames mcstack rejects, or as more kernel datagrams than packets. It
// asserts nothing about speed (that is BenchmarkRealLink). Root and
// trafgen only; it skips otherwise.
func TestSmoke(t *testing.T) {
	e := newEnv(t)
	if e.napi != nil {
		t.Logf("threaded NAPI: thread(s) %v of %s (pinned: %v, CPU %s)", e.napi, e.vr, e.napiPinned, cpuList(e.napiCPUs))
	}
	for _, k := range allKinds {
		n := 4
		if k == kindFloor {
			n = 1
		}
		s, err := e.measure(k, n, 64, 200*time.Millisecond, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		t.Logf("%-7s %2d sockets: offered %.0f/s, seen %.0f/s, delivered %.0f/s (least per socket %.0f/s), drops %.0f/s + %.0f/s, link drops %.0f/s, invalid %.0f/s, %.0f ns CPU per datagram, NAPI thread %.2f cores, trafgen %.2f cores",
			k, n, s.offered, s.seen, s.delivered, s.minSocket, s.drops, s.qdrops, s.linkDrops, s.invalid, s.cpuPerDg, s.napi, s.sender)
		switch {
		case s.offered == 0:
			t.Errorf("%s: trafgen offered nothing (receiving veth rx_packets did not move)", k)
		case s.seen == 0:
			t.Errorf("%s: the receiver saw no frames of %.0f/s offered", k, s.offered)
		case s.minSocket <= 0:
			t.Errorf("%s: a socket delivered nothing (summed %.0f/s)", k, s.delivered)
		}
		// Frames seen (plus, for AF_PACKET, those its ring or queue
		// dropped; the kernel's drops are per socket, after IP) against
		// frames offered, with room for the frames in flight at the two
		// snapshots. A merge by GRO would lower the ratio many times over.
		got := s.seen
		if k != kindKernel {
			got += s.drops
		}
		if s.offered > 0 && (got < 0.9*s.offered || s.seen > 1.1*s.offered) {
			t.Errorf("%s: %.0f frames/s seen (+ %.0f/s dropped) of %.0f/s offered: not one frame per frame offered", k, s.seen, s.drops, s.offered)
		}
		if s.invalid > 0 {
			t.Errorf("%s: mcstack dropped %.0f frames/s as unusable", k, s.invalid)
		}
		if k == kindKernel && s.delivered > 1.1*float64(n)*s.seen {
			t.Errorf("kernel: %.0f datagrams/s delivered to %d sockets from %.0f multicast packets/s (InMcastPkts): packets carry several datagrams", s.delivered, n, s.seen)
		}
		if e.napi != nil && s.napi <= 0 {
			t.Errorf("%s: the NAPI thread used no CPU", k)
		}
	}
}

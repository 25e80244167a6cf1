//go:build linux

package reallink

import (
	"testing"
	"time"
)

// TestSmoke runs every receiver kind briefly with 4 sockets against trafgen
// and checks that each one runs and that every one of its sockets delivers
// datagrams. It asserts nothing about speed (that is BenchmarkRealLink).
// Root and trafgen only; it skips otherwise.
func TestSmoke(t *testing.T) {
	e := newEnv(t)
	for _, k := range kinds {
		n := 4
		if k == kindFloor {
			n = 1
		}
		s, err := e.measure(k, n, 64, 200*time.Millisecond, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		t.Logf("%-7s %2d sockets: offered %.0f/s, seen %.0f/s, delivered %.0f/s (least per socket %.0f/s), drops %.0f/s + %.0f/s, %.0f ns CPU per datagram",
			k, n, s.offered, s.seen, s.delivered, s.minSocket, s.drops, s.qdrops, s.cpuPerDg)
		switch {
		case s.offered == 0:
			t.Errorf("%s: trafgen offered nothing (receiving veth rx_packets did not move)", k)
		case s.seen == 0:
			t.Errorf("%s: the receiver saw no frames of %.0f/s offered", k, s.offered)
		case s.minSocket <= 0:
			t.Errorf("%s: a socket delivered nothing (summed %.0f/s)", k, s.delivered)
		}
	}
}

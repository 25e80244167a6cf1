package stack

import (
	"net/netip"
	"testing"
	"time"
)

// The control plane's allocations feed the garbage collector while
// traffic flows (the GC's assists and pauses land on the receive path):
// these benchmarks report allocations per join+leave and per socket
// open+close (-benchmem), with the workers out of the picture (a long
// coalescing delay), and the same with the workers running.

func BenchmarkJoinLeave(b *testing.B) {
	for _, name := range []string{"ops-only", "with-workers"} {
		b.Run(name, func(b *testing.B) {
			cfg := Config{CoalesceDelay: time.Hour}
			if name == "with-workers" {
				cfg.CoalesceDelay = 0
			}
			s, ifc, _ := newTestStack(b, cfg)
			c := mustListen(b, s, "udp4", "0.0.0.0:5000")
			// Some groups already joined, as on a busy host.
			for i := range 100 {
				if err := c.JoinGroup(ifc, netip.AddrFrom4([4]byte{239, 5, 0, byte(i)})); err != nil {
					b.Fatal(err)
				}
			}
			g := netip.MustParseAddr("239.6.6.6")
			b.ReportAllocs()
			for b.Loop() {
				if err := c.JoinGroup(ifc, g); err != nil {
					b.Fatal(err)
				}
				if err := c.LeaveGroup(ifc, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSourceJoinLeave(b *testing.B) {
	s, ifc, _ := newTestStack(b, Config{CoalesceDelay: time.Hour})
	c := mustListen(b, s, "udp4", "0.0.0.0:5000")
	g := netip.MustParseAddr("232.6.6.6")
	if err := c.JoinSourceSpecificGroup(ifc, g, es1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.JoinSourceSpecificGroup(ifc, g, es2); err != nil {
			b.Fatal(err)
		}
		if err := c.LeaveSourceSpecificGroup(ifc, g, es2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListenClose(b *testing.B) {
	s, ifc, _ := newTestStack(b, Config{CoalesceDelay: time.Hour})
	g := netip.MustParseAddr("239.6.6.6")
	b.ReportAllocs()
	for b.Loop() {
		c := mustListen(b, s, "udp4", "0.0.0.0:5000")
		if err := c.JoinGroup(ifc, g); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

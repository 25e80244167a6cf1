package scale

import (
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/mcstack/mcstack/stack"
)

var (
	flagGroups  = flag.Int("scale.groups", 10000, "groups joined in BenchmarkMemberships")
	flagSources = flag.Int("scale.sources", 100, "sources per group in BenchmarkMemberships")
	flagPerSock = flag.Int("scale.groups-per-socket", 1000, "groups per socket in BenchmarkMemberships")
)

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemberships joins G groups x S sources (source-specific joins,
// one (S,G) per call) on one interface through the stack API, spread over
// sockets of groups-per-socket groups each, then leaves them all one by
// one. One fixed workload per run (use -benchtime=1x); reports join and
// leave throughput and heap bytes per (S,G) membership.
func BenchmarkMemberships(b *testing.B) {
	G, S, per := *flagGroups, *flagSources, *flagPerSock
	ep := newNullEndpoint()
	s := stack.New(stack.Config{})
	defer s.Close()
	ifc, err := s.AddInterface(ep, stack.InterfaceConfig{Addrs: []netip.Prefix{hostAddr}})
	if err != nil {
		b.Fatal(err)
	}
	srcs := sources(S)
	groups := make([]netip.Addr, G)
	for i := range groups {
		groups[i] = netip.AddrFrom4([4]byte{232, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	h0 := heap()
	var conns []*stack.Conn
	t0 := time.Now()
	for i, g := range groups {
		if i%per == 0 {
			c, err := s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(20000+i/per)))
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		c := conns[len(conns)-1]
		for _, src := range srcs {
			if err := c.JoinSourceSpecificGroup(ifc, g, src); err != nil {
				b.Fatalf("join (%v, %v): %v", src, g, err)
			}
		}
	}
	joinDur := time.Since(t0)
	h1 := heap()
	n := float64(G * S)
	t1 := time.Now()
	for i, g := range groups {
		c := conns[i/per]
		for _, src := range srcs {
			if err := c.LeaveSourceSpecificGroup(ifc, g, src); err != nil {
				b.Fatalf("leave (%v, %v): %v", src, g, err)
			}
		}
	}
	leaveDur := time.Since(t1)
	for _, c := range conns {
		c.Close()
	}
	b.ReportMetric(n/joinDur.Seconds(), "joins/s")
	b.ReportMetric(n/leaveDur.Seconds(), "leaves/s")
	b.ReportMetric(float64(int64(h1)-int64(h0))/n, "B/membership")
	b.ReportMetric(float64(int64(h1)-int64(h0))/float64(G), "B/group")
	b.ReportMetric(joinDur.Seconds(), "join-total-s")
}

// BenchmarkFilterReceive hands the interface frames from a source in the
// socket's EXCLUDE list (dropped by the filter) with 1, 100 and 1,000
// excluded sources: the per-packet receive cost including the filter
// check. ratio-vs-1 as in BenchmarkStateAccepts.
func BenchmarkFilterReceive(b *testing.B) {
	var base float64
	for _, n := range excludeSizes {
		b.Run(fmt.Sprintf("exclude=%d", n), func(b *testing.B) {
			ep := newNullEndpoint()
			s := stack.New(stack.Config{})
			defer s.Close()
			ifc, err := s.AddInterface(ep, stack.InterfaceConfig{Addrs: []netip.Prefix{hostAddr}})
			if err != nil {
				b.Fatal(err)
			}
			g := netip.MustParseAddr("239.9.9.9")
			c, err := s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 5000))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.JoinGroup(ifc, g); err != nil {
				b.Fatal(err)
			}
			srcs := sources(n)
			for _, src := range srcs {
				if err := c.BlockSource(ifc, g, src); err != nil {
					b.Fatalf("block %v: %v", src, err)
				}
			}
			frame := udpFrame(srcs[n-1], g, 5000)
			batch := [][]byte{frame}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ep.handler.HandleFrames(batch, nil)
			}
			// Stop before the deferred closes, which drain the interface's
			// workers and must not count as receive time.
			b.StopTimer()
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if n == 1 {
				base = ns
			} else if base > 0 {
				b.ReportMetric(ns/base, "ratio-vs-1")
			}
		})
	}
}

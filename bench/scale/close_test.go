package scale

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcstack/mcstack/stack"
)

// closeStack is a stack with one instant interface and the real engines.
func closeStack(b *testing.B) (*stack.Stack, *stack.Interface) {
	b.Helper()
	s := stack.New(stack.Config{})
	ifc, err := s.AddInterface(newNullEndpoint(), stack.InterfaceConfig{Addrs: []netip.Prefix{hostAddr}})
	if err != nil {
		b.Fatal(err)
	}
	return s, ifc
}

// joined opens a socket on port joined to groups groups any-source.
func joined(b *testing.B, s *stack.Stack, ifc *stack.Interface, port uint16, groups int) *stack.Conn {
	b.Helper()
	c, err := s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port))
	if err != nil {
		b.Fatal(err)
	}
	for i := range groups {
		if err := c.JoinGroup(ifc, netip.AddrFrom4([4]byte{239, 20, byte(i >> 8), byte(i)})); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkCloseGroups measures Conn.Close of a socket joined to G groups
// (G = 64 … 4,096): it must grow linearly (ns/group flat).
func BenchmarkCloseGroups(b *testing.B) {
	for _, g := range []int{64, 256, 1024, 4096} {
		b.Run(fmt.Sprintf("groups=%d", g), func(b *testing.B) {
			s, ifc := closeStack(b)
			defer s.Close()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				c := joined(b, s, ifc, 5000, g)
				t0 := time.Now()
				c.Close()
				total += time.Since(t0)
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/close")
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*g), "ns/group")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkJoinDuringClose measures the latency of a join+leave on another
// socket while a socket joined to 4,096 groups closes, against the same
// operations on an idle stack, in one run: p50-ratio and p99-ratio are
// busy over idle (1 means the close does not delay other operations).
func BenchmarkJoinDuringClose(b *testing.B) {
	const groups = 4096
	s, ifc := closeStack(b)
	defer s.Close()
	other, err := s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 6000))
	if err != nil {
		b.Fatal(err)
	}
	g := netip.MustParseAddr("239.99.0.1")
	op := func() time.Duration {
		t0 := time.Now()
		if err := other.JoinGroup(ifc, g); err != nil {
			b.Fatal(err)
		}
		if err := other.LeaveGroup(ifc, g); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var idle, busy []time.Duration
	closes := 0
	for i := 0; i < b.N; i++ {
		big := joined(b, s, ifc, 5000, groups)
		done := make(chan struct{})
		start := make(chan struct{})
		go func() {
			<-start
			big.Close()
			close(done)
		}()
		close(start)
		n := 0
	loop:
		for {
			select {
			case <-done:
				break loop
			default:
				busy = append(busy, op())
				n++
			}
		}
		closes++
		for range max(n, 100) {
			idle = append(idle, op())
		}
	}
	if len(busy) == 0 {
		b.Fatal("no operation ran during a close")
	}
	p := func(ds []time.Duration, q float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))])
	}
	b.ReportMetric(p(idle, 0.5), "idle-p50-ns")
	b.ReportMetric(p(idle, 0.99), "idle-p99-ns")
	b.ReportMetric(p(busy, 0.5), "busy-p50-ns")
	b.ReportMetric(p(busy, 0.99), "busy-p99-ns")
	b.ReportMetric(p(busy, 0.5)/p(idle, 0.5), "p50-ratio")
	b.ReportMetric(p(busy, 0.99)/p(idle, 0.99), "p99-ratio")
	b.ReportMetric(float64(len(busy))/float64(closes), "ops/close")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleHost measures what an idle host costs: a stack with one
// interface (an instant endpoint that needs no goroutine of its own) and
// one socket joined to one group, its reports sent, its workers idle.
// Reports heap bytes (after GC) and goroutines per host over 2,000 hosts.
func BenchmarkIdleHost(b *testing.B) {
	const n = 2000
	for i := 0; i < b.N; i++ {
		g0 := runtime.NumGoroutine()
		h0 := heap()
		hosts := make([]*stack.Stack, 0, n)
		for j := range n {
			s := stack.New(stack.Config{QueueLen: 16})
			a := netip.AddrFrom4([4]byte{10, 0, byte(j >> 8), byte(j)})
			ifc, err := s.AddInterface(newNullEndpoint(), stack.InterfaceConfig{Addrs: []netip.Prefix{netip.PrefixFrom(a, 16)}})
			if err != nil {
				b.Fatal(err)
			}
			c, err := s.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
			if err != nil {
				b.Fatal(err)
			}
			if err := c.JoinGroup(ifc, netip.MustParseAddr("239.1.1.1")); err != nil {
				b.Fatal(err)
			}
			hosts = append(hosts, s)
		}
		for _, s := range hosts {
			for _, ifc := range s.Interfaces() {
				ifc.Sync(context.Background())
			}
		}
		time.Sleep(50 * time.Millisecond) // timer goroutines of the last passes exit
		b.ReportMetric(float64(heap()-h0)/n, "B/host")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/host")
		b.StopTimer()
		// The hosts' final reports are repeated over up to 1 s: close
		// them all at once.
		var wg sync.WaitGroup
		for _, s := range hosts {
			wg.Add(1)
			go func() { defer wg.Done(); s.Close() }()
		}
		wg.Wait()
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
}

package emulate

import (
	"context"
	"flag"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/clock"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/mux"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

var (
	flagHosts  = flag.Int("emulate.hosts", 10000, "hosts in BenchmarkGeneralQuery and BenchmarkJoinRamp")
	flagIdle   = flag.Int("emulate.idle", 2000, "hosts in BenchmarkIdleHost")
	flagMargin = flag.Duration("emulate.margin", 250*time.Millisecond, "the hosts' proto.Config.ResponseMargin (mcast emulate's --response-margin default)")
	flagMRC    = flag.Int("emulate.mrc", 100, "Max Resp Code (tenths of a second) of the General Query in BenchmarkGeneralQuery and BenchmarkHostsGroupsSources")
)

// parent is the mux's parent: it counts what the hosts write, per host
// (by the low 3 bytes of the source MAC: the mux numbers hosts from a
// zero-based Base) and delivers injected frames to the mux at once.
type parent struct {
	h link.Handler
	// first holds, per host, the time (ns since start) of its first
	// report after arm, 0 while none.
	first   []atomic.Int64
	start   atomic.Int64
	armed   atomic.Bool
	writes  atomic.Int64
	reports atomic.Int64
}

var base = wire.MAC{0x02, 0xbe, 0x00, 0x00, 0x00, 0x00}

func newParent(n int) *parent { return &parent{first: make([]atomic.Int64, n)} }

func (p *parent) Name() string                { return "bench0" }
func (p *parent) MTU() int                    { return 1500 }
func (p *parent) HardwareAddr() wire.MAC      { return wire.MAC{0x02, 0, 0, 0, 0, 1} }
func (p *parent) Attach(h link.Handler) error { p.h = h; return nil }
func (p *parent) Close() error                { return nil }
func (p *parent) SetMulticastFilter(a []wire.MAC) (link.FilterStatus, error) {
	return link.FilterStatus{Exact: len(a)}, nil
}

func (p *parent) WriteFrame(f []byte) error {
	p.writes.Add(1)
	// IGMP (IPv4 protocol 2) only.
	if len(f) < 14+24 || f[12] != 0x08 || f[13] != 0 || f[14+9] != 2 {
		return nil
	}
	p.reports.Add(1)
	if !p.armed.Load() {
		return nil
	}
	i := int(f[9])<<16 | int(f[10])<<8 | int(f[11])
	if i < len(p.first) {
		p.first[i].CompareAndSwap(0, time.Now().UnixNano()-p.start.Load())
	}
	return nil
}

// arm starts recording first reports from now.
func (p *parent) arm() {
	for i := range p.first {
		p.first[i].Store(0)
	}
	p.start.Store(time.Now().UnixNano())
	p.armed.Store(true)
}

type host struct {
	st  *stack.Stack
	ifc *stack.Interface
	c   *stack.Conn
}

// fleet builds n hosts on one mux over p, sharing one clock.
func fleet(tb testing.TB, p *parent, n int) (*mux.Mux, []*host) {
	tb.Helper()
	m, err := mux.New(p, mux.Options{Base: base})
	if err != nil {
		tb.Fatal(err)
	}
	clk := clock.Real{}
	hosts := make([]*host, n)
	for i := range n {
		ve, err := m.NewEndpoint(i)
		if err != nil {
			tb.Fatal(err)
		}
		st := stack.New(stack.Config{Clock: clk, QueueLen: 4,
			IGMP: proto.Config{ResponseMargin: *flagMargin}, MLD: proto.Config{ResponseMargin: *flagMargin}})
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		ifc, err := st.AddInterface(ve, stack.InterfaceConfig{Addrs: []netip.Prefix{netip.PrefixFrom(a, 8)}})
		if err != nil {
			tb.Fatal(err)
		}
		c, err := st.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
		if err != nil {
			tb.Fatal(err)
		}
		hosts[i] = &host{st, ifc, c}
	}
	return m, hosts
}

func closeAll(hosts []*host) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2048)
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); h.st.Close(); <-sem }()
	}
	wg.Wait()
}

func syncAll(tb testing.TB, hosts []*host) {
	for _, h := range hosts {
		if err := h.ifc.Sync(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
}

func group(i int) netip.Addr { return netip.AddrFrom4([4]byte{232, 1, byte(i >> 8), byte(i)}) }

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// generalQuery is an IGMPv3 General Query frame with the given Max Resp
// Code (tenths of a second).
func generalQuery(mrc uint8) []byte {
	q, err := wire.IGMPv3Query{MaxRespCode: mrc, Group: netip.IPv4Unspecified(), QRV: 2, QQIC: 125}.Append(nil)
	if err != nil {
		panic(err)
	}
	dst, _ := wire.MulticastMAC(wire.IPv4AllSystems)
	f := wire.AppendEthernet(nil, dst, wire.MAC{0x02, 0, 0, 0, 0, 0xfe}, wire.EtherTypeIPv4)
	f, err = wire.AppendIPv4(f, wire.IPv4{TOS: 0xc0, TTL: 1, Protocol: wire.ProtoIGMP, Src: netip.MustParseAddr("10.255.255.254"), Dst: wire.IPv4AllSystems, RouterAlert: true}, q)
	if err != nil {
		panic(err)
	}
	return f
}

// BenchmarkIdleHost: heap bytes and goroutines per idle emulated host (a
// stack on a mux endpoint, one socket joined to one group, reports sent),
// side by side with the same host on its own null endpoint (no mux): the
// ratio is the mux's overhead.
func BenchmarkIdleHost(b *testing.B) {
	n := *flagIdle
	measure := func(viaMux bool) (bytes, gor float64) {
		g0 := runtime.NumGoroutine()
		h0 := heap()
		var hosts []*host
		p := newParent(n)
		if viaMux {
			var m *mux.Mux
			m, hosts = fleet(b, p, n)
			defer m.Close()
		} else {
			for i := range n {
				st := stack.New(stack.Config{QueueLen: 4})
				a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				ifc, err := st.AddInterface(&ownEndpoint{}, stack.InterfaceConfig{Addrs: []netip.Prefix{netip.PrefixFrom(a, 8)}})
				if err != nil {
					b.Fatal(err)
				}
				c, err := st.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
				if err != nil {
					b.Fatal(err)
				}
				hosts = append(hosts, &host{st, ifc, c})
			}
		}
		for i, h := range hosts {
			if err := h.c.JoinGroup(h.ifc, group(i%1000)); err != nil {
				b.Fatal(err)
			}
		}
		syncAll(b, hosts)
		time.Sleep(1500 * time.Millisecond) // the report retransmissions (1 s) end, timer goroutines exit
		bytes = float64(heap()-h0) / float64(n)
		gor = float64(runtime.NumGoroutine()-g0) / float64(n)
		closeAll(hosts)
		return bytes, gor
	}
	for i := 0; i < b.N; i++ {
		own, ownG := measure(false)
		mb, mg := measure(true)
		b.ReportMetric(mb, "B/host")
		b.ReportMetric(mg, "goroutines/host")
		b.ReportMetric(own, "B/host-no-mux")
		b.ReportMetric(ownG, "goroutines/host-no-mux")
		b.ReportMetric(mb/own, "ratio-mux-vs-own")
	}
	b.ReportMetric(0, "ns/op")
}

// ownEndpoint is an instant endpoint for the no-mux baseline.
type ownEndpoint struct{}

func (ownEndpoint) Name() string              { return "own0" }
func (ownEndpoint) MTU() int                  { return 1500 }
func (ownEndpoint) HardwareAddr() wire.MAC    { return wire.MAC{0x02, 0, 0, 0, 0, 2} }
func (ownEndpoint) Attach(link.Handler) error { return nil }
func (ownEndpoint) WriteFrame([]byte) error   { return nil }
func (ownEndpoint) Close() error              { return nil }
func (ownEndpoint) SetMulticastFilter(a []wire.MAC) (link.FilterStatus, error) {
	return link.FilterStatus{Exact: len(a)}, nil
}

// BenchmarkGeneralQuery: N hosts (default 10,000), one group each, on one
// mux; one IGMPv3 General Query (Max Resp Time -emulate.mrc, default 10 s) is handed to
// the mux as the parent would. Reports the fraction of hosts whose first
// report came within the MRT, and when the last one did (s after the
// query). Hosts answer at a random time in [0, MRT) (RFC 9776 §5.2), so
// the last answer is expected just under the MRT.
func BenchmarkGeneralQuery(b *testing.B) {
	n := *flagHosts
	p := newParent(n)
	m, hosts := fleet(b, p, n)
	defer m.Close()
	defer closeAll(hosts)
	for i, h := range hosts {
		if err := h.c.JoinGroup(h.ifc, group(i%4096)); err != nil {
			b.Fatal(err)
		}
	}
	syncAll(b, hosts)
	time.Sleep(1500 * time.Millisecond) // unsolicited report retransmissions are over
	mrc := uint8(*flagMRC)
	mrt := time.Duration(mrc) * 100 * time.Millisecond
	q := generalQuery(mrc)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		p.arm()
		p.h.HandleFrames([][]byte{q}, nil)
		deadline := time.Now().Add(mrt + 2*time.Second)
		var last int64
		answered := 0
		for time.Now().Before(deadline) {
			answered, last = 0, 0
			for i := range p.first {
				if t := p.first[i].Load(); t > 0 {
					answered++
					last = max(last, t)
				}
			}
			if answered == n {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		within := 0
		for i := range p.first {
			if t := p.first[i].Load(); t > 0 && time.Duration(t) <= mrt {
				within++
			}
		}
		b.ReportMetric(float64(within)/float64(n), "fraction-within-MRT")
		b.ReportMetric(float64(answered)/float64(n), "fraction-answered")
		b.ReportMetric(time.Duration(last).Seconds(), "last-answer-s")
		b.ReportMetric(float64(n)/time.Duration(last).Seconds(), "reports/s")
		time.Sleep(200 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
}

// BenchmarkJoinRamp: N hosts (default 10,000) each join one group as fast
// as one goroutine can call the API (the join ramp of `mcast emulate
// --rate 0`). Reports API joins/s and the time until every host's first
// report went out (reports-done-s; the stack coalesces for 2 ms first).
func BenchmarkJoinRamp(b *testing.B) {
	n := *flagHosts
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		p := newParent(n)
		m, hosts := fleet(b, p, n)
		p.arm()
		b.StartTimer()
		t0 := time.Now()
		for i, h := range hosts {
			if err := h.c.JoinGroup(h.ifc, group(i)); err != nil {
				b.Fatal(err)
			}
		}
		api := time.Since(t0)
		for {
			done := 0
			for i := range p.first {
				if p.first[i].Load() > 0 {
					done++
				}
			}
			if done == n || time.Since(t0) > 30*time.Second {
				break
			}
			time.Sleep(time.Millisecond)
		}
		all := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(float64(n)/api.Seconds(), "joins/s")
		b.ReportMetric(all.Seconds(), "reports-done-s")
		b.ReportMetric(float64(n)/all.Seconds(), "joins-reported/s")
		closeAll(hosts)
		m.Close()
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHostsGroupsSources: 1,000 hosts x 10 groups x 10 sources
// (INCLUDE filters) on one mux: setup time, joins/s (one SetSourceFilter
// per host and group), heap per host, then a General Query (MRT -emulate.mrc):
// fraction of hosts answering within the MRT.
func BenchmarkHostsGroupsSources(b *testing.B) {
	const nh, ng, ns = 1000, 10, 10
	srcs := make([]netip.Addr, ns)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
	}
	for it := 0; it < b.N; it++ {
		h0 := heap()
		p := newParent(nh)
		m, hosts := fleet(b, p, nh)
		t0 := time.Now()
		for i, h := range hosts {
			for j := range ng {
				if err := h.c.SetSourceFilter(h.ifc, group((i*ng+j)%1000), membership.Include, srcs); err != nil {
					b.Fatal(err)
				}
			}
		}
		api := time.Since(t0)
		syncAll(b, hosts)
		time.Sleep(1500 * time.Millisecond)
		perHost := float64(heap()-h0) / nh
		mrc := uint8(*flagMRC)
		p.arm()
		p.h.HandleFrames([][]byte{generalQuery(mrc)}, nil)
		time.Sleep(time.Duration(mrc)*100*time.Millisecond + 500*time.Millisecond)
		within, last := 0, int64(0)
		for i := range p.first {
			if t := p.first[i].Load(); t > 0 {
				last = max(last, t)
				if time.Duration(t) <= time.Duration(mrc)*100*time.Millisecond {
					within++
				}
			}
		}
		b.ReportMetric(float64(nh*ng)/api.Seconds(), "joins/s")
		b.ReportMetric(float64(nh*ng*ns)/api.Seconds(), "(S,G)-joins/s")
		b.ReportMetric(perHost, "B/host")
		b.ReportMetric(float64(within)/nh, "fraction-within-MRT")
		b.ReportMetric(time.Duration(last).Seconds(), "last-answer-s")
		closeAll(hosts)
		m.Close()
	}
	b.ReportMetric(0, "ns/op")
}

// TestFleetAnswersQuery is a small version of BenchmarkGeneralQuery that
// runs in `go test`: 200 hosts all answer a General Query.
func TestFleetAnswersQuery(t *testing.T) {
	const n = 200
	p := newParent(n)
	m, hosts := fleet(t, p, n)
	defer m.Close()
	defer closeAll(hosts)
	for i, h := range hosts {
		if err := h.c.JoinGroup(h.ifc, group(i)); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, hosts)
	time.Sleep(1500 * time.Millisecond) // the join reports' retransmissions are over
	p.arm()
	p.h.HandleFrames([][]byte{generalQuery(5)}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := 0
		for i := range p.first {
			if p.first[i].Load() == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d hosts never answered the query", missing, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

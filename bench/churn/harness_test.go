package churn

// The shared harness: one injector, one slow-driver endpoint, one latency
// recorder and one churn loop, used unchanged for every design so that the
// designs differ only in what happens between the endpoint's receive
// handler and the socket's read.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

var (
	flagPPS      = flag.Int("churn.pps", 20000, "injected multicast packets per second")
	flagDuration = flag.Duration("churn.duration", 2*time.Second, "traffic duration of each latency sub-benchmark")
	flagCycles   = flag.Float64("churn.cycles", 20, "churn cycles (open+join, close an older socket) per second")
	flagGroups   = flag.Int("churn.groups", 2, "distinct groups each churn socket joins")
	flagWindow   = flag.Int("churn.window", 8, "churn sockets open at once (a socket lives window/cycles seconds)")
	flagRuns     = flag.Int("churn.runs", 3, "rounds of BenchmarkChurn: in each, every design runs a quiet and a churn run; percentiles are the median over runs")
	flagDesigns  = flag.String("churn.designs", "", "comma-separated designs BenchmarkChurn measures (default: all)")
	flagBgTimer  = flag.Bool("churn.bgtimer", true, "keep one far-off timer pending through every run, quiet and churn (see runLatency)")
	flagProcs    = flag.Int("churn.procs", 2, "independent churn goroutines sharing -churn.cycles")
)

var (
	hostMAC   = wire.MAC{0x02, 0, 0, 0, 0, 0x02}
	senderMAC = wire.MAC{0x02, 0, 0, 0, 0, 0x01}
	hostAddr  = netip.MustParsePrefix("192.0.2.2/24")
	senderIP  = netip.MustParseAddr("192.0.2.1")
	// steady receivers: one socket per group, each on its own port.
	steadyGroups = []netip.Addr{netip.MustParseAddr("239.1.0.1"), netip.MustParseAddr("239.1.0.2")}
	steadyPorts  = []uint16{5001, 5002}
)

const (
	payloadLen = 32 // seq (8) | arrival stamp, ns since base (8) | padding
	udpSrcPort = 4000
	churnPort  = 6000
	burstPort  = 7000
)

var errSockClosed = errors.New("churn: socket closed")

// system is one teardown design under test.
type system interface {
	// handler is what the link would call for each received frame.
	handler() link.Handler
	// listen opens a UDP socket bound to port and joins every group on
	// the benchmark interface. It returns when the joins returned.
	listen(port uint16, groups []netip.Addr) (sock, error)
	// shutdown releases the design's goroutines.
	shutdown()
}

// sock is one socket of a design.
type sock interface {
	// read blocks for the next datagram's payload; an error after close.
	read(buf []byte) (int, error)
	close() error
}

// slowEndpoint is a link.Endpoint whose SetMulticastFilter takes D: the
// slow driver of the seed. Receive is driven by the injector calling the
// attached handler directly, from one goroutine, as the contract says.
type slowEndpoint struct {
	delay   time.Duration
	handler link.Handler

	calls      atomic.Int64 // SetMulticastFilter calls
	inCall     atomic.Int32
	concurrent atomic.Int64 // calls that overlapped another (contract violation)
	lastLen    atomic.Int64 // addresses in the last programmed filter
	lastEnd    atomic.Int64 // UnixNano when the last call returned
	writes     atomic.Int64 // frames the stack transmitted (reports)
}

func newSlowEndpoint(d time.Duration) *slowEndpoint {
	e := &slowEndpoint{delay: d}
	e.lastEnd.Store(time.Now().UnixNano())
	return e
}

func (e *slowEndpoint) Name() string                  { return "slow0" }
func (e *slowEndpoint) MTU() int                      { return 1500 }
func (e *slowEndpoint) HardwareAddr() wire.MAC        { return hostMAC }
func (e *slowEndpoint) Attach(h link.Handler) error   { e.handler = h; return nil }
func (e *slowEndpoint) WriteFrame(frame []byte) error { e.writes.Add(1); return nil }
func (e *slowEndpoint) Close() error                  { return nil }

func (e *slowEndpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	if e.inCall.Add(1) > 1 {
		e.concurrent.Add(1)
	}
	e.calls.Add(1)
	time.Sleep(e.delay)
	n := len(addrs)
	e.lastLen.Store(int64(n))
	e.lastEnd.Store(time.Now().UnixNano())
	e.inCall.Add(-1)
	return link.FilterStatus{Exact: n}, nil
}

// settle waits until the programmed filter holds want addresses and no
// driver call ran for a quiet period, i.e. every queued update is done.
func (e *slowEndpoint) settle(tb testing.TB, want int) {
	quiet := max(3*e.delay, 5*time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e.inCall.Load() == 0 && e.lastLen.Load() == int64(want) &&
			time.Since(time.Unix(0, e.lastEnd.Load())) >= quiet {
			return
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatalf("driver filter did not settle at %d addresses (last %d, in call %d)", want, e.lastLen.Load(), e.inCall.Load())
}

// waitQuiet waits until no driver call ran for a quiet period and returns
// the filter size then (used to learn a design's base filter).
func (e *slowEndpoint) waitQuiet() int {
	quiet := max(3*e.delay, 20*time.Millisecond)
	for e.inCall.Load() != 0 ||
		time.Since(time.Unix(0, e.lastEnd.Load())) < quiet {
		time.Sleep(time.Millisecond)
	}
	return int(e.lastLen.Load())
}

// frameTemplate is a complete Ethernet/IPv4/UDP frame to one group and
// port; the injector patches the payload and UDP checksum per packet.
type frameTemplate struct {
	buf []byte
}

func newFrameTemplate(group netip.Addr, port uint16) *frameTemplate {
	mac, _ := wire.MulticastMAC(group)
	const ipLen = 20 + 8 + payloadLen
	b := make([]byte, 14+ipLen)
	copy(b[0:6], mac[:])
	copy(b[6:12], senderMAC[:])
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], ipLen)
	ip[8] = 8 // TTL
	ip[9] = 17
	s4, g4 := senderIP.As4(), group.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], g4[:])
	binary.BigEndian.PutUint16(ip[10:12], ^fold(onesSum(0, ip[:20])))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:2], udpSrcPort)
	binary.BigEndian.PutUint16(udp[2:4], port)
	binary.BigEndian.PutUint16(udp[4:6], 8+payloadLen)
	return &frameTemplate{buf: b}
}

// stamp writes seq and the arrival stamp and fixes the UDP checksum.
func (f *frameTemplate) stamp(seq uint64, arrival int64) []byte {
	ip := f.buf[14:]
	udp := ip[20:]
	binary.BigEndian.PutUint64(udp[8:16], seq)
	binary.BigEndian.PutUint64(udp[16:24], uint64(arrival))
	udp[6], udp[7] = 0, 0
	// pseudo-header: src, dst, zero+proto, UDP length
	s := onesSum(0, ip[12:20])
	s += 17 + uint32(len(udp))
	s = onesSum(s, udp)
	c := ^fold(s)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return f.buf
}

func onesSum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// inject sends pps packets per second for dur, alternating over the
// templates, by calling h directly.
//
// Each packet carries its arrival time: max(scheduled time, the time the
// injector last woke from sleep). Go's timer sleeps about 1 ms at least, so
// packets are injected in batches of about pps/1000; treating a batch as
// arriving when the injector wakes keeps the sleep granularity out of the
// latency, while packets whose turn came while h was blocked (a stalled
// receive path) keep their scheduled time: the wait a NIC ring would have
// imposed on them is counted, not hidden (no coordinated omission).
//
// handling is the time spent inside h.HandleFrames, summed over the
// packets: the receive path's own cost per packet (two clock reads per
// packet are included, the same for every design).
func inject(h link.Handler, tmpl []*frameTemplate, pps int, dur time.Duration, base time.Time) (sent int, elapsed, handling time.Duration) {
	interval := time.Second / time.Duration(pps)
	n := int(dur / interval)
	batch := make([][]byte, 1)
	start := time.Now()
	wake := start
	for i := 0; i < n; i++ {
		sched := start.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
			wake = time.Now()
		}
		arrival := sched
		if wake.After(arrival) {
			arrival = wake
		}
		batch[0] = tmpl[i%len(tmpl)].stamp(uint64(i), arrival.Sub(base).Nanoseconds())
		t0 := time.Now()
		h.HandleFrames(batch, nil)
		handling += time.Since(t0)
	}
	return n, time.Since(start), handling
}

// reader reads one socket until it is closed and records, per datagram,
// the time from arrival to the return of read.
type reader struct {
	lat  []int64
	n    atomic.Int64 // len(lat), readable while the reader runs
	done chan struct{}
}

func startReader(s sock, base time.Time, capHint int) *reader {
	r := &reader{lat: make([]int64, 0, capHint), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			n, err := s.read(buf)
			if err != nil {
				return
			}
			if n < 16 {
				continue
			}
			now := time.Since(base).Nanoseconds()
			r.lat = append(r.lat, now-int64(binary.BigEndian.Uint64(buf[8:16])))
			r.n.Add(1)
		}
	}()
	return r
}

// churner runs procs independent loops; each opens sockets at a fixed rate,
// each socket joining distinct groups, and closes its oldest, keeping
// window sockets open per loop.
type churner struct {
	stop   chan struct{}
	done   chan struct{}
	cycles atomic.Int64
	errs   atomic.Int64
	first  atomic.Value // error
}

var churnGroupSeq atomic.Uint32

// nextChurnGroup returns a group never used before in this process (within
// 2^23 groups), so that every join and every leave changes the MAC filter.
func nextChurnGroup() netip.Addr {
	k := churnGroupSeq.Add(1) % (1 << 22)
	return netip.AddrFrom4([4]byte{239, byte(0x40 | k>>16), byte(k >> 8), byte(k)})
}

func startChurn(sys system, perSec float64, groupsPer, window, procs int) *churner {
	c := &churner{stop: make(chan struct{}), done: make(chan struct{})}
	var wg, ready sync.WaitGroup
	interval := time.Duration(float64(time.Second) * float64(procs) / perSec)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		ready.Add(1)
		// Independent churners with Poisson arrivals (fixed seeds), like
		// unrelated applications: one's close can meet another's driver
		// call, as it would in the wild.
		rng := rand.New(rand.NewPCG(uint64(p)+1, 0x636875726e))
		go c.loop(&wg, &ready, sys, rng, interval, churnPort+uint16(p*window), groupsPer, window)
	}
	go func() { wg.Wait(); close(c.done) }()
	ready.Wait()
	return c
}

func (c *churner) loop(wg, ready *sync.WaitGroup, sys system, rng *rand.Rand, mean time.Duration, port0 uint16, groupsPer, window int) {
	defer wg.Done()
	ring := make([]sock, window)
	open := func(slot int) {
		groups := make([]netip.Addr, groupsPer)
		for j := range groups {
			groups[j] = nextChurnGroup()
		}
		s, err := sys.listen(port0+uint16(slot), groups)
		if err != nil {
			c.errs.Add(1)
			c.first.CompareAndSwap(nil, err)
		} else {
			ring[slot] = s
		}
	}
	// Fill the window first, so that closes start with the measurement.
	for slot := range ring {
		open(slot)
	}
	ready.Done()
	next := time.Now()
	for i := 0; ; i++ {
		next = next.Add(time.Duration(rng.ExpFloat64() * float64(mean)))
		select {
		case <-c.stop:
			for _, s := range ring {
				if s != nil {
					s.close()
				}
			}
			return
		default:
		}
		slot := i % window
		if ring[slot] != nil {
			ring[slot].close()
			ring[slot] = nil
		}
		open(slot)
		c.cycles.Add(1)
		if d := time.Until(next); d > 0 {
			// Sleep, but return as soon as halted (at a low -churn.cycles
			// the next cycle may be minutes away).
			t := time.NewTimer(d)
			select {
			case <-c.stop:
			case <-t.C:
			}
			t.Stop()
		} else if d < -time.Second {
			next = time.Now() // fell far behind: do not build up debt
		}
	}
}

func (c *churner) halt() { close(c.stop); <-c.done }

// result is one latency run.
type result struct {
	design     string
	delay      time.Duration
	churn      bool
	sent       int
	delivered  int
	elapsed    time.Duration
	handling   time.Duration // in HandleFrames (inject)
	p50, p90   time.Duration
	p99, p999  time.Duration
	max        time.Duration
	calls      int64
	cycles     int64
	churnErrs  int64
	concurrent int64
	runs       int
}

func percentile(sorted []int64, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return time.Duration(sorted[i])
}

// runLatency runs one latency measurement: steady receivers, optional
// churn, paced injection for the configured duration.
func runLatency(b *testing.B, design string, mk func(*slowEndpoint) system, d time.Duration, churn bool) result {
	ep := newSlowEndpoint(d)
	sys := mk(ep)
	defer sys.shutdown()
	base := time.Now()
	pps, dur := *flagPPS, *flagDuration
	capHint := int(float64(pps)*dur.Seconds())/len(steadyGroups) + 1024

	var socks []sock
	var readers []*reader
	var tmpl []*frameTemplate
	for i, g := range steadyGroups {
		s, err := sys.listen(steadyPorts[i], []netip.Addr{g})
		if err != nil {
			b.Fatalf("%s: steady receiver: %v", design, err)
		}
		socks = append(socks, s)
		readers = append(readers, startReader(s, base, capHint))
		tmpl = append(tmpl, newFrameTemplate(g, steadyPorts[i]))
	}
	ep.waitQuiet()

	// A pending timer changes how the Go scheduler parks idle threads
	// (runtime.findRunnable: an idle thread then blocks in the network
	// poller until the timer, not on a futex), and that alone moves this
	// benchmark's latencies: measured with no churn at all, two
	// goroutines waiting on timers 200 s away raised the seed baseline's
	// p50 from ~28 to ~35 µs, two waiting on a channel did not move it
	// (BENCHMARKS.md §4). The churn loops' sleeps, and mcstack's report
	// and coalescing timers, would make that difference between the
	// quiet and the churn run, or between the designs, whatever the
	// churn itself costs. Every real process has some timer pending (a
	// read deadline, a ticker), so every run gets one, for the same
	// duration and for every design.
	if *flagBgTimer {
		bg := time.AfterFunc(time.Hour, func() {})
		defer bg.Stop()
	}

	var ch *churner
	if churn {
		ch = startChurn(sys, *flagCycles, *flagGroups, *flagWindow, *flagProcs)
		time.Sleep(50 * time.Millisecond)
	}
	callsBefore := ep.calls.Load()
	cyclesBefore := int64(0)
	if ch != nil {
		cyclesBefore = ch.cycles.Load()
	}
	sent, elapsed, handling := inject(sys.handler(), tmpl, pps, dur, base)
	res := result{design: design, delay: d, churn: churn, sent: sent, elapsed: elapsed, handling: handling}
	res.calls = ep.calls.Load() - callsBefore
	if ch != nil {
		res.cycles = ch.cycles.Load() - cyclesBefore
		ch.halt()
		res.churnErrs = ch.errs.Load()
		if err, _ := ch.first.Load().(error); err != nil {
			b.Logf("%s: %d churn errors, first: %v", design, res.churnErrs, err)
		}
	}
	// Let the readers drain their queues before closing the sockets (a
	// close discards what is still queued): wait until every packet was
	// read, or until no reader made progress for 500 ms; what is still
	// missing then was really lost.
	read := func() (n int64) {
		for _, r := range readers {
			n += r.n.Load()
		}
		return n
	}
	for last, since := read(), time.Now(); last < int64(sent) && time.Since(since) < 500*time.Millisecond; {
		time.Sleep(time.Millisecond)
		if n := read(); n != last {
			last, since = n, time.Now()
		}
	}
	for _, s := range socks {
		s.close()
	}
	var all []int64
	for _, r := range readers {
		<-r.done
		all = append(all, r.lat...)
	}
	slices.Sort(all)
	res.delivered = len(all)
	res.p50, res.p90 = percentile(all, 0.50), percentile(all, 0.90)
	res.p99, res.p999 = percentile(all, 0.99), percentile(all, 0.999)
	res.max = percentile(all, 1)
	res.concurrent = ep.concurrent.Load()
	return res
}

// aggregate combines repeated runs: median of each percentile over the
// runs, the largest max, and totals for counts.
func aggregate(runs []result) result {
	r := runs[0]
	med := func(f func(result) time.Duration) time.Duration {
		v := make([]time.Duration, len(runs))
		for i, x := range runs {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	r.p50 = med(func(x result) time.Duration { return x.p50 })
	r.p90 = med(func(x result) time.Duration { return x.p90 })
	r.p99 = med(func(x result) time.Duration { return x.p99 })
	r.p999 = med(func(x result) time.Duration { return x.p999 })
	for _, x := range runs[1:] {
		r.max = max(r.max, x.max)
		r.sent += x.sent
		r.delivered += x.delivered
		r.elapsed += x.elapsed
		r.handling += x.handling
		r.calls += x.calls
		r.cycles += x.cycles
		r.churnErrs += x.churnErrs
		r.concurrent = max(r.concurrent, x.concurrent)
	}
	r.runs = len(runs)
	return r
}

// report adds r's metrics, their units prefixed with "quiet-" or "churn-".
func (r result) report(b *testing.B) {
	pre := "quiet-"
	if r.churn {
		pre = "churn-"
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(r.p50), pre+"p50-µs")
	b.ReportMetric(us(r.p99), pre+"p99-µs")
	b.ReportMetric(us(r.max), pre+"max-µs")
	b.ReportMetric(float64(r.delivered)/r.elapsed.Seconds(), pre+"delivered-pps")
	b.ReportMetric(float64(r.sent-r.delivered), pre+"lost")
	if r.sent > 0 {
		b.ReportMetric(float64(r.handling.Nanoseconds())/float64(r.sent), pre+"handle-ns/pkt")
	}
	n := float64(max(r.runs, 1))
	b.ReportMetric(float64(r.calls)/n, pre+"driver-calls/run")
	if r.churn {
		b.ReportMetric(float64(r.cycles)/r.elapsed.Seconds(), "churn-cycles/s")
	}
	if r.concurrent != 0 {
		b.Errorf("%s: %d concurrent SetMulticastFilter calls on one endpoint", r.design, r.concurrent)
	}
}

var csvMu sync.Mutex

// writeCSV appends r to $MCSTACK_CHURN_CSV when it is set.
func writeCSV(b *testing.B, r result) {
	path := os.Getenv("MCSTACK_CHURN_CSV")
	if path == "" {
		return
	}
	csvMu.Lock()
	defer csvMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatalf("churn csv: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		fmt.Fprintln(f, "design,delay_ms,churn,p50_us,p90_us,p99_us,p999_us,max_us,delivered_pps,sent,delivered,driver_calls_per_run,churn_cycles_per_run,runs")
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	fmt.Fprintf(f, "%s,%g,%t,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f,%d,%d,%d,%d,%d\n",
		r.design, float64(r.delay)/float64(time.Millisecond), r.churn,
		us(r.p50), us(r.p90), us(r.p99), us(r.p999), us(r.max),
		float64(r.delivered)/r.elapsed.Seconds(), r.sent, r.delivered,
		r.calls/int64(max(r.runs, 1)), r.cycles/int64(max(r.runs, 1)), max(r.runs, 1))
}

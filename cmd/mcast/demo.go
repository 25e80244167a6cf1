package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

const demoUsage = `
usage: mcast demo [-duration D] [-quiet] [-rate PPS] [-churn-interval D]
                  [-churn-sockets N] [-filter-delay D] [-query-interval D] [-size N]

Runs a whole multicast LAN in memory (no root, no network) and stops by
itself after -duration:

  querier  a "router" injecting IGMPv3 general queries every -query-interval
           and keeping the per-host membership it learns from the reports
           it hears on the LAN
  sendA    192.0.2.1, sends to 232.1.1.1 (SSM) and 239.1.1.1 (ASM)
  sendB    192.0.2.2, sends to the same two groups
  recvSSM  192.0.2.11, a socket joined to 232.1.1.1 INCLUDE {192.0.2.1}
  recvEX   192.0.2.12, a socket joined to 239.1.1.1 EXCLUDE {192.0.2.2}

Both receivers have a slow NIC multicast filter (each driver call takes
-filter-delay) and churn sockets meanwhile: every -churn-interval they open
a socket, join a fresh group on it, and close the oldest churn socket once
-churn-sockets are open, so the set of MAC addresses the NIC must accept
changes all the time.

The live table (redrawn every second on a terminal, printed as plain blocks
otherwise) shows each host's groups, filter modes and sources, what the
querier learned, the churn operations against the driver calls they cost,
and the receive latency while the sockets churn. Everything shown is
measured: deliveries are counted and judged by the receiving sockets,
latency runs from the send time in the payload to the return of ReadMsg,
driver calls are counted by the in-memory NIC, and the querier's view comes
only from the reports it captured. If the hosts send no reports (an IGMP
engine that does nothing), the demo says so.

The summary checks that no datagram from an excluded source was delivered,
that every datagram of an allowed source arrived, and, when reports were
heard, that the querier learned each receiver's filter and that the final
reports sent on shutdown left it with no membership.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 4 a check failed.
`

var (
	demoSrcA   = netip.MustParseAddr("192.0.2.1")
	demoSrcB   = netip.MustParseAddr("192.0.2.2")
	demoSSM    = netip.MustParseAddr("232.1.1.1")
	demoASM    = netip.MustParseAddr("239.1.1.1")
	demoPort   = uint16(5001)
	demoPrefix = 24
)

type demoConfig struct {
	duration      time.Duration
	quiet         bool
	rate          float64
	churnInterval time.Duration
	churnSockets  int
	filterDelay   time.Duration
	queryInterval time.Duration
	size          int
	tty           bool
	log           *slog.Logger // nil: discard
}

func runDemo(ctx context.Context, e *env, args []string) error {
	cfg := demoConfig{tty: e.tty}
	var verbose bool
	fs := newFlagSet("demo")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to run (1s..10m)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "print only the summary (for CI)")
	fs.Float64Var(&cfg.rate, "rate", 100, "datagrams per second each sender sends to each group")
	fs.DurationVar(&cfg.churnInterval, "churn-interval", 2*time.Millisecond, "pause between socket churn cycles on each receiver")
	fs.IntVar(&cfg.churnSockets, "churn-sockets", 8, "churn sockets each receiver keeps open (0: close each one right after its join)")
	fs.DurationVar(&cfg.filterDelay, "filter-delay", 20*time.Millisecond, "time each NIC multicast filter update takes on the receivers")
	fs.DurationVar(&cfg.queryInterval, "query-interval", 5*time.Second, "interval between the querier's general queries")
	fs.IntVar(&cfg.size, "size", 64, "UDP payload `bytes`")
	fs.BoolVar(&verbose, "v", false, "log stack debug events to stderr")
	if err := parse(e, fs, demoUsage, args); err != nil {
		return err
	}
	switch {
	case cfg.duration < time.Second || cfg.duration > 10*time.Minute:
		return usageErr("-duration %v: want 1s..10m", cfg.duration)
	case !(cfg.rate > 0) || cfg.rate > 10000:
		return usageErr("-rate %v: want 0 < rate <= 10000", cfg.rate)
	case cfg.churnInterval < 0 || cfg.filterDelay < 0:
		return usageErr("-churn-interval and -filter-delay must not be negative")
	case cfg.churnSockets < 0 || cfg.churnSockets > 1000:
		return usageErr("-churn-sockets %d: want 0..1000", cfg.churnSockets)
	case cfg.queryInterval < 100*time.Millisecond:
		return usageErr("-query-interval %v: want at least 100ms", cfg.queryInterval)
	case cfg.size < payloadHeader || cfg.size > 1400:
		return usageErr("-size %d: want %d..1400", cfg.size, payloadHeader)
	}
	lvl := slog.LevelWarn
	if verbose {
		lvl = slog.LevelDebug
	}
	cfg.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
	res, err := demo(ctx, cfg, e.stdout)
	if err != nil {
		return err
	}
	res.printSummary(e.stdout)
	if f := res.failures(); len(f) > 0 {
		return &exitError{exitCheck, fmt.Errorf("check failed: %s", strings.Join(f, "; "))}
	}
	return nil
}

// demoHost is one stack with one interface on the LAN.
type demoHost struct {
	name string
	addr netip.Addr
	ep   *memlan.Endpoint
	st   *stack.Stack
	ifc  *stack.Interface
}

// demoReceiver is a receiving host with its checked socket and churn loop.
type demoReceiver struct {
	*demoHost
	desc     string
	group    netip.Addr
	filter   membership.State
	conn     *stack.Conn
	received atomic.Uint64
	fromA    atomic.Uint64
	wrongN   atomic.Uint64
	churnOps atomic.Uint64
	lat      latencies
}

// latencies collects receive latencies; window is reset at each redraw.
type latencies struct {
	mu     sync.Mutex
	all    []time.Duration
	window []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d)
	l.window = append(l.window, d)
	l.mu.Unlock()
}

func (l *latencies) takeWindow() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.window
	l.window = nil
	return w
}

func (l *latencies) total() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

type latStats struct {
	N             int
	P50, P99, Max time.Duration
}

func summarize(d []time.Duration) latStats {
	if len(d) == 0 {
		return latStats{}
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return latStats{N: len(d), P50: q(0.50), P99: q(0.99), Max: d[len(d)-1]}
}

func (s latStats) String() string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%v / %v / %v", roundDur(s.P50), roundDur(s.P99), roundDur(s.Max))
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

// demoResult is what the summary reports; tests check it.
type demoResult struct {
	Duration    time.Duration
	Interrupted bool // stopped by SIGINT/SIGTERM before -duration
	FilterDelay time.Duration
	SentA       uint64 // per group
	SentB       uint64
	Receivers   []receiverResult
	Latency     latStats
	ChurnOps    uint64
	Requests    uint64      // filter changes the stacks asked for
	DrvCalls    uint64      // SetMulticastFilter calls counted by the NICs
	Querier     querierView // at the end of the run, before shutdown
	Final       querierView // after every stack closed
	// ReportsSent sums the IGMP reports the hosts' engines counted.
	ReportsSent uint64
}

type receiverResult struct {
	Name, Desc string
	Addr       netip.Addr
	Group      netip.Addr
	Filter     membership.State
	Received   uint64
	Expected   uint64 // datagrams sendA sent to the group
	FromA      uint64
	Wrong      uint64
	ChurnOps   uint64
	Requests   uint64
	DrvCalls   uint64
	Latency    latStats
	// IGMPVersion and ReportsSent come from the host's IGMP engine;
	// version 0 means the engine reports no protocol version at all.
	IGMPVersion int
	ReportsSent uint64
	// Learned is what the querier learned for (host, group) at the end of
	// the run; ok is false when it learned nothing.
	Learned   membership.State
	LearnedOK bool
}

func (r *demoResult) wrong() uint64 {
	var n uint64
	for _, x := range r.Receivers {
		n += x.Wrong
	}
	return n
}

// reportsHeard tells whether the querier heard any report at all; without
// one the membership checks cannot be made.
func (r *demoResult) reportsHeard() bool { return r.Final.Reports > 0 }

// failures lists the failed checks; empty means the run is ok.
func (r *demoResult) failures() []string {
	var f []string
	if n := r.wrong(); n > 0 {
		f = append(f, fmt.Sprintf("%d datagrams violated a socket's source filter", n))
	}
	for _, x := range r.Receivers {
		if x.FromA < x.Expected {
			f = append(f, fmt.Sprintf("%s lost %d of %d datagrams from an allowed source", x.Name, x.Expected-x.FromA, x.Expected))
		}
		if x.Received == 0 {
			f = append(f, fmt.Sprintf("%s received nothing", x.Name))
		}
	}
	if r.reportsHeard() {
		for _, x := range r.Receivers {
			if !x.LearnedOK || !x.Learned.Equal(x.Filter) {
				f = append(f, fmt.Sprintf("the querier learned %s for %s %s, want %s",
					learnedString(x.Learned, x.LearnedOK), x.Name, x.Group, fmtState(x.Filter)))
			}
		}
		if n := len(r.Final.Groups); n > 0 {
			f = append(f, fmt.Sprintf("the querier still holds %d memberships after every host left", n))
		}
	}
	return f
}

func learnedString(s membership.State, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmtState(s)
}

func (r *demoResult) printSummary(w io.Writer) {
	how := ""
	if r.Interrupted {
		how = " (interrupted)"
	}
	fmt.Fprintf(w, "summary after %v%s:\n", r.Duration.Round(time.Millisecond), how)
	fmt.Fprintf(w, "  sent:          sendA %d and sendB %d datagrams to each of %s, %s\n", r.SentA, r.SentB, demoSSM, demoASM)
	for _, x := range r.Receivers {
		fmt.Fprintf(w, "  %-14s %-32s received %d (from A %d of %d sent), wrongly received %d\n",
			x.Name+":", x.Desc, x.Received, x.FromA, x.Expected, x.Wrong)
	}
	fmt.Fprintf(w, "  latency:       p50 / p99 / max = %v over %d datagrams, while sockets churned\n", r.Latency, r.Latency.N)
	ratio := 0.0
	if r.DrvCalls > 0 {
		ratio = float64(r.ChurnOps) / float64(r.DrvCalls)
	}
	fmt.Fprintf(w, "  churn:         %d socket operations, %d driver filter calls (%.1f operations per call); %d filter changes requested\n",
		r.ChurnOps, r.DrvCalls, ratio, r.Requests)
	if r.FilterDelay > 0 {
		fmt.Fprintf(w, "                 one driver call per operation would have kept the NICs busy %v (at %v a call) in a %v run\n",
			(time.Duration(r.ChurnOps) * r.FilterDelay).Round(time.Second), r.FilterDelay, r.Duration.Round(time.Second))
	}
	var igmp []string
	for _, x := range r.Receivers {
		igmp = append(igmp, fmt.Sprintf("%s %s, %d reports sent", x.Name, igmpLabel(x.IGMPVersion), x.ReportsSent))
	}
	fmt.Fprintf(w, "  igmp engines:  %s\n", strings.Join(igmp, "; "))
	if !r.reportsHeard() {
		fmt.Fprintf(w, "  querier:       %d general queries sent, NO reports heard: the hosts' IGMP engines sent %d reports", r.Querier.Queries, r.ReportsSent)
		if r.noEngine() {
			fmt.Fprintf(w, " and report no protocol version (this build has a no-op IGMP engine)")
		}
		fmt.Fprintf(w, ";\n                 membership learning and final reports NOT demonstrated\n")
	} else {
		fmt.Fprintf(w, "  querier:       %d general queries sent, %d reports (%d group records) heard; learned:", r.Querier.Queries, r.Final.Reports, r.Final.Records)
		for _, x := range r.Receivers {
			mark := "ok"
			if !x.LearnedOK || !x.Learned.Equal(x.Filter) {
				mark = "WRONG"
			}
			fmt.Fprintf(w, " %s %s %s (%s);", x.Name, x.Group, learnedString(x.Learned, x.LearnedOK), mark)
		}
		fmt.Fprintf(w, "\n                 %d memberships left after every host closed its stack (final reports)\n", len(r.Final.Groups))
	}
	if f := r.failures(); len(f) > 0 {
		fmt.Fprintf(w, "  result:        FAIL: %s\n", strings.Join(f, "; "))
	} else if !r.reportsHeard() {
		fmt.Fprintf(w, "  result:        ok, no source-filter violation (querier checks skipped: no reports)\n")
	} else {
		fmt.Fprintf(w, "  result:        ok, no source-filter violation, querier learned every filter\n")
	}
}

// noEngine tells whether every receiver's IGMP engine reported version 0.
func (r *demoResult) noEngine() bool {
	for _, x := range r.Receivers {
		if x.IGMPVersion != 0 {
			return false
		}
	}
	return len(r.Receivers) > 0
}

func igmpLabel(v int) string {
	if v == 0 {
		return "igmp v?"
	}
	return fmt.Sprintf("igmpv%d", v)
}

// demo runs the LAN for cfg.duration (or until ctx ends) and returns the
// result. Live tables go to out unless cfg.quiet.
func demo(ctx context.Context, cfg demoConfig, out io.Writer) (res *demoResult, err error) {
	log := cfg.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lan := memlan.New(memlan.Options{Seed: 1, Logger: log})
	q := newQuerier(wire.MAC{0x02, 0, 0, 0, 0, 0xfe}, netip.MustParseAddr("192.0.2.254"))
	lan.Capture(func(from string, frame []byte) { q.observe(frame) })

	var hosts []*demoHost
	defer func() {
		// Stack.Close leaves every group: the final reports go out
		// before it returns. On success the stacks are closed already.
		for _, h := range hosts {
			if h.st != nil {
				if cerr := h.st.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("close %s: %w", h.name, cerr)
				}
			}
		}
		if cerr := lan.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close LAN: %w", cerr)
		}
	}()
	newHost := func(name string, last byte, delay time.Duration) (*demoHost, error) {
		addr := netip.AddrFrom4([4]byte{192, 0, 2, last})
		ep := lan.NewEndpoint(name, memlan.EndpointConfig{
			MAC:         wire.MAC{0x02, 0, 0, 0, 0, last},
			MTU:         1500,
			FilterDelay: delay,
		})
		st := stack.New(stack.Config{Logger: log.With("host", name)})
		h := &demoHost{name: name, addr: addr, ep: ep, st: st}
		hosts = append(hosts, h)
		ifc, err := st.AddInterface(ep, stack.InterfaceConfig{Name: name, Addrs: []netip.Prefix{netip.PrefixFrom(addr, demoPrefix)}})
		if err != nil {
			ep.Close()
			return nil, fmt.Errorf("%s: add interface: %w", name, err)
		}
		h.ifc = ifc
		return h, nil
	}
	sendA, err := newHost("sendA", 1, 0)
	if err != nil {
		return nil, err
	}
	sendB, err := newHost("sendB", 2, 0)
	if err != nil {
		return nil, err
	}
	recvs := []*demoReceiver{
		{desc: fmt.Sprintf("%s INCLUDE {%s} (SSM)", demoSSM, demoSrcA), group: demoSSM,
			filter: membership.State{Mode: membership.Include, Sources: []netip.Addr{demoSrcA}}},
		{desc: fmt.Sprintf("%s EXCLUDE {%s}", demoASM, demoSrcB), group: demoASM,
			filter: membership.State{Mode: membership.Exclude, Sources: []netip.Addr{demoSrcB}}},
	}
	for i, r := range recvs {
		name := []string{"recvSSM", "recvEX"}[i]
		h, err := newHost(name, byte(11+i), cfg.filterDelay)
		if err != nil {
			return nil, err
		}
		r.demoHost = h
		c, err := h.st.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), demoPort))
		if err != nil {
			return nil, fmt.Errorf("%s: listen: %w", name, err)
		}
		r.conn = c
		// One call installs the whole filter (RFC 3678 setsourcefilter):
		// no moment where the socket is joined with a wider filter.
		if err := c.SetSourceFilter(h.ifc, r.group, r.filter.Mode, r.filter.Sources); err != nil {
			return nil, fmt.Errorf("%s: join %s: %w", name, r.desc, err)
		}
	}
	// Wait until the receivers' NICs accept the groups, so that every
	// datagram sent from now on must arrive.
	for _, r := range recvs {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.ifc.Sync(sctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: wait for the NIC filter: %w", r.name, err)
		}
	}

	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	fail := func(e error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = e
		}
		errMu.Unlock()
		cancel()
	}

	// Querier: a general query now and every queryInterval.
	wg.Add(1)
	go func() {
		defer wg.Done()
		qqic := uint8(min(255, max(1, cfg.queryInterval/time.Second)))
		t := time.NewTicker(cfg.queryInterval)
		defer t.Stop()
		for {
			frame, err := q.generalQuery(10, qqic)
			if err != nil {
				fail(err)
				return
			}
			if err := lan.Inject(frame); err != nil {
				fail(fmt.Errorf("querier: inject: %w", err))
				return
			}
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	// Senders.
	var sentA, sentB atomic.Uint64
	for _, s := range []struct {
		h    *demoHost
		sent *atomic.Uint64
	}{{sendA, &sentA}, {sendB, &sentB}} {
		c, err := s.h.st.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		if err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("%s: listen: %w", s.h.name, err)
		}
		if err := c.SetMulticastInterface(s.h.ifc); err != nil {
			c.Close()
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("%s: set multicast interface: %w", s.h.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, cfg.size)
			interval := time.Duration(float64(time.Second) / cfg.rate)
			t0 := time.Now()
			timer := time.NewTimer(0)
			defer timer.Stop()
			for seq := uint64(0); ; seq++ {
				select {
				case <-runCtx.Done():
					return
				case <-timer.C:
				}
				for _, g := range []netip.Addr{demoSSM, demoASM} {
					putPayload(buf, seq, time.Now())
					if _, err := c.WriteToAddrPort(buf, netip.AddrPortFrom(g, demoPort)); err != nil {
						fail(fmt.Errorf("%s: send to %s: %w", s.h.name, g, err))
						return
					}
				}
				s.sent.Add(1)
				timer.Reset(time.Until(t0.Add(time.Duration(seq+1) * interval)))
			}
		}()
	}

	// Receivers: read and judge every datagram; churn sockets meanwhile.
	var readers sync.WaitGroup
	for i, r := range recvs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.readLoop(fail)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.churn(runCtx, cfg.churnInterval, cfg.churnSockets, uint16(6000+i), byte(2+i), fail)
		}()
	}

	// Display.
	tick := time.NewTicker(time.Second)
	var table strings.Builder
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-tick.C:
			if cfg.quiet {
				continue
			}
			table.Reset()
			if cfg.tty {
				table.WriteString("\x1b[H\x1b[2J")
			}
			writeTable(&table, time.Since(start), cfg, q, sentA.Load(), sentB.Load(), recvs)
			io.WriteString(out, table.String())
		}
	}
	tick.Stop()
	wg.Wait() // senders, churn and querier have stopped
	elapsed := time.Since(start)
	// Let the datagrams in flight land: wait until the receive counts
	// have not moved for 50 ms (at most 2 s).
	waitQuiet(recvs, 50*time.Millisecond, 2*time.Second)
	for _, r := range recvs {
		r.conn.Close()
	}
	readers.Wait()
	if firstErr != nil {
		return nil, firstErr
	}

	res = &demoResult{Duration: elapsed, Interrupted: ctx.Err() != nil, FilterDelay: cfg.filterDelay, SentA: sentA.Load(), SentB: sentB.Load(), Querier: q.view()}
	var all []time.Duration
	for _, r := range recvs {
		lat := r.lat.total()
		all = append(all, lat...)
		calls := driverCalls(r.demoHost)
		ist := r.ifc.Status()
		rr := receiverResult{
			Name: r.name, Desc: r.desc, Addr: r.addr, Group: r.group, Filter: r.filter,
			Received: r.received.Load(), FromA: r.fromA.Load(), Expected: res.SentA,
			Wrong: r.wrongN.Load(), ChurnOps: r.churnOps.Load(), Requests: ist.Driver.Requests,
			DrvCalls: calls, Latency: summarize(lat),
			IGMPVersion: ist.IGMP.Version, ReportsSent: ist.IGMP.Counters.ReportsSent,
		}
		rr.Learned, rr.LearnedOK = res.Querier.lookup(r.group, r.addr)
		res.ChurnOps += rr.ChurnOps
		res.Requests += rr.Requests
		res.DrvCalls += calls
		res.ReportsSent += rr.ReportsSent
		res.Receivers = append(res.Receivers, rr)
	}
	res.Latency = summarize(all)
	// Close the stacks now (the deferred close then does nothing more):
	// Stack.Close returns once the final reports are on the LAN, so the
	// querier has heard them when Final is taken.
	for _, h := range hosts {
		if cerr := h.st.Close(); cerr != nil {
			return nil, fmt.Errorf("close %s: %w", h.name, cerr)
		}
		h.st = nil
	}
	res.Final = q.view()
	return res, nil
}

// waitQuiet returns once no receiver's count moved for quiet, or after max.
func waitQuiet(recvs []*demoReceiver, quiet, max time.Duration) {
	count := func() uint64 {
		var n uint64
		for _, r := range recvs {
			n += r.received.Load()
		}
		return n
	}
	deadline := time.Now().Add(max)
	last, since := count(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if n := count(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}

func (r *demoReceiver) allowed(src netip.Addr) bool {
	return r.filter.Accepts(src)
}

func (r *demoReceiver) readLoop(fail func(error)) {
	buf := make([]byte, 2048)
	for {
		n, cm, err := r.conn.ReadMsg(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fail(fmt.Errorf("%s: read: %w", r.name, err))
			}
			return
		}
		now := time.Now()
		_, sent, ok := parsePayload(buf[:n])
		if !ok {
			continue
		}
		r.received.Add(1)
		src := cm.Src.Addr()
		if cm.Dst != r.group || !r.allowed(src) {
			r.wrongN.Add(1)
			continue
		}
		if src == demoSrcA {
			r.fromA.Add(1)
		}
		r.lat.add(now.Sub(sent))
	}
}

// churn opens a socket and joins a fresh group on it, then closes the
// oldest churn socket once more than keep are open, over and over until
// ctx ends. The joins and closes are the counted socket operations; each
// changes the set of MAC addresses the NIC must accept.
func (r *demoReceiver) churn(ctx context.Context, pause time.Duration, keep int, port uint16, octet byte, fail func(error)) {
	var ring []*stack.Conn
	defer func() {
		for _, c := range ring {
			c.Close()
		}
	}()
	for i := 0; ctx.Err() == nil; i++ {
		c, err := r.st.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port))
		if err != nil {
			fail(fmt.Errorf("%s: churn listen: %w", r.name, err))
			return
		}
		g := netip.AddrFrom4([4]byte{239, octet, byte(i >> 8), byte(i)})
		if err := c.JoinGroup(r.ifc, g); err != nil {
			c.Close()
			fail(fmt.Errorf("%s: churn join %s: %w", r.name, g, err))
			return
		}
		r.churnOps.Add(1)
		ring = append(ring, c)
		for len(ring) > keep {
			if err := ring[0].Close(); err != nil {
				fail(fmt.Errorf("%s: churn close: %w", r.name, err))
				return
			}
			ring = slices.Delete(ring, 0, 1)
			r.churnOps.Add(1)
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

func driverCalls(h *demoHost) uint64 { return uint64(h.ep.FilterCalls()) }

func writeTable(w io.Writer, elapsed time.Duration, cfg demoConfig, q *querier, sentA, sentB uint64, recvs []*demoReceiver) {
	qv := q.view()
	fmt.Fprintf(w, "mcast demo  %v / %v   sendA %d, sendB %d datagrams to each of %s, %s   querier: %d queries sent, %d reports heard\n\n",
		elapsed.Round(time.Second), cfg.duration, sentA, sentB, demoSSM, demoASM, qv.Queries, qv.Reports)
	fmt.Fprintf(w, "%-8s %-11s %-7s %-31s %-40s %8s %5s  %s\n",
		"HOST", "ADDR", "PROTO", "SOCKET FILTER", "INTERFACE GROUPS (mode {sources} refs)", "RECEIVED", "WRONG", "LATENCY p50 / p99 / max, last second")
	sts := make([]admin.Interface, len(recvs))
	noEngine := false
	for i, r := range recvs {
		sts[i] = statusOf("mcast demo", r.ifc).Interfaces[0]
		proto, groups := "-", []string{}
		churnGroups := 0
		for _, fam := range sts[i].Families {
			if fam.Family != "ipv4" {
				continue
			}
			proto = fam.Protocol.Name + "v?"
			if fam.Protocol.Version != 0 {
				proto = fmt.Sprintf("%sv%d", fam.Protocol.Name, fam.Protocol.Version)
			} else {
				noEngine = true
			}
			for _, g := range fam.Groups {
				if g.Group == r.group.String() {
					groups = append(groups, fmt.Sprintf("%s %s {%s} %d", g.Group, g.Mode, strings.Join(g.Sources, ","), g.Refs))
				} else {
					churnGroups++
				}
			}
		}
		if churnGroups > 0 {
			groups = append(groups, fmt.Sprintf("+%d churn", churnGroups))
		}
		fmt.Fprintf(w, "%-8s %-11s %-7s %-31s %-40s %8d %5d  %v\n",
			r.name, r.addr, proto, r.group.String()+" "+fmtState(r.filter), strings.Join(groups, " "),
			r.received.Load(), r.wrongN.Load(), summarize(r.lat.takeWindow()))
	}
	if noEngine {
		fmt.Fprintf(w, "  (igmpv? = the IGMP engine reports no version: it is a no-op in this build and sends no reports)\n")
	}
	fmt.Fprintf(w, "\n%-8s %10s %16s %13s  %s\n", "HOST", "CHURN OPS", "FILTER REQUESTS", "DRIVER CALLS", "NIC FILTER")
	for i, r := range recvs {
		d := sts[i].Driver
		nic := fmt.Sprintf("exact, %d MACs", len(d.Exact))
		if d.AllMulticast {
			nic = "all-multicast"
		}
		if d.Pending {
			nic += ", update in progress"
		}
		if d.Errors > 0 {
			nic += fmt.Sprintf(", %d errors", d.Errors)
		}
		fmt.Fprintf(w, "%-8s %10d %16d %13d  %s\n", r.name, r.churnOps.Load(), d.Requests, driverCalls(r.demoHost), nic)
	}
	names := map[netip.Addr]string{}
	for _, r := range recvs {
		names[r.addr] = r.name
	}
	if qv.Reports == 0 {
		fmt.Fprintf(w, "\nquerier (router) learned nothing: no IGMP report heard on the LAN\n\n")
		return
	}
	fmt.Fprintf(w, "\nquerier (router) learned from reports:\n")
	churn := 0
	for _, g := range qv.Groups {
		if g.Group != demoSSM && g.Group != demoASM {
			churn++
			continue
		}
		fmt.Fprintf(w, "  %-10s %-11s %-8s %s\n", g.Group, g.Host, names[g.Host], fmtState(g.State))
	}
	fmt.Fprintf(w, "  + %d churn group memberships\n\n", churn)
}

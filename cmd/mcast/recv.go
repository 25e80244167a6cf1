package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/stack"
)

const recvUsage = `
usage: mcast recv -i IFACE -a ADDR/PREFIX -g GROUP [-s SOURCE | -x SOURCE]... [-g ...]
                  [-p PORT] [-backend afpacket|tap|tun] [-igmp 1|2|3] [-mld 1|2]
                  [-quiet] [-json] [-interval 1s] [-admin SOCKET] [-metrics-listen ADDR]

Runs the stack on IFACE, joins every -g GROUP on UDP port -p and prints one
line per received datagram (-quiet: none), a summary per (source, group)
every -interval, and a final table when it exits:

    TIME SOURCE GROUP:PORT LENGTH [seq N latency D]
    2026-11-25T01:02:03.456789Z 192.0.2.2 232.1.1.1:5001 100 seq 41 latency 87µs

Sources belong to the -g they follow: "-g G -s S1 -s S2" joins G as
INCLUDE {S1,S2} (source-specific); "-g G -x S" joins G as EXCLUDE {S}; a -g
with neither is any-source (EXCLUDE {}). -exclude turns every -s into -x.
Several -g and -a are allowed; IPv4 and IPv6 groups may be mixed.

Datagrams from 'mcast send' carry a sequence number and the send time: per
(source, group) recv counts received, lost, reordered and duplicated
datagrams, the rate (datagrams/s and bit/s of UDP payload) and the one-way
latency (meaningful when sender and receiver share a clock, e.g. namespaces
of one host; "clock skew" is shown when some came out negative). Other
datagrams are counted as foreign, not sequenced. -json prints JSON lines
instead: {"type":"datagram"|"interval"|"summary", ...}.

Keep the kernel's own stack off the interface (no kernel IPv4 address, IPv6
disabled), or its replies and reports will mix with the stack's.

The stack's state is served on a unix socket (default /run/mcast-PID.sock;
-admin off disables it); 'mcast stat' reads it. Ctrl-C or SIGTERM leaves
the groups (final reports are sent) and exits 0. If the interface
disappears, recv stops with exit code 3.

-metrics-listen ADDR (HOST:PORT) serves the same Prometheus text as the
admin socket's GET /metrics over TCP, for a Prometheus server to scrape,
e.g. -metrics-listen 127.0.0.1:9464 (loopback: the metrics name the groups
and sources joined; anyone who can connect can read them). Port 0 picks a
free port; the address is printed on stderr.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 interface, permission
or admin-socket problem.
`

type recvFlags struct {
	link     linkFlags
	specs    groupSpecs
	exclude  bool
	port     uint
	admin    string
	metrics  string
	count    uint64
	duration time.Duration
	quiet    bool
	json     bool
	interval time.Duration
}

func runRecv(ctx context.Context, e *env, args []string) error {
	var f recvFlags
	fs := newFlagSet("recv")
	f.link.register(fs)
	fs.Var(groupFlag{&f.specs}, "g", "multicast `GROUP` to join; repeatable (required)")
	fs.Var(sourceFlag{&f.specs, false}, "s", "`SOURCE` to include for the -g it follows (source-specific join); repeatable")
	fs.Var(sourceFlag{&f.specs, true}, "x", "`SOURCE` to exclude for the -g it follows (EXCLUDE mode); repeatable")
	fs.BoolVar(&f.exclude, "exclude", false, "treat every -s as -x (EXCLUDE mode)")
	fs.UintVar(&f.port, "p", 5001, "UDP `port` to receive on")
	fs.StringVar(&f.admin, "admin", "", "admin unix `socket` path (default /run/mcast-PID.sock, or $TMPDIR when /run is not writable; \"off\" disables)")
	fs.StringVar(&f.metrics, "metrics-listen", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics (e.g. 127.0.0.1:9464; default: not served)")
	fs.Uint64Var(&f.count, "count", 0, "exit after `N` datagrams (0: run until interrupted)")
	fs.DurationVar(&f.duration, "duration", 0, "exit after this `time` (0: run until interrupted)")
	fs.BoolVar(&f.quiet, "quiet", false, "no line per datagram (summaries and the final table only)")
	fs.BoolVar(&f.json, "json", false, "print JSON lines instead of text")
	fs.DurationVar(&f.interval, "interval", 0, "print a summary per (source, group) every `interval` (0: only at exit)")
	if err := parse(e, fs, recvUsage, args); err != nil {
		return err
	}
	plan, err := f.plan()
	if err != nil {
		return err
	}
	if err := f.link.validate(f.specs.groups()); err != nil {
		return err
	}
	ms, err := listenMetrics(f.metrics)
	if err != nil {
		return err
	}
	defer ms.close()
	warnVersions(e, &f.link, plan)
	log := f.link.logger(e.stderr)
	h, err := f.link.open(log)
	if err != nil {
		return err
	}
	r := &receiver{e: e, host: h, flows: map[flowKey]*flow{}, json: f.json, quiet: f.quiet}
	ms.serve(e.stderr, r.status)
	err = r.run(ctx, &f, plan)
	if cerr := ms.close(); cerr != nil && err == nil { // before the stack it reads closes
		err = cerr
	}
	if cerr := h.close(); cerr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", cerr)
	}
	r.printTable()
	// The totals come after the error message, if any.
	e.trailer = fmt.Sprintf("mcast recv: %d datagrams, %d bytes received", r.datagrams.Load(), r.bytes.Load())
	return err
}

// warnVersions says when a pinned protocol version cannot carry the
// source filters asked for: IGMPv1/v2 and MLDv1 reports name only the
// group, so routers forward every source; the filter still applies in
// the stack.
func warnVersions(e *env, lf *linkFlags, plans []joinPlan) {
	for _, p := range plans {
		if len(p.sources) == 0 {
			continue
		}
		switch {
		case p.group.Is4() && (lf.igmp == 1 || lf.igmp == 2):
			fmt.Fprintf(e.stderr, "mcast recv: warning: IGMPv%d reports cannot carry sources: routers will forward every source of %s; the filter %s %v applies only in the stack\n", lf.igmp, p.group, p.mode, p.sources)
		case !p.group.Is4() && lf.mld == 1:
			fmt.Fprintf(e.stderr, "mcast recv: warning: MLDv1 reports cannot carry sources: routers will forward every source of %s; the filter %s %v applies only in the stack\n", p.group, p.mode, p.sources)
		}
	}
}

// groupSpec is one -g with the -s/-x that follow it.
type groupSpec struct {
	group   netip.Addr
	include []netip.Addr
	exclude []netip.Addr
}

// groupSpecs collects -g, -s and -x in command-line order.
type groupSpecs struct {
	list   []groupSpec
	orphan []string // sources given before the first -g
}

func (g *groupSpecs) groups() []netip.Addr {
	out := make([]netip.Addr, len(g.list))
	for i, s := range g.list {
		out[i] = s.group
	}
	return out
}

type groupFlag struct{ specs *groupSpecs }

func (f groupFlag) String() string {
	if f.specs == nil {
		return ""
	}
	return joinStrings(f.specs.groups())
}

func (f groupFlag) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	f.specs.list = append(f.specs.list, groupSpec{group: a.Unmap()})
	return nil
}

type sourceFlag struct {
	specs   *groupSpecs
	exclude bool
}

func (f sourceFlag) String() string { return "" }

func (f sourceFlag) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	a = a.Unmap()
	if len(f.specs.list) == 0 {
		f.specs.orphan = append(f.specs.orphan, s)
		return nil
	}
	last := &f.specs.list[len(f.specs.list)-1]
	if f.exclude {
		last.exclude = append(last.exclude, a)
	} else {
		last.include = append(last.include, a)
	}
	return nil
}

// joinPlan is the filter to install for one group.
type joinPlan struct {
	group   netip.Addr
	mode    membership.Mode
	sources []netip.Addr
}

// plan checks the groups and sources (every mistake is a usage error,
// found before any link is opened) and returns the filter of each group.
func (f *recvFlags) plan() ([]joinPlan, error) {
	if len(f.specs.orphan) > 0 {
		return nil, usageErr("source %s given before any -g: each -s/-x applies to the -g it follows", f.specs.orphan[0])
	}
	if len(f.specs.list) == 0 {
		return nil, usageErr("at least one -g GROUP is required")
	}
	if f.port == 0 || f.port > 65535 {
		return nil, usageErr("-p %d: want a port in 1..65535", f.port)
	}
	seen := map[netip.Addr]bool{}
	var plans []joinPlan
	anySources := false
	for _, spec := range f.specs.list {
		g := spec.group
		if !g.IsMulticast() {
			return nil, usageErr("-g %s is not a multicast group", g)
		}
		if seen[g] {
			return nil, usageErr("-g %s given twice", g)
		}
		seen[g] = true
		inc, exc := spec.include, spec.exclude
		if f.exclude {
			inc, exc = nil, append(slices.Clone(exc), inc...)
		}
		if len(inc) > 0 && len(exc) > 0 {
			return nil, usageErr("-g %s: both -s (include) and -x (exclude) sources; a group's filter is one or the other", g)
		}
		p := joinPlan{group: g, mode: membership.Exclude, sources: exc}
		if len(inc) > 0 {
			p.mode, p.sources = membership.Include, inc
		}
		dup := map[netip.Addr]bool{}
		for _, s := range p.sources {
			if !s.IsValid() || s.IsMulticast() || s.IsUnspecified() || s.IsLoopback() {
				return nil, usageErr("-g %s: source %s is not a unicast source address", g, s)
			}
			if s.Is4() != g.Is4() {
				return nil, usageErr("-g %s: source %s is of the other address family", g, s)
			}
			if dup[s] {
				return nil, usageErr("-g %s: source %s given twice", g, s)
			}
			dup[s] = true
			anySources = true
		}
		plans = append(plans, p)
	}
	if f.exclude && !anySources {
		return nil, usageErr("-exclude needs at least one -s SOURCE")
	}
	if f.interval < 0 {
		return nil, usageErr("-interval must not be negative")
	}
	return plans, nil
}

type receiver struct {
	e     *env
	host  *host
	json  bool
	quiet bool

	// mu guards flows and serializes output lines; the read loops hold it
	// once per batch of datagrams, the reporter to print. Nobody blocks
	// while holding it except on the output stream.
	mu    sync.Mutex
	flows map[flowKey]*flow

	datagrams atomic.Uint64
	bytes     atomic.Uint64
}

// status is the snapshot the admin socket and the metrics server serve.
func (r *receiver) status() admin.Status {
	st := statusOf("mcast recv", r.host.ifc)
	st.App.DatagramsReceived = r.datagrams.Load()
	st.App.BytesReceived = r.bytes.Load()
	return st
}

func (r *receiver) run(ctx context.Context, f *recvFlags, plans []joinPlan) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, f.duration)
		defer c2()
	}
	conns := map[bool]*stack.Conn{} // by Is4
	defer func() {
		// Closing a socket leaves its groups at once; the stack sends
		// the reports from its interface worker.
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, p := range plans {
		c := conns[p.group.Is4()]
		if c == nil {
			netw, any := "udp6", netip.IPv6Unspecified()
			if p.group.Is4() {
				netw, any = "udp4", netip.IPv4Unspecified()
			}
			var err error
			c, err = r.host.st.ListenUDP(netw, netip.AddrPortFrom(any, uint16(f.port)))
			if err != nil {
				return fmt.Errorf("listen %s port %d: %w", netw, f.port, err)
			}
			// Room for bursts at IPTV rates while the output is slow.
			if err := c.SetReadBuffer(8 << 20); err != nil {
				return fmt.Errorf("set read buffer: %w", err)
			}
			conns[p.group.Is4()] = c
		}
		if err := join(c, r.host.ifc, p); err != nil {
			return err
		}
	}

	if f.admin != "off" {
		path := f.admin
		if path == "" {
			path = admin.DefaultSocketPath(os.Getpid())
		}
		srv, err := admin.Listen(path, r.status)
		if err != nil {
			return ifaceErr(err)
		}
		defer srv.Close()
		fmt.Fprintf(r.e.stderr, "mcast recv: admin socket %s\n", path)
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(conns)+1)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.readLoop(c, f.port, f.count, cancel); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	var tick <-chan time.Time
	if f.interval > 0 {
		t := time.NewTicker(f.interval)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-r.host.ifc.Done():
			st := r.host.ifc.LinkState()
			errc <- ifaceErr(fmt.Errorf("interface %s is gone (%s)", r.host.ifc.Name(), st))
			break wait
		case <-tick:
			r.printIntervals(time.Now())
		}
	}
	for _, c := range conns {
		c.Close() // unblocks ReadBatch
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func join(c *stack.Conn, ifc *stack.Interface, p joinPlan) error {
	var err error
	switch {
	case p.mode == membership.Include:
		for _, s := range p.sources {
			if err = c.JoinSourceSpecificGroup(ifc, p.group, s); err != nil {
				return fmt.Errorf("join %s source %s: %w", p.group, s, err)
			}
		}
		return nil
	case len(p.sources) == 0:
		err = c.JoinGroup(ifc, p.group)
	default:
		if err = c.JoinGroup(ifc, p.group); err == nil {
			err = c.SetSourceFilter(ifc, p.group, membership.Exclude, p.sources)
		}
	}
	if err != nil {
		return fmt.Errorf("join %s (%s %v): %w", p.group, p.mode, p.sources, err)
	}
	return nil
}

// recvBatch is how many datagrams one ReadBatch takes at most.
const recvBatch = 64

func (r *receiver) readLoop(c *stack.Conn, port uint, limit uint64, done func()) error {
	ms := make([]stack.Message, recvBatch)
	for i := range ms {
		ms[i].Buf = make([]byte, 65536)
	}
	out := bufio.NewWriterSize(r.e.stdout, 64<<10)
	var line []byte
	for {
		n, err := c.ReadBatch(ms)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		now := time.Now()
		stop := false
		r.mu.Lock()
		for i := range ms[:n] {
			m := &ms[i]
			key := flowKey{m.Src.Addr(), m.Dst}
			fl := r.flows[key]
			if fl == nil {
				fl = &flow{key: key}
				r.flows[key] = fl
			}
			seq, sent, ok := parsePayload(m.Buf[:m.N])
			fl.add(now, m.N, seq, sent, ok)
			if !r.quiet {
				line = r.datagramLine(line[:0], now, m, port, seq, now.Sub(sent), ok)
				out.Write(line)
			}
			r.bytes.Add(uint64(m.N))
			if got := r.datagrams.Add(1); limit > 0 && got >= limit {
				stop = true
				break
			}
		}
		out.Flush()
		r.mu.Unlock()
		if stop {
			done()
			return nil
		}
	}
}

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// datagramLine appends the line for one datagram to b.
func (r *receiver) datagramLine(b []byte, now time.Time, m *stack.Message, port uint, seq uint64, lat time.Duration, ok bool) []byte {
	dst := netip.AddrPortFrom(m.Dst, uint16(port))
	if r.json {
		b = append(b, `{"type":"datagram","time":"`...)
		b = now.UTC().AppendFormat(b, timeLayout)
		b = append(b, `","source":"`...)
		b = m.Src.Addr().AppendTo(b)
		b = append(b, `","group":"`...)
		b = m.Dst.AppendTo(b)
		b = append(b, `","port":`...)
		b = strconv.AppendUint(b, uint64(port), 10)
		b = append(b, `,"length":`...)
		b = strconv.AppendInt(b, int64(m.N), 10)
		if ok {
			b = append(b, `,"seq":`...)
			b = strconv.AppendUint(b, seq, 10)
			b = append(b, `,"latency_us":`...)
			b = strconv.AppendFloat(b, float64(lat)/1e3, 'f', 1, 64)
		}
		return append(b, "}\n"...)
	}
	b = now.UTC().AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = m.Src.Addr().AppendTo(b)
	b = append(b, ' ')
	b = dst.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.N), 10)
	if ok {
		b = append(b, " seq "...)
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, " latency "...)
		b = append(b, lat.Round(time.Microsecond).String()...)
	}
	return append(b, '\n')
}

// printIntervals prints one summary per flow that received something
// since the previous one.
func (r *receiver) printIntervals(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fl := range sortedFlows(r.flows) {
		if fl.received == fl.ivReceived {
			fl.interval(now) // restart the interval: nothing to say
			continue
		}
		rep := fl.interval(now)
		if r.json {
			r.printJSON("interval", now, rep)
			continue
		}
		fmt.Fprintf(r.e.stdout, "%s interval %s -> %s: %s\n", now.UTC().Format(timeLayout), rep.Source, rep.Group, textReport(rep))
	}
}

func (r *receiver) printJSON(typ string, now time.Time, rep flowReport) {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		Time string `json:"time"`
		flowReport
	}{typ, now.UTC().Format(timeLayout), rep})
	r.e.stdout.Write(append(b, '\n'))
}

func textReport(r flowReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "received %d lost %d reordered %d duplicated %d", r.Received, r.Lost, r.Reordered, r.Duplicated)
	if r.Foreign > 0 {
		fmt.Fprintf(&b, " foreign %d", r.Foreign)
	}
	fmt.Fprintf(&b, ", %.0f datagrams/s %s", r.PPS, bitRate(r.BitsPerSec))
	if r.LatencyP50 != nil {
		fmt.Fprintf(&b, ", latency p50 %s p99 %s max %s", usString(*r.LatencyP50), usString(*r.LatencyP99), usString(*r.LatencyMax))
	}
	if r.ClockSkew {
		b.WriteString(" (clock skew: sender and receiver clocks differ)")
	}
	return b.String()
}

func usString(us float64) string {
	return time.Duration(us * 1e3).Round(time.Microsecond).String()
}

func bitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.1f kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", bps)
}

// printTable prints the final per-(source, group) statistics: a table, or
// a "summary" JSON line per flow.
func (r *receiver) printTable() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	flows := sortedFlows(r.flows)
	if r.json {
		for _, fl := range flows {
			r.printJSON("summary", now, fl.total(now))
		}
		return
	}
	if len(flows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(r.e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tGROUP\tRECEIVED\tLOST\tREORDERED\tDUPLICATED\tFOREIGN\tDATAGRAMS/S\tBIT/S\tLAT P50\tLAT P99\tLAT MAX\t")
	for _, fl := range flows {
		rep := fl.total(now)
		lat := [3]string{"-", "-", "-"}
		if rep.LatencyP50 != nil {
			lat = [3]string{usString(*rep.LatencyP50), usString(*rep.LatencyP99), usString(*rep.LatencyMax)}
			if rep.ClockSkew {
				lat[2] += " (skew)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", rep.Source, rep.Group, rep.Received, rep.Lost,
			rep.Reordered, rep.Duplicated, rep.Foreign, rep.PPS, bitRate(rep.BitsPerSec), lat[0], lat[1], lat[2])
	}
	tw.Flush()
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/clock"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/link/mux"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

const emulateUsage = `
usage: mcast emulate -i IFACE --hosts N --addrs PREFIX[,PREFIX6]
                     [--scenario join-ramp|leave-ramp|zap] [--groups N] [--group-base G]
                     [--groups-per-host K] [--rate OPS] [--sources S+N|S,S,...]
                     [--filter include:K|exclude:K|asm|mixed:K] [--filter-file FILE]
                     [--igmp 3|2|1|2,3] [--mld 2|1|1,2] [--csv FILE] [--png FILE]
                     [--backend afpacket|memlan] [--hold D] [--leave-window D]

Emulates N complete multicast hosts on one interface — each a full mcstack
stack with its own MAC (locally administered, 02:..), address, IGMP/MLD
engines and a socket on --port — to load-test what is upstream: a snooping
switch, a multicast router. Host i gets address i+1 of each --addrs prefix.

Scenarios (each membership call is one "op", paced at --rate ops/s):
  join-ramp   every host joins its --groups-per-host groups of the pool of
              --groups groups from --group-base
  leave-ramp  the hosts join all groups at once, then leave them at --rate
  zap         every host watches one group; then --zaps channel changes,
              each a host leaving its group and joining another (IPTV zapping)

Source filters: --sources is the sender's source set (S+N: N addresses from
S; or a list). --filter gives each (host, group) a filter over it:
include:K lists K sources (rotating with host and group), exclude:K
excludes K, asm is EXCLUDE {}, mixed:K alternates include:K and exclude:K
between hosts. --filter-file overrides it per host, one line per range:
"FIRST[-LAST] include|exclude [SRC,...]". --igmp/--mld force a version,
or cycle through a list over the hosts ("2,3": even hosts v2, odd v3).

Measured at the port, per event (see the README for the method): join
latency, host's first report -> first datagram of that (S,G); leave latency,
leave report -> last datagram of the (S,G) once no host wants it; datagrams
of groups no host joined (flood) and of sources the members' filters exclude
(excluded). Percentiles go to stdout, one CSV line per event to --csv, a
plot to --png, a live progress line to stderr.

Backends: afpacket (-i an existing interface; needs CAP_NET_RAW; the port
is put in all-multicast to see floods; the device under test and a sender,
e.g. 'mcast send', are upstream) and memlan (no root: an in-memory LAN with
a model device that queries, snoops and sends --pps datagrams per (S,G);
--dut-flood makes it flood like a switch without snooping).

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 interface problem.
`

// emuConfig is a parsed command line.
type emuConfig struct {
	iface         string
	backend       string
	hosts         int
	addrs         []netip.Prefix
	scenario      string
	groups        int
	groupBase     netip.Addr
	perHost       int
	rate          float64
	sources       []netip.Addr
	filter        filterSpec
	overrides     []filterOverride
	igmp, mld     []int
	port          uint16
	zaps          int
	hold          time.Duration
	leaveWindow   time.Duration
	respMargin    time.Duration
	settle        time.Duration
	pps           float64
	size          int
	queryInterval time.Duration
	dutFlood      bool
	csvPath       string
	pngPath       string
	quiet         bool
	tty           bool
	seed          uint64
	log           *slog.Logger

	// openParent opens the afpacket parent; tests replace it to open the
	// socket inside a namespace. nil: afpacket.Open.
	openParent func(iface string, log *slog.Logger) (link.Endpoint, error)
	// onDone, when set, is called after the scenario and its hold, before
	// the hosts leave (tests read the device's state there).
	onDone func()
}

// filterSpec is the --filter pattern.
type filterSpec struct {
	mode  membership.Mode
	k     int
	mixed bool
}

type filterOverride struct {
	first, last int
	mode        membership.Mode
	sources     []netip.Addr
}

// defaultResponseMargin: the emulated hosts share the machine's cores, so
// one query reaches them one after the other (about 5 µs per host: 50 ms
// for 10,000) and their timers fire late under load; a host that drew a
// delay at the very end of the Max Resp Time would answer after it. The
// hosts schedule their answers within the MRT less this margin.
const defaultResponseMargin = 250 * time.Millisecond

func runEmulate(ctx context.Context, e *env, args []string) error {
	cfg, err := parseEmulateArgs(e, args)
	if err != nil {
		return err
	}
	res, err := emulate(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	res.printSummary(e.stdout)
	if cfg.csvPath != "" {
		if err := writeEventsCSV(cfg.csvPath, res); err != nil {
			return fmt.Errorf("write %s: %w", cfg.csvPath, err)
		}
	}
	if cfg.pngPath != "" {
		if err := plotEvents(cfg.pngPath, res); err != nil {
			return fmt.Errorf("plot %s: %w", cfg.pngPath, err)
		}
	}
	return nil
}

// parseEmulateArgs parses and checks the command line.
func parseEmulateArgs(e *env, args []string) (emuConfig, error) {
	cfg := emuConfig{tty: e.tty}
	var (
		addrs, sources, filter, igmp, mld, filterFile, groupBase string
		port                                                     uint
		verbose                                                  bool
	)
	fs := newFlagSet("emulate")
	fs.StringVar(&cfg.iface, "i", "", "`IFACE` to emulate the hosts on (afpacket); a name for the memlan port")
	fs.StringVar(&cfg.backend, "backend", "afpacket", "`backend`: afpacket or memlan")
	fs.IntVar(&cfg.hosts, "hosts", 100, "number of emulated `hosts`")
	fs.StringVar(&addrs, "addrs", "", "host address `prefixes`, comma-separated, at most one IPv4 and one IPv6 (memlan default 198.51.100.0/22,2001:db8:1::/64)")
	fs.StringVar(&cfg.scenario, "scenario", "join-ramp", "join-ramp, leave-ramp or zap")
	fs.IntVar(&cfg.groups, "groups", 10, "size of the group `pool`")
	fs.StringVar(&groupBase, "group-base", "232.1.0.0", "first `group` of the pool (IPv4 or IPv6; its family picks IGMP or MLD)")
	fs.IntVar(&cfg.perHost, "groups-per-host", 1, "groups each host joins (join-ramp, leave-ramp)")
	fs.Float64Var(&cfg.rate, "rate", 1000, "membership `ops` per second (0: as fast as possible)")
	fs.StringVar(&sources, "sources", "", "sender `sources`: S+N or S,S,... (default 192.0.2.1+2, or 2001:db8::1+2 for IPv6 groups)")
	fs.StringVar(&filter, "filter", "include:1", "per-host source `filter`: include:K, exclude:K, asm or mixed:K")
	fs.StringVar(&filterFile, "filter-file", "", "`file` of per-host filters overriding -filter")
	fs.StringVar(&igmp, "igmp", "3", "IGMP `versions` forced per host, cycled: 1, 2, 3 or a list like 2,3")
	fs.StringVar(&mld, "mld", "2", "MLD `versions` forced per host, cycled: 1, 2 or a list")
	fs.UintVar(&port, "port", 5001, "UDP `port` the hosts' sockets listen on (and the memlan sender sends to)")
	fs.IntVar(&cfg.zaps, "zaps", 0, "channel changes in the zap scenario (0: one per host)")
	fs.DurationVar(&cfg.respMargin, "response-margin", defaultResponseMargin, "part of a query's Max Resp Time the hosts keep for their own latency (proto.Config.ResponseMargin; capped at half the MRT)")
	fs.DurationVar(&cfg.hold, "hold", 2*time.Second, "keep measuring this long after the last op")
	fs.DurationVar(&cfg.leaveWindow, "leave-window", 3*time.Second, "after a leave report, datagrams of the (S,G) count toward the leave latency this long; later ones are flooding")
	fs.DurationVar(&cfg.settle, "settle", 10*time.Second, "leave-ramp and zap: wait at most this long for the setup joins to get traffic")
	fs.Float64Var(&cfg.pps, "pps", 50, "memlan: datagrams per second of each forwarded (S,G)")
	fs.IntVar(&cfg.size, "size", 64, "memlan: UDP payload `bytes`")
	fs.DurationVar(&cfg.queryInterval, "query-interval", 10*time.Second, "memlan: General Query interval")
	fs.BoolVar(&cfg.dutFlood, "dut-flood", false, "memlan: the model device floods every datagram (no snooping)")
	fs.StringVar(&cfg.csvPath, "csv", "", "write one line per event to `FILE`")
	fs.StringVar(&cfg.pngPath, "png", "", "plot the latencies to `FILE` (PNG)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress line")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the zap scenario's choices")
	fs.BoolVar(&verbose, "v", false, "log stack debug events to stderr")
	if err := parse(e, fs, emulateUsage, args); err != nil {
		return cfg, err
	}
	if err := cfg.finish(addrs, sources, filter, filterFile, igmp, mld, groupBase, port); err != nil {
		return cfg, err
	}
	lvl := slog.LevelWarn
	if verbose {
		lvl = slog.LevelDebug
	}
	cfg.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
	return cfg, nil
}

// finish validates the flags and fills in the parsed values.
func (cfg *emuConfig) finish(addrs, sources, filter, filterFile, igmp, mld, groupBase string, port uint) error {
	switch cfg.backend {
	case "afpacket":
		if cfg.iface == "" {
			return usageErr("-i IFACE is required with the afpacket backend")
		}
		if addrs == "" {
			return usageErr("--addrs is required with the afpacket backend")
		}
	case "memlan":
		if cfg.iface == "" {
			cfg.iface = "emu0"
		}
		if addrs == "" {
			addrs = "198.51.100.0/22,2001:db8:1::/64"
		}
	default:
		return usageErr("--backend %q: want afpacket or memlan", cfg.backend)
	}
	if cfg.hosts < 1 || cfg.hosts > mux.MaxEndpoints {
		return usageErr("--hosts %d: want 1..%d", cfg.hosts, mux.MaxEndpoints)
	}
	var have4, have6 bool
	for _, s := range strings.Split(addrs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || p.Addr().IsMulticast() || p.Addr().Is4In6() {
			return usageErr("--addrs %q: want unicast ADDR/PREFIX", s)
		}
		p = p.Masked()
		if (p.Addr().Is4() && have4) || (p.Addr().Is6() && have6) {
			return usageErr("--addrs: at most one IPv4 and one IPv6 prefix")
		}
		have4, have6 = have4 || p.Addr().Is4(), have6 || p.Addr().Is6()
		if room := p.Addr().BitLen() - p.Bits(); room < 63 && uint64(cfg.hosts)+1 >= 1<<room {
			return usageErr("--addrs %v holds fewer than %d host addresses", p, cfg.hosts)
		}
		cfg.addrs = append(cfg.addrs, p)
	}
	switch cfg.scenario {
	case "join-ramp", "leave-ramp", "zap":
	default:
		return usageErr("--scenario %q: want join-ramp, leave-ramp or zap", cfg.scenario)
	}
	g, err := netip.ParseAddr(groupBase)
	if err != nil || !g.IsMulticast() {
		return usageErr("--group-base %q: want a multicast address", groupBase)
	}
	cfg.groupBase = g
	if (g.Is4() && !have4) || (g.Is6() && !have6) {
		return usageErr("--group-base %v needs an %s prefix in --addrs", g, family(g))
	}
	if cfg.groups < 1 || cfg.groups > 1<<20 {
		return usageErr("--groups %d: want 1..%d", cfg.groups, 1<<20)
	}
	if cfg.perHost < 1 || cfg.perHost > cfg.groups {
		return usageErr("--groups-per-host %d: want 1..--groups (%d)", cfg.perHost, cfg.groups)
	}
	if cfg.scenario == "zap" && cfg.groups < 2 {
		return usageErr("--scenario zap needs --groups 2 or more")
	}
	if !(cfg.rate >= 0) {
		return usageErr("--rate %v: want >= 0", cfg.rate)
	}
	if sources == "" {
		sources = "192.0.2.1+2"
		if g.Is6() {
			sources = "2001:db8::1+2"
		}
	}
	if cfg.sources, err = parseSources(sources); err != nil {
		return usageErr("--sources: %v", err)
	}
	for _, s := range cfg.sources {
		if s.Is4() != g.Is4() {
			return usageErr("--sources %v: not the family of the groups (%v)", s, g)
		}
	}
	if cfg.filter, err = parseFilter(filter, len(cfg.sources)); err != nil {
		return usageErr("--filter: %v", err)
	}
	if filterFile != "" {
		if cfg.overrides, err = readFilterFile(filterFile); err != nil {
			return usageErr("--filter-file: %v", err)
		}
	}
	if cfg.igmp, err = parseVersions(igmp, 3); err != nil {
		return usageErr("--igmp: %v", err)
	}
	if cfg.mld, err = parseVersions(mld, 2); err != nil {
		return usageErr("--mld: %v", err)
	}
	if port == 0 || port > 65535 {
		return usageErr("--port %d: want 1..65535", port)
	}
	cfg.port = uint16(port)
	if cfg.zaps < 0 {
		return usageErr("--zaps must not be negative")
	}
	if cfg.zaps == 0 {
		cfg.zaps = cfg.hosts
	}
	switch {
	case cfg.hold < 0 || cfg.leaveWindow < 0 || cfg.settle < 0 || cfg.respMargin < 0:
		return usageErr("--hold, --leave-window, --settle and --response-margin must not be negative")
	case !(cfg.pps > 0) || cfg.pps > 10000:
		return usageErr("--pps %v: want 0 < pps <= 10000", cfg.pps)
	case cfg.size < 0 || cfg.size > 1400:
		return usageErr("--size %d: want 0..1400", cfg.size)
	case cfg.queryInterval < 100*time.Millisecond:
		return usageErr("--query-interval %v: want at least 100ms", cfg.queryInterval)
	}
	return nil
}

// parseSources parses "S+N" or "S,S,...".
func parseSources(s string) ([]netip.Addr, error) {
	if base, n, ok := strings.Cut(s, "+"); ok {
		a, err := netip.ParseAddr(base)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", base, err)
		}
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 || k > 4096 {
			return nil, fmt.Errorf("%q: want a count 1..4096 after +", n)
		}
		out := make([]netip.Addr, k)
		for i := range out {
			out[i] = addrAdd(a, uint64(i))
		}
		return checkUnicast(out)
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, a.Unmap())
	}
	return checkUnicast(out)
}

func checkUnicast(as []netip.Addr) ([]netip.Addr, error) {
	seen := map[netip.Addr]bool{}
	for _, a := range as {
		if a.IsMulticast() || a.IsUnspecified() {
			return nil, fmt.Errorf("%v is not a unicast source", a)
		}
		if seen[a] {
			return nil, fmt.Errorf("%v given twice", a)
		}
		seen[a] = true
	}
	return as, nil
}

func parseFilter(s string, nsrc int) (filterSpec, error) {
	if s == "asm" {
		return filterSpec{mode: membership.Exclude}, nil
	}
	kind, n, ok := strings.Cut(s, ":")
	k, err := strconv.Atoi(n)
	if !ok || err != nil || k < 0 || k > nsrc {
		return filterSpec{}, fmt.Errorf("%q: want include:K, exclude:K, asm or mixed:K with K in 0..%d (the number of sources)", s, nsrc)
	}
	switch kind {
	case "include":
		if k == 0 {
			return filterSpec{}, fmt.Errorf("%q: include:0 joins nothing", s)
		}
		return filterSpec{mode: membership.Include, k: k}, nil
	case "exclude":
		return filterSpec{mode: membership.Exclude, k: k}, nil
	case "mixed":
		if k == 0 {
			return filterSpec{}, fmt.Errorf("%q: mixed:0 would include nothing", s)
		}
		return filterSpec{mode: membership.Include, k: k, mixed: true}, nil
	}
	return filterSpec{}, fmt.Errorf("%q: unknown filter kind %q", s, kind)
}

// readFilterFile reads "FIRST[-LAST] include|exclude [SRC,...]" lines;
// blank lines and lines starting with # are skipped.
func readFilterFile(path string) ([]filterOverride, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []filterOverride
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("line %d: want FIRST[-LAST] include|exclude [SRC,...]", ln)
		}
		var o filterOverride
		a, b, isRange := strings.Cut(fields[0], "-")
		if o.first, err = strconv.Atoi(a); err != nil || o.first < 0 {
			return nil, fmt.Errorf("line %d: bad host %q", ln, a)
		}
		o.last = o.first
		if isRange {
			if o.last, err = strconv.Atoi(b); err != nil || o.last < o.first {
				return nil, fmt.Errorf("line %d: bad host range %q", ln, fields[0])
			}
		}
		switch fields[1] {
		case "include":
			o.mode = membership.Include
		case "exclude":
			o.mode = membership.Exclude
		default:
			return nil, fmt.Errorf("line %d: mode %q: want include or exclude", ln, fields[1])
		}
		if len(fields) == 3 {
			if o.sources, err = parseSources(fields[2]); err != nil {
				return nil, fmt.Errorf("line %d: %w", ln, err)
			}
		}
		if o.mode == membership.Include && len(o.sources) == 0 {
			return nil, fmt.Errorf("line %d: include with no sources joins nothing", ln)
		}
		out = append(out, o)
	}
	return out, sc.Err()
}

func parseVersions(s string, maxV int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > maxV {
			return nil, fmt.Errorf("%q: want versions 1..%d", f, maxV)
		}
		out = append(out, v)
	}
	return out, nil
}

// addrAdd returns a + n.
func addrAdd(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	carry := n
	for i := 15; i >= 0 && carry > 0; i-- {
		s := uint64(b[i]) + carry&0xff
		b[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	r := netip.AddrFrom16(b)
	if a.Is4() {
		return r.Unmap()
	}
	return r
}

// filterFor is host h's filter for the gi-th group of the pool.
func (cfg *emuConfig) filterFor(h, gi int) membership.State {
	for _, o := range cfg.overrides {
		if h >= o.first && h <= o.last {
			return membership.State{Mode: o.mode, Sources: o.sources}
		}
	}
	mode := cfg.filter.mode
	if cfg.filter.mixed && h%2 == 1 {
		mode = membership.Exclude
	}
	n := len(cfg.sources)
	srcs := make([]netip.Addr, 0, cfg.filter.k)
	for k := range cfg.filter.k {
		srcs = append(srcs, cfg.sources[(h+gi+k)%n])
	}
	sortAddrs(srcs)
	return membership.State{Mode: mode, Sources: srcs}
}

// group is the gi-th group of the pool.
func (cfg *emuConfig) group(gi int) netip.Addr { return addrAdd(cfg.groupBase, uint64(gi)) }

// emuHost is one emulated host.
type emuHost struct {
	i       int
	version int // IGMP or MLD version of the groups' family
	st      *stack.Stack
	ifc     *stack.Interface
	conn    *stack.Conn
	current int // zap: the group index watched
}

// hostEndpoint is a host's virtual endpoint, with its transmitted reports
// shown to the tracker.
type hostEndpoint struct {
	*mux.Endpoint
	host int
	tr   *tracker
}

func (e *hostEndpoint) WriteFrame(f []byte) error {
	e.tr.observeTx(e.host, f)
	return e.Endpoint.WriteFrame(f)
}

// emuResult is what a run measured; the summary, CSV and plot show it.
type emuResult struct {
	cfg         *emuConfig
	start       time.Time
	events      []*event
	ops         int // membership calls, setup included
	rampOps     int // those of the measured phase (over rampTime)
	opErrors    int
	firstOpErr  error
	rampTime    time.Duration
	datagrams   uint64
	flood       uint64
	excluded    uint64
	floodGroups int
	reports     uint64
	mux         mux.Stats
	interrupted bool
	setupTime   time.Duration
	// Learned is what the memlan model device held at the end of the
	// scenario (before the hosts closed); -1 on afpacket.
	learned int
}

// emulate runs one scenario. Progress goes to progressW.
func emulate(ctx context.Context, cfg emuConfig, progressW io.Writer) (*emuResult, error) {
	clk := clock.Real{}
	tr := newTracker(cfg.sources, cfg.leaveWindow, time.Now)
	var groups []netip.Addr
	for gi := range cfg.groups {
		groups = append(groups, cfg.group(gi))
	}

	// The port.
	var (
		parent link.Endpoint
		dev    *modelDevice
		lan    *memlan.LAN
	)
	switch cfg.backend {
	case "memlan":
		lan = memlan.New(memlan.Options{QueueLen: 8192})
		defer lan.Close()
		// Filter capacity 1: the hosts always need all-systems and
		// all-nodes, so the port runs in all-multicast and sees floods.
		parent = lan.NewEndpoint(cfg.iface, memlan.EndpointConfig{MAC: wire.MAC{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}, FilterCapacity: 1})
		dev = newModelDevice(lan, groups, cfg.sources, cfg.port, cfg.pps, cfg.size, cfg.dutFlood, cfg.queryInterval)
	default:
		open := cfg.openParent
		if open == nil {
			open = func(iface string, log *slog.Logger) (link.Endpoint, error) {
				return afpacket.Open(iface, afpacket.Options{FilterCapacity: 1, Logger: log})
			}
		}
		ep, err := open(cfg.iface, cfg.log)
		if err != nil {
			return nil, ifaceErr(fmt.Errorf("open %s: %w", cfg.iface, err))
		}
		parent = ep
	}
	mx, err := mux.New(parent, mux.Options{Observe: tr.observeRx, Logger: cfg.log})
	if err != nil {
		parent.Close()
		return nil, ifaceErr(err)
	}
	defer mx.Close()

	res := &emuResult{cfg: &cfg, start: time.Now(), learned: -1}
	hosts := make([]*emuHost, 0, cfg.hosts)
	defer func() { closeHosts(hosts) }()
	network, anyAddr := "udp4", netip.IPv4Unspecified()
	if cfg.groupBase.Is6() {
		network, anyAddr = "udp6", netip.IPv6Unspecified()
	}
	for i := range cfg.hosts {
		ve, err := mx.NewEndpoint(i)
		if err != nil {
			return nil, err
		}
		var addrs []netip.Prefix
		for _, p := range cfg.addrs {
			addrs = append(addrs, netip.PrefixFrom(addrAdd(p.Addr(), uint64(i)+1), p.Bits()))
		}
		iv, mv := cfg.igmp[i%len(cfg.igmp)], cfg.mld[i%len(cfg.mld)]
		st := stack.New(stack.Config{
			Logger:   cfg.log,
			Clock:    clk,
			QueueLen: 4,
			IGMP:     proto.Config{ForceVersion: iv, ResponseMargin: cfg.respMargin},
			MLD:      proto.Config{ForceVersion: mv, ResponseMargin: cfg.respMargin},
		})
		ifc, err := st.AddInterface(&hostEndpoint{Endpoint: ve, host: i, tr: tr}, stack.InterfaceConfig{Addrs: addrs})
		if err != nil {
			st.Close()
			ve.Close()
			return nil, fmt.Errorf("host %d: %w", i, err)
		}
		c, err := st.ListenUDP(network, netip.AddrPortFrom(anyAddr, cfg.port))
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("host %d: %w", i, err)
		}
		h := &emuHost{i: i, st: st, ifc: ifc, conn: c, version: iv}
		if cfg.groupBase.Is6() {
			h.version = mv
		}
		hosts = append(hosts, h)
	}
	res.setupTime = time.Since(res.start)

	runCtx, stopDev := context.WithCancel(ctx)
	var devDone sync.WaitGroup
	if dev != nil {
		devDone.Add(1)
		go func() { defer devDone.Done(); dev.run(runCtx) }()
	}
	defer func() { stopDev(); devDone.Wait() }()

	var progDone sync.WaitGroup
	progCtx, stopProg := context.WithCancel(ctx)
	if !cfg.quiet {
		progDone.Add(1)
		go func() { defer progDone.Done(); progressLoop(progCtx, progressW, cfg.tty, tr, res.start) }()
	}

	var ops, opErrs atomic.Int64
	var firstErr atomic.Pointer[error]
	noteErr := func(err error) {
		if err != nil {
			opErrs.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	join := func(phase string, h *emuHost, gi int) {
		g := cfg.group(gi)
		f := cfg.filterFor(h.i, gi)
		// What the host announces: its filter, or (IGMPv1/v2, MLDv1) every
		// source.
		full := h.version >= 3 && g.Is4() || h.version >= 2 && g.Is6()
		wants := f.Sources
		if !full || f.Mode == membership.Exclude {
			wants = nil
			for _, s := range cfg.sources {
				if !full || f.Accepts(s) {
					wants = append(wants, s)
				}
			}
		}
		tr.join(phase, h.i, g, wants)
		ops.Add(1)
		noteErr(h.conn.SetSourceFilter(h.ifc, g, f.Mode, f.Sources))
	}
	leave := func(phase string, h *emuHost, gi int) {
		g := cfg.group(gi)
		tr.leave(phase, h.i, g)
		ops.Add(1)
		noteErr(h.conn.SetSourceFilter(h.ifc, g, membership.Include, nil))
	}
	waitJoins := func() {
		deadline := time.Now().Add(cfg.settle)
		for tr.openJoins() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	hostGroups := func(h *emuHost) []int {
		out := make([]int, cfg.perHost)
		for j := range out {
			out[j] = (h.i*cfg.perHost + j) % cfg.groups
		}
		return out
	}

	rampStart := time.Now()
	setupOps := 0
	switch cfg.scenario {
	case "join-ramp":
		n := cfg.hosts * cfg.perHost
		pace(ctx, cfg.rate, n, func(k int) {
			h := hosts[k%cfg.hosts]
			join("ramp", h, hostGroups(h)[k/cfg.hosts])
		})
		res.rampTime = time.Since(rampStart)
	case "leave-ramp":
		for _, h := range hosts {
			for _, gi := range hostGroups(h) {
				join("setup", h, gi)
			}
		}
		waitJoins()
		setupOps = int(ops.Load())
		rampStart = time.Now()
		n := cfg.hosts * cfg.perHost
		pace(ctx, cfg.rate, n, func(k int) {
			h := hosts[k%cfg.hosts]
			leave("ramp", h, hostGroups(h)[k/cfg.hosts])
		})
		res.rampTime = time.Since(rampStart)
	case "zap":
		for _, h := range hosts {
			h.current = h.i % cfg.groups
			join("setup", h, h.current)
		}
		waitJoins()
		setupOps = int(ops.Load())
		rng := rand.New(rand.NewPCG(cfg.seed, 0x7a70))
		rampStart = time.Now()
		// A zap is a leave and a join: two ops.
		pace(ctx, cfg.rate/2, cfg.zaps, func(k int) {
			h := hosts[rng.IntN(cfg.hosts)]
			next := (h.current + 1 + rng.IntN(cfg.groups-1)) % cfg.groups
			leave("zap", h, h.current)
			join("zap", h, next)
			h.current = next
		})
		res.rampTime = time.Since(rampStart)
	}
	rampOps := int(ops.Load()) - setupOps
	// Hold: keep measuring (late joins, leave windows, floods).
	select {
	case <-time.After(cfg.hold):
	case <-ctx.Done():
	}
	res.interrupted = ctx.Err() != nil
	if cfg.onDone != nil {
		cfg.onDone()
	}
	stopProg()
	progDone.Wait()
	if !cfg.quiet && !cfg.tty {
		fmt.Fprintln(progressW)
	}
	if dev != nil {
		res.learned = dev.learnedMemberships()
	}
	stopDev()
	devDone.Wait()

	res.events = tr.finish()
	tr.mu.Lock()
	res.datagrams, res.flood, res.excluded, res.reports = tr.datagrams, tr.flood, tr.excluded, tr.reports
	res.floodGroups = len(tr.floodBy)
	tr.mu.Unlock()
	res.ops, res.rampOps, res.opErrors = int(ops.Load()), rampOps, int(opErrs.Load())
	if p := firstErr.Load(); p != nil {
		res.firstOpErr = *p
	}
	res.mux = mx.Stats()
	return res, nil
}

// pace calls op(k) for k < n at rate calls per second (0: at once).
func pace(ctx context.Context, rate float64, n int, op func(k int)) {
	start := time.Now()
	for k := range n {
		if ctx.Err() != nil {
			return
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
		}
		op(k)
	}
}

// closeHosts closes the hosts' stacks (sending their final reports), many
// at a time: each close waits for the retransmissions of the final report.
func closeHosts(hosts []*emuHost) {
	sem := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			h.st.Close()
			<-sem
		}()
	}
	wg.Wait()
}

// progressLoop prints the live line every second until ctx ends.
func progressLoop(ctx context.Context, w io.Writer, tty bool, tr *tracker, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := tr.progress()
		lat := summarize(p.joinLat)
		line := fmt.Sprintf("emulate %5.1fs  joins %d (%d answered)  leaves %d  reports %d  datagrams %d  flood %d  excluded %d  join p50/p99 %s",
			time.Since(start).Seconds(), p.joins, p.joinsDone, p.leaves, p.reports, p.datagrams, p.flood, p.excluded, fmtP(lat))
		if tty {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func fmtP(s latStats) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%v/%v", roundDur(s.P50), roundDur(s.P99))
}

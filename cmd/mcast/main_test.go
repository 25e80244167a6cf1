package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/internal/admin/metricstest"
	"github.com/mcstack/mcstack/internal/leakcheck"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

func runCmd(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(ctx, &env{stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

func TestHelpExitsZero(t *testing.T) {
	for _, c := range commands {
		for _, h := range []string{"-h", "--help"} {
			code, out, errOut := runCmd(t, context.Background(), c.name, h)
			if code != exitOK {
				t.Errorf("mcast %s %s: exit %d, stderr %q", c.name, h, code, errOut)
			}
			if !strings.Contains(out, "usage: mcast "+c.name) || !strings.Contains(out, "Flags:") || !strings.Contains(out, "Exit codes") {
				t.Errorf("mcast %s %s: usage missing:\n%s", c.name, h, out)
			}
		}
	}
	code, out, _ := runCmd(t, context.Background(), "-h")
	if code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("mcast -h: exit %d\n%s", code, out)
	}
}

// TestUsageErrorsExitTwo: every usage error exits 2 before any link is
// opened.
func TestUsageErrorsExitTwo(t *testing.T) {
	old := openLink
	t.Cleanup(func() { openLink = old })
	var opened []string
	openLink = func(lf *linkFlags, _ *slog.Logger) (link.Endpoint, error) {
		opened = append(opened, lf.iface)
		return nil, errors.New("test: no link")
	}
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"demo", "-bogus"},
		{"demo", "-duration", "0s"},
		{"demo", "extra"},
		{"recv", "-bogus"},
		{"recv", "-g", "232.1.1.1"}, // no -i
		{"recv", "-i", "lo", "-a", "192.0.2.1/24"},                    // no -g
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "192.0.2.9"}, // not multicast
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "ff3e::1"},   // no IPv6 address
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "239.1.1.1", "-exclude"},
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-g", "ff3e::1", "-a", "2001:db8::1/64", "-s", "192.0.2.2"},
		{"recv", "-i", "lo", "-a", "banana", "-g", "232.1.1.1"},
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-igmp", "4"},
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-backend", "pcap"},
		{"send", "-i", "lo", "-a", "192.0.2.1/24"},
		{"send", "-i", "lo", "-a", "192.0.2.1/24", "-g", "239.1.1.1", "-ttl", "0"},
		{"send", "-i", "lo", "-a", "192.0.2.1/24", "-g", "239.1.1.1", "-size", "3"},
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-s", "192.0.2.2", "-s", "192.0.2.2"}, // duplicate source
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-s", "192.0.2.2", "-g", "232.1.1.1"},                    // source before group
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-s", "192.0.2.2", "-x", "192.0.2.3"}, // include and exclude
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-interval", "-1s"},
		{"recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-p", "0"},
		{"stat", "-json", "-metrics"},
		{"stat", "-metrics", "-i", "eth0"},
		{"stat", "-g", "192.0.2.1"},
		{"stat", "-bogus"},
	} {
		code, _, errOut := runCmd(t, context.Background(), args...)
		if code != exitUsage {
			t.Errorf("mcast %q: exit %d, want %d; stderr %q", args, code, exitUsage, errOut)
		}
		if len(args) > 0 && errOut == "" {
			t.Errorf("mcast %q: no error message", args)
		}
		if len(opened) > 0 {
			t.Errorf("mcast %q: opened link %q before reporting the usage error", args, opened)
			opened = nil
		}
	}
}

// TestRecvPlan: each -s/-x belongs to the -g it follows; -exclude turns
// -s into -x; mistakes are usage errors.
func TestRecvPlan(t *testing.T) {
	parseRecv := func(args ...string) (recvFlags, error) {
		var f recvFlags
		fs := newFlagSet("recv")
		fs.Var(groupFlag{&f.specs}, "g", "")
		fs.Var(sourceFlag{&f.specs, false}, "s", "")
		fs.Var(sourceFlag{&f.specs, true}, "x", "")
		fs.BoolVar(&f.exclude, "exclude", false, "")
		f.port = 5001
		return f, fs.Parse(args)
	}
	type want struct {
		group   string
		mode    membership.Mode
		sources string
	}
	for _, tc := range []struct {
		args []string
		want []want
	}{
		{[]string{"-g", "232.1.1.1", "-s", "192.0.2.2", "-g", "239.1.1.1"},
			[]want{{"232.1.1.1", membership.Include, "192.0.2.2"}, {"239.1.1.1", membership.Exclude, ""}}},
		{[]string{"-g", "232.1.1.1", "-s", "192.0.2.2", "-s", "192.0.2.3", "-g", "ff3e::8000:1", "-s", "2001:db8::2"},
			[]want{{"232.1.1.1", membership.Include, "192.0.2.2,192.0.2.3"}, {"ff3e::8000:1", membership.Include, "2001:db8::2"}}},
		{[]string{"-g", "239.1.1.1", "-x", "192.0.2.3", "-g", "239.1.1.2"},
			[]want{{"239.1.1.1", membership.Exclude, "192.0.2.3"}, {"239.1.1.2", membership.Exclude, ""}}},
		{[]string{"-exclude", "-g", "239.1.1.1", "-s", "192.0.2.3"},
			[]want{{"239.1.1.1", membership.Exclude, "192.0.2.3"}}},
		// IPv4-mapped IPv6 is the IPv4 address.
		{[]string{"-g", "::ffff:232.1.1.1", "-s", "::ffff:192.0.2.2"},
			[]want{{"232.1.1.1", membership.Include, "192.0.2.2"}}},
	} {
		f, err := parseRecv(tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.plan()
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		var got []want
		for _, x := range p {
			got = append(got, want{x.group.String(), x.mode, joinStrings(x.sources)})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: plan %v, want %v", tc.args, got, tc.want)
		}
	}
	for _, args := range [][]string{
		{"-s", "192.0.2.2", "-g", "232.1.1.1"},                    // source before any group
		{"-g", "232.1.1.1", "-s", "192.0.2.2", "-s", "192.0.2.2"}, // duplicate source
		{"-g", "232.1.1.1", "-s", "192.0.2.2", "-x", "192.0.2.3"}, // include and exclude
		{"-g", "232.1.1.1", "-s", "2001:db8::2"},                  // other family
		{"-g", "232.1.1.1", "-s", "239.1.1.1"},                    // multicast source
		{"-g", "232.1.1.1", "-g", "232.1.1.1"},                    // group twice
		{"-exclude", "-g", "232.1.1.1"},                           // -exclude without sources
	} {
		f, err := parseRecv(args...)
		if err != nil {
			t.Fatal(err)
		}
		var ee *exitError
		if _, err := f.plan(); !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestPayload(t *testing.T) {
	b := make([]byte, 64)
	now := time.Now()
	putPayload(b, 42, now)
	seq, ts, ok := parsePayload(b)
	if !ok || seq != 42 || !ts.Equal(now.Round(0)) && ts.UnixNano() != now.UnixNano() {
		t.Fatalf("payload round trip: %d %v %v", seq, ts, ok)
	}
	if _, _, ok := parsePayload([]byte("short")); ok {
		t.Fatal("short payload accepted")
	}
}

// engineImplemented tells whether proto.NewIGMP is a real engine: a real
// one reports a protocol version (1..3) from the start; the temporary no-op
// stand-in reports 0 and sends nothing, so checks of reports cannot pass.
func engineImplemented() bool {
	return proto.NewIGMP(proto.Config{}).Status().Version != 0
}

// TestDemo runs the demo in-process for 3 s, as CI would, and checks the
// summary: traffic flowed, only allowed sources were delivered, no datagram
// of an allowed source was lost, the stack coalesced the churn into far
// fewer driver calls than socket operations, and (with a real IGMP engine)
// the querier learned each receiver's filter and forgot it on shutdown.
func TestDemo(t *testing.T) {
	checkGoroutines := leakcheck.Baseline(t)
	code, out, errOut := runCmd(t, context.Background(), "demo", "-duration", "3s", "-quiet")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
	if strings.Contains(out, "INTERFACE GROUPS") {
		t.Errorf("-quiet printed the live table:\n%s", out)
	}
	if !strings.Contains(out, "result:        ok") {
		t.Errorf("no ok result:\n%s", out)
	}
	recv := regexp.MustCompile(`received (\d+) \(from A (\d+) of (\d+) sent\), wrongly received (\d+)`).FindAllStringSubmatch(out, -1)
	if len(recv) != 2 {
		t.Fatalf("want 2 receiver lines:\n%s", out)
	}
	for _, m := range recv {
		n, fromA, sent, wrong := atoi(t, m[1]), atoi(t, m[2]), atoi(t, m[3]), atoi(t, m[4])
		if n == 0 || fromA == 0 || sent < 100 {
			t.Errorf("receiver got too little: %s", m[0])
		}
		if wrong != 0 {
			t.Errorf("filter violation: %s", m[0])
		}
		if fromA != sent || n != fromA {
			// Only sendA is allowed on either receiver, and no loss is
			// configured: every datagram of A arrives, nothing else does.
			t.Errorf("deliveries: %s; want exactly the %d datagrams of sendA", m[0], sent)
		}
	}
	m := regexp.MustCompile(`churn: +(\d+) socket operations, (\d+) driver filter calls`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no churn line:\n%s", out)
	}
	ops, calls := atoi(t, m[1]), atoi(t, m[2])
	if ops < 200 || calls == 0 || calls*5 > ops {
		t.Errorf("churn ops %d, driver calls %d: want many ops and at most one call per 5 ops", ops, calls)
	}
	if engineImplemented() {
		if !regexp.MustCompile(`querier: +\d+ general queries sent, [1-9]\d* reports`).MatchString(out) {
			t.Errorf("querier saw no reports:\n%s", out)
		}
		if !strings.Contains(out, "querier learned every filter") {
			t.Errorf("querier did not learn the filters:\n%s", out)
		}
		if !strings.Contains(out, " 0 memberships left after") {
			t.Errorf("final reports missing: the querier still holds memberships:\n%s", out)
		}
	} else {
		// The demo must say that it could not show the protocol, not
		// pretend it did.
		if !strings.Contains(out, "NO reports heard") || !strings.Contains(out, "NOT demonstrated") {
			t.Errorf("no-op IGMP engine not reported:\n%s", out)
		}
		t.Log("proto.NewIGMP is the no-op stand-in: querier checks not made")
	}
	checkGoroutines()
}

func TestDemoLiveTable(t *testing.T) {
	var o bytes.Buffer
	res, err := demo(context.Background(), demoConfig{
		duration: 2500 * time.Millisecond, rate: 50, churnInterval: 2 * time.Millisecond, churnSockets: 4,
		filterDelay: 20 * time.Millisecond, queryInterval: time.Second, size: 64,
	}, &o)
	if err != nil {
		t.Fatal(err)
	}
	table := o.String()
	for _, want := range []string{"INTERFACE GROUPS", "232.1.1.1 include {192.0.2.1} 1 +", "239.1.1.1 exclude {192.0.2.2} 1 +",
		"DRIVER CALLS", "recvSSM", "recvEX"} {
		if !strings.Contains(table, want) {
			t.Errorf("live table lacks %q:\n%s", want, table)
		}
	}
	if strings.Count(table, "mcast demo ") < 2 {
		t.Errorf("want a table per second:\n%s", table)
	}
	if f := res.failures(); len(f) > 0 || res.Latency.N == 0 {
		t.Errorf("failures %q, result %+v", f, res)
	}
	if engineImplemented() {
		if !strings.Contains(table, "querier (router) learned from reports") || !strings.Contains(table, "192.0.2.11  recvSSM  include {192.0.2.1}") {
			t.Errorf("querier view missing from the live table:\n%s", table)
		}
	} else if !strings.Contains(table, "learned nothing") || !strings.Contains(table, "igmpv?") {
		t.Errorf("no-op IGMP engine not shown in the live table:\n%s", table)
	}
}

// TestDemoChecksFail makes sure the checks can fail: a result with a wrong
// delivery, a lost datagram or a querier that learned the wrong state is a
// failure, and the summary says FAIL.
func TestDemoChecksFail(t *testing.T) {
	ok := receiverResult{Name: "r", Group: demoSSM, Received: 10, FromA: 10, Expected: 10,
		Filter:  membership.State{Mode: membership.Include, Sources: []netip.Addr{demoSrcA}},
		Learned: membership.State{Mode: membership.Include, Sources: []netip.Addr{demoSrcA}}, LearnedOK: true}
	heard := querierView{Reports: 3}
	for name, mut := range map[string]func(r *demoResult){
		"wrong":    func(r *demoResult) { r.Receivers[0].Wrong = 1 },
		"lost":     func(r *demoResult) { r.Receivers[0].FromA = 9 },
		"learned":  func(r *demoResult) { r.Receivers[0].Learned.Sources = []netip.Addr{demoSrcB} },
		"unknown":  func(r *demoResult) { r.Receivers[0].LearnedOK = false },
		"leftover": func(r *demoResult) { r.Final.Groups = []learnedGroup{{Group: demoSSM}} },
	} {
		r := &demoResult{Receivers: []receiverResult{ok}, Querier: heard, Final: heard}
		if f := r.failures(); len(f) != 0 {
			t.Fatalf("baseline fails: %q", f)
		}
		mut(r)
		var b bytes.Buffer
		r.printSummary(&b)
		if len(r.failures()) == 0 || !strings.Contains(b.String(), "result:        FAIL") {
			t.Errorf("%s: not a failure:\n%s", name, b.String())
		}
	}
	// Without any report heard the querier checks are skipped, and the
	// summary says they were not demonstrated.
	r := &demoResult{Receivers: []receiverResult{ok}}
	r.Receivers[0].LearnedOK = false
	var b bytes.Buffer
	r.printSummary(&b)
	if len(r.failures()) != 0 || !strings.Contains(b.String(), "NOT demonstrated") {
		t.Errorf("no reports: %q\n%s", r.failures(), b.String())
	}
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStat serves a memlan stack's status on a temporary admin socket and
// runs `mcast stat` against it in its three output forms.
func TestStat(t *testing.T) {
	lan := memlan.New(memlan.Options{Seed: 1})
	defer lan.Close()
	ep := lan.NewEndpoint("lan0", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}, MTU: 1500})
	st := stack.New(stack.Config{})
	defer st.Close()
	ifc, err := st.AddInterface(ep, stack.InterfaceConfig{Name: "lan0", Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("fe80::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	c4, err := st.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5001"))
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	c6, err := st.ListenUDP("udp6", netip.MustParseAddrPort("[::]:5001"))
	if err != nil {
		t.Fatal(err)
	}
	defer c6.Close()
	for _, p := range []joinPlan{
		{group: netip.MustParseAddr("232.1.1.1"), mode: membership.Include, sources: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
		{group: netip.MustParseAddr("239.1.1.1"), mode: membership.Exclude, sources: []netip.Addr{netip.MustParseAddr("192.0.2.3")}},
	} {
		if err := join(c4, ifc, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := join(c6, ifc, joinPlan{group: netip.MustParseAddr("ff3e::8000:1"), mode: membership.Include,
		sources: []netip.Addr{netip.MustParseAddr("2001:db8::2")}}); err != nil {
		t.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "mcst")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "admin.sock")
	srv, err := admin.Listen(sock, func() admin.Status { return statusOf("test", ifc) })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// The driver filter is programmed and the reports are sent
	// asynchronously: wait for both.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ifc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, context.Background(), "stat", "-admin", sock)
	if code != 0 {
		t.Fatalf("stat: exit %d: %s", code, errOut)
	}
	t.Logf("\n%s", out)
	if !regexp.MustCompile(`driver filter: exact, 4: .*01:00:5e:01:01:01 .*33:33:80:00:00:01`).MatchString(out) {
		t.Errorf("stat: driver filter not shown:\n%s", out)
	}
	for _, want := range []string{
		"lan0:", "inet 192.0.2.1/24", "inet6 fe80::1/64",
		"group 232.1.1.1 mode include refs 1", "source 192.0.2.2",
		"group 239.1.1.1 mode exclude refs 1", "source 192.0.2.3",
		"group ff3e::8000:1 mode include", "source 2001:db8::2",
		"driver filter: exact", "01:00:5e:01:01:01",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stat output lacks %q", want)
		}
	}

	code, js, _ := runCmd(t, context.Background(), "stat", "-admin", sock, "-json")
	var status admin.Status
	if code != 0 || json.Unmarshal([]byte(js), &status) != nil || len(status.Interfaces) != 1 {
		t.Fatalf("stat -json: exit %d\n%s", code, js)
	}

	code, prom, _ := runCmd(t, context.Background(), "stat", "-admin", sock, "-metrics")
	if code != 0 {
		t.Fatalf("stat -metrics: exit %d", code)
	}
	x, err := metricstest.Parse([]byte(prom))
	if err != nil {
		t.Fatalf("invalid Prometheus text: %v\n%s", err, prom)
	}
	m := x.Samples
	if m[`mcast_groups{interface="lan0",family="ipv4"}`] != 2 || m[`mcast_groups{interface="lan0",family="ipv6"}`] != 1 {
		t.Errorf("mcast_groups wrong:\n%s", prom)
	}
	if m[`mcast_sources{interface="lan0",family="ipv4"}`] != 2 {
		t.Errorf("mcast_sources wrong:\n%s", prom)
	}
	for _, name := range []string{"mcast_reports_sent_total", "mcast_queries_received_total", "mcast_driver_calls_total", "mcast_datagrams_received_total", "mcast_datagrams_dropped_total"} {
		if !strings.Contains(prom, "\n"+name+"{") {
			t.Errorf("metric %s missing", name)
		}
	}
	if engineImplemented() {
		for _, want := range []string{"igmpv3 (automatic)", "mldv2 (automatic)"} {
			if !strings.Contains(out, want) {
				t.Errorf("stat output lacks %q", want)
			}
		}
		if m[`mcast_reports_sent_total{interface="lan0",protocol="igmp"}`] < 1 || m[`mcast_reports_sent_total{interface="lan0",protocol="mld"}`] < 1 {
			t.Errorf("no IGMP/MLD report counted:\n%s", prom)
		}
	} else if !strings.Contains(out, "igmp v? (engine reports no protocol version") {
		t.Errorf("stat does not say the IGMP engine is a no-op:\n%s", out)
	}
	// The JSON carries what the stack holds.
	fams := status.Interfaces[0].Families
	if len(fams) != 2 || fams[0].Family != "ipv4" || fams[1].Family != "ipv6" || len(fams[0].Groups) != 2 ||
		fams[0].Groups[0].Group != "232.1.1.1" || fams[0].Groups[0].Mode != "include" ||
		!slices.Equal(fams[0].Groups[0].Sources, []string{"192.0.2.2"}) || fams[0].Groups[0].MAC != "01:00:5e:01:01:01" ||
		fams[1].Groups[0].Group != "ff3e::8000:1" {
		t.Errorf("stat -json families: %+v", fams)
	}
	if status.Interfaces[0].Driver.Calls == 0 || status.Interfaces[0].Counters.Other == nil {
		t.Errorf("stat -json driver/counters: %+v", status.Interfaces[0])
	}

	// Before any query: no querier. A General Query from 192.0.2.254
	// (Max Resp Time 10 s) makes it the querier stat shows.
	if !strings.Contains(out, "querier: none heard") {
		t.Errorf("stat before a query lacks \"querier: none heard\":\n%s", out)
	}
	gq, err := newQuerier(wire.MAC{2, 0, 0, 0, 0, 0xfe}, netip.MustParseAddr("192.0.2.254")).generalQuery(100, 125)
	if err != nil {
		t.Fatal(err)
	}
	before := ep.Stats().FramesReceived
	if err := lan.Inject(gq); err != nil {
		t.Fatal(err)
	}
	// The LAN delivers the query on its own goroutine: wait until the
	// stack's handler has returned from it, then for the engine.
	for ep.Stats().FramesReceived == before {
		if ctx.Err() != nil {
			t.Fatal("the injected query was never delivered")
		}
		time.Sleep(time.Millisecond)
	}
	if err := ifc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if engineImplemented() {
		code, out, _ = runCmd(t, context.Background(), "stat", "-admin", sock)
		if code != 0 || !regexp.MustCompile(`querier 192\.0\.2\.254 igmpv3, last query [0-9.]+m?s ago, max resp 10s`).MatchString(out) {
			t.Errorf("stat after a query: exit %d\n%s", code, out)
		}
	}

	// -i and -g keep only what was asked for; an unknown -i says which
	// interfaces there are.
	code, out, _ = runCmd(t, context.Background(), "stat", "-admin", sock, "-g", "239.1.1.1", "-g", "ff3e::8000:1")
	if code != 0 || strings.Contains(out, "group 232.1.1.1") || !strings.Contains(out, "group 239.1.1.1") || !strings.Contains(out, "group ff3e::8000:1") {
		t.Errorf("stat -g: exit %d\n%s", code, out)
	}
	code, js, _ = runCmd(t, context.Background(), "stat", "-admin", sock, "-json", "-i", "lan0", "-g", "232.1.1.1")
	if code != 0 || json.Unmarshal([]byte(js), &status) != nil || len(status.Interfaces) != 1 ||
		len(status.Interfaces[0].Families[0].Groups) != 1 || len(status.Interfaces[0].Families[1].Groups) != 0 {
		t.Errorf("stat -json -i -g: exit %d\n%s", code, js)
	}
	code, _, errOut = runCmd(t, context.Background(), "stat", "-admin", sock, "-i", "eth9")
	if code != exitRuntime || !strings.Contains(errOut, "-i eth9: no such interface in test (it has lan0)") {
		t.Errorf("stat -i eth9: exit %d: %s", code, errOut)
	}

	// -watch: from the second report on, the rates since the previous one.
	wctx, wcancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	code, out, _ = runCmd(t, wctx, "stat", "-admin", sock, "-watch", "100ms", "-g", "232.1.1.1")
	wcancel()
	if code != 0 || strings.Count(out, "rates over the last") < 1 || !regexp.MustCompile(`lan0: frames \d+/s datagrams \d+/s`).MatchString(out) {
		t.Errorf("stat -watch: exit %d\n%s", code, out)
	}
	if n := strings.Count(out, "rates over the last"); n != strings.Count(out, "(pid ")-1 {
		t.Errorf("stat -watch: %d rate blocks for %d reports", n, strings.Count(out, "(pid "))
	}

	// An unreachable socket is an admin-socket problem: exit 3.
	if code, _, _ := runCmd(t, context.Background(), "stat", "-admin", filepath.Join(dir, "nope.sock")); code != exitInterface {
		t.Errorf("stat on a missing socket: exit %d, want %d", code, exitInterface)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		code, out, _ := runCmd(t, context.Background(), arg)
		if code != exitOK || !regexp.MustCompile(`^mcast \S+ .*go1\.\d+.* linux/`).MatchString(out) {
			t.Errorf("mcast %s: exit %d, %q", arg, code, out)
		}
	}
}

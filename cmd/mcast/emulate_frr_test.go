//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/netns"
)

// FRRouting's pimd as the IGMPv3 querier and router upstream of `mcast
// emulate`: namespace rtr runs zebra and pimd with IGMPv3 on rI (the
// hosts' LAN, 198.51.100.254/24); the emulator's namespace has the other
// end of the veth, eE, with no address and IPv6 off.

type frrTopo struct {
	rtr, emu, snd *netns.NS
	rI, eE        string
	rU, eS        string // with upstream: the router's and the sender's interfaces
	frr           *netns.FRR
	ifc           netns.PIMInterface
}

func newFrrTopo(t *testing.T, ifc netns.PIMInterface, extra ...string) *frrTopo {
	return newFrrTopoUp(t, false, ifc, extra...)
}

// newFrrTopoUp: with upstream, a sender namespace on the router's rU
// (192.0.2.254/24, `ip pim`), so pimd routes from the sources 192.0.2.x
// to the hosts.
func newFrrTopoUp(t *testing.T, upstream bool, ifc netns.PIMInterface, extra ...string) *frrTopo {
	t.Helper()
	netns.RequireFRR(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skipf("skipping: tcpdump not found (scripts/install-test-deps.sh): %v", err)
	}
	tp := &frrTopo{rtr: netns.New(t, "frR"), emu: netns.New(t, "frE")}
	tp.rI, tp.eE = netns.UniqueName("rI"), netns.UniqueName("eE")
	for _, ns := range []*netns.NS{tp.rtr, tp.emu} {
		must(t, ns.Quiet())
	}
	must(t, netns.AddVeth(tp.rtr, tp.rI, tp.emu, tp.eE))
	must(t, tp.rtr.AddAddr(tp.rI, "198.51.100.254/24"))
	must(t, tp.rtr.LinkUp(tp.rI))
	must(t, tp.emu.DisableIPv6(tp.eE))
	must(t, tp.emu.LinkUp(tp.eE))
	ifc.Name = tp.rI
	tp.ifc = ifc
	ifcs := []netns.PIMInterface{ifc}
	if upstream {
		tp.snd = netns.New(t, "frS")
		must(t, tp.snd.Quiet())
		tp.rU, tp.eS = netns.UniqueName("rU"), netns.UniqueName("eS")
		must(t, netns.AddVeth(tp.rtr, tp.rU, tp.snd, tp.eS))
		must(t, tp.rtr.AddAddr(tp.rU, "192.0.2.254/24"))
		must(t, tp.rtr.LinkUp(tp.rU))
		must(t, tp.snd.DisableIPv6(tp.eS))
		must(t, tp.snd.LinkUp(tp.eS))
		ifcs = append(ifcs, netns.PIMInterface{Name: tp.rU, PIM: true})
	}
	tp.frr = tp.rtr.StartFRR(t, netns.PIMConfig(ifcs, extra...), tp.rI)
	return tp
}

// igmpPkt is one IGMP packet on the router's interface, as tcpdump saw it.
type igmpPkt struct {
	at      time.Time
	src     netip.Addr
	report  bool
	query   bool
	general bool // a General Query (no group address)
	line    string
}

// capture runs tcpdump on the router's interface (it sees both
// directions) into a file until the returned stop is called, which
// returns the IGMP packets seen and how many the kernel dropped.
func (tp *frrTopo) capture(t *testing.T) (stop func() ([]igmpPkt, int)) {
	t.Helper()
	dir := t.TempDir()
	pcap, errPath := filepath.Join(dir, "igmp.pcap"), filepath.Join(dir, "tcpdump.err")
	ef, err := os.Create(errPath)
	must(t, err)
	cmd := exec.Command("ip", "netns", "exec", tp.rtr.Name, "tcpdump", "-i", tp.rI, "-nn", "-B", "16384",
		"--immediate-mode", "-Z", "root", "-w", pcap, "igmp")
	cmd.Stdout, cmd.Stderr = ef, ef
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	var (
		once    sync.Once
		pkts    []igmpPkt
		dropped = -1
	)
	stopFn := func() ([]igmpPkt, int) {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			waited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-waited
			}
			ef.Close()
			b, _ := os.ReadFile(errPath)
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(l, "dropped by kernel") {
					dropped, _ = strconv.Atoi(f[0])
				}
			}
			out, err := exec.Command("tcpdump", "-r", pcap, "-nn", "-tt").Output()
			if err != nil {
				t.Errorf("tcpdump -r: %v", err)
			}
			for _, l := range strings.Split(string(out), "\n") {
				if p, ok := parseTcpdumpIGMP(l); ok {
					pkts = append(pkts, p)
				}
			}
		})
		return pkts, dropped
	}
	t.Cleanup(func() { stopFn() })
	// tcpdump prints "listening on" to stderr once the capture is open.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(errPath); strings.Contains(string(b), "listening on") {
			return stopFn
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("tcpdump did not start capturing within 5 s")
	return nil
}

// parseTcpdumpIGMP parses a `tcpdump -nn -tt` line such as
// "1764690000.123456 IP 198.51.100.254 > 224.0.0.1: igmp query v3 [max resp time 1.0s]".
func parseTcpdumpIGMP(line string) (igmpPkt, bool) {
	f := strings.Fields(line)
	if len(f) < 7 || f[1] != "IP" || f[5] != "igmp" {
		return igmpPkt{}, false
	}
	sec, usec, ok := strings.Cut(f[0], ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt(usec, 10, 64)
	src, err3 := netip.ParseAddr(f[2])
	if !ok || err1 != nil || err2 != nil || err3 != nil {
		return igmpPkt{}, false
	}
	p := igmpPkt{at: time.Unix(s, us*1000), src: src, line: line}
	rest := strings.Join(f[6:], " ")
	switch {
	case strings.HasPrefix(rest, "query"):
		p.query = true
		p.general = !strings.Contains(rest, "[gaddr")
	case strings.HasPrefix(rest, "v3 report"):
		p.report = true
	}
	return p, true
}

// pimd's `show ip igmp groups json` (FRR 8.4): totals and, per interface,
// a "groups" list.
type frrGroup struct {
	Group   string `json:"group"`
	Mode    string `json:"mode"` // INCLUDE, EXCLUDE
	Timer   string `json:"timer"`
	Sources int    `json:"sourcesCount"`
	Version int    `json:"version"`
}

// `show ip igmp sources json`: per interface, per group, a "sources" list.
// A source whose timer is "--:--" in an EXCLUDE-mode group is on the
// exclude list (RFC 3376 §6.2.3 "Y"); with a running timer it is on the
// requested list ("X").
type frrSource struct {
	Source string `json:"source"`
	Timer  string `json:"timer"`
	Fwd    bool   `json:"forwarded"`
}

// frrState is what pimd holds for the hosts' interface.
type frrState struct {
	at      time.Time
	total   int
	groups  map[string]frrGroup
	sources map[string][]frrSource
}

func (tp *frrTopo) state() (frrState, error) {
	st := frrState{at: time.Now(), groups: map[string]frrGroup{}, sources: map[string][]frrSource{}}
	var g map[string]json.RawMessage
	if err := tp.frr.QueryJSON("show ip igmp groups json", &g); err != nil {
		return st, err
	}
	if err := json.Unmarshal(g["totalGroups"], &st.total); err != nil {
		return st, fmt.Errorf("totalGroups: %w", err)
	}
	if raw, ok := g[tp.rI]; ok {
		var ifc struct {
			Groups []frrGroup `json:"groups"`
		}
		if err := json.Unmarshal(raw, &ifc); err != nil {
			return st, fmt.Errorf("groups of %s: %w", tp.rI, err)
		}
		for _, x := range ifc.Groups {
			st.groups[x.Group] = x
		}
	}
	var s map[string]map[string]json.RawMessage
	if err := tp.frr.QueryJSON("show ip igmp sources json", &s); err != nil {
		return st, err
	}
	for grp, raw := range s[tp.rI] {
		var x struct {
			Sources []frrSource `json:"sources"`
		}
		if err := json.Unmarshal(raw, &x); err != nil {
			continue // interface fields, not a group
		}
		st.sources[grp] = x.Sources
	}
	return st, nil
}

// staleGroups are the groups pimd holds in INCLUDE mode with no source:
// FRR 8.4 creates such a record when a BLOCK record arrives for a group
// it has already deleted (a host's retransmitted final report arriving
// after the last-member queries ended) and never removes it: it has no
// group timer in INCLUDE mode and no source timer. Such a record
// forwards nothing.
func staleGroups(st frrState) []string {
	var out []string
	for g, x := range st.groups {
		if x.Mode == "INCLUDE" && x.Sources == 0 && len(st.sources[g]) == 0 {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// waitEmpty polls pimd until it holds no group on the hosts' interface
// except stale ones (see staleGroups) and returns when that was first
// seen (zero: not within timeout).
func (tp *frrTopo) waitEmpty(t *testing.T, timeout time.Duration) (frrState, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := tp.state()
		if err != nil {
			t.Errorf("pimd state: %v", err)
			return st, time.Time{}
		}
		if len(st.sources) == 0 && len(staleGroups(st)) == len(st.groups) {
			return st, st.at
		}
		if time.Now().After(deadline) {
			return st, time.Time{}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// routerView is what an RFC 3376/9776 router must hold for one group
// after hearing every host's current-state report: INCLUDE (the union of
// the INCLUDE hosts' lists) while no host is in EXCLUDE mode; otherwise
// EXCLUDE, blocking exactly the sources every EXCLUDE host excludes and
// no INCLUDE host includes. Which forwarded sources the router lists
// explicitly ("X") depends on the order of the reports; it can only hold
// sources some host named.
type routerView struct {
	mode    string          // INCLUDE or EXCLUDE
	include map[string]bool // INCLUDE: the sources
	blocked map[string]bool // EXCLUDE: the exclude list
	named   map[string]bool // every source some host's report names
}

func expectRouter(filters []frrFilter, groupOf func(h int) string) map[string]*routerView {
	out := map[string]*routerView{}
	excl := map[string][]map[string]bool{}
	for h, f := range filters {
		g := groupOf(h)
		v := out[g]
		if v == nil {
			v = &routerView{mode: "INCLUDE", include: map[string]bool{}, blocked: map[string]bool{}, named: map[string]bool{}}
			out[g] = v
		}
		set := map[string]bool{}
		for _, s := range f.srcs {
			set[s] = true
			v.named[s] = true
		}
		if f.mode == "exclude" {
			v.mode = "EXCLUDE"
			excl[g] = append(excl[g], set)
		} else {
			for s := range set {
				v.include[s] = true
			}
		}
	}
	for g, sets := range excl {
		v := out[g]
		for s := range sets[0] {
			all := true
			for _, e := range sets[1:] {
				all = all && e[s]
			}
			if all && !v.include[s] {
				v.blocked[s] = true
			}
		}
		v.include = map[string]bool{}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// checkLearned compares pimd's state with the expectation, group by group.
func checkLearned(t *testing.T, st frrState, want map[string]*routerView) {
	t.Helper()
	if st.total != len(want) || len(st.groups) != len(want) {
		t.Errorf("pimd holds %d groups (%d on the hosts' interface), want %d", st.total, len(st.groups), len(want))
	}
	for g, w := range want {
		got, ok := st.groups[g]
		if !ok {
			t.Errorf("group %s: not learned by pimd", g)
			continue
		}
		if got.Mode != w.mode || got.Version != 3 {
			t.Errorf("group %s: pimd mode %s version %d, want %s version 3", g, got.Mode, got.Version, w.mode)
		}
		running, stopped := map[string]bool{}, map[string]bool{}
		for _, s := range st.sources[g] {
			if s.Timer == "--:--" {
				stopped[s.Source] = true
			} else {
				running[s.Source] = true
			}
		}
		switch w.mode {
		case "INCLUDE":
			if fmt.Sprint(keys(running)) != fmt.Sprint(keys(w.include)) || len(stopped) > 0 {
				t.Errorf("group %s INCLUDE: pimd sources %v (timers stopped: %v), want the union of the hosts' lists %v",
					g, keys(running), keys(stopped), keys(w.include))
			}
		case "EXCLUDE":
			if fmt.Sprint(keys(stopped)) != fmt.Sprint(keys(w.blocked)) {
				t.Errorf("group %s EXCLUDE: pimd excludes %v, want the sources every EXCLUDE host excludes and no INCLUDE host includes: %v",
					g, keys(stopped), keys(w.blocked))
			}
			for s := range running {
				if !w.named[s] {
					t.Errorf("group %s EXCLUDE: pimd lists %s, which no host named", g, s)
				}
			}
		}
	}
	for g := range st.groups {
		if want[g] == nil {
			t.Errorf("pimd holds group %s, which no host joined", g)
		}
	}
}

// emulate runs `mcast emulate` on the emulator's interface.
func (tp *frrTopo) emulate(t *testing.T, onDone func(), args ...string) *emuResult {
	t.Helper()
	return emulateInNS(t, tp.emu, tp.eE, onDone, args...)
}

func (tp *frrTopo) stats(t *testing.T) (reportsV3, gqSent int) {
	t.Helper()
	var st struct {
		Global struct {
			ReportV3 int `json:"reportV3"`
			GQSent   int `json:"generalQueriesSent"`
		} `json:"global"`
	}
	if err := tp.frr.QueryJSON("show ip igmp statistics json", &st); err != nil {
		t.Errorf("pimd statistics: %v", err)
	}
	return st.Global.ReportV3, st.Global.GQSent
}

// TestEmulateFrrJoinRamp: 150 emulated IGMPv3 hosts join 12 ASM groups
// (INCLUDE-only, EXCLUDE-only and mixed groups, per-host source sets)
// behind pimd. Checked: pimd learns per group exactly what RFC 3376/9776
// router rules give for the union of the hosts' filters (computed here
// from the filter file the test writes); every host answers each General
// Query of pimd within its Max Resp Time (tcpdump on the router's side as
// the oracle) and the tool's report count matches the capture; after the
// hosts leave (emulate's exit sends their final reports) pimd empties
// through last-member queries, before the group timers could expire.
func TestEmulateFrrJoinRamp(t *testing.T) {
	if testing.Short() {
		t.Skip("namespaces")
	}
	const (
		hosts, groups = 150, 12
		qi, mrt       = 4 * time.Second, time.Second
		lmqi, lmqc    = 500 * time.Millisecond, 2
	)
	tp := newFrrTopo(t, netns.PIMInterface{PIM: true, IGMP: true, IGMPVersion: 3,
		QueryInterval: qi, MaxResponse: mrt, LastMemberInterval: lmqi, LastMemberCount: lmqc},
		"debug igmp events", "debug igmp packets", "debug igmp trace")
	stopCap := tp.capture(t)
	ff := filepath.Join(t.TempDir(), "filters")
	filters := frrFilters(hosts, groups)
	var fb strings.Builder
	for h, f := range filters {
		fmt.Fprintf(&fb, "%d %s %s\n", h, f.mode, strings.Join(f.srcs, ","))
	}
	must(t, os.WriteFile(ff, []byte(fb.String()), 0o644))
	base := netip.MustParseAddr("239.1.1.0")
	want := expectRouter(filters, func(h int) string { return addrAdd(base, uint64(h%groups)).String() })
	rep0, gq0 := tp.stats(t)

	var (
		done                        frrState
		doneErr                     error
		rampEnd, doneStart, doneEnd time.Time
	)
	start := time.Now()
	res := tp.emulate(t, func() {
		doneStart = time.Now()
		done, doneErr = tp.state()
		doneEnd = time.Now()
	}, "--hosts", strconv.Itoa(hosts), "--addrs", "198.51.100.0/24", "--groups", strconv.Itoa(groups), "--group-base", base.String(),
		"--sources", "192.0.2.1+6", "--filter-file", ff, "--igmp", "3", "--rate", "300", "--hold", "9s")
	returned := time.Now()
	rampEnd = start.Add(res.setupTime + res.rampTime)
	must(t, doneErr)
	checkLearned(t, done, want)
	if t.Failed() || testing.Verbose() {
		for _, g := range slices.Sorted(maps.Keys(want)) {
			w, got := want[g], done.groups[g]
			var srcs []string
			for _, s := range done.sources[g] {
				srcs = append(srcs, s.Source+"("+s.Timer+")")
			}
			t.Logf("%s: want %s include %v blocked %v; pimd %s timer %s sources %v", g, w.mode, keys(w.include), keys(w.blocked), got.Mode, got.Timer, srcs)
		}
	}

	// Leave: the hosts' final reports went out as emulate returned.
	empty, emptyAt := tp.waitEmpty(t, 15*time.Second)
	// Without leaves pimd would keep a group until its timer (GMI =
	// robustness*QI + MRT after the last report) ran out: at least
	// GMI - QI - MRT after the last General Query's answers.
	gmi := 2*qi + mrt
	if emptyAt.IsZero() {
		t.Errorf("pimd still holds %d groups 15 s after the hosts left (GMI %v): %v; sources %v", len(empty.groups), gmi, empty.groups, empty.sources)
		if out, err := tp.frr.Vtysh("show ip igmp groups", "show ip igmp sources", "show ip igmp sources retransmissions", "show ip igmp groups retransmissions"); err == nil {
			t.Logf("pimd:\n%s", out)
		}
		for g := range empty.groups {
			var lines []string
			for _, l := range strings.Split(tp.frr.Log(), "\n") {
				if strings.Contains(l, g+")") || strings.Contains(l, g+" ") || strings.Contains(l, g+",") || strings.Contains(l, g+":") {
					lines = append(lines, l)
				}
			}
			t.Logf("pimd log lines on %s (last 60 of %d):\n%s", g, len(lines), strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	} else {
		took := emptyAt.Sub(returned)
		t.Logf("pimd empty %v after emulate returned (last member query time %v, GMI %v)", took.Round(time.Millisecond), time.Duration(lmqc)*lmqi, gmi)
		if stale := staleGroups(empty); len(stale) > 0 {
			t.Logf("pimd keeps %d stale INCLUDE {} group records without a timer (FRR 8.4 recreates a group on a late BLOCK): %v", len(stale), stale)
		}
		if took > gmi-qi-mrt {
			t.Errorf("pimd took %v to drop the groups after the leaves: as long as timing out without any leave (%v)", took, gmi-qi-mrt)
		}
	}
	rep1, gq1 := tp.stats(t)
	pkts, dropped := stopCap()
	if dropped != 0 {
		t.Errorf("tcpdump dropped %d packets: the capture is not a complete oracle", dropped)
	}

	// Every host answers every General Query pimd sent while all were
	// joined (after the ramp, before onDone) within the MRT.
	hostAddr := func(a netip.Addr) (int, bool) {
		b := a.As4()
		if b[0] != 198 || b[1] != 51 || b[2] != 100 || b[3] == 0 || int(b[3]) > hosts {
			return 0, false
		}
		return int(b[3]) - 1, true
	}
	var gqs []time.Time
	// The tool takes its count after onDone returned: the reports
	// captured before that are in it, none captured after the hosts' close.
	capReports, capBeforeDone, capDoneToReturn := 0, 0, 0
	for _, p := range pkts {
		if p.general && p.src == netip.MustParseAddr("198.51.100.254") && p.at.After(rampEnd) && p.at.Add(mrt).Before(doneStart) {
			gqs = append(gqs, p.at)
		}
		if _, ok := hostAddr(p.src); ok && p.report {
			capReports++
			if p.at.Before(doneEnd) {
				capBeforeDone++
			} else if p.at.Before(returned) {
				capDoneToReturn++
			}
		}
	}
	if len(gqs) == 0 {
		t.Fatalf("no General Query of pimd between the end of the ramp and the end of the hold (%d IGMP packets captured)", len(pkts))
	}
	for _, q := range gqs {
		first := map[int]time.Duration{}
		for _, p := range pkts {
			if h, ok := hostAddr(p.src); ok && p.report && p.at.After(q) && p.at.Before(q.Add(qi)) {
				if _, seen := first[h]; !seen {
					first[h] = p.at.Sub(q)
				}
			}
		}
		var late []string
		var worst time.Duration
		for h := range hosts {
			d, ok := first[h]
			worst = max(worst, d)
			switch {
			case !ok:
				late = append(late, fmt.Sprintf("host %d: no answer", h))
			case d > mrt:
				late = append(late, fmt.Sprintf("host %d: %v", h, d.Round(time.Millisecond)))
			}
		}
		t.Logf("General Query at %v: %d of %d hosts answered, the last after %v (MRT %v)",
			q.Sub(start).Round(time.Millisecond), len(first), hosts, worst.Round(time.Millisecond), mrt)
		if len(late) > 0 {
			t.Errorf("General Query at %v: %d hosts did not answer within the MRT: %v", q.Sub(start).Round(time.Millisecond), len(late), late[:min(len(late), 10)])
		}
	}
	t.Logf("reports: the tool counted %d; the capture saw %d from the hosts until onDone returned, %d more until emulate returned, %d in all; pimd counted %d IGMPv3 reports and sent %d General Queries during the test",
		res.reports, capBeforeDone, capDoneToReturn, capReports, rep1-rep0, gq1-gq0)
	if int(res.reports) < capBeforeDone || int(res.reports) > capBeforeDone+capDoneToReturn {
		t.Errorf("the tool counted %d reports; the capture saw %d before its count was taken (and %d around it)", res.reports, capBeforeDone, capDoneToReturn)
	}
	if rep1-rep0 < capReports {
		t.Errorf("pimd counted %d IGMPv3 reports, the capture saw %d from the hosts", rep1-rep0, capReports)
	}
}

type frrFilter struct {
	mode string
	srcs []string
}

// frrFilters gives host h (which joins group h%groups) its filter: groups
// with index 0 mod 3 have INCLUDE hosts only, 1 mod 3 EXCLUDE hosts only,
// 2 mod 3 both (every third host of the group EXCLUDE). In groups 2 and 8
// the exclude list is the base source; in 5 and 11 an INCLUDE host names
// it, so the list must be empty.
func frrFilters(hosts, groups int) []frrFilter {
	src := func(i int) string { return fmt.Sprintf("192.0.2.%d", 1+i%6) }
	out := make([]frrFilter, hosts)
	for h := range out {
		gi, k := h%groups, h/groups // k: the host's rank within its group
		excl := gi%3 == 1 || gi%3 == 2 && k%3 == 0
		if excl {
			// Every EXCLUDE host of a group excludes the group's "base"
			// source and one more that varies with the host.
			out[h] = frrFilter{"exclude", []string{src(gi), src(gi + 1 + k%4)}}
		} else {
			// INCLUDE: two sources, varying with the host, not the base...
			out[h] = frrFilter{"include", []string{src(gi + 1 + k%5), src(gi + 2 + k%4)}}
			if gi%6 == 5 && k == 1 {
				// ...except for one host of mixed groups 5 and 11: its
				// INCLUDE of the base must clear the exclude list.
				out[h].srcs[0] = src(gi)
			}
		}
		if out[h].srcs[0] == out[h].srcs[1] {
			out[h].srcs = out[h].srcs[:1]
		}
	}
	return out
}

// TestEmulateFrrForwardSSM: pimd as the router between a sender (two
// sources on its upstream interface, both sent to every group) and 60
// emulated hosts joining 10 SSM groups with INCLUDE {one source}: every
// join gets its (S,G) through pimd (join latency measured by the tool),
// pimd forwards no source no host included, and after the leave ramp it
// prunes every (S,G) (leave latency measured by the tool).
func TestEmulateFrrForwardSSM(t *testing.T) {
	if testing.Short() {
		t.Skip("namespaces")
	}
	const hosts, groups = 60, 10
	tp := newFrrTopoUp(t, true, netns.PIMInterface{PIM: true, IGMP: true, IGMPVersion: 3,
		QueryInterval: 4 * time.Second, MaxResponse: time.Second,
		LastMemberInterval: 500 * time.Millisecond, LastMemberCount: 2})
	var gs []netip.Addr
	for i := range groups {
		gs = append(gs, addrAdd(netip.MustParseAddr("232.1.1.0"), uint64(i)))
	}
	sources := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	// The bridge test's raw-frame sender, from this topology's sender.
	stop := (&bridgeTopo{snd: tp.snd, eS: tp.eS}).sender(t, gs, sources, 5001, 100)
	defer stop()
	var mroutes string
	res := tp.emulate(t, func() {
		var err error
		if mroutes, err = tp.frr.Vtysh("show ip mroute"); err != nil {
			t.Errorf("pimd mroutes: %v", err)
		}
	}, "--scenario", "leave-ramp", "--hosts", strconv.Itoa(hosts), "--addrs", "198.51.100.0/24", "--groups", strconv.Itoa(groups),
		"--group-base", "232.1.1.0", "--sources", "192.0.2.1+2", "--filter", "include:1", "--igmp", "3",
		"--rate", "100", "--settle", "10s", "--hold", "4s", "--leave-window", "3s")
	t.Logf("pimd mroutes at the end of the hold:\n%s", mroutes)
	if got := count(res, evJoin, "setup", "ok"); got != hosts {
		t.Errorf("%d of %d joins got their (S,G) through pimd", got, hosts)
	}
	var joinLat []time.Duration
	var leaves, pruned, shared int
	for _, ev := range res.events {
		switch {
		case ev.kind == evJoin:
			if d, ok := ev.latency(); ok {
				joinLat = append(joinLat, d)
			}
		case ev.kind == evLeave:
			leaves++
			switch ev.status() {
			case "ok":
				pruned++
			case "shared":
				shared++
			}
		}
	}
	js := summarize(joinLat)
	t.Logf("join latency through pimd (first report -> first datagram, resolution 10 ms): n %d p50 %v p99 %v max %v",
		js.N, roundDur(js.P50), roundDur(js.P99), roundDur(js.Max))
	// The last leave of each (S,G) some host wants must be pruned, the
	// others are shared.
	cfg := memlanConfig(t, "--hosts", strconv.Itoa(hosts), "--groups", strconv.Itoa(groups), "--group-base", "232.1.1.0",
		"--filter", "include:1", "--sources", "192.0.2.1+2")
	sgs := map[string]bool{}
	for h := range hosts {
		for _, src := range cfg.filterFor(h, h%groups).Sources {
			sgs[src.String()+","+cfg.group(h%groups).String()] = true
		}
	}
	if pruned != len(sgs) || shared != hosts-len(sgs) || leaves != hosts {
		t.Errorf("leaves: %d pruned, %d shared of %d; want %d pruned (one per (S,G)), %d shared",
			pruned, shared, leaves, len(sgs), hosts-len(sgs))
	}
	if strings.Contains(mroutes, "232.1.1.") {
		t.Errorf("pimd still has multicast routes after every host left and the hold ended")
	}
	if res.excluded != 0 {
		t.Errorf("pimd forwarded %d datagrams of sources no host included", res.excluded)
	}
	t.Logf("measured through pimd: flood %d datagrams (%d groups), excluded-source %d", res.flood, res.floodGroups, res.excluded)
}

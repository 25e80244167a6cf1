//go:build linux

package interop

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/stack"
)

// Timeouts. The bridge runs with netns.FastTimerArgs: general queries every
// 5 s, 1 s response interval, last member interval 1 s × 2. A leave is
// therefore seen within about 2-3 s; the first queries come within 2 s.
const (
	learnTimeout = 5 * time.Second  // a report reaching the mdb
	leaveTimeout = 8 * time.Second  // group(-and-source)-specific queries, then removal
	queryTimeout = 10 * time.Second // a general query reaching us
	perSource    = 20               // datagrams per source per phase
)

// TestInteropIPv4 and TestInteropIPv6 run the main scenario against the
// Linux bridge (IGMPv3 / MLDv2 querier) with a Linux kernel sender and a
// Linux kernel receiver on the same group as our stack.
func TestInteropIPv4(t *testing.T) {
	t.Parallel()
	mainScenario(t, fam4, netip.MustParseAddr("239.1.2.3"), 5001)
}

func TestInteropIPv6(t *testing.T) {
	t.Parallel()
	mainScenario(t, fam6, netip.MustParseAddr("ff1e::1:2"), 5002)
}

func mainScenario(t *testing.T, f family, group netip.Addr, port uint16) {
	tp := newTopo(t, topoOptions{})
	a, b := f.srcA, f.srcB

	st := tp.ifc.Status()
	if f.is4 && st.IGMP.Version != 3 {
		t.Errorf("IGMP version %d at start, want 3", st.IGMP.Version)
	}
	if !f.is4 && st.MLD.Version != 2 {
		t.Errorf("MLD version %d at start, want 2", st.MLD.Version)
	}

	// The kernel receiver joins any-source; it must keep receiving from
	// both sources whatever our stack does on the same group.
	kern := tp.kernelReceiver(group, port)
	tp.waitMDB(learnTimeout, "the kernel receiver's membership", func(e []netns.MDBEntry) bool {
		_, ok := groupEntry(e, tp.portKrn, group)
		return ok
	})

	c, err := tp.st.ListenUDP(f.network, netip.AddrPortFrom(netip.Addr{}, port))
	must(t, err)
	ours := stackReceiver(t, c, group)

	// The steps run in order on the test's goroutine (the helpers fail
	// the test with t.Fatal, so they are not subtests).
	step(t, "join INCLUDE {S1}", func() {
		must(t, c.JoinSourceSpecificGroup(tp.ifc, group, a))
		e := tp.waitFilter(learnTimeout, group, "include", a)
		t.Logf("mdb:\n%s", dumpMDB([]netns.MDBEntry{e}))
		tp.checkOnlyOurGroups(group)
		tp.expectDelivery("include", group, port, perSource, []netip.Addr{a, b}, []delivery{
			{ty: ours, want: []netip.Addr{a}, not: []netip.Addr{b}},
			{ty: kern, want: []netip.Addr{a, b}},
		})
	})

	step(t, "block EXCLUDE {S1}", func() {
		// Any-source, then block S1 (RFC 3678 §4.1.1), in quick succession.
		must(t, c.SetSourceFilter(tp.ifc, group, membership.Exclude, nil))
		must(t, c.ExcludeSourceSpecificGroup(tp.ifc, group, a))
		tp.waitFilter(learnTimeout, group, "exclude", a)
		// The bridge first keeps S1 as requested (timer running) and asks
		// with a group-and-source-specific query whether anyone still
		// wants it; we must not answer for S1, so it becomes blocked
		// (timer 0).
		e := tp.waitMDB(leaveTimeout, "S1 blocked (timer 0) on our port", func(entries []netns.MDBEntry) bool {
			e, ok := groupEntry(entries, tp.portStk, group)
			return ok && e.FilterMode == "exclude" && sourceTimerZero(e, a)
		})
		t.Logf("mdb:\n%s", dumpMDB(netns.FilterMDB(e, func(e netns.MDBEntry) bool { return e.Port == tp.portStk })))
		tp.checkOnlyOurGroups(group)
		tp.expectDelivery("exclude", group, port, perSource, []netip.Addr{a, b}, []delivery{
			{ty: ours, want: []netip.Addr{b}, not: []netip.Addr{a}},
			{ty: kern, want: []netip.Addr{a, b}},
		})
	})

	step(t, "leave", func() {
		must(t, c.LeaveGroup(tp.ifc, group))
		tp.waitGone(leaveTimeout, tp.portStk, group)
		entries, err := tp.br.MDB()
		must(t, err)
		if _, ok := groupEntry(entries, tp.portKrn, group); !ok {
			t.Errorf("the kernel receiver's membership went away with ours; mdb:\n%s", dumpMDB(entries))
		}
		tp.expectDelivery("left", group, port, perSource, []netip.Addr{a, b}, []delivery{
			{ty: ours, not: []netip.Addr{a, b}},
			{ty: kern, want: []netip.Addr{a, b}},
		})
	})

	step(t, "rejoin any-source then close the stack", func() {
		must(t, c.JoinGroup(tp.ifc, group))
		tp.waitFilter(learnTimeout, group, "exclude")
		tp.expectDelivery("any", group, port, perSource, []netip.Addr{a, b}, []delivery{
			{ty: ours, want: []netip.Addr{a, b}},
			{ty: kern, want: []netip.Addr{a, b}},
		})
		if err := tp.st.Close(); err != nil {
			t.Errorf("stack close: %v", err)
		}
		tp.waitGone(leaveTimeout, tp.portStk, group)
		entries, err := tp.br.MDB()
		must(t, err)
		if _, ok := groupEntry(entries, tp.portKrn, group); !ok {
			t.Errorf("the kernel receiver's membership went away with ours; mdb:\n%s", dumpMDB(entries))
		}
	})

	if f.is4 {
		tp.checkCapture(igmpV3Report)
	} else {
		tp.checkCapture(mldV2Report)
	}
}

// step logs the start and end of one step of a scenario.
func step(t *testing.T, name string, f func()) {
	t.Helper()
	t.Logf("step %q", name)
	start := time.Now()
	f()
	t.Logf("step %q done in %v", name, time.Since(start).Round(time.Millisecond))
}

// sourceTimerZero reports whether src is in e's source list with a zero
// timer (in EXCLUDE mode: blocked).
func sourceTimerZero(e netns.MDBEntry, src netip.Addr) bool {
	for _, s := range e.SourceList {
		if sameAddr(s.Address, src) {
			v, err := strconv.ParseFloat(strings.TrimSpace(s.Timer), 64)
			return err == nil && v == 0
		}
	}
	return false
}

// TestInteropFallback sets the bridge's querier to IGMPv2 and MLDv1: our
// stack must fall back to those versions and keep its memberships alive by
// answering the queries, past the bridge's membership interval.
func TestInteropFallback(t *testing.T) {
	t.Parallel()
	// An 8 s group membership interval: the entries survive the wait below
	// only if we answer the 5-second general queries.
	const gmi = 8 * time.Second
	tp := newTopo(t, topoOptions{igmpVersion: 2, mldVersion: 1,
		bridgeExtra: []string{"mcast_membership_interval", strconv.Itoa(int(gmi / (10 * time.Millisecond)))}})
	g4, g6 := netip.MustParseAddr("239.1.2.4"), netip.MustParseAddr("ff1e::1:4")
	const p4, p6 = 5003, 5004

	c4, err := tp.st.ListenUDP("udp4", netip.AddrPortFrom(netip.Addr{}, p4))
	must(t, err)
	c6, err := tp.st.ListenUDP("udp6", netip.AddrPortFrom(netip.Addr{}, p6))
	must(t, err)
	r4, r6 := stackReceiver(t, c4, g4), stackReceiver(t, c6, g6)
	must(t, c4.JoinGroup(tp.ifc, g4))
	must(t, c6.JoinGroup(tp.ifc, g6))

	tp.waitStatus(queryTimeout, "fall back to IGMPv2 and MLDv1", func(st stack.Status) bool {
		return st.IGMP.Version == 2 && st.MLD.Version == 1
	})
	// Version 1/2 reports are learned as any-source memberships: no
	// sources, and no filter mode at all while the bridge itself runs
	// IGMPv2 / MLDv1 (it tracks modes only in v3 / v2 mode).
	for _, g := range []netip.Addr{g4, g6} {
		e := tp.waitMDB(learnTimeout, fmt.Sprintf("any-source entry for %s on our port", g), func(entries []netns.MDBEntry) bool {
			e, ok := groupEntry(entries, tp.portStk, g)
			return ok && (e.FilterMode == "" || e.FilterMode == "exclude") && len(e.SourceList) == 0
		})
		t.Logf("mdb:\n%s", dumpMDB(netns.FilterMDB(e, func(e netns.MDBEntry) bool { return e.Port == tp.portStk })))
	}
	tp.checkOnlyOurGroups(g4, g6)

	// Keep checking for longer than the membership interval.
	until := time.Now().Add(gmi + time.Second)
	for time.Now().Before(until) {
		entries, err := tp.br.MDBPort(tp.portStk)
		must(t, err)
		_, ok4 := groupEntry(entries, tp.portStk, g4)
		_, ok6 := groupEntry(entries, tp.portStk, g6)
		if !ok4 || !ok6 {
			t.Fatalf("membership lost in fallback mode (IGMP %v, MLD %v); mdb of our port:\n%s", ok4, ok6, dumpMDB(entries))
		}
		time.Sleep(500 * time.Millisecond)
	}
	st := tp.ifc.Status()
	if st.IGMP.Version != 2 || st.MLD.Version != 1 {
		t.Errorf("versions after the wait: IGMP %d, MLD %d; want 2 and 1", st.IGMP.Version, st.MLD.Version)
	}
	tp.expectDelivery("v2", g4, p4, perSource, []netip.Addr{srcA4, srcB4}, []delivery{{ty: r4, want: []netip.Addr{srcA4, srcB4}}})
	tp.expectDelivery("v1", g6, p6, perSource, []netip.Addr{srcA6, srcB6}, []delivery{{ty: r6, want: []netip.Addr{srcA6, srcB6}}})

	if err := tp.st.Close(); err != nil {
		t.Errorf("stack close: %v", err)
	}
	tp.waitGone(leaveTimeout, tp.portStk, g4)
	tp.waitGone(leaveTimeout, tp.portStk, g6)
	tp.checkCapture(igmpV2Report, igmpV2Leave, mldV1Report, mldV1Done)
}

// TestInteropTAP runs one basic source-specific join and delivery per
// family with our stack on a TAP device that is a port of the bridge.
func TestInteropTAP(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, topoOptions{tap: true})
	for _, f := range []struct {
		fam   family
		group netip.Addr
		port  uint16
	}{
		{fam4, netip.MustParseAddr("232.1.2.5"), 5005},
		{fam6, netip.MustParseAddr("ff3e::1:5"), 5005},
	} {
		c, err := tp.st.ListenUDP(f.fam.network, netip.AddrPortFrom(netip.Addr{}, f.port))
		must(t, err)
		r := stackReceiver(t, c, f.group)
		must(t, c.JoinSourceSpecificGroup(tp.ifc, f.group, f.fam.srcA))
		tp.waitFilter(learnTimeout, f.group, "include", f.fam.srcA)
		tp.expectDelivery("tap", f.group, f.port, perSource, []netip.Addr{f.fam.srcA, f.fam.srcB}, []delivery{
			{ty: r, want: []netip.Addr{f.fam.srcA}, not: []netip.Addr{f.fam.srcB}},
		})
	}
	if err := tp.st.Close(); err != nil {
		t.Errorf("stack close: %v", err)
	}
	tp.waitGone(leaveTimeout, tp.portStk, netip.MustParseAddr("232.1.2.5"))
	tp.waitGone(leaveTimeout, tp.portStk, netip.MustParseAddr("ff3e::1:5"))
	tp.checkCapture(igmpV3Report, mldV2Report)
}

// TestInteropChecksumOffload leaves the kernel sender's veth with its
// default tx checksum offload: its UDP datagrams reach our AF_PACKET socket
// with only the pseudo-header sum in the checksum field (CHECKSUM_PARTIAL),
// as they do on any veth or container link fed by a local kernel. The
// endpoint must take the kernel's word for them (PACKET_AUXDATA
// TP_STATUS_CSUMNOTREADY) rather than drop them as bad_udp.
func TestInteropChecksumOffload(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, topoOptions{keepOffload: true})
	for _, f := range []struct {
		fam   family
		group netip.Addr
		port  uint16
	}{
		{fam4, netip.MustParseAddr("239.1.2.7"), 5007},
		{fam6, netip.MustParseAddr("ff1e::1:7"), 5007},
	} {
		c, err := tp.st.ListenUDP(f.fam.network, netip.AddrPortFrom(netip.Addr{}, f.port))
		must(t, err)
		r := stackReceiver(t, c, f.group)
		must(t, c.JoinGroup(tp.ifc, f.group))
		tp.waitFilter(learnTimeout, f.group, "exclude")
		tp.expectDelivery("offload", f.group, f.port, perSource, []netip.Addr{f.fam.srcA, f.fam.srcB}, []delivery{
			{ty: r, want: []netip.Addr{f.fam.srcA, f.fam.srcB}},
		})
	}
	if c := tp.ifc.Status().Counters; c["bad_udp_checksum"]+c["bad_udp_truncated"]+c["bad_udp_malformed"] != 0 {
		t.Errorf("bad UDP datagrams: checksum %d, truncated %d, malformed %d; want none",
			c["bad_udp_checksum"], c["bad_udp_truncated"], c["bad_udp_malformed"])
	}
}

// TestInteropCLISignal runs `mcast recv` on AF_PACKET, checks what it
// prints and that its memberships reach the bridge, then sends it SIGINT:
// it must exit 0 and its memberships must leave the mdb.
func TestInteropCLISignal(t *testing.T) {
	t.Parallel()
	netns.RequireRoot(t)
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("skipping: cannot build the mcast CLI: no go tool on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mcast")
	build := exec.Command(gotool, "build", "-o", bin, "github.com/mcstack/mcstack/cmd/mcast")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the mcast CLI: %v\n%s", err, out)
	}
	tp := newTopo(t, topoOptions{noStack: true})
	g4, g6 := netip.MustParseAddr("232.1.2.6"), netip.MustParseAddr("ff3e::1:6")
	const port = 5006

	var mu sync.Mutex
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", tp.stk.Name, bin, "recv",
		"-i", tp.vStk, "-a", stackAddr4.String(), "-a", stackAddr6.String(),
		"-g", g4.String(), "-s", srcA4.String(), "-g", g6.String(), "-s", srcA6.String(),
		"-p", strconv.Itoa(port), "--admin", "off")
	cmd.Stdout = &lockedWriter{w: &stdout, mu: &mu}
	cmd.Stderr = &lockedWriter{w: &stderr, mu: &mu}
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	output := func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		return stdout.String(), stderr.String()
	}

	tp.waitFilter(learnTimeout, g4, "include", srcA4)
	tp.waitFilter(learnTimeout, g6, "include", srcA6)
	tp.checkOnlyOurGroups(g4, g6)
	const n = 5
	tp.send("cli", g4, port, n, srcA4, srcB4)
	tp.send("cli", g6, port, n, srcA6, srcB6)

	// One line per datagram: TIME SOURCE GROUP:PORT LENGTH.
	count := func() (map[string]int, []string) {
		out, _ := output()
		got := map[string]int{}
		var bad []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			fs := strings.Fields(l)
			if len(fs) != 4 {
				bad = append(bad, l)
				continue
			}
			if _, err := time.Parse(time.RFC3339Nano, fs[0]); err != nil {
				bad = append(bad, l+" (time: "+err.Error()+")")
			}
			gp, err := netip.ParseAddrPort(fs[2])
			if err != nil {
				// IPv6 may be printed without brackets: GROUP:PORT.
				i := strings.LastIndexByte(fs[2], ':')
				g, gerr := netip.ParseAddr(fs[2][:max(i, 0)])
				p, perr := strconv.Atoi(fs[2][i+1:])
				if gerr != nil || perr != nil {
					bad = append(bad, l)
					continue
				}
				gp = netip.AddrPortFrom(g, uint16(p))
			}
			if gp.Port() != port || (gp.Addr() != g4 && gp.Addr() != g6) {
				bad = append(bad, l)
				continue
			}
			got[fs[1]]++
		}
		return got, bad
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got, _ := count()
		if got[srcA4.String()] >= n && got[srcA6.String()] >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, bad := count()
	for _, s := range []netip.Addr{srcA4, srcA6} {
		if got[s.String()] != n {
			t.Errorf("mcast recv printed %d lines from included source %s, want %d", got[s.String()], s, n)
		}
	}
	for _, s := range []netip.Addr{srcB4, srcB6} {
		if got[s.String()] != 0 {
			t.Errorf("mcast recv printed %d lines from excluded source %s", got[s.String()], s)
		}
	}
	if len(bad) > 0 {
		t.Errorf("malformed output lines:\n%s", strings.Join(bad, "\n"))
	}

	must(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-done:
		done <- err
		if err != nil {
			out, errs := output()
			t.Errorf("mcast recv after SIGINT: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mcast recv did not exit within 10 s of SIGINT")
	}
	tp.waitGone(leaveTimeout, tp.portStk, g4)
	tp.waitGone(leaveTimeout, tp.portStk, g6)
	if _, errs := output(); t.Failed() {
		t.Logf("mcast recv stderr:\n%s", errs)
	}
	tp.checkCapture(igmpV3Report, mldV2Report)
}

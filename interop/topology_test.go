//go:build linux

package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/link/tap"
	"github.com/mcstack/mcstack/stack"
)

// Addresses: documentation ranges only, and every packet stays inside the
// test's namespaces.
var (
	// The stack's own addresses (known to the stack only, never to the
	// kernel of its namespace).
	stackAddr4 = netip.MustParsePrefix("192.0.2.10/24")
	stackAddr6 = netip.MustParsePrefix("2001:db8::10/64")
	// The kernel sender's two sources: S1 and S2.
	srcA4 = netip.MustParseAddr("192.0.2.2")
	srcB4 = netip.MustParseAddr("192.0.2.3")
	srcA6 = netip.MustParseAddr("2001:db8::2")
	srcB6 = netip.MustParseAddr("2001:db8::3")
	// The kernel receiver.
	kernAddr4 = netip.MustParsePrefix("192.0.2.4/24")
	kernAddr6 = netip.MustParsePrefix("2001:db8::4/64")
)

// family holds the per-address-family parameters of a scenario.
type family struct {
	name       string
	is4        bool
	srcA, srcB netip.Addr
	network    string // "udp4" / "udp6"
}

var (
	fam4 = family{name: "ipv4", is4: true, srcA: srcA4, srcB: srcB4, network: "udp4"}
	fam6 = family{name: "ipv6", is4: false, srcA: srcA6, srcB: srcB6, network: "udp6"}
)

// sendHops is the TTL / hop limit the kernel sender uses. The bridge does
// not decrement it, so our stack must report exactly this value.
const sendHops = 4

// topoOptions selects the bridge's querier versions and the backend of our
// stack.
type topoOptions struct {
	igmpVersion, mldVersion int
	// bridgeExtra is appended to the bridge's configuration.
	bridgeExtra []string
	// tap puts our stack on a TAP device that is a port of the bridge
	// instead of on AF_PACKET at the far end of a veth.
	tap bool
	// noStack skips starting our stack (the CLI test runs the binary).
	noStack bool
	// keepOffload leaves tx checksum offload on for the kernel peers'
	// veths. A veth passes the kernel's CHECKSUM_PARTIAL packets on with
	// only the pseudo-header sum in the UDP checksum field; the receiving
	// kernel (and our AF_PACKET endpoint, through TP_STATUS_CSUMNOTREADY)
	// trusts the skb's checksum state. TestInteropChecksumOffload covers
	// that case; the other tests turn offload off so that frames look like
	// a real NIC's, with complete checksums, which our stack verifies.
	keepOffload bool
}

// topo is one test's private network:
//
//	stk ns: vStk (AF_PACKET, our stack) ─┐
//	snd ns: vSnd (kernel sender)       ──┼── br ns: bridge (snooping + querier)
//	krn ns: vKrn (kernel receiver)     ──┘
//
// With topoOptions.tap our stack is on a TAP device in the br ns instead.
type topo struct {
	t             *testing.T
	br, stk       *netns.NS
	snd, krn      *netns.NS
	bridge        string
	portStk       string // the bridge port our stack is behind
	portSnd       string
	portKrn       string
	vStk          string // our stack's interface (in stk; empty with tap)
	vSnd, vKrn    string
	capture       *capture
	st            *stack.Stack
	ifc           *stack.Interface
	mac           net.HardwareAddr
	sendersMu     sync.Mutex
	sendersByAddr map[netip.Addr]*sender
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newTopo builds the network, starts the capture on our bridge port and
// (unless opts.noStack) starts our stack. Everything is torn down by
// t.Cleanup, in reverse order, even when the test fails.
func newTopo(t *testing.T, opts topoOptions) *topo {
	t.Helper()
	netns.RequireRoot(t)
	tp := &topo{t: t, sendersByAddr: map[netip.Addr]*sender{}}

	// The bridge namespace. The bridge's MLD querier needs the bridge's
	// link-local address at once: no DAD. Its ports get no IPv6 at all
	// (default.disable_ipv6 is set after the bridge exists), so the
	// kernel sends nothing of its own out of them.
	tp.br = netns.New(t, "ibr")
	for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		must(t, tp.br.Sysctl(k, "0"))
	}
	tp.bridge = netns.UniqueName("br")
	igmpV, mldV := opts.igmpVersion, opts.mldVersion
	if igmpV == 0 {
		igmpV = 3
	}
	if mldV == 0 {
		mldV = 2
	}
	must(t, tp.br.AddBridge(tp.bridge, netns.BridgeOptions{
		Snooping: true, Querier: true, IGMPVersion: igmpV, MLDVersion: mldV,
		FastTimers: true, Extra: opts.bridgeExtra,
	}))
	must(t, tp.br.DisableIPv6("default"))

	// Kernel peers: sender and receiver, with addresses usable at once.
	tp.snd, tp.vSnd, tp.portSnd = tp.kernelPeer("isnd", opts.keepOffload, []netip.Prefix{
		netip.PrefixFrom(srcA4, 24), netip.PrefixFrom(srcB4, 24),
		netip.PrefixFrom(srcA6, 64), netip.PrefixFrom(srcB6, 64),
	})
	tp.krn, tp.vKrn, tp.portKrn = tp.kernelPeer("ikrn", opts.keepOffload, []netip.Prefix{kernAddr4, kernAddr6})

	// Our stack's link.
	var open func() (link.Endpoint, error)
	if opts.tap {
		tp.portStk = netns.UniqueName("itap")
		must(t, tp.br.AddTap(tp.portStk))
		must(t, tp.br.DisableIPv6(tp.portStk))
		must(t, tp.br.SetMaster(tp.portStk, tp.bridge))
		must(t, tp.br.LinkUp(tp.portStk))
		open = func() (link.Endpoint, error) {
			var ep *tap.Endpoint
			err := tp.br.Do(func() (err error) {
				ep, err = tap.Open(tp.portStk, tap.Options{Logger: testLogger(t)})
				return err
			})
			return ep, err
		}
	} else {
		tp.stk = netns.New(t, "istk")
		// Keep the kernel of our namespace quiet: no IPv6 (so no MLD, no
		// neighbour discovery) and no IPv4 address (so no IGMP) on the
		// interface our stack drives.
		must(t, tp.stk.Quiet())
		tp.vStk = netns.UniqueName("vstk")
		tp.portStk = netns.UniqueName("pstk")
		must(t, netns.AddVeth(tp.br, tp.portStk, tp.stk, tp.vStk))
		must(t, tp.stk.DisableIPv6(tp.vStk))
		must(t, tp.stk.LinkUp(tp.vStk))
		must(t, tp.br.SetMaster(tp.portStk, tp.bridge))
		must(t, tp.br.LinkUp(tp.portStk))
		tp.startCapture()
		open = func() (link.Endpoint, error) {
			var ep *afpacket.Endpoint
			err := tp.stk.Do(func() (err error) {
				ep, err = afpacket.Open(tp.vStk, afpacket.Options{Mode: afpacketMode(t), Logger: testLogger(t)})
				if err == nil && afpacketMode(t) != afpacket.ModeAuto && ep.Mode() != afpacketMode(t) {
					ep.Close()
					return fmt.Errorf("afpacket endpoint in mode %v, want %v", ep.Mode(), afpacketMode(t))
				}
				return err
			})
			return ep, err
		}
	}
	if !opts.noStack {
		ep, err := open()
		if err != nil {
			t.Fatalf("open our link: %v", err)
		}
		if opts.tap {
			// Capture from when a program is attached to the TAP.
			tp.startCapture()
		}
		tp.st = stack.New(stack.Config{Logger: testLogger(t)})
		t.Cleanup(func() { tp.st.Close() })
		tp.ifc, err = tp.st.AddInterface(ep, stack.InterfaceConfig{
			Addrs: []netip.Prefix{stackAddr4, stackAddr6},
		})
		if err != nil {
			ep.Close()
			t.Fatalf("add interface: %v", err)
		}
		mac := ep.HardwareAddr()
		tp.mac = net.HardwareAddr(mac[:])
	} else {
		tp.mac = tp.linkMAC(tp.stk, tp.vStk)
	}
	return tp
}

// kernelPeer makes a namespace whose kernel has the given addresses on a
// veth to the bridge, and a route for multicast out of it.
func (tp *topo) kernelPeer(prefix string, keepOffload bool, addrs []netip.Prefix) (ns *netns.NS, ifname, port string) {
	t := tp.t
	t.Helper()
	ns = netns.New(t, prefix)
	for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		must(t, ns.Sysctl(k, "0"))
	}
	ifname = netns.UniqueName("v" + prefix[1:])
	port = netns.UniqueName("p" + prefix[1:])
	must(t, netns.AddVeth(tp.br, port, ns, ifname))
	for _, a := range addrs {
		args := []string{"ip", "addr", "add", a.String(), "dev", ifname}
		if a.Addr().Is6() {
			args = append(args, "nodad")
		}
		ns.MustRun(t, args...)
	}
	if !keepOffload {
		must(t, ns.SetTxChecksum(ifname, false))
	}
	must(t, ns.LinkUp(ifname))
	ns.MustRun(t, "ip", "route", "add", "224.0.0.0/4", "dev", ifname)
	must(t, tp.br.SetMaster(port, tp.bridge))
	must(t, tp.br.LinkUp(port))
	return ns, ifname, port
}

func (tp *topo) linkMAC(ns *netns.NS, ifname string) net.HardwareAddr {
	var mac net.HardwareAddr
	must(tp.t, ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	}))
	return mac
}

// testLogger sends warnings and errors of the stack and links to the test log.
// afpacketMode is the AF_PACKET receive mode the suite runs our stack on:
// $MCSTACK_AFPACKET_MODE (ring or recvmsg), or the default (ModeAuto, the
// ring). `make interop` runs the suite once in each mode.
func afpacketMode(t *testing.T) afpacket.Mode {
	switch m := os.Getenv("MCSTACK_AFPACKET_MODE"); m {
	case "":
		return afpacket.ModeAuto
	case "ring":
		return afpacket.ModeRing
	case "recvmsg":
		return afpacket.ModeRecvmsg
	default:
		t.Fatalf("MCSTACK_AFPACKET_MODE=%q: want ring or recvmsg", m)
	}
	return afpacket.ModeAuto
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// --- The bridge's multicast database -------------------------------------

// groupEntry returns the (*, G) entry learned on port for group, if any.
func groupEntry(entries []netns.MDBEntry, port string, group netip.Addr) (netns.MDBEntry, bool) {
	for _, e := range entries {
		if e.Port == port && e.Src == "" && sameAddr(e.Grp, group) {
			return e, true
		}
	}
	return netns.MDBEntry{}, false
}

// portHasGroup reports whether any entry, (*, G) or (S, G), for group is
// learned on port.
func portHasGroup(entries []netns.MDBEntry, port string, group netip.Addr) bool {
	for _, e := range entries {
		if e.Port == port && sameAddr(e.Grp, group) {
			return true
		}
	}
	return false
}

func sameAddr(s string, a netip.Addr) bool {
	b, err := netip.ParseAddr(s)
	return err == nil && b == a
}

func dumpMDB(entries []netns.MDBEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  port %s grp %s", e.Port, e.Grp)
		if e.Src != "" {
			fmt.Fprintf(&b, " src %s", e.Src)
		}
		if e.FilterMode != "" {
			fmt.Fprintf(&b, " filter_mode %s", e.FilterMode)
		}
		if len(e.SourceList) > 0 {
			b.WriteString(" source_list")
			for _, s := range e.SourceList {
				fmt.Fprintf(&b, " %s/%s", s.Address, s.Timer)
			}
		}
		if len(e.Flags) > 0 {
			fmt.Fprintf(&b, " flags %v", e.Flags)
		}
		fmt.Fprintf(&b, " state %s\n", e.State)
	}
	if b.Len() == 0 {
		return "  (empty)\n"
	}
	return b.String()
}

// waitMDB polls the bridge's mdb until cond holds, and fails the test with
// the last mdb seen when it does not within timeout.
func (tp *topo) waitMDB(timeout time.Duration, what string, cond func([]netns.MDBEntry) bool) []netns.MDBEntry {
	tp.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries, err := tp.br.MDB()
		if err != nil {
			tp.t.Fatalf("waiting for mdb: %s: %v", what, err)
		}
		if cond(entries) {
			return entries
		}
		if time.Now().After(deadline) {
			tp.t.Fatalf("bridge mdb: %s: not seen within %v; mdb:\n%s", what, timeout, dumpMDB(entries))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFilter waits until our port's (*, G) entry for group has mode and
// exactly the sources wanted, and no other port-level entries for other
// groups than those in allowed appear on our port.
func (tp *topo) waitFilter(timeout time.Duration, group netip.Addr, mode string, sources ...netip.Addr) netns.MDBEntry {
	tp.t.Helper()
	var got netns.MDBEntry
	want := make([]string, len(sources))
	for i, s := range sources {
		want[i] = s.String()
	}
	slices.Sort(want)
	what := fmt.Sprintf("port %s group %s filter_mode %s sources %v", tp.portStk, group, mode, want)
	tp.waitMDB(timeout, what, func(entries []netns.MDBEntry) bool {
		e, ok := groupEntry(entries, tp.portStk, group)
		if !ok || e.FilterMode != mode {
			return false
		}
		have := e.Sources()
		for i := range have {
			if a, err := netip.ParseAddr(have[i]); err == nil {
				have[i] = a.String()
			}
		}
		slices.Sort(have)
		got = e
		return slices.Equal(have, want)
	})
	return got
}

// waitGone waits until no entry for group is learned on port.
func (tp *topo) waitGone(timeout time.Duration, port string, group netip.Addr) {
	tp.t.Helper()
	tp.waitMDB(timeout, fmt.Sprintf("port %s: no entry for %s", port, group), func(entries []netns.MDBEntry) bool {
		return !portHasGroup(entries, port, group)
	})
}

// checkOnlyOurGroups fails the test if entries on our port name groups
// other than ours: the kernel of our namespace must not have joined
// anything there (its own MLD/ND groups would show up).
func (tp *topo) checkOnlyOurGroups(ours ...netip.Addr) {
	tp.t.Helper()
	entries, err := tp.br.MDBPort(tp.portStk)
	if err != nil {
		tp.t.Fatal(err)
	}
	for _, e := range entries {
		g, err := e.Group()
		if err != nil || !slices.Contains(ours, g) {
			tp.t.Errorf("unexpected mdb entry on our port (kernel side effect?):\n%s", dumpMDB([]netns.MDBEntry{e}))
		}
	}
}

// --- Kernel sender and receivers ------------------------------------------

// sender is a kernel UDP socket in the sender namespace bound to one source.
type sender struct {
	c    net.PacketConn
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
	addr netip.Addr
}

// senderFor returns (opening it on first use) the kernel socket sending
// from src, with TTL / hop limit sendHops, out of the sender's veth.
func (tp *topo) senderFor(src netip.Addr) *sender {
	t := tp.t
	t.Helper()
	tp.sendersMu.Lock()
	defer tp.sendersMu.Unlock()
	if s := tp.sendersByAddr[src]; s != nil {
		return s
	}
	s := &sender{addr: src}
	err := tp.snd.Do(func() error {
		ifi, err := net.InterfaceByName(tp.vSnd)
		if err != nil {
			return err
		}
		network := "udp4"
		if src.Is6() {
			network = "udp6"
		}
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return err
		}
		s.c = c
		if src.Is4() {
			s.p4 = ipv4.NewPacketConn(c)
			return errors.Join(s.p4.SetMulticastTTL(sendHops), s.p4.SetMulticastInterface(ifi), s.p4.SetMulticastLoopback(false))
		}
		s.p6 = ipv6.NewPacketConn(c)
		return errors.Join(s.p6.SetMulticastHopLimit(sendHops), s.p6.SetMulticastInterface(ifi), s.p6.SetMulticastLoopback(false))
	})
	if err != nil {
		if s.c != nil {
			s.c.Close()
		}
		t.Fatalf("kernel sender %s: %v", src, err)
	}
	t.Cleanup(func() { s.c.Close() })
	tp.sendersByAddr[src] = s
	return s
}

// send sends n datagrams to group:port from each source in turn (S1, S2,
// S1, S2, ...), with payload "phase src seq", paced to stay well under any
// queue limit.
func (tp *topo) send(phase string, group netip.Addr, port uint16, n int, sources ...netip.Addr) {
	tp.t.Helper()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(group, port))
	for i := 0; i < n; i++ {
		for _, src := range sources {
			s := tp.senderFor(src)
			msg := fmt.Sprintf("%s %s %d", phase, src, i)
			if _, err := s.c.WriteTo([]byte(msg), dst); err != nil {
				tp.t.Fatalf("kernel send %s -> %v: %v", src, dst, err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// tally counts received datagrams by phase and claimed source, and checks
// each against the sender's real address and hop count.
type tally struct {
	name  string
	mu    sync.Mutex
	count map[string]int // "phase src" -> datagrams
	bad   []string
	done  chan struct{}
}

func newTally(name string) *tally {
	return &tally{name: name, count: map[string]int{}, done: make(chan struct{})}
}

// add records one datagram: payload "phase src seq" from src with hops
// (negative when unknown).
func (ty *tally) add(payload []byte, src netip.Addr, dst netip.Addr, group netip.Addr, hops int) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	f := strings.Fields(string(payload))
	switch {
	case len(f) != 3:
		ty.bad = append(ty.bad, fmt.Sprintf("payload %q from %s", payload, src))
	case f[1] != src.String():
		ty.bad = append(ty.bad, fmt.Sprintf("payload %q says source %s, arrived from %s", payload, f[1], src))
	case dst.IsValid() && dst != group:
		ty.bad = append(ty.bad, fmt.Sprintf("payload %q: destination %s, want %s", payload, dst, group))
	case hops >= 0 && hops != sendHops:
		ty.bad = append(ty.bad, fmt.Sprintf("payload %q: hop count %d, want %d", payload, hops, sendHops))
	default:
		ty.count[f[0]+" "+f[1]]++
	}
}

func (ty *tally) get(phase string, src netip.Addr) int {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	return ty.count[phase+" "+src.String()]
}

func (ty *tally) problems() []string {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	return slices.Clone(ty.bad)
}

// stackReceiver reads a stack socket into a tally until the socket closes.
func stackReceiver(t *testing.T, c *stack.Conn, group netip.Addr) *tally {
	ty := newTally("our stack")
	go func() {
		defer close(ty.done)
		buf := make([]byte, 2048)
		for {
			n, cm, err := c.ReadMsg(buf)
			if err != nil {
				return
			}
			ty.add(buf[:n], cm.Src.Addr(), cm.Dst, group, cm.TTL)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-ty.done
	})
	return ty
}

// kernelReceiver opens a kernel UDP socket in the receiver namespace on
// group:port, joins group any-source on its veth, and reads it into a tally.
func (tp *topo) kernelReceiver(group netip.Addr, port uint16) *tally {
	t := tp.t
	t.Helper()
	ty := newTally("kernel receiver")
	var c net.PacketConn
	var p4 *ipv4.PacketConn
	var p6 *ipv6.PacketConn
	err := tp.krn.Do(func() error {
		ifi, err := net.InterfaceByName(tp.vKrn)
		if err != nil {
			return err
		}
		network := "udp6"
		if group.Is4() {
			network = "udp4"
		}
		c, err = net.ListenPacket(network, netip.AddrPortFrom(group, port).String())
		if err != nil {
			return err
		}
		gaddr := &net.UDPAddr{IP: group.AsSlice()}
		if group.Is4() {
			p4 = ipv4.NewPacketConn(c)
			return errors.Join(p4.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true), p4.JoinGroup(ifi, gaddr))
		}
		p6 = ipv6.NewPacketConn(c)
		return errors.Join(p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true), p6.JoinGroup(ifi, gaddr))
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		t.Fatalf("kernel receiver %s: %v", group, err)
	}
	go func() {
		defer close(ty.done)
		buf := make([]byte, 2048)
		for {
			var n, hops int
			var src net.Addr
			var dst net.IP
			var err error
			if p4 != nil {
				var cm *ipv4.ControlMessage
				n, cm, src, err = p4.ReadFrom(buf)
				if cm != nil {
					hops, dst = cm.TTL, cm.Dst
				}
			} else {
				var cm *ipv6.ControlMessage
				n, cm, src, err = p6.ReadFrom(buf)
				if cm != nil {
					hops, dst = cm.HopLimit, cm.Dst
				}
			}
			if err != nil {
				return
			}
			ua, _ := src.(*net.UDPAddr)
			var s netip.Addr
			if ua != nil {
				s = ua.AddrPort().Addr().Unmap()
			}
			d, _ := netip.AddrFromSlice(dst)
			ty.add(buf[:n], s, d.Unmap(), group, hops)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-ty.done
	})
	return ty
}

// expectDelivery sends n datagrams from each of sources, then waits until
// every receiver got all n from each source it should get, and checks that
// none came from the sources it should not get.
func (tp *topo) expectDelivery(phase string, group netip.Addr, port uint16, n int, sources []netip.Addr, rx []delivery) {
	t := tp.t
	t.Helper()
	tp.send(phase, group, port, n, sources...)
	deadline := time.Now().Add(3 * time.Second)
	for {
		complete := true
		for _, r := range rx {
			for _, s := range r.want {
				if r.ty.get(phase, s) < n {
					complete = false
				}
			}
		}
		if complete || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Late datagrams from an unwanted source would have arrived with the
	// interleaved wanted ones; allow a short grace anyway.
	time.Sleep(150 * time.Millisecond)
	for _, r := range rx {
		for _, s := range r.want {
			if got := r.ty.get(phase, s); got != n {
				t.Errorf("%s: %s received %d/%d datagrams from included source %s", phase, r.ty.name, got, n, s)
				if r.ty.name == "our stack" && tp.ifc != nil {
					t.Logf("our interface's counters: %v", tp.ifc.Status().Counters)
				}
			}
		}
		for _, s := range r.not {
			if got := r.ty.get(phase, s); got != 0 {
				t.Errorf("%s: %s received %d datagrams from excluded source %s", phase, r.ty.name, got, s)
			}
		}
		for _, p := range r.ty.problems() {
			t.Errorf("%s: %s: %s", phase, r.ty.name, p)
		}
	}
}

type delivery struct {
	ty        *tally
	want, not []netip.Addr
}

// --- Capture and dissection -----------------------------------------------

// capture is a tcpdump recording of everything on our bridge port.
type capture struct {
	file string
	cmd  *exec.Cmd
	errb bytes.Buffer
	done chan error
	mu   sync.Mutex
	stop bool
}

// startCapture starts tcpdump on our bridge port, in the bridge namespace,
// and waits until it listens. Without tcpdump it logs and records nothing.
func (tp *topo) startCapture() {
	t := tp.t
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Logf("not capturing: tcpdump not found (%v); the tshark checks will be skipped", err)
		return
	}
	dir := t.TempDir()
	if d := os.Getenv("INTEROP_KEEP_CAPTURE"); d != "" {
		dir = d // debugging aid: keep the captures
	}
	c := &capture{file: filepath.Join(dir, netns.UniqueName("cap")+".pcap"), done: make(chan error, 1)}
	// -Z root: Debian's tcpdump otherwise drops to user tcpdump, who may
	// not write into the test's private temporary directory.
	c.cmd = exec.Command("ip", "netns", "exec", tp.br.Name, "tcpdump", "-Z", "root", "-n", "-U", "--immediate-mode",
		"-i", tp.portStk, "-w", c.file)
	c.cmd.Stderr = &lockedWriter{w: &c.errb, mu: &c.mu}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.finish() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		ready := strings.Contains(c.errb.String(), "listening on")
		c.mu.Unlock()
		if ready {
			break
		}
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("tcpdump exited: %v: %s", err, c.stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", c.stderr())
		}
	}
	tp.capture = c
}

func (c *capture) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errb.String()
}

// finish stops tcpdump (SIGINT, so it flushes the file) and waits for it.
func (c *capture) finish() error {
	c.mu.Lock()
	if c.stop {
		c.mu.Unlock()
		return nil
	}
	c.stop = true
	c.mu.Unlock()
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-c.done:
		if err != nil && !strings.Contains(c.stderr(), "packets captured") {
			return fmt.Errorf("tcpdump: %v: %s", err, c.stderr())
		}
		return nil
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("tcpdump did not stop on SIGINT: %s", c.stderr())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tshark runs tshark on the capture with a display filter and returns the
// requested fields of the matching frames, one []string per frame.
func (tp *topo) tshark(filter string, fields ...string) [][]string {
	t := tp.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"-n", "-r", tp.capture.file, "-o", "ip.check_checksum:TRUE",
		"-Y", filter, "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.CommandContext(ctx, "tshark", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark -Y %q: %v: %s", filter, err, errb.String())
	}
	var rows [][]string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			rows = append(rows, strings.Split(l, "|"))
		}
	}
	return rows
}

// reportKind is one kind of IGMP or MLD message.
type reportKind struct {
	name   string
	field  string // "igmp.type" or "icmpv6.type"
	number int64
}

var (
	igmpV3Report = reportKind{"IGMPv3 report", "igmp.type", 0x22}
	igmpV2Report = reportKind{"IGMPv2 report", "igmp.type", 0x16}
	igmpV2Leave  = reportKind{"IGMPv2 leave", "igmp.type", 0x17}
	mldV2Report  = reportKind{"MLDv2 report", "icmpv6.type", 143}
	mldV1Report  = reportKind{"MLDv1 report", "icmpv6.type", 131}
	mldV1Done    = reportKind{"MLDv1 done", "icmpv6.type", 132}
)

// checkCapture stops the capture and dissects it with tshark (two passes,
// since tshark's start-up dominates): no malformed frame, no bad checksum,
// every IGMP message from us with TTL 1 and Router Alert and every MLD
// message with hop limit 1, Router Alert and a link-local source; and at
// least one message of each wanted kind from us.
func (tp *topo) checkCapture(wantFromUs ...reportKind) {
	t := tp.t
	t.Helper()
	if tp.capture == nil {
		return
	}
	if err := tp.capture.finish(); err != nil {
		t.Errorf("capture: %v", err)
		return
	}
	t.Logf("tcpdump on bridge port %s: %s", tp.portStk, strings.ReplaceAll(strings.TrimSpace(tp.capture.stderr()), "\n", "; "))
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Logf("skipping the dissector checks: tshark not found (%v); scripts/install-test-deps.sh installs it", err)
		return
	}
	us := fmt.Sprintf("eth.src == %s", tp.mac)
	mld := "(icmpv6.type == 131 || icmpv6.type == 132 || icmpv6.type == 143)"
	checks := []struct{ what, filter string }{
		{"malformed", "_ws.malformed"},
		{"bad checksum", `ip.checksum.status == "Bad" || igmp.checksum.status == "Bad" || icmpv6.checksum.status == "Bad" || udp.checksum.status == "Bad"`},
		// RFC 9776 §4, RFC 2236 §2; RFC 9777 §5, RFC 2710 §3.
		{"IGMP from us without TTL 1 and Router Alert", us + " && igmp && (ip.ttl != 1 || !ip.opt.ra)"},
		{"MLD from us without hop limit 1, Router Alert and link-local source", us + " && " + mld + " && (ipv6.hlim != 1 || !ipv6.opt.router_alert || !(ipv6.src == fe80::/10))"},
	}
	var union []string
	for _, c := range checks {
		union = append(union, "("+c.filter+")")
	}
	fields := []string{"frame.number", "_ws.col.Protocol", "_ws.col.Info"}
	if bad := tp.tshark(strings.Join(union, " || "), fields...); len(bad) > 0 {
		// Say which check each frame failed.
		for _, c := range checks {
			if rows := tp.tshark(c.filter, fields...); len(rows) > 0 {
				var lines []string
				for _, r := range rows {
					lines = append(lines, "  "+strings.Join(r, " "))
				}
				t.Errorf("tshark: %d frames %s:\n%s", len(rows), c.what, strings.Join(lines, "\n"))
			}
		}
	}
	rows := tp.tshark(us+" && (igmp || "+mld+")", "igmp.type", "icmpv6.type", "frame.time_relative", "_ws.col.Info")
	seen := map[string]int{}
	for _, r := range rows {
		for _, k := range []reportKind{igmpV3Report, igmpV2Report, igmpV2Leave, mldV2Report, mldV1Report, mldV1Done} {
			col := 0
			if k.field == "icmpv6.type" {
				col = 1
			}
			if col < len(r) {
				if v, err := strconv.ParseInt(strings.TrimSpace(r[col]), 0, 64); err == nil && v == k.number {
					seen[k.name]++
				}
			}
		}
	}
	for _, k := range wantFromUs {
		if seen[k.name] == 0 {
			t.Errorf("capture has no %s from us (%s)", k.name, tp.mac)
		}
	}
	var lines []string
	for _, r := range rows {
		if len(r) == 4 {
			lines = append(lines, fmt.Sprintf("  %8.3fs %s", atof(r[2]), r[3]))
		}
	}
	t.Logf("IGMP/MLD messages from us in the capture: %d %v\n%s", len(rows), seen, strings.Join(lines, "\n"))
}

// --- Misc -----------------------------------------------------------------

// waitStatus polls the interface status until cond holds.
func (tp *topo) waitStatus(timeout time.Duration, what string, cond func(stack.Status) bool) {
	tp.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := tp.ifc.Status()
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			tp.t.Fatalf("%s: not within %v; IGMP status %+v; MLD status %+v", what, timeout, st.IGMP, st.MLD)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func atof(s string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v
}

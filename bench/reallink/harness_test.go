//go:build linux

package reallink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/internal/tpacket"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/stack"
)

// The traffic: trafgen sends UDP from 192.0.2.2:4000 to 239.1.1.1:5000.
var (
	group     = netip.MustParseAddr("239.1.1.1")
	groupPort = uint16(5000)
	sndAddr   = "192.0.2.2/24"
	// rcvKernelAddr is the receiving veth's kernel address (the kernel
	// accepts multicast only on an interface with IPv4 configured);
	// rcvStackAddr is mcstack's own address on the same link.
	rcvKernelAddr = "192.0.2.1/24"
	rcvStackAddr  = netip.MustParsePrefix("192.0.2.3/24")
)

// Receive buffers: the kernel sockets get an 8 MiB SO_RCVBUF (forced past
// rmem_max), mcstack's sockets an 8 MiB read buffer (4,096 datagrams),
// the rings the default 8 MiB (32 blocks of 256 KiB).
const (
	rcvBuf    = 8 << 20
	batchSize = 64 // messages per recvmmsg / ReadBatch
	bufSize   = 2048
)

// env is the benchmark's private network: a sender namespace and a
// receiver namespace joined by a veth pair, and trafgen.
type env struct {
	snd, rcv *netns.NS
	vs, vr   string // sender and receiver ends of the veth
	trafgen  string
	dir      string // trafgen configurations
	// napi holds the process IDs of the receiving veth's NAPI threads
	// when its receive work runs in them (-reallink.napi), else nil.
	napi []int
	// napiCPUs is what the NAPI threads are bound to; napiPinned is false
	// when there was no CPU besides CPU 0 to bind them to.
	napiCPUs   unix.CPUSet
	napiPinned bool
}

// newEnv builds the network, or skips without root or trafgen (or, with
// -reallink.napi, without threaded NAPI). Everything is deleted by the
// namespaces' cleanups, also on failure.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	netns.RequireRoot(tb)
	tg, err := exec.LookPath("trafgen")
	if err != nil {
		tb.Skip("skipping: trafgen (Debian netsniff-ng) not installed; scripts/install-test-deps.sh installs it as root")
	}
	e := &env{
		snd: netns.New(tb, "mcrls"), rcv: netns.New(tb, "mcrlr"),
		vs: netns.UniqueName("mcrlvs"), vr: netns.UniqueName("mcrlvr"),
		trafgen: tg, dir: tb.TempDir(),
	}
	steps := []func() error{
		e.snd.Quiet, e.rcv.Quiet,
		func() error { return netns.AddVeth(e.snd, e.vs, e.rcv, e.vr) },
		func() error { return e.snd.AddAddr(e.vs, sndAddr) },
		func() error { return e.rcv.AddAddr(e.vr, rcvKernelAddr) },
		func() error { return e.snd.LinkUp(e.vs) },
		func() error { return e.rcv.LinkUp(e.vr) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			tb.Fatal(err)
		}
	}
	if *flagNAPI {
		e.setupNAPI(tb)
	}
	return e
}

// setupNAPI moves the receiving veth's kernel receive work off the sending
// CPU into the veth's own NAPI kernel thread, bound to the receiver's CPUs
// (those of receiverCPUs). See "Core separation" below for why and what
// follows.
//
//   - TSO off on the sending veth: veth_xmit hands a frame to the peer's
//     NAPI (its ptr_ring) only if the frame is "eligible for GRO", and a
//     frame from a packet socket (trafgen's) is so only when the sending
//     device has no TSO features; otherwise it still takes netif_rx and
//     the input backlog of the sending CPU.
//   - GRO on on the receiving veth: that makes a veth receive through its
//     NAPI instance at all.
//   - threaded NAPI on the receiving veth: the poll runs in a kernel thread
//     napi/<ifname>-<id> instead of the NET_RX softirq of the CPU that
//     scheduled it (the sender's).
//
// GRO does not merge these datagrams: UDP GRO applies only to sockets with
// UDP_GRO set or with rx-udp-gro-forwarding or rx-gro-list on the device,
// none of which is the case here (TestSmoke checks that the receivers see
// one frame per frame offered).
func (e *env) setupNAPI(tb testing.TB) {
	tb.Helper()
	if err := e.snd.SetTSO(e.vs, false); err != nil {
		tb.Fatalf("threaded NAPI: %v", err)
	}
	if err := e.rcv.SetGRO(e.vr, true); err != nil {
		tb.Fatalf("threaded NAPI: %v", err)
	}
	pids, err := e.rcv.SetThreadedNAPI(e.vr)
	if errors.Is(err, netns.ErrNoThreadedNAPI) {
		tb.Skipf("skipping: %v; run with -reallink.napi=false", err)
	}
	if err != nil {
		tb.Fatalf("threaded NAPI: %v", err)
	}
	e.napi = pids
	cpus, ok := receiverCPUs()
	if !ok {
		tb.Logf("one CPU only: the NAPI thread(s) %v of %s share it with trafgen and the receiver", pids, e.vr)
		return
	}
	for _, pid := range pids {
		if err := unix.SchedSetaffinity(pid, &cpus); err != nil {
			tb.Fatalf("threaded NAPI: bind NAPI thread %d of %s to CPU %s: %v", pid, e.vr, cpuList(cpus), err)
		}
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(pid, &got); err != nil {
			tb.Fatalf("threaded NAPI: affinity of NAPI thread %d of %s: %v", pid, e.vr, err)
		}
		if got != cpus {
			tb.Fatalf("threaded NAPI: NAPI thread %d of %s is on CPU %s after binding it to CPU %s", pid, e.vr, cpuList(got), cpuList(cpus))
		}
	}
	e.napiCPUs, e.napiPinned = cpus, true
}

// conf writes (once) the trafgen configuration for a payload size.
func (e *env) conf(payload int) (string, error) {
	path := filepath.Join(e.dir, fmt.Sprintf("udp%d.cfg", payload))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	// IPv4 and UDP lengths and checksums are filled in by trafgen.
	cfg := fmt.Sprintf("{ eth(da=01:00:5e:01:01:01, type=0x0800), ipv4(saddr=192.0.2.2, daddr=%v, ttl=4), udp(sport=4000, dport=%d), fill(0x61, %d) }\n",
		group, groupPort, payload)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", fmt.Errorf("write trafgen config: %w", err)
	}
	return path, nil
}

// sender is a running trafgen.
type sender struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

// startSender starts trafgen with one worker in the sender namespace. It
// runs under `timeout -s INT` (a bound in case the benchmark dies) until
// stop. -q takes the qdisc path, --no-sock-mem and -Q keep it from tuning the
// (machine-wide) socket memory sysctls and IRQ affinities, -C silences
// its CPU statistics.
//
// With threaded NAPI (e.napi) trafgen also gets -t 0ns, a zero gap between
// frames: that selects its one-sendto(2)-per-frame path on a blocking
// socket instead of its TX_RING. A frame waiting in the receiving veth's
// ring is still charged to the sending socket's buffer (wmem_default,
// 212,992 bytes here, the frame's length plus the skb's overhead each),
// which can run out while the receive side is behind; trafgen 0.6.8's
// TX_RING path sends with MSG_DONTWAIT and exits on the EAGAIN ("Flushing
// TX_RING failed: Resource temporarily unavailable", within a second of
// starting on this set-up). A blocking sendto waits for the buffer
// instead, so the receiving side throttles the sender; when the veth's
// ring is full the frame is dropped (ENOBUFS, counted as the sending
// veth's tx_dropped) and trafgen sends it again.
func (e *env) startSender(payload int, limit time.Duration) (*sender, error) {
	cfg, err := e.conf(payload)
	if err != nil {
		return nil, err
	}
	args := []string{"netns", "exec", e.snd.Name,
		"timeout", "-s", "INT", strconv.Itoa(int(limit/time.Second) + 1),
		e.trafgen, "--dev", e.vs, "--conf", cfg, "-P", "1", "-q", "--no-sock-mem", "-Q", "-C"}
	if e.napi != nil {
		args = append(args, "-t", "0ns")
	}
	s := &sender{}
	s.cmd = exec.Command("ip", args...)
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start trafgen: %w", err)
	}
	return s, nil
}

// stop interrupts trafgen (timeout passes SIGINT on) and waits for it.
func (s *sender) stop() error {
	_ = s.cmd.Process.Signal(os.Interrupt)
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() || err == nil {
		return nil // ended by the signal
	}
	if errors.As(err, &ee) && ee.ExitCode() == 124 {
		return nil // the safety timeout fired
	}
	return fmt.Errorf("trafgen: %w: %s", err, strings.TrimSpace(s.stderr.String()))
}

// readProc reads a /proc/net file of namespace ns: /proc/thread-self/net
// is the calling thread's namespace, and Do runs on a thread inside ns.
func readProc(ns *netns.NS, name string) ([]byte, error) {
	var data []byte
	err := ns.Do(func() (err error) {
		data, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return data, err
}

// devStats are an interface's counters from /proc/net/dev.
type devStats struct{ rxPackets, rxDropped, txPackets, txDropped uint64 }

func netDev(ns *netns.NS, ifname string) (devStats, error) {
	data, err := readProc(ns, "dev")
	if err != nil {
		return devStats{}, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != ifname {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			break
		}
		// rx: bytes packets errs drop fifo frame compressed multicast;
		// tx: bytes packets errs drop ...
		u := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		return devStats{rxPackets: u(1), rxDropped: u(3), txPackets: u(9), txDropped: u(11)}, nil
	}
	return devStats{}, fmt.Errorf("netns %s: %s not in /proc/net/dev", ns.Name, ifname)
}

// snmpValue returns field key of the table named table in /proc/net/snmp
// or /proc/net/netstat format (pairs of header and value lines).
func snmpValue(data []byte, table, key string) (uint64, error) {
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i++ {
		h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(h) == 0 || h[0] != table+":" || len(v) != len(h) || v[0] != h[0] {
			continue
		}
		for j := 1; j < len(h); j++ {
			if h[j] == key {
				return strconv.ParseUint(v[j], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s %s not found", table, key)
}

// kernelStats are the receiving namespace's IP and UDP counters: IPv4
// multicast packets the IP layer took in, datagrams delivered and dropped
// for a full socket buffer (counted once per socket).
type kernelStats struct{ inMcast, udpRcvbufErrors uint64 }

func readKernelStats(ns *netns.NS) (kernelStats, error) {
	snmp, err := readProc(ns, "snmp")
	if err != nil {
		return kernelStats{}, err
	}
	netstat, err := readProc(ns, "netstat")
	if err != nil {
		return kernelStats{}, err
	}
	var k kernelStats
	if k.inMcast, err = snmpValue(netstat, "IpExt", "InMcastPkts"); err != nil {
		return k, err
	}
	if k.udpRcvbufErrors, err = snmpValue(snmp, "Udp", "RcvbufErrors"); err != nil {
		return k, err
	}
	return k, nil
}

// softnetDrops sums the dropped column of /proc/net/softnet_stat over CPUs:
// frames the kernel dropped because a CPU's input backlog was full. It is
// machine-wide (not per namespace); nothing else on the machine floods.
func softnetDrops() (uint64, error) {
	data, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			return 0, fmt.Errorf("softnet_stat: %w", err)
		}
		sum += v
	}
	return sum, nil
}

// cpuTime is the process's user + system time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kind is one receiver implementation.
type kind string

const (
	kindKernel  kind = "kernel"
	kindRecvmsg kind = "recvmsg"
	kindRing    kind = "ring"
	kindFloor   kind = "floor"
)

var allKinds = []kind{kindKernel, kindRecvmsg, kindRing, kindFloor}

// counts is what a receiver has counted so far.
type counts struct {
	delivered uint64   // datagrams read by the sockets, summed (floor: frames)
	perSocket []uint64 // datagrams read by each socket
	seen      uint64   // frames the receiver's link layer saw (kernel: see kernelSeen)
	drops     uint64   // ring or AF_PACKET queue drops (kernel: socket buffer drops)
	qdrops    uint64   // mcstack socket queue drops
	// invalid: frames mcstack dropped as unusable, its endpoint's
	// RxInvalid plus the interface's bad_* counters (a GRO-merged
	// super-frame would show here or as fewer frames seen than offered).
	invalid uint64
}

// receiver is a started receiver of some kind with n sockets.
type receiver interface {
	counts() counts
	close() error
}

// startReceiver starts a receiver of kind k with n sockets joined to the
// group in the receiver namespace.
func (e *env) startReceiver(k kind, n int) (receiver, error) {
	switch k {
	case kindKernel:
		return startKernel(e, n)
	case kindRecvmsg:
		return startMcstack(e, n, afpacket.ModeRecvmsg)
	case kindRing:
		return startMcstack(e, n, afpacket.ModeRing)
	case kindFloor:
		return startFloor(e)
	}
	return nil, fmt.Errorf("unknown receiver %q", k)
}

// readers runs one reading goroutine per socket and counts what they read.
type readers struct {
	wg sync.WaitGroup
	n  []atomic.Uint64
	// errs collects unexpected read errors (not Close's).
	errMu sync.Mutex // guards err; held only to set or read it
	err   error
}

func newReaders(n int) *readers { return &readers{n: make([]atomic.Uint64, n)} }

// run starts read for socket i: it returns the number of datagrams read,
// or done = true when the socket was closed.
func (r *readers) run(i int, read func() (int, error), closedErr func(error) bool) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			n, err := read()
			if err != nil {
				if !closedErr(err) {
					r.errMu.Lock()
					r.err = errors.Join(r.err, fmt.Errorf("socket %d: %w", i, err))
					r.errMu.Unlock()
				}
				return
			}
			r.n[i].Add(uint64(n))
		}
	}()
}

func (r *readers) sum() (total uint64, per []uint64) {
	per = make([]uint64, len(r.n))
	for i := range r.n {
		per[i] = r.n[i].Load()
		total += per[i]
	}
	return total, per
}

func (r *readers) wait() error {
	r.wg.Wait()
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// kernelRecv is n kernel UDP sockets bound to *:5000 with SO_REUSEADDR,
// joined to the group on the veth, each read by its own goroutine with
// recvmmsg(2) in batches of 64 (source addresses included, like mcstack's
// ReadBatch; no allocation per datagram).
type kernelRecv struct {
	e     *env
	conns []*net.UDPConn
	r     *readers
}

func startKernel(e *env, n int) (*kernelRecv, error) {
	k := &kernelRecv{e: e, r: newReaders(n)}
	err := e.rcv.Do(func() error {
		ifi, err := net.InterfaceByName(e.vr)
		if err != nil {
			return err
		}
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = errors.Join(
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf))
			}); err != nil {
				return err
			}
			return serr
		}}
		for range n {
			pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", groupPort))
			if err != nil {
				return err
			}
			c := pc.(*net.UDPConn)
			k.conns = append(k.conns, c)
			if err := ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}); err != nil {
				return fmt.Errorf("join %v on %s: %w", group, e.vr, err)
			}
		}
		return nil
	})
	if err != nil {
		k.closeConns()
		return nil, fmt.Errorf("kernel receiver: %w", err)
	}
	for i, c := range k.conns {
		rc, err := c.SyscallConn()
		if err != nil {
			k.closeConns()
			return nil, err
		}
		mm := newMmsg(batchSize)
		k.r.run(i, func() (int, error) { return mm.read(rc) }, func(err error) bool { return errors.Is(err, net.ErrClosed) })
	}
	return k, nil
}

func (k *kernelRecv) closeConns() {
	for _, c := range k.conns {
		c.Close()
	}
}

func (k *kernelRecv) counts() counts {
	var c counts
	c.delivered, c.perSocket = k.r.sum()
	if ks, err := readKernelStats(k.e.rcv); err == nil {
		c.seen, c.drops = ks.inMcast, ks.udpRcvbufErrors
	}
	return c
}

func (k *kernelRecv) close() error {
	k.closeConns()
	return k.r.wait()
}

// mmsghdr is struct mmsghdr (sendmmsg(2)): a msghdr and the received length.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// mmsg is a recvmmsg(2) batch with its buffers, allocated once.
type mmsg struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet4
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newMmsg(n int) *mmsg {
	m := &mmsg{hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n), names: make([]unix.RawSockaddrInet4, n)}
	for i := range n {
		m.bufs[i] = make([]byte, bufSize)
		m.iovs[i].Base = &m.bufs[i][0]
		m.iovs[i].SetLen(bufSize)
		m.hdrs[i].hdr.Iov = &m.iovs[i]
		m.hdrs[i].hdr.SetIovlen(1)
		m.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	}
	m.fn = func(fd uintptr) bool {
		for i := range m.hdrs {
			m.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(len(m.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false // wait in the poller
		}
		m.n, m.errno = int(r), e
		return true
	}
	return m
}

// read waits for and reads one batch.
func (m *mmsg) read(rc syscall.RawConn) (int, error) {
	if err := rc.Read(m.fn); err != nil {
		return 0, err
	}
	if m.errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", m.errno)
	}
	return m.n, nil
}

// mcstackRecv is a Stack on an AF_PACKET endpoint with n sockets bound to
// *:5000, joined to the group, each read by its own goroutine with
// ReadBatch in batches of 64.
type mcstackRecv struct {
	st    *stack.Stack
	ep    *afpacket.Endpoint
	ifc   *stack.Interface
	conns []*stack.Conn
	r     *readers
}

func startMcstack(e *env, n int, mode afpacket.Mode) (*mcstackRecv, error) {
	var ep *afpacket.Endpoint
	if err := e.rcv.Do(func() (err error) {
		ep, err = afpacket.Open(e.vr, afpacket.Options{Mode: mode})
		return err
	}); err != nil {
		return nil, fmt.Errorf("mcstack receiver: %w", err)
	}
	if ep.Mode() != mode {
		ep.Close()
		return nil, fmt.Errorf("mcstack receiver: endpoint opened in mode %v, want %v", ep.Mode(), mode)
	}
	m := &mcstackRecv{st: stack.New(stack.Config{}), ep: ep, r: newReaders(n)}
	ifc, err := m.st.AddInterface(ep, stack.InterfaceConfig{Addrs: []netip.Prefix{rcvStackAddr}})
	if err != nil {
		ep.Close()
		m.st.Close()
		return nil, fmt.Errorf("mcstack receiver: %w", err)
	}
	m.ifc = ifc
	fail := func(err error) (*mcstackRecv, error) {
		m.st.Close()
		return nil, fmt.Errorf("mcstack receiver: %w", err)
	}
	for range n {
		c, err := m.st.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), groupPort))
		if err != nil {
			return fail(err)
		}
		m.conns = append(m.conns, c)
		if err := c.SetReadBuffer(rcvBuf); err != nil {
			return fail(err)
		}
		if err := c.JoinGroup(ifc, group); err != nil {
			return fail(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ifc.Sync(ctx); err != nil { // the endpoint's filter has the group
		return fail(err)
	}
	for i, c := range m.conns {
		ms := make([]stack.Message, batchSize)
		for j := range ms {
			ms[j].Buf = make([]byte, bufSize)
		}
		m.r.run(i, func() (int, error) { return c.ReadBatch(ms) }, func(err error) bool { return errors.Is(err, net.ErrClosed) })
	}
	return m, nil
}

func (m *mcstackRecv) counts() counts {
	var c counts
	c.delivered, c.perSocket = m.r.sum()
	st := m.ep.Stats()
	c.seen = st.RxFrames + st.RxFiltered + st.RxInvalid
	c.invalid = st.RxInvalid
	for name, v := range m.ifc.Status().Counters {
		if strings.HasPrefix(name, "bad_") {
			c.invalid += v
		}
	}
	c.drops = st.RxKernelDrops
	for _, conn := range m.conns {
		c.qdrops += conn.Dropped()
	}
	return c
}

func (m *mcstackRecv) close() error {
	err := m.st.Close()
	return errors.Join(err, m.r.wait())
}

// floorRecv is the ring backend's floor: a TPACKET_V3 ring of the
// backend's default geometry on a bare AF_PACKET socket, read by one
// goroutine that polls once per block and only counts frames.
type floorRecv struct {
	fd     int
	ring   *tpacket.Ring
	frames atomic.Uint64
	drops  atomic.Uint64 // accumulated from PACKET_STATISTICS (read resets it)
	stop   atomic.Bool
	done   chan error
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startFloor(e *env) (*floorRecv, error) {
	f := &floorRecv{fd: -1, done: make(chan error, 1)}
	err := e.rcv.Do(func() error {
		ifi, err := net.InterfaceByName(e.vr)
		if err != nil {
			return err
		}
		f.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		return unix.Bind(f.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err == nil {
		f.ring, err = tpacket.Setup(f.fd, tpacket.Config{})
	}
	if err != nil {
		if f.fd >= 0 {
			unix.Close(f.fd)
		}
		return nil, fmt.Errorf("floor receiver: %w", err)
	}
	_, _, _, _ = tpacket.Stats(f.fd) // reset
	go func() { f.done <- f.loop() }()
	return f, nil
}

func (f *floorRecv) loop() error {
	var it tpacket.Iter
	fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
	for !f.stop.Load() {
		blk, ok := f.ring.Current()
		if !ok {
			if _, err := unix.Poll(fds, 50); err != nil && err != unix.EINTR {
				return fmt.Errorf("poll: %w", err)
			}
			continue
		}
		it.Reset(blk)
		n := 0
		for {
			if _, ok := it.Next(); !ok {
				break
			}
			n++
		}
		f.ring.Release()
		f.frames.Add(uint64(n))
		if err := it.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (f *floorRecv) counts() counts {
	if _, d, _, err := tpacket.Stats(f.fd); err == nil {
		f.drops.Add(d)
	}
	n := f.frames.Load()
	return counts{delivered: n, perSocket: []uint64{n}, seen: n, drops: f.drops.Load()}
}

func (f *floorRecv) close() error {
	f.stop.Store(true)
	err := <-f.done
	return errors.Join(err, f.ring.Close(), unix.Close(f.fd))
}

// sample is one measured window of one receiver.
type sample struct {
	kind    kind
	sockets int
	payload int
	dt      float64 // seconds
	// offered: frames the receiving veth took in (rx_packets) and
	// frames the sender's veth sent (tx_packets), per second. With
	// threaded NAPI both count the frames the NAPI thread took off the
	// receiving veth's ring; without it, the frames the sending veth put
	// into the sending CPU's input backlog.
	offered, sent float64
	// linkDrops: frames the veth or the input backlog dropped, per second
	// (with threaded NAPI: frames the sending veth found the receiving
	// veth's ring full for; trafgen sends them again).
	linkDrops float64
	seen      float64 // frames the receiver saw, per second
	delivered float64 // datagrams read by the sockets, summed, per second
	minSocket float64 // the least any one socket read, per second
	drops     float64 // ring / socket buffer drops per second
	qdrops    float64 // mcstack socket queue drops per second
	invalid   float64 // frames mcstack dropped as unusable, per second
	cpu       float64 // process CPU seconds per second (cores)
	cpuPerDg  float64 // process CPU ns per delivered datagram
	// softirq: softirq time of all CPUs per second (cores); napi: CPU
	// time of the receiving veth's NAPI threads per second (cores; 0
	// without threaded NAPI); totalPerDg: process CPU plus softirq plus
	// NAPI thread time per delivered datagram, ns.
	softirq, napi, totalPerDg float64
	// sender: CPU time of trafgen's processes per second (cores): about
	// 1 when the sender runs flat out, less when it waits for the
	// receiving side (threaded NAPI: a full send buffer). The kernel
	// charges a softirq to the task it interrupts, so without threaded
	// NAPI this includes the receive softirq on trafgen's CPU.
	sender float64
}

// measure runs one receiver of kind k with n sockets against trafgen for
// warmup + window and returns what it saw in the window.
func (e *env) measure(k kind, n, payload int, warmup, window time.Duration) (sample, error) {
	s := sample{kind: k, sockets: n, payload: payload}
	r, err := e.startReceiver(k, n)
	if err != nil {
		return s, err
	}
	snd, err := e.startSender(payload, warmup+window+5*time.Second)
	if err != nil {
		return s, errors.Join(err, r.close())
	}
	time.Sleep(warmup)
	type snap struct {
		rcv, snd devStats
		softnet  uint64
		c        counts
		cpu      time.Duration
		softirq  time.Duration
		napi     time.Duration
		sender   time.Duration
		t        time.Time
	}
	take := func() (sn snap, err error) {
		if sn.rcv, err = netDev(e.rcv, e.vr); err != nil {
			return sn, err
		}
		if sn.snd, err = netDev(e.snd, e.vs); err != nil {
			return sn, err
		}
		if sn.softnet, err = softnetDrops(); err != nil {
			return sn, err
		}
		sn.c = r.counts()
		sn.cpu = cpuTime()
		if sn.softirq, err = softirqTime(); err != nil {
			return sn, err
		}
		for _, pid := range e.napi {
			t, err := taskCPU(pid)
			if err != nil {
				return sn, fmt.Errorf("NAPI thread of %s: %w", e.vr, err)
			}
			sn.napi += t
		}
		if sn.sender, err = treeCPU(snd.cmd.Process.Pid); err != nil {
			return sn, fmt.Errorf("trafgen CPU time: %w", err)
		}
		sn.t = time.Now()
		return sn, nil
	}
	a, err := take()
	if err == nil {
		time.Sleep(window)
		var b snap
		if b, err = take(); err == nil {
			dt := b.t.Sub(a.t).Seconds()
			per := func(x, y uint64) float64 { return float64(y-x) / dt }
			s.dt = dt
			s.offered = per(a.rcv.rxPackets, b.rcv.rxPackets)
			s.sent = per(a.snd.txPackets, b.snd.txPackets)
			s.linkDrops = per(a.rcv.rxDropped+a.snd.txDropped+a.softnet, b.rcv.rxDropped+b.snd.txDropped+b.softnet)
			s.seen = per(a.c.seen, b.c.seen)
			s.delivered = per(a.c.delivered, b.c.delivered)
			s.minSocket = -1
			for i := range b.c.perSocket {
				if v := per(a.c.perSocket[i], b.c.perSocket[i]); s.minSocket < 0 || v < s.minSocket {
					s.minSocket = v
				}
			}
			s.drops = per(a.c.drops, b.c.drops)
			s.qdrops = per(a.c.qdrops, b.c.qdrops)
			s.invalid = per(a.c.invalid, b.c.invalid)
			s.cpu = (b.cpu - a.cpu).Seconds() / dt
			s.softirq = (b.softirq - a.softirq).Seconds() / dt
			s.napi = (b.napi - a.napi).Seconds() / dt
			s.sender = (b.sender - a.sender).Seconds() / dt
			if d := b.c.delivered - a.c.delivered; d > 0 {
				s.cpuPerDg = float64(b.cpu-a.cpu) / float64(d)
				s.totalPerDg = float64(b.cpu-a.cpu+b.softirq-a.softirq+b.napi-a.napi) / float64(d)
			}
			// Frames bypass the NAPI thread if the veth hands them to the
			// input backlog instead (see setupNAPI): then the set-up is
			// not what the table says.
			if e.napi != nil && b.rcv.rxPackets-a.rcv.rxPackets >= 10000 && b.napi == a.napi {
				err = fmt.Errorf("%d frames offered on %s but its NAPI thread(s) %v used no CPU time: the frames did not go through threaded NAPI",
					b.rcv.rxPackets-a.rcv.rxPackets, e.vr, e.napi)
			}
		}
	}
	return s, errors.Join(err, snd.stop(), r.close())
}

// clockTick is the unit of the CPU times in /proc/stat and
// /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = time.Second / 100

// statCPU is utime + stime (fields 14 and 15) of /proc/PID/stat fields f.
func statCPU(pid int, f []string) (time.Duration, error) {
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	return time.Duration(u+st) * clockTick, nil
}

// taskCPU is the user + system time of task pid (a thread's own, for a
// kernel thread such as a NAPI thread) from /proc/PID/stat.
func taskCPU(pid int) (time.Duration, error) {
	f, err := netns.TaskStat(pid)
	if err != nil {
		return 0, err
	}
	return statCPU(pid, f)
}

// treeCPU is the user + system time of process root and all its living
// descendants (trafgen under timeout: timeout, trafgen's parent and its
// worker), from /proc/PID/stat. Each process's figure covers all its
// threads; processes that already exited are not counted.
func treeCPU(root int) (time.Duration, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := map[int]int{}
	cpu := map[int]time.Duration{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f, err := netns.TaskStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		t, err := statCPU(pid, f)
		if err != nil {
			return 0, err
		}
		parent[pid], cpu[pid] = ppid, t
	}
	var sum time.Duration
	for pid, t := range cpu {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += t
				break
			}
		}
	}
	return sum, nil
}

// Core separation. Go spreads the receiver's threads over every CPU, where
// they would compete with trafgen, whose worker pins itself to CPU 0, and
// the offered rate would depend on how much user-space CPU the measured
// receiver burns. pin binds the process's threads to the other CPUs.
//
// The receiving side's kernel work (taking the frame off the veth, IP and
// UDP delivery with a clone per socket, or the AF_PACKET copy into a ring
// or queue) is the other half. By default a veth hands each frame to the
// input backlog of the CPU that sent it (netif_rx) and that work runs in
// the NET_RX softirq on trafgen's CPU 0, where it slows the sender instead
// of competing with the receiver. RPS on the receiving veth would move it,
// but then trafgen's TX_RING path exits (see startSender: the same send
// buffer limit as with threaded NAPI).
//
// With -reallink.napi (the default) setupNAPI gives the receiving veth a
// NAPI instance polled by a kernel thread, napi/<ifname>-<id>, bound to
// the receiver's CPUs: the sending veth only puts frames into the
// receiving veth's ring (256 frames) and wakes that thread, trafgen has
// CPU 0 to itself, and everything the receive side does, the NAPI
// thread's kernel work and the receiving process, shares CPU 1, like a
// NIC whose interrupt is steered to the receiver's core. The scheduler
// shares that core between the NAPI thread and the process's threads
// (unlike a NIC's softirq, which runs before the process), and how it
// splits the core varies from window to window: in some, the NAPI thread
// wakes for a few frames at a time, preempts the reader and takes most of
// the core, and the reader's socket overflows; in others it polls in full
// batches and the reader gets half or more. The kernel and recvmsg
// receivers swing the most (the kernel's at 64 B and one socket by a
// factor of three between windows of one run, when this was written), so
// compare medians of several rounds and look at the per-round log lines. A receive side that cannot keep up shows as
// a full ring (drops link), as trafgen waiting for its send buffer
// (trafgen CPU below 1 core), and as drops in the receiver.
//
// CPU accounting: the NAPI thread polls in process context with bottom
// halves disabled, which is not serving a softirq, so this kernel's tick
// accounting counts its time as system time of the thread, not in the
// softirq column of /proc/stat (measured: with the ring receiver CPU 1
// shows no softirq time while the NAPI thread uses over half of it). The
// table shows it as its own column, the thread's utime+stime from
// /proc/PID/stat (10 ms ticks), and adds it to the per-datagram total.
// What the softirq column still shows with threaded NAPI is, for the
// kernel's sockets, softirq time on CPU 0: /proc/softirqs counts NET_RX
// there only while the kernel receiver runs, which fits the UDP receive
// path freeing each read skb with skb_attempt_defer_free, which hands it
// back to the CPU that allocated it (trafgen's) to be freed in that CPU's
// NET_RX softirq. That work is done on the sender's CPU, not the receive
// core's; it is in the total all the same. A softirq that runs while the
// NAPI thread or the receiving process is on the CPU (they run pending
// ones when they re-enable bottom halves) would be counted twice, in the
// task's time and in the softirq column; CPU 1's softirq time stays near
// zero, so that overlap is small. Without threaded NAPI the softirq column
// is where the receive work shows (on CPU 0), and the NAPI column is 0.

// receiverCPUs returns the CPUs of the process's affinity mask except CPU 0
// (trafgen's), and false when there are none.
func receiverCPUs() (unix.CPUSet, bool) {
	var all, rcv unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return rcv, false
	}
	for c := 1; c < 1024; c++ {
		if all.IsSet(c) {
			rcv.Set(c)
		}
	}
	return rcv, rcv.Count() > 0
}

// setProcessAffinity binds every thread of the process to set (threads
// created later inherit it from their creator).
func setProcessAffinity(set unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("sched_setaffinity(%d): %w", tid, err)
		}
	}
	return nil
}

// cpuList is set as a list of CPU numbers.
func cpuList(set unix.CPUSet) string {
	var cs []string
	for c := range 1024 {
		if set.IsSet(c) {
			cs = append(cs, strconv.Itoa(c))
		}
	}
	return strings.Join(cs, ",")
}

// pin binds the process's threads to the CPUs other than CPU 0; a cleanup
// of tb restores the original affinity.
func pin(tb testing.TB) (cpus unix.CPUSet, ok bool) {
	tb.Helper()
	rcv, ok := receiverCPUs()
	if !ok {
		tb.Log("one CPU only: sender and receiver share it")
		return rcv, false
	}
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		tb.Fatal(err)
	}
	if err := setProcessAffinity(rcv); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := setProcessAffinity(orig); err != nil {
			tb.Error(err)
		}
	})
	return rcv, true
}

// softirqTime is the time all CPUs spent in softirqs, from /proc/stat.
func softirqTime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq ...
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	n, err := strconv.ParseUint(f[7], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/stat softirq: %w", err)
	}
	return time.Duration(n) * clockTick, nil
}

//go:build linux

package afpacket_test

import (
	"encoding/binary"
	"errors"
	"net"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/wire"
)

// stateRecorder is a handler that passes test frames' payloads and link
// states to channels.
type stateRecorder struct {
	link.Handler
	states chan link.LinkState
}

func newStateRecorder() (*stateRecorder, chan string) {
	h, ch := collector()
	return &stateRecorder{Handler: h, states: make(chan link.LinkState, 64)}, ch
}

func (r *stateRecorder) HandleLinkState(st link.LinkState) { r.states <- st }

// expectState waits up to 5 s for the next state and checks it.
func expectState(t *testing.T, r *stateRecorder, up, gone bool) link.LinkState {
	t.Helper()
	select {
	case st := <-r.states:
		if st.Up != up || st.Gone != gone {
			t.Fatalf("link state %v, want up=%v gone=%v", st, up, gone)
		}
		return st
	case <-time.After(5 * time.Second):
		t.Fatalf("no link state within 5 s (want up=%v gone=%v)", up, gone)
	}
	return link.LinkState{}
}

// expectGone waits up to 5 s for Gone, accepting a down state first (the
// kernel takes an interface down before it unregisters it).
func expectGone(t *testing.T, r *stateRecorder) link.LinkState {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case st := <-r.states:
			if st.Gone {
				return st
			}
			if st.Up {
				t.Fatalf("link state %v while waiting for Gone", st)
			}
		case <-timeout:
			t.Fatal("no Gone within 5 s")
		}
	}
}

// exchange sends one frame from -> to and expects it.
func exchange(t *testing.T, from *afpacket.Endpoint, to *afpacket.Endpoint, ch chan string, payload string) {
	t.Helper()
	// After a link comes up the first frames can be lost while the
	// device settles; retry for a while.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := from.WriteFrame(frame(to.HardwareAddr(), from.HardwareAddr(), payload)); err != nil && time.Now().After(deadline) {
			t.Fatal(err)
		}
		select {
		case got := <-ch:
			if got != payload {
				t.Fatalf("received %q, want %q", got, payload)
			}
			return
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("%q never arrived", payload)
			}
		}
	}
}

func TestLinkState(t *testing.T) { forEachMode(t, testLinkState) }

// testLinkState: carrier loss and return (the peer goes down and up),
// administrative down and up of the interface itself, with frames flowing
// again after each, and Gone when the interface is deleted, after which
// writes fail with ErrGone and the reader is gone.
func testLinkState(t *testing.T, mode afpacket.Mode) {
	p := newPair(t)
	epA := open(t, p.a, p.va, afpacket.Options{Mode: afpacket.ModeRecvmsg})
	epB := open(t, p.b, p.vb, afpacket.Options{Mode: mode})
	if err := epA.Attach(link.FrameFunc(func([]byte) {})); err != nil {
		t.Fatal(err)
	}
	r, ch := newStateRecorder()
	if err := epB.Attach(r); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, true, false)
	exchange(t, epA, epB, ch, "first")

	if err := p.a.LinkDown(p.va); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, false, false)
	if err := p.a.LinkUp(p.va); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, true, false)
	exchange(t, epA, epB, ch, "after carrier returned")

	if err := p.b.LinkDown(p.vb); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, false, false)
	if err := epB.WriteFrame(frame(epA.HardwareAddr(), epB.HardwareAddr(), "x")); !errors.Is(err, link.ErrLinkDown) {
		t.Fatalf("write on a down interface: %v, want ErrLinkDown", err)
	}
	if err := p.b.LinkUp(p.vb); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, true, false)
	exchange(t, epA, epB, ch, "after admin up")

	if err := epA.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.b.MustRun(t, "ip", "link", "del", p.vb)
	st := expectGone(t, r)
	t.Logf("Gone after %v: %v", time.Since(start), st)
	if err := epB.WriteFrame(frame(wire.BroadcastMAC, epB.HardwareAddr(), "x")); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Gone: %v, want ErrGone", err)
	}
	waitNoReader(t)
	select {
	case st := <-r.states:
		t.Fatalf("state after Gone: %v", st)
	default:
	}
	if err := epB.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGoneWithPeerNamespace: destroying the namespace that holds the veth
// peer destroys our end too: Gone.
func TestGoneWithPeerNamespace(t *testing.T) {
	p := newPair(t)
	ep := open(t, p.b, p.vb, afpacket.Options{})
	r, _ := newStateRecorder()
	if err := ep.Attach(r); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, true, false)
	if out, err := exec.Command("ip", "netns", "del", p.a.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del: %v: %s", err, out)
	}
	// Runs before the namespace's own cleanup, which deletes it again.
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "add", p.a.Name).Run() })
	st := expectGone(t, r)
	if err := ep.WriteFrame(frame(wire.BroadcastMAC, ep.HardwareAddr(), "x")); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Gone (%v): %v", st, err)
	}
}

// TestWriteNeverHangs: with a tiny send buffer and a qdisc that holds
// frames (tbf at 10 kbit/s), a flood of writes fills the buffer; each
// WriteFrame then returns within about the write timeout with
// ErrWouldBlock, counted in Stats.
func TestWriteNeverHangs(t *testing.T) {
	p := newPair(t)
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("skipping: tc (iproute2) not found")
	}
	p.a.MustRun(t, "tc", "qdisc", "add", "dev", p.va, "root", "tbf", "rate", "10kbit", "burst", "1600", "limit", "10000000")
	const timeout = 20 * time.Millisecond
	ep := open(t, p.a, p.va, afpacket.Options{SendBuffer: 1, WriteTimeout: timeout})
	f := frame(wire.BroadcastMAC, ep.HardwareAddr(), string(make([]byte, 1000)))
	blocked, slowest := 0, time.Duration(0)
	for i := 0; i < 200 && blocked < 5; i++ {
		start := time.Now()
		err := ep.WriteFrame(f)
		slowest = max(slowest, time.Since(start))
		switch {
		case err == nil:
		case errors.Is(err, link.ErrWouldBlock):
			blocked++
		default:
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if blocked == 0 {
		t.Fatal("no write found the send buffer full")
	}
	if slowest > timeout+time.Second {
		t.Fatalf("slowest write took %v, bound is %v", slowest, timeout)
	}
	st := ep.Stats()
	if st.TxWouldBlock != uint64(blocked) || st.TxFrames == 0 {
		t.Fatalf("stats %+v, want %d would-block", st, blocked)
	}
	t.Logf("%d frames sent, %d would block, slowest write %v", st.TxFrames, blocked, slowest)
	start := time.Now()
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %v with a full send buffer", took)
	}
}

func TestOptionErrors(t *testing.T) {
	p := newPair(t)
	for name, o := range map[string]afpacket.Options{
		"mode":           {Mode: afpacket.Mode(9)},
		"block size":     {BlockSize: 1000},
		"frame size":     {FrameSize: 100},
		"write timeout":  {WriteTimeout: -1},
		"send buffer":    {SendBuffer: -1},
		"receive buffer": {ReceiveBuffer: -1},
	} {
		err := p.a.Do(func() error {
			ep, err := afpacket.Open(p.va, o)
			if err == nil {
				ep.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("%s: bad options accepted", name)
		}
	}
	// The ring geometry is ignored in recvmsg mode.
	ep := open(t, p.a, p.va, afpacket.Options{Mode: afpacket.ModeRecvmsg, BlockSize: 1000})
	if ep.Mode() != afpacket.ModeRecvmsg {
		t.Fatalf("mode %v", ep.Mode())
	}
	// The default is the ring where the kernel has it (every kernel
	// this project supports).
	ep2 := open(t, p.b, p.vb, afpacket.Options{})
	if ep2.Mode() != afpacket.ModeRing {
		t.Fatalf("default mode %v, want ring", ep2.Mode())
	}
}

// rawSender opens a plain AF_PACKET socket on ifname in ns, for sending
// test frames without allocating.
func rawSender(t testing.TB, ns interface{ Do(func() error) error }, ifname string) int {
	t.Helper()
	fd := -1
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index})
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestReceiveDoesNotAllocate(t *testing.T) { forEachMode(t, testReceiveDoesNotAllocate) }

// testReceiveDoesNotAllocate: thousands of frames through an attached
// endpoint cost (next to) no allocations: the reader, the filter and the
// batch hand-off allocate nothing per frame.
func testReceiveDoesNotAllocate(t *testing.T, mode afpacket.Mode) {
	p := newPair(t)
	ep := open(t, p.b, p.vb, afpacket.Options{Mode: mode})
	if _, err := ep.SetMulticastFilter([]wire.MAC{groupA}); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	if err := ep.Attach(link.FrameFunc(func(f []byte) {
		if binary.BigEndian.Uint16(f[12:14]) == testEtherType {
			got.Add(1)
		}
	})); err != nil {
		t.Fatal(err)
	}
	tx := rawSender(t, p.a, p.va)
	mine := frame(ep.HardwareAddr(), wire.MAC{2, 0, 0, 0, 0, 7}, "unicast")
	group := frame(groupA, wire.MAC{2, 0, 0, 0, 0, 7}, "group")
	other := frame(groupB, wire.MAC{2, 0, 0, 0, 0, 7}, "filtered")
	send := func(n int) {
		for i := range n {
			for _, f := range [][]byte{mine, group, other} {
				for {
					_, err := unix.Write(tx, f)
					if err == nil {
						break
					}
					if err != unix.EAGAIN && err != unix.ENOBUFS {
						t.Fatalf("send %d: %v", i, err)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if i%64 == 63 {
				time.Sleep(100 * time.Microsecond) // stay under the veth backlog
			}
		}
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	send(200) // warm up: buffers, timers
	waitFor(400)
	const n = 5000
	base := got.Load()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	send(n)
	waitFor(base + 2*n)
	runtime.ReadMemStats(&after)
	recv := got.Load() - base
	if recv < n/5 { // loss on a loaded machine is fine; enough must arrive to count
		t.Fatalf("received %d of %d frames", recv, 2*n)
	}
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d frames received, %d allocations in the process meanwhile", recv, allocs)
	if float64(allocs)/float64(recv) > 0.01 {
		t.Fatalf("%d allocations for %d frames: the receive path allocates", allocs, recv)
	}
}

func TestCloseUnblocksParkedReader(t *testing.T) { forEachMode(t, testCloseUnblocksParkedReader) }

// testCloseUnblocksParkedReader: with nothing to read, the reader waits in
// poll(2); Close wakes it and returns at once.
func testCloseUnblocksParkedReader(t *testing.T, mode afpacket.Mode) {
	p := newPair(t)
	ep := open(t, p.b, p.vb, afpacket.Options{Mode: mode})
	r, _ := newStateRecorder()
	if err := ep.Attach(r); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, true, false)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("Close took %v", took)
	}
	waitNoReader(t)
}

func TestOpenDownInterface(t *testing.T) { forEachMode(t, testOpenDownInterface) }

// testOpenDownInterface: an administratively down interface can be opened;
// the endpoint reports it down after Attach, fails writes with
// ErrLinkDown (ErrInterfaceDown), and once the interface comes up reports
// up and receives.
func testOpenDownInterface(t *testing.T, mode afpacket.Mode) {
	p := newPair(t)
	if err := p.b.LinkDown(p.vb); err != nil {
		t.Fatal(err)
	}
	epB := open(t, p.b, p.vb, afpacket.Options{Mode: mode})
	r, ch := newStateRecorder()
	if err := epB.Attach(r); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, false, false)
	err := epB.WriteFrame(frame(wire.BroadcastMAC, epB.HardwareAddr(), "x"))
	if !errors.Is(err, link.ErrLinkDown) || !errors.Is(err, afpacket.ErrInterfaceDown) {
		t.Fatalf("write on a down interface: %v", err)
	}
	if err := p.b.LinkUp(p.vb); err != nil {
		t.Fatal(err)
	}
	expectState(t, r, true, false)
	epA := open(t, p.a, p.va, afpacket.Options{Mode: afpacket.ModeRecvmsg})
	exchange(t, epA, epB, ch, "after up")
}

//go:build linux

package tap_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/link/tap"
	"github.com/mcstack/mcstack/wire"
)

const testEtherType = 0x88b5

var (
	groupA = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
	groupB = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x04}
	groupC = wire.MAC{0x33, 0x33, 0x00, 0x00, 0x0a, 0x01}
)

func frame(dst, src wire.MAC, payload string) []byte {
	b := make([]byte, 14, 60)
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], testEtherType)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

func collector() (link.Handler, chan string) {
	ch := make(chan string, 64)
	return link.FrameFunc(func(f []byte) {
		if len(f) < 14 || binary.BigEndian.Uint16(f[12:14]) != testEtherType {
			return
		}
		ch <- string(bytes.TrimRight(f[14:], "\x00"))
	}), ch
}

func expect(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("did not receive %q", want)
	}
}

func readerRunning() bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return bytes.Contains(buf[:n], []byte("core.(*Core).run"))
}

func openIn(ns *netns.NS, name string, opts tap.Options) (*tap.Endpoint, error) {
	var ep *tap.Endpoint
	err := ns.Do(func() error {
		var err error
		ep, err = tap.Open(name, opts)
		return err
	})
	return ep, err
}

// TestTapOnBridge: namespace T holds a bridge with a persistent tap port and
// a veth port whose other end is in namespace H, driven by afpacket.
func TestTapOnBridge(t *testing.T) {
	netns.RequireRoot(t)
	nsT, nsH := netns.New(t, "mcst"), netns.New(t, "mcsh")
	for _, ns := range []*netns.NS{nsT, nsH} {
		if err := ns.Quiet(); err != nil {
			t.Fatal(err)
		}
	}
	br, tp := netns.UniqueName("mcsbr"), netns.UniqueName("mcstap")
	vh, pv := netns.UniqueName("mcsvh"), netns.UniqueName("mcspv")
	if err := nsT.AddBridge(br, netns.BridgeOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nsT.AddTap(tp); err != nil {
		t.Fatal(err)
	}
	if err := netns.AddVeth(nsH, vh, nsT, pv); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tp, pv} {
		if err := nsT.SetMaster(p, br); err != nil {
			t.Fatal(err)
		}
		if err := nsT.LinkUp(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := nsH.LinkUp(vh); err != nil {
		t.Fatal(err)
	}

	stackMAC := wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x42}
	ep, err := openIn(nsT, tp, tap.Options{MAC: stackMAC, FilterCapacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	if ep.Name() != tp || ep.MTU() != 1500 || ep.HardwareAddr() != stackMAC {
		t.Fatalf("name %q mtu %d mac %v", ep.Name(), ep.MTU(), ep.HardwareAddr())
	}
	if _, err := openIn(nsT, tp, tap.Options{}); !errors.Is(err, tap.ErrBusy) {
		t.Fatalf("second open of %s: %v, want ErrBusy", tp, err)
	}
	var peer *afpacket.Endpoint
	if err := nsH.Do(func() error {
		var err error
		peer, err = afpacket.Open(vh, afpacket.Options{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })

	hT, chT := collector()
	hH, chH := collector()
	if err := ep.Attach(hT); err != nil {
		t.Fatal(err)
	}
	if err := ep.Attach(hT); !errors.Is(err, tap.ErrAttached) {
		t.Fatalf("second Attach: %v", err)
	}
	if err := peer.Attach(hH); err != nil {
		t.Fatal(err)
	}
	peerMAC := peer.HardwareAddr()

	// The bridge port comes up once we attached; retry the first frame
	// until it forwards.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := ep.WriteFrame(frame(wire.BroadcastMAC, stackMAC, "hello")); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-chH:
			if got != "hello" {
				t.Fatalf("peer got %q", got)
			}
		case <-time.After(200 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("tap frame never reached the veth peer")
			}
			continue
		}
		break
	}
	for len(chH) > 0 {
		<-chH
	}
	if err := peer.WriteFrame(frame(stackMAC, peerMAC, "to-stack")); err != nil {
		t.Fatal(err)
	}
	expect(t, chT, "to-stack")
	if err := ep.WriteFrame(frame(peerMAC, stackMAC, "to-peer")); err != nil {
		t.Fatal(err)
	}
	expect(t, chH, "to-peer")

	// Software filter: the zero filter drops multicast; a joined group
	// passes and a non-joined one is dropped.
	if err := peer.WriteFrame(frame(groupA, peerMAC, "before-join")); err != nil {
		t.Fatal(err)
	}
	if err := peer.WriteFrame(frame(stackMAC, peerMAC, "sentinel")); err != nil {
		t.Fatal(err)
	}
	expect(t, chT, "sentinel")
	st, err := ep.SetMulticastFilter([]wire.MAC{groupA, groupB})
	if err != nil || st != (link.FilterStatus{Exact: 2}) {
		t.Fatalf("SetMulticastFilter = %+v, %v", st, err)
	}
	if err := peer.WriteFrame(frame(groupC, peerMAC, "not-joined")); err != nil {
		t.Fatal(err)
	}
	if err := peer.WriteFrame(frame(groupA, peerMAC, "joined")); err != nil {
		t.Fatal(err)
	}
	expect(t, chT, "joined")

	st, err = ep.SetMulticastFilter([]wire.MAC{groupA, groupB, groupC})
	if err != nil || st != (link.FilterStatus{AllMulticast: true}) {
		t.Fatalf("SetMulticastFilter beyond capacity = %+v, %v", st, err)
	}
	if err := peer.WriteFrame(frame(wire.MAC{0x01, 0x00, 0x5e, 0x7f, 0, 1}, peerMAC, "any")); err != nil {
		t.Fatal(err)
	}
	expect(t, chT, "any")
	if _, err := ep.SetMulticastFilter([]wire.MAC{peerMAC}); !errors.Is(err, tap.ErrNotMulticast) {
		t.Fatalf("unicast in filter: %v", err)
	}

	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ep.WriteFrame(frame(peerMAC, stackMAC, "x")); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("WriteFrame after Close: %v", err)
	}
	if err := ep.Close(); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	// The afpacket peer runs the same reader code: close it too.
	if err := peer.Close(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for readerRunning() {
		if time.Now().After(deadline) {
			t.Fatal("tap read goroutine still running after Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The persistent device stays and can be opened again.
	ep2, err := openIn(nsT, tp, tap.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if m := ep2.HardwareAddr(); m.IsMulticast() || m[0]&0x02 == 0 || m == stackMAC {
		t.Fatalf("random MAC %v is not a fresh locally administered unicast address", m)
	}
	if err := ep2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTapCreateAndErrors(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "mcst")
	ep, err := openIn(ns, "", tap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := ep.Name()
	if !strings.HasPrefix(name, "tap") {
		t.Fatalf("kernel-chosen name %q", name)
	}
	ns.MustRun(t, "ip", "link", "show", "dev", name)
	if err := ep.Attach(link.FrameFunc(func([]byte) {})); err != nil {
		t.Fatal(err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Run("ip", "link", "show", "dev", name); err == nil {
		t.Fatalf("non-persistent device %s left after Close", name)
	}

	if _, err := openIn(ns, "averyveryverylongname", tap.Options{}); !errors.Is(err, tap.ErrInvalidName) {
		t.Fatalf("long name: %v", err)
	}
	dummy := netns.UniqueName("mcsd")
	ns.MustRun(t, "ip", "tuntap", "add", "dev", dummy, "mode", "tun")
	if _, err := openIn(ns, dummy, tap.Options{}); !errors.Is(err, tap.ErrInvalidName) {
		t.Fatalf("opening a TUN device as TAP: %v", err)
	}
	err = ns.Do(func() error {
		return netns.WithoutCapability(unix.CAP_NET_ADMIN, func() error {
			ep, err := tap.Open(netns.UniqueName("mcsp"), tap.Options{})
			if err == nil {
				ep.Close()
			}
			return err
		})
	})
	if !errors.Is(err, tap.ErrPermission) {
		t.Fatalf("without CAP_NET_ADMIN: %v", err)
	}
	if _, err := openIn(ns, "x", tap.Options{MAC: groupA}); err == nil {
		t.Fatal("multicast MAC accepted")
	}
}

// stateHandler records link states.
type stateHandler struct {
	link.FrameFunc
	states chan link.LinkState
}

func (h stateHandler) HandleLinkState(st link.LinkState) { h.states <- st }

// TestTapLinkState: the TAP's state (down at creation, up once the kernel
// side is up and a program attached) is reported, a bridge port joining
// and leaving a bridge is not a removal, and deleting the device is Gone:
// writes then fail with ErrGone.
func TestTapLinkState(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "mcst")
	if err := ns.Quiet(); err != nil {
		t.Fatal(err)
	}
	name := netns.UniqueName("mcstap")
	ep, err := openIn(ns, name, tap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	if ifi := ns.MustRun(t, "cat", "/sys/class/net/"+name+"/ifindex"); strings.TrimSpace(ifi) != fmt.Sprint(ep.Index()) {
		t.Fatalf("Index() = %d, kernel ifindex %s", ep.Index(), ifi)
	}
	h := stateHandler{FrameFunc: func([]byte) {}, states: make(chan link.LinkState, 64)}
	if err := ep.Attach(h); err != nil {
		t.Fatal(err)
	}
	expect := func(up, gone bool) {
		t.Helper()
		select {
		case st := <-h.states:
			if st.Up != up || st.Gone != gone {
				t.Fatalf("state %v, want up=%v gone=%v", st, up, gone)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no state (want up=%v gone=%v)", up, gone)
		}
	}
	expect(false, false)
	frame := frame(wire.BroadcastMAC, ep.HardwareAddr(), "x")
	if err := ep.WriteFrame(frame); !errors.Is(err, link.ErrLinkDown) || !errors.Is(err, tap.ErrInterfaceDown) {
		t.Fatalf("write while down: %v, want ErrLinkDown", err)
	}
	ns.MustRun(t, "ip", "link", "set", name, "up")
	expect(true, false)
	br := netns.UniqueName("mcsbr")
	if err := ns.AddBridge(br, netns.BridgeOptions{}); err != nil {
		t.Fatal(err)
	}
	ns.MustRun(t, "ip", "link", "set", name, "master", br)
	ns.MustRun(t, "ip", "link", "set", name, "nomaster")
	ns.MustRun(t, "ip", "link", "set", name, "down")
	expect(false, false)
	ns.MustRun(t, "ip", "link", "set", name, "up")
	expect(true, false)
	ns.MustRun(t, "ip", "link", "del", name)
	deadline := time.After(5 * time.Second)
	for gone := false; !gone; {
		select {
		case st := <-h.states:
			if st.Up {
				t.Fatalf("up while being deleted: %v", st)
			}
			gone = st.Gone
		case <-deadline:
			t.Fatal("no Gone after ip link del")
		}
	}
	if err := ep.WriteFrame(frame); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Gone: %v", err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
}

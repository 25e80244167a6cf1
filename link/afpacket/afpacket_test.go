//go:build linux

package afpacket_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/wire"
)

// testEtherType is IEEE's local experimental EtherType.
const testEtherType = 0x88b5

var (
	groupA = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
	groupB = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x04}
	groupC = wire.MAC{0x33, 0x33, 0x00, 0x00, 0x0a, 0x01}
)

func frame(dst, src wire.MAC, payload string) []byte {
	b := make([]byte, 14, 14+len(payload)+46)
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], testEtherType)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// collector returns a handler that passes test frames' payloads to a channel.
func collector() (link.Handler, chan string) {
	ch := make(chan string, 64)
	return func(f []byte) {
		if len(f) < 14 || binary.BigEndian.Uint16(f[12:14]) != testEtherType {
			return
		}
		ch <- string(bytes.TrimRight(f[14:], "\x00"))
	}, ch
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

type pair struct {
	a, b   *netns.NS
	va, vb string
}

// newPair builds namespaces A and B joined by a veth (va in A, vb in B),
// both ends up, with the kernel's IPv6 off so the link stays quiet.
func newPair(t *testing.T) pair {
	t.Helper()
	netns.RequireRoot(t)
	p := pair{a: netns.New(t, "mcsa"), b: netns.New(t, "mcsb"), va: netns.UniqueName("mcsva"), vb: netns.UniqueName("mcsvb")}
	for _, ns := range []*netns.NS{p.a, p.b} {
		if err := ns.Quiet(); err != nil {
			t.Fatal(err)
		}
	}
	if err := netns.AddVeth(p.a, p.va, p.b, p.vb); err != nil {
		t.Fatal(err)
	}
	if err := p.a.LinkUp(p.va); err != nil {
		t.Fatal(err)
	}
	if err := p.b.LinkUp(p.vb); err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t *testing.T, ns *netns.NS, ifname string, opts afpacket.Options) *afpacket.Endpoint {
	t.Helper()
	var ep *afpacket.Endpoint
	if err := ns.Do(func() error {
		var err error
		ep, err = afpacket.Open(ifname, opts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

func readerRunning() bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return bytes.Contains(buf[:n], []byte("afpacket.(*Endpoint).readLoop"))
}

func waitNoReader(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for readerRunning() {
		if time.Now().After(deadline) {
			t.Fatal("read goroutine still running after Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func maddrLinks(t *testing.T, ns *netns.NS, ifname string) string {
	t.Helper()
	return ns.MustRun(t, "ip", "maddr", "show", "dev", ifname)
}

func TestExchangeFilterAndClose(t *testing.T) {
	p := newPair(t)
	epA := open(t, p.a, p.va, afpacket.Options{FilterCapacity: 2})
	epB := open(t, p.b, p.vb, afpacket.Options{})
	if epA.Name() != p.va || epA.MTU() != 1500 || epA.HardwareAddr() == (wire.MAC{}) {
		t.Fatalf("name %q mtu %d mac %v", epA.Name(), epA.MTU(), epA.HardwareAddr())
	}
	hA, chA := collector()
	hB, chB := collector()
	if err := epA.Attach(hA); err != nil {
		t.Fatal(err)
	}
	if err := epA.Attach(hA); !errors.Is(err, afpacket.ErrAttached) {
		t.Fatalf("second Attach: %v", err)
	}
	if err := epB.Attach(hB); err != nil {
		t.Fatal(err)
	}
	macA, macB := epA.HardwareAddr(), epB.HardwareAddr()

	// Unicast B -> A, and A -> B.
	if err := epB.WriteFrame(frame(macA, macB, "b-to-a")); err != nil {
		t.Fatal(err)
	}
	expect(t, chA, "b-to-a")
	if err := epA.WriteFrame(frame(macB, macA, "a-to-b")); err != nil {
		t.Fatal(err)
	}
	expect(t, chB, "a-to-b")

	// Own frames are not delivered back: A's own frame was written before
	// B's next one, so it would have been queued first.
	if err := epA.WriteFrame(frame(wire.BroadcastMAC, macA, "own")); err != nil {
		t.Fatal(err)
	}
	expect(t, chB, "own")
	if err := epB.WriteFrame(frame(wire.BroadcastMAC, macB, "bcast")); err != nil {
		t.Fatal(err)
	}
	expect(t, chA, "bcast")
	// Neither endpoint saw its own transmission.
	for _, ch := range []chan string{chA, chB} {
		select {
		case got := <-ch:
			t.Fatalf("unexpected frame %q (own transmission looped back?)", got)
		default:
		}
	}

	// Multicast filter: two groups programmed on the real device.
	st, err := epA.SetMulticastFilter([]wire.MAC{groupA, groupB, groupA})
	if err != nil || st != (link.FilterStatus{Exact: 2}) {
		t.Fatalf("SetMulticastFilter(A,B) = %+v, %v", st, err)
	}
	m := maddrLinks(t, p.a, p.va)
	for _, g := range []wire.MAC{groupA, groupB} {
		if !strings.Contains(m, "link  "+g.String()) {
			t.Fatalf("ip maddr lacks %v:\n%s", g, m)
		}
	}
	// Software filter: a joined group passes, a non-joined one is dropped.
	if err := epB.WriteFrame(frame(groupC, macB, "not-joined")); err != nil {
		t.Fatal(err)
	}
	if err := epB.WriteFrame(frame(groupA, macB, "joined-a")); err != nil {
		t.Fatal(err)
	}
	expect(t, chA, "joined-a")

	st, err = epA.SetMulticastFilter([]wire.MAC{groupA})
	if err != nil || st != (link.FilterStatus{Exact: 1}) {
		t.Fatalf("SetMulticastFilter(A) = %+v, %v", st, err)
	}
	m = maddrLinks(t, p.a, p.va)
	if !strings.Contains(m, "link  "+groupA.String()) || strings.Contains(m, groupB.String()) {
		t.Fatalf("after leaving B, ip maddr:\n%s", m)
	}
	if err := epB.WriteFrame(frame(groupB, macB, "left-b")); err != nil {
		t.Fatal(err)
	}
	if err := epB.WriteFrame(frame(groupA, macB, "still-a")); err != nil {
		t.Fatal(err)
	}
	expect(t, chA, "still-a")

	// Beyond capacity (2): all-multicast on the device.
	st, err = epA.SetMulticastFilter([]wire.MAC{groupA, groupB, groupC})
	if err != nil || st != (link.FilterStatus{AllMulticast: true}) {
		t.Fatalf("SetMulticastFilter(A,B,C) = %+v, %v", st, err)
	}
	// A packet socket's all-multicast membership raises the device's
	// allmulti count (ip -d link); the ALLMULTI flag shows only for the
	// administrative setting.
	if l := p.a.MustRun(t, "ip", "-d", "link", "show", "dev", p.va); !strings.Contains(l, "allmulti 1 ") {
		t.Fatalf("ip -d link does not show allmulti 1:\n%s", l)
	}
	if m := maddrLinks(t, p.a, p.va); strings.Contains(m, groupA.String()) {
		t.Fatalf("exact entries left in all-multicast mode:\n%s", m)
	}
	if err := epB.WriteFrame(frame(wire.MAC{0x01, 0x00, 0x5e, 0x7f, 0, 9}, macB, "any-group")); err != nil {
		t.Fatal(err)
	}
	expect(t, chA, "any-group")

	// Back under capacity: exact entries return, ALLMULTI goes.
	st, err = epA.SetMulticastFilter([]wire.MAC{groupB})
	if err != nil || st != (link.FilterStatus{Exact: 1}) {
		t.Fatalf("SetMulticastFilter(B) = %+v, %v", st, err)
	}
	if l := p.a.MustRun(t, "ip", "-d", "link", "show", "dev", p.va); !strings.Contains(l, "allmulti 0 ") {
		t.Fatalf("allmulti count not back to 0:\n%s", l)
	}
	if m := maddrLinks(t, p.a, p.va); !strings.Contains(m, "link  "+groupB.String()) {
		t.Fatalf("ip maddr lacks %v:\n%s", groupB, m)
	}
	if _, err := epA.SetMulticastFilter([]wire.MAC{macB}); !errors.Is(err, afpacket.ErrNotMulticast) {
		t.Fatalf("unicast address in filter: %v", err)
	}

	// Close: membership gone, no reader left, further use fails.
	if _, err := epA.SetMulticastFilter([]wire.MAC{groupA, groupB}); err != nil {
		t.Fatal(err)
	}
	if err := epA.Close(); err != nil {
		t.Fatal(err)
	}
	if m := maddrLinks(t, p.a, p.va); strings.Contains(m, groupA.String()) || strings.Contains(m, groupB.String()) {
		t.Fatalf("memberships left after Close:\n%s", m)
	}
	if err := epA.WriteFrame(frame(macB, macA, "x")); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("WriteFrame after Close: %v", err)
	}
	if _, err := epA.SetMulticastFilter(nil); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("SetMulticastFilter after Close: %v", err)
	}
	if err := epA.Close(); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := epB.Close(); err != nil {
		t.Fatal(err)
	}
	waitNoReader(t)
}

func TestCloseWithoutAttach(t *testing.T) {
	p := newPair(t)
	ep := open(t, p.a, p.va, afpacket.Options{})
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Attach(func([]byte) {}); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Attach after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	p := newPair(t)
	err := p.a.Do(func() error {
		_, err := afpacket.Open("nosuch0", afpacket.Options{})
		return err
	})
	if !errors.Is(err, afpacket.ErrNoSuchInterface) || !strings.Contains(err.Error(), "nosuch0") {
		t.Fatalf("missing interface: %v", err)
	}
	// The interface of namespace A is not visible from the test's own one.
	if _, err := afpacket.Open(p.va, afpacket.Options{}); !errors.Is(err, afpacket.ErrNoSuchInterface) {
		t.Fatalf("interface from another namespace: %v", err)
	}
	if err := p.a.LinkDown(p.va); err != nil {
		t.Fatal(err)
	}
	err = p.a.Do(func() error {
		_, err := afpacket.Open(p.va, afpacket.Options{})
		return err
	})
	if !errors.Is(err, afpacket.ErrInterfaceDown) {
		t.Fatalf("down interface: %v", err)
	}
	if err := p.a.LinkUp(p.va); err != nil {
		t.Fatal(err)
	}
	err = p.a.Do(func() error {
		return netns.WithoutCapability(unix.CAP_NET_RAW, func() error {
			ep, err := afpacket.Open(p.va, afpacket.Options{})
			if err == nil {
				ep.Close()
			}
			return err
		})
	})
	if !errors.Is(err, afpacket.ErrPermission) {
		t.Fatalf("without CAP_NET_RAW: %v", err)
	}
	err = p.a.Do(func() error {
		_, err := afpacket.Open(p.va, afpacket.Options{FilterCapacity: -1})
		return err
	})
	if err == nil {
		t.Fatal("negative capacity accepted")
	}
}

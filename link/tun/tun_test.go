//go:build linux

package tun_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/tun"
	"github.com/mcstack/mcstack/wire"
)

// recorder passes received UDP datagrams and link states to channels.
type recorder struct {
	frames chan received
	states chan link.LinkState
}

type received struct {
	eth     wire.Ethernet
	src     netip.Addr
	dst     netip.Addr
	payload string
}

func newRecorder() *recorder {
	return &recorder{frames: make(chan received, 64), states: make(chan link.LinkState, 64)}
}

func (r *recorder) HandleFrames(frames [][]byte, _ []link.FrameFlags) {
	for _, f := range frames {
		eth, err := wire.ParseEthernet(f)
		if err != nil {
			continue
		}
		var rc received
		var seg []byte
		switch eth.EtherType {
		case wire.EtherTypeIPv4:
			ip, err := wire.ParseIPv4(eth.Payload)
			if err != nil || ip.Protocol != wire.ProtoUDP {
				continue
			}
			rc.src, rc.dst, seg = ip.Src, ip.Dst, ip.Payload
		case wire.EtherTypeIPv6:
			ip, err := wire.ParseIPv6(eth.Payload)
			if err != nil || ip.NextHeader != wire.ProtoUDP {
				continue
			}
			rc.src, rc.dst, seg = ip.Src, ip.Dst, ip.Payload
		default:
			continue
		}
		u, err := wire.ParseUDP(seg, rc.src, rc.dst)
		if err != nil {
			continue
		}
		eth.Payload = nil
		rc.eth, rc.payload = eth, string(u.Payload)
		r.frames <- rc
	}
}

func (r *recorder) HandleLinkState(st link.LinkState) { r.states <- st }

func (r *recorder) expectState(t *testing.T, up, gone bool) {
	t.Helper()
	select {
	case st := <-r.states:
		if st.Up != up || st.Gone != gone {
			t.Fatalf("state %v, want up=%v gone=%v", st, up, gone)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no link state (want up=%v gone=%v)", up, gone)
	}
}

func (r *recorder) expect(t *testing.T, payload string) received {
	t.Helper()
	select {
	case rc := <-r.frames:
		if rc.payload != payload {
			t.Fatalf("received %q, want %q", rc.payload, payload)
		}
		return rc
	case <-time.After(5 * time.Second):
		t.Fatalf("did not receive %q", payload)
	}
	return received{}
}

var (
	kernel4 = netip.MustParseAddr("192.0.2.1")
	stack4  = netip.MustParseAddr("192.0.2.2")
	kernel6 = netip.MustParseAddr("2001:db8::1")
	stack6  = netip.MustParseAddr("2001:db8::2")
	group4  = netip.MustParseAddr("239.1.2.3")
	group6  = netip.MustParseAddr("ff3e::8000:7")
)

// setup makes a namespace with a TUN device attached to an endpoint,
// addresses for the kernel on it, and routes for multicast out of it.
func setup(t *testing.T) (*netns.NS, *tun.Endpoint, *recorder) {
	t.Helper()
	netns.RequireRoot(t)
	ns := netns.New(t, "mcstun")
	name := netns.UniqueName("mtun")
	var ep *tun.Endpoint
	if err := ns.Do(func() (err error) {
		ep, err = tun.Open(name, tun.Options{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	for _, kv := range [][2]string{
		{"net.ipv6.conf." + name + ".accept_dad", "0"},
		{"net.ipv6.conf." + name + ".disable_ipv6", "0"},
	} {
		if err := ns.Sysctl(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	ns.MustRun(t, "ip", "addr", "add", kernel4.String()+"/24", "dev", name)
	ns.MustRun(t, "ip", "addr", "add", kernel6.String()+"/64", "dev", name, "nodad")
	ns.MustRun(t, "ip", "link", "set", name, "up")
	ns.MustRun(t, "ip", "route", "add", "224.0.0.0/4", "dev", name)
	r := newRecorder()
	if err := ep.Attach(r); err != nil {
		t.Fatal(err)
	}
	// The first state is the one read at Open (down: the device was
	// created down), then the change to up.
	r.expectState(t, false, false)
	r.expectState(t, true, false)
	return ns, ep, r
}

// TestKernelPeer: the kernel on the other side of the tunnel route sends
// multicast and unicast UDP to the endpoint, which sees them as Ethernet
// frames (multicast MAC or its own, from PeerMAC) once its filter allows;
// what the endpoint writes, the kernel receives on a UDP socket.
func TestKernelPeer(t *testing.T) {
	ns, ep, r := setup(t)
	if ep.Name() == "" || ep.MTU() != 1500 || ep.HardwareAddr() == tun.PeerMAC {
		t.Fatalf("name %q mtu %d mac %v", ep.Name(), ep.MTU(), ep.HardwareAddr())
	}
	if ifi := ns.MustRun(t, "cat", "/sys/class/net/"+ep.Name()+"/ifindex"); strings.TrimSpace(ifi) != fmt.Sprint(ep.Index()) {
		t.Fatalf("Index() = %d, kernel ifindex %s", ep.Index(), ifi)
	}
	send := func(dst netip.Addr, payload string) {
		t.Helper()
		if err := ns.Do(func() error {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 5000)))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte(payload))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	mac4, _ := wire.MulticastMAC(group4)
	mac6, _ := wire.MulticastMAC(group6)
	// Not joined yet: filtered in software.
	send(group4, "before join")
	send(stack4, "sentinel") // read after the datagram before it
	r.expect(t, "sentinel")
	if _, err := ep.SetMulticastFilter([]wire.MAC{mac4, mac6}); err != nil {
		t.Fatal(err)
	}
	send(group4, "v4 group")
	rc := r.expect(t, "v4 group")
	if rc.eth.Dst != mac4 || rc.eth.Src != tun.PeerMAC || rc.src != kernel4 || rc.dst != group4 {
		t.Fatalf("IPv4 multicast frame %+v", rc)
	}
	send(group6, "v6 group")
	rc = r.expect(t, "v6 group")
	if rc.eth.Dst != mac6 || rc.eth.EtherType != wire.EtherTypeIPv6 || rc.dst != group6 {
		t.Fatalf("IPv6 multicast frame %+v", rc)
	}
	send(stack4, "unicast")
	rc = r.expect(t, "unicast")
	if rc.eth.EtherType != wire.EtherTypeIPv4 {
		t.Fatalf("unicast frame %+v", rc)
	}
	if rc.eth.Dst != ep.HardwareAddr() {
		t.Fatalf("unicast frame to %v, want %v", rc.eth.Dst, ep.HardwareAddr())
	}
	if st := ep.Stats(); st.RxFiltered == 0 {
		t.Fatalf("stats %+v: the datagram before the join was not filtered", st)
	}

	// The endpoint writes; a kernel UDP socket receives.
	for _, tc := range []struct{ src, dst netip.Addr }{{stack4, kernel4}, {stack6, kernel6}} {
		var l *net.UDPConn
		if err := ns.Do(func() (err error) {
			l, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.dst, 6000)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		u, err := wire.AppendUDP(nil, tc.src, tc.dst, 7000, 6000, []byte("from the stack"))
		if err != nil {
			t.Fatal(err)
		}
		var f []byte
		if tc.dst.Is4() {
			f = wire.AppendEthernet(nil, tun.PeerMAC, ep.HardwareAddr(), wire.EtherTypeIPv4)
			f, err = wire.AppendIPv4(f, wire.IPv4{TTL: 64, Protocol: wire.ProtoUDP, Src: tc.src, Dst: tc.dst}, u)
		} else {
			f = wire.AppendEthernet(nil, tun.PeerMAC, ep.HardwareAddr(), wire.EtherTypeIPv6)
			f, err = wire.AppendIPv6(f, wire.IPv6{HopLimit: 64, NextHeader: wire.ProtoUDP, Src: tc.src, Dst: tc.dst}, u)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := ep.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := l.ReadFromUDPAddrPort(buf)
		l.Close()
		if err != nil || string(buf[:n]) != "from the stack" || from.Addr() != tc.src {
			t.Fatalf("kernel socket on %v: %q from %v, %v", tc.dst, buf[:n], from, err)
		}
	}
	arp := append(wire.AppendEthernet(nil, tun.PeerMAC, ep.HardwareAddr(), 0x0806), make([]byte, 28)...)
	if err := ep.WriteFrame(arp); !errors.Is(err, tun.ErrNotIP) {
		t.Fatalf("ARP frame: %v, want ErrNotIP", err)
	}
}

// TestLinkStateAndRemoval: admin down and up are reported, and deleting
// the device is Gone; writes then fail with ErrGone.
func TestLinkStateAndRemoval(t *testing.T) {
	ns, ep, r := setup(t)
	ns.MustRun(t, "ip", "link", "set", ep.Name(), "down")
	r.expectState(t, false, false)
	ns.MustRun(t, "ip", "link", "set", ep.Name(), "up")
	r.expectState(t, true, false)
	ns.MustRun(t, "ip", "link", "del", ep.Name())
	deadline := time.After(5 * time.Second)
	for gone := false; !gone; {
		select {
		case st := <-r.states:
			gone = st.Gone
		case <-deadline:
			t.Fatal("no Gone after ip link del")
		}
	}
	f := wire.AppendEthernet(nil, tun.PeerMAC, ep.HardwareAddr(), wire.EtherTypeIPv4)
	if err := ep.WriteFrame(append(f, 0x45)); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Gone: %v", err)
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "mcstun")
	tapName := netns.UniqueName("mtap")
	if err := ns.AddTap(tapName); err != nil {
		t.Fatal(err)
	}
	open := func(name string, o tun.Options) error {
		return ns.Do(func() error {
			ep, err := tun.Open(name, o)
			if err == nil {
				ep.Close()
			}
			return err
		})
	}
	if err := open(tapName, tun.Options{}); !errors.Is(err, tun.ErrInvalidName) {
		t.Fatalf("TAP device opened as TUN: %v", err)
	}
	if err := open("averyveryverylongname", tun.Options{}); !errors.Is(err, tun.ErrInvalidName) {
		t.Fatalf("long name: %v", err)
	}
	if err := open("x", tun.Options{MAC: tun.PeerMAC}); err == nil {
		t.Fatal("PeerMAC accepted as the endpoint's address")
	}
	if err := open("x", tun.Options{MAC: wire.MAC{1, 0, 0, 0, 0, 1}}); err == nil {
		t.Fatal("multicast MAC accepted")
	}
	var ep *tun.Endpoint
	if err := ns.Do(func() (err error) { ep, err = tun.Open("", tun.Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if err := open(ep.Name(), tun.Options{}); !errors.Is(err, tun.ErrBusy) {
		t.Fatalf("second open: %v, want ErrBusy", err)
	}
}

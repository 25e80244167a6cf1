package stack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/wire"
)

var _ net.PacketConn = (*Conn)(nil)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestReadDeadline(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	frame := udpFrame(t, peer4, eg4, 4000, 5000, []byte("data"))
	buf := make([]byte, 100)

	// A passed deadline fails at once, even with a datagram queued (as
	// package net does).
	ep.inject(frame)
	must(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	if _, _, err := c.ReadMsg(buf); !isTimeout(err) {
		t.Fatalf("read with a passed deadline: %v", err)
	}
	// The zero time clears it: the queued datagram is read.
	must(t, c.SetReadDeadline(time.Time{}))
	if n, _, err := c.ReadMsg(buf); err != nil || string(buf[:n]) != "data" {
		t.Fatalf("read after clearing the deadline: %q %v", buf[:n], err)
	}

	// A future deadline: the read blocks until it passes.
	start := time.Now()
	must(t, c.SetReadDeadline(start.Add(50*time.Millisecond)))
	_, _, err := c.ReadMsg(buf)
	if el := time.Since(start); !isTimeout(err) || el < 45*time.Millisecond {
		t.Fatalf("read with a 50ms deadline returned %v after %v", err, el)
	}
	// Later reads fail too until the deadline is moved.
	if _, _, err := c.ReadFrom(buf); !isTimeout(err) {
		t.Fatalf("second read after the deadline: %v", err)
	}
	// A future deadline with data arriving before it.
	must(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	go func() {
		time.Sleep(20 * time.Millisecond)
		ep.inject(frame)
	}()
	if n, _, err := c.ReadMsg(buf); err != nil || string(buf[:n]) != "data" {
		t.Fatalf("read before the deadline: %q %v", buf[:n], err)
	}
}

// Moving the deadline applies to a read already blocked.
func TestReadDeadlineMovedWhileBlocked(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	buf := make([]byte, 100)

	// Extended: the short deadline no longer applies.
	must(t, c.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	res := make(chan error, 1)
	go func() { _, _, err := c.ReadMsg(buf); res <- err }()
	time.Sleep(5 * time.Millisecond)
	must(t, c.SetReadDeadline(time.Now().Add(time.Hour)))
	time.Sleep(100 * time.Millisecond)
	ep.inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte("late")))
	if err := <-res; err != nil {
		t.Fatalf("read with an extended deadline: %v", err)
	}
	// Shortened to the past: the blocked read fails at once.
	go func() { _, _, err := c.ReadMsg(buf); res <- err }()
	time.Sleep(20 * time.Millisecond)
	must(t, c.SetDeadline(time.Now().Add(-time.Millisecond)))
	select {
	case err := <-res:
		if !isTimeout(err) {
			t.Fatalf("read after the deadline moved to the past: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked read not woken by a passed deadline")
	}
	// Cleared while blocked: the read waits for data.
	must(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	go func() { _, _, err := c.ReadMsg(buf); res <- err }()
	must(t, c.SetReadDeadline(time.Time{}))
	select {
	case err := <-res:
		t.Fatalf("read returned %v after its deadline was cleared", err)
	case <-time.After(80 * time.Millisecond):
	}
	ep.inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte("x")))
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

// A deadline timer that fires while the deadline is being replaced must
// not expire the new deadline.
func TestReadDeadlineResetRace(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	frame := udpFrame(t, peer4, eg4, 4000, 5000, []byte("x"))
	buf := make([]byte, 100)
	for i := range 500 {
		must(t, c.SetReadDeadline(time.Now().Add(time.Duration(i%50)*time.Microsecond)))
		must(t, c.SetReadDeadline(time.Time{}))
		ep.inject(frame)
		time.Sleep(60 * time.Microsecond) // let a stale timer run
		if _, _, err := c.ReadMsg(buf); err != nil {
			t.Fatalf("iteration %d: read after clearing the deadline: %v", i, err)
		}
	}
}

// Every one of several parked readers is woken by a passing deadline and
// by Close (they wait on one single-token channel and pass the wake-up
// on), also when the deadline fires just as they park.
func TestManyParkedReadersWoken(t *testing.T) {
	s, _, _ := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	const readers = 8
	readAll := func(what string, want func(error) bool, act func()) {
		t.Helper()
		res := make(chan error, readers)
		for range readers {
			go func() { _, _, err := c.ReadMsg(make([]byte, 10)); res <- err }()
		}
		act()
		for i := range readers {
			select {
			case err := <-res:
				if !want(err) {
					t.Fatalf("%s: reader returned %v", what, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: %d of %d readers still blocked", what, readers-i, readers)
			}
		}
	}
	for i := range 200 {
		// Deadlines from 0 to ~200 µs: some pass before the readers
		// park, some while they park, some after.
		d := time.Duration(i) * time.Microsecond
		readAll(fmt.Sprintf("deadline %v", d), isTimeout, func() { must(t, c.SetReadDeadline(time.Now().Add(d))) })
	}
	must(t, c.SetReadDeadline(time.Time{}))
	readAll("close", func(err error) bool { return errors.Is(err, net.ErrClosed) }, func() {
		time.Sleep(10 * time.Millisecond)
		must(t, c.Close())
	})
}

func TestCloseUnblocksRead(t *testing.T) {
	s, _, _ := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	res := make(chan error, 1)
	go func() { _, _, err := c.ReadMsg(make([]byte, 10)); res <- err }()
	time.Sleep(20 * time.Millisecond)
	must(t, c.Close())
	select {
	case err := <-res:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadMsg")
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(239, 1, 1, 1), Port: 9}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetDeadline after Close: %v", err)
	}
	// The port is free again.
	c2 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	if c2.LocalAddr().String() != "0.0.0.0:5000" {
		t.Fatal(c2.LocalAddr())
	}
}

func TestReadFromWriteToUDPAddr(t *testing.T) {
	s, ifc, _ := newTestStack(t, Config{})
	g := netip.MustParseAddr("239.1.2.3")
	rx := mustListen(t, s, "udp4", "0.0.0.0:6000")
	must(t, rx.JoinGroup(ifc, g))
	tx := mustListen(t, s, "udp4", "0.0.0.0:0")
	n, err := tx.WriteTo([]byte("hello"), &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3), Port: 6000})
	if err != nil || n != 5 {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 3) // short: truncated
	n, from, err := rx.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hel" {
		t.Fatalf("ReadFrom = %q %v", buf[:n], err)
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		t.Fatalf("ReadFrom address %T, want *net.UDPAddr", from)
	}
	txPort := tx.LocalAddr().(*net.UDPAddr).Port
	if ua.AddrPort() != netip.AddrPortFrom(hostAddr.Addr(), uint16(txPort)) {
		t.Fatalf("from %v, want %v:%d", ua, hostAddr.Addr(), txPort)
	}
	if _, err := tx.WriteTo([]byte("x"), &net.IPAddr{IP: net.IPv4(239, 1, 2, 3)}); !errors.Is(err, ErrBadDestination) {
		t.Fatalf("WriteTo a *net.IPAddr: %v", err)
	}
	if _, err := tx.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[ff3e::1]:6000")); !errors.Is(err, ErrBadDestination) {
		t.Fatalf("udp4 WriteTo an IPv6 group: %v", err)
	}
	if _, err := tx.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("239.1.2.3:0")); !errors.Is(err, ErrBadDestination) {
		t.Fatalf("WriteTo port 0: %v", err)
	} else if msg := err.Error(); !strings.Contains(msg, "->239.1.2.3:0: bad destination address") || strings.Contains(msg, "local") {
		// The error names the destination, once, as the net package does.
		t.Errorf("WriteTo port 0: %q", msg)
	}
	// An IPv4-mapped destination is an IPv4 destination on udp4 ...
	if _, err := tx.WriteToAddrPort([]byte("mapped"), netip.MustParseAddrPort("[::ffff:239.1.2.3]:6000")); err != nil {
		t.Fatalf("udp4 WriteTo a mapped group: %v", err)
	}
	if p, _ := readOne(t, rx, 5*time.Second); p != "mapped" {
		t.Fatalf("got %q", p)
	}
	// ... and refused on udp6.
	tx6 := mustListen(t, s, "udp6", "[::]:0")
	if _, err := tx6.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[::ffff:239.1.2.3]:6000")); !errors.Is(err, ErrBadDestination) {
		t.Fatalf("udp6 WriteTo a mapped group: %v", err)
	}
}

func TestLocalAddrAndEphemeralPort(t *testing.T) {
	s, _, _ := newTestStack(t, Config{})
	for _, tc := range []struct{ network, laddr, want string }{
		{"udp4", "0.0.0.0:5000", "0.0.0.0:5000"},
		{"udp6", "[::]:5000", "[::]:5000"},
		{"udp", "192.0.2.1:5001", "192.0.2.1:5001"},
		{"udp", "[2001:db8::1]:5001", "[2001:db8::1]:5001"},
		{"udp6", "[ff3e::1]:5002", "[ff3e::1]:5002"},
	} {
		c := mustListen(t, s, tc.network, tc.laddr)
		la, ok := c.LocalAddr().(*net.UDPAddr)
		if !ok || la.String() != tc.want || la.Network() != "udp" {
			t.Errorf("ListenUDP(%s, %s).LocalAddr() = %v, want %s", tc.network, tc.laddr, c.LocalAddr(), tc.want)
		}
	}
	c, err := s.ListenUDP("udp", netip.AddrPort{})
	must(t, err)
	if la := c.LocalAddr().(*net.UDPAddr); !la.IP.Equal(net.IPv6unspecified) || la.Port < 49152 {
		t.Fatalf("ListenUDP(udp, invalid) LocalAddr %v", la)
	}
	seen := map[int]bool{}
	for range 50 {
		c := mustListen(t, s, "udp4", "0.0.0.0:0")
		p := c.LocalAddr().(*net.UDPAddr).Port
		if p < 49152 || p > 65535 || seen[p] {
			t.Fatalf("ephemeral port %d (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
	for _, tc := range []struct {
		network, laddr string
		want           error
	}{
		{"tcp", "0.0.0.0:1", ErrBadNetwork},
		{"udp4", "[::]:1", ErrBadAddress},
		{"udp6", "0.0.0.0:1", ErrBadAddress},
		{"udp4", "192.0.2.77:1", ErrBadAddress}, // not ours
		{"udp6", "[fe80::1%eth0]:1", ErrBadAddress},
	} {
		if _, err := s.ListenUDP(tc.network, netip.MustParseAddrPort(tc.laddr)); !errors.Is(err, tc.want) {
			t.Errorf("ListenUDP(%s, %s): %v, want %v", tc.network, tc.laddr, err, tc.want)
		}
	}
	must(t, s.Close())
	if _, err := s.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:1")); !errors.Is(err, ErrStackClosed) {
		t.Fatalf("ListenUDP on a closed stack: %v", err)
	}
}

// lastUDPFrame returns the last frame written that carries UDP (engines may
// write reports too).
func lastUDPFrame(t *testing.T, ep *testEndpoint) (wire.Ethernet, netip.Addr, netip.Addr, uint8, wire.UDP) {
	t.Helper()
	fs := ep.writtenFrames()
	for i := len(fs) - 1; i >= 0; i-- {
		eth, err := wire.ParseEthernet(fs[i])
		must(t, err)
		switch eth.EtherType {
		case wire.EtherTypeIPv4:
			ip, err := wire.ParseIPv4(eth.Payload)
			must(t, err)
			if ip.Protocol != wire.ProtoUDP {
				continue
			}
			u, err := wire.ParseUDP(ip.Payload, ip.Src, ip.Dst)
			must(t, err)
			return eth, ip.Src, ip.Dst, ip.TTL, u
		case wire.EtherTypeIPv6:
			ip, err := wire.ParseIPv6(eth.Payload)
			must(t, err)
			if ip.NextHeader != wire.ProtoUDP {
				continue
			}
			u, err := wire.ParseUDP(ip.Payload, ip.Src, ip.Dst)
			must(t, err)
			return eth, ip.Src, ip.Dst, ip.HopLimit, u
		}
	}
	t.Fatal("no UDP frame written")
	panic("unreachable")
}

func TestSendMulticastFrame(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5555")
	if c.MulticastTTL() != 1 || !c.MulticastLoopback() {
		t.Fatalf("defaults: ttl %d loopback %v", c.MulticastTTL(), c.MulticastLoopback())
	}
	must(t, c.SetMulticastTTL(7))
	if err := c.SetMulticastTTL(256); err == nil {
		t.Fatal("SetMulticastTTL(256) accepted")
	}
	g := netip.MustParseAddr("239.1.2.3")
	n, err := c.WriteToAddrPort([]byte("payload"), netip.AddrPortFrom(g, 6000))
	if err != nil || n != 7 {
		t.Fatalf("WriteToAddrPort = %d, %v", n, err)
	}
	eth, src, dst, ttl, u := lastUDPFrame(t, ep)
	if eth.Dst != (wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}) || eth.Src != ifc.HardwareAddr() {
		t.Fatalf("ethernet %v -> %v", eth.Src, eth.Dst)
	}
	if src != hostAddr.Addr() || dst != g || ttl != 7 || u.SrcPort != 5555 || u.DstPort != 6000 || string(u.Payload) != "payload" {
		t.Fatalf("ip %v -> %v ttl %d udp %d -> %d %q", src, dst, ttl, u.SrcPort, u.DstPort, u.Payload)
	}

	// IPv6: link-local source for link scope, global for wider scopes.
	c6 := mustListen(t, s, "udp6", "[::]:5555")
	must(t, c6.SetMulticastHopLimit(3))
	ll := linkLocalFromMAC(ifc.HardwareAddr())
	for _, tc := range []struct {
		group string
		src   netip.Addr
	}{{"ff02::1:3", ll}, {"ff0e::1234", host6.Addr()}} {
		g6 := netip.MustParseAddr(tc.group)
		if _, err := c6.WriteToAddrPort([]byte("v6"), netip.AddrPortFrom(g6, 6000)); err != nil {
			t.Fatal(err)
		}
		eth, src, dst, hops, u := lastUDPFrame(t, ep)
		wantMAC, _ := wire.MulticastMAC(g6)
		if eth.Dst != wantMAC || eth.EtherType != wire.EtherTypeIPv6 || src != tc.src || dst != g6 || hops != 3 || string(u.Payload) != "v6" {
			t.Fatalf("%s: eth %v type %#x ip %v -> %v hops %d %q", tc.group, eth.Dst, eth.EtherType, src, dst, hops, u.Payload)
		}
	}

	// Broadcast: the broadcast MAC.
	must(t, c.SetMulticastTTL(1))
	for _, b := range []string{"255.255.255.255", "192.0.2.255"} {
		if _, err := c.WriteToAddrPort([]byte("bc"), netip.AddrPortFrom(netip.MustParseAddr(b), 6000)); err != nil {
			t.Fatalf("broadcast to %s: %v", b, err)
		}
		eth, _, dst, _, _ := lastUDPFrame(t, ep)
		if eth.Dst != wire.BroadcastMAC || dst.String() != b {
			t.Fatalf("broadcast frame to %v %v", eth.Dst, dst)
		}
	}
}

func TestSendLoopback(t *testing.T) {
	s, ifc, _ := newTestStack(t, Config{})
	g := netip.MustParseAddr("239.1.2.3")
	rx := mustListen(t, s, "udp4", "0.0.0.0:6000")
	must(t, rx.JoinGroup(ifc, g))
	tx := mustListen(t, s, "udp4", "0.0.0.0:0")
	dst := netip.AddrPortFrom(g, 6000)

	d := counterDelta(ifc, func() {
		_, err := tx.WriteToAddrPort([]byte("looped"), dst)
		must(t, err)
	})
	wantCounters(t, d, map[string]uint64{"looped_back": 1, "frames_sent": 1, "datagrams_received": 1})
	got := wantPayloads(t, rx, "loopback on", "looped")
	if got[0].cm.IfIndex != ifc.Index() || got[0].cm.Dst != g || got[0].cm.TTL != 1 {
		t.Fatalf("looped control message %+v", got[0].cm)
	}

	must(t, tx.SetMulticastLoopback(false))
	d = counterDelta(ifc, func() {
		_, err := tx.WriteToAddrPort([]byte("not looped"), dst)
		must(t, err)
	})
	wantCounters(t, d, map[string]uint64{"frames_sent": 1})
	wantPayloads(t, rx, "loopback off")
	// Loopback also honors the receivers' source filters.
	must(t, tx.SetMulticastLoopback(true))
	must(t, rx.BlockSource(ifc, g, hostAddr.Addr()))
	tx.WriteToAddrPort([]byte("blocked"), dst)
	wantPayloads(t, rx, "own address blocked")
}

func TestSendErrors(t *testing.T) {
	s, ifcs, eps := newTwoIfcStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	g := netip.AddrPortFrom(netip.MustParseAddr("239.1.2.3"), 6000)
	if _, err := c.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("192.0.2.77:6000")); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("unicast: %v", err)
	}
	// Two interfaces and no multicast interface set.
	if _, err := c.WriteToAddrPort([]byte("x"), g); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("multicast with two interfaces and none chosen: %v", err)
	}
	must(t, c.SetMulticastInterface(ifcs[1]))
	if c.MulticastInterface() != ifcs[1] {
		t.Fatal("MulticastInterface")
	}
	maxLen := ifcs[1].MTU() - 20 - 8
	if _, err := c.WriteToAddrPort(make([]byte, maxLen+1), g); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("%d bytes: %v", maxLen+1, err)
	}
	if n, err := c.WriteToAddrPort(make([]byte, maxLen), g); err != nil || n != maxLen {
		t.Fatalf("%d bytes: %d %v", maxLen, n, err)
	}
	eth, src, _, _, _ := lastUDPFrame(t, eps[1])
	if eth.Src != ifcs[1].HardwareAddr() || src != host2Addr.Addr() {
		t.Fatalf("frame on test1 from %v %v", eth.Src, src)
	}
	if fs := eps[0].writtenFrames(); len(fs) != 0 {
		t.Fatalf("%d frames written on test0", len(fs))
	}
	c6 := mustListen(t, s, "udp6", "[::]:5000")
	must(t, c6.SetMulticastInterface(ifcs[0]))
	if _, err := c6.WriteToAddrPort(make([]byte, ifcs[0].MTU()-40-8+1), netip.MustParseAddrPort("[ff3e::1]:6000")); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("IPv6 too long: %v", err)
	}
	// Removing the chosen interface resets the choice.
	must(t, s.RemoveInterface(ifcs[1]))
	if c.MulticastInterface() != nil {
		t.Fatal("multicast interface survives its removal")
	}
	if err := c.SetMulticastInterface(ifcs[1]); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("SetMulticastInterface(removed): %v", err)
	}
	// One interface left: it is the default.
	if _, err := c.WriteToAddrPort([]byte("x"), g); err != nil {
		t.Fatalf("multicast with one interface left: %v", err)
	}
	// An interface with no IPv4 address cannot send IPv4.
	s2 := New(Config{})
	t.Cleanup(func() { s2.Close() })
	_, err := s2.AddInterface(newTestEndpoint("v6only", 5), InterfaceConfig{Addrs: []netip.Prefix{host6}})
	must(t, err)
	c4 := mustListen(t, s2, "udp4", "0.0.0.0:5000")
	if _, err := c4.WriteToAddrPort([]byte("x"), g); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("IPv4 on an IPv6-only interface: %v", err)
	}
}

func TestWriteDeadline(t *testing.T) {
	s, _, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	g := netip.MustParseAddrPort("239.1.2.3:6000")
	must(t, c.SetWriteDeadline(time.Now().Add(-time.Second)))
	before := len(ep.writtenFrames())
	if _, err := c.WriteToAddrPort([]byte("x"), g); !isTimeout(err) {
		t.Fatalf("write after the deadline: %v", err)
	}
	if n := len(ep.writtenFrames()); n != before {
		t.Fatal("a frame was written after the deadline")
	}
	must(t, c.SetWriteDeadline(time.Time{}))
	if _, err := c.WriteToAddrPort([]byte("x"), g); err != nil {
		t.Fatalf("write with the deadline cleared: %v", err)
	}
	must(t, c.SetWriteDeadline(time.Now().Add(30*time.Millisecond)))
	if _, err := c.WriteToAddrPort([]byte("x"), g); err != nil {
		t.Fatalf("write before the deadline: %v", err)
	}
	waitFor(t, 5*time.Second, "write deadline", func() bool {
		_, err := c.WriteToAddrPort([]byte("x"), g)
		return isTimeout(err)
	})
	// The read side is independent.
	must(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	must(t, c.SetWriteDeadline(time.Time{}))
	if _, err := c.WriteToAddrPort([]byte("x"), g); err != nil {
		t.Fatalf("write with only a read deadline passed: %v", err)
	}
}

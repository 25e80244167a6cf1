package stack

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

func TestSourceSpecificReceive(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c, err := s.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
	if err != nil {
		t.Fatal(err)
	}
	g := netip.MustParseAddr("232.1.1.1")
	good, bad := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")
	if err := c.JoinSourceSpecificGroup(ifc, g, good); err != nil {
		t.Fatal(err)
	}
	ep.inject(udpFrame(t, bad, g, 9, 5000, []byte("bad")))
	ep.inject(udpFrame(t, good, g, 9, 5000, []byte("good")))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, cm, err := c.ReadMsg(buf)
	if err != nil || string(buf[:n]) != "good" || cm.Src.Addr() != good || cm.Dst != g || cm.IfIndex != ifc.Index() {
		t.Fatalf("ReadMsg = %q %+v %v", buf[:n], cm, err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := c.ReadMsg(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v, want deadline", err)
	}
	syncIfc(t, ifc)
	mac, _ := wire.MulticastMAC(g)
	found := false
	for _, m := range ep.lastFilter() {
		found = found || m == mac
	}
	if !found {
		t.Fatalf("driver filter %v lacks %v", ep.lastFilter(), mac)
	}
	if err := c.JoinGroup(ifc, g); !errors.Is(err, membership.ErrModeMismatch) && !errors.Is(err, membership.ErrAlreadyJoined) {
		t.Fatalf("JoinGroup on an INCLUDE group: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	syncIfc(t, ifc)
	for _, m := range ep.lastFilter() {
		if m == mac {
			t.Fatalf("driver filter %v still has %v after close", ep.lastFilter(), mac)
		}
	}
	if st := ifc.Status(); len(st.Groups) != 0 {
		t.Fatalf("groups after close: %+v", st.Groups)
	}
}

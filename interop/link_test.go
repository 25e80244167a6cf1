//go:build linux

package interop

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/stack"
)

// Links come and go (issue 9): the Linux bridge forgets a port's groups
// when the port loses its link; when the link comes back the stack
// re-announces its groups at once, without waiting for a query, and the
// bridge learns them again. An interface added while its link is down
// announces its groups when the link comes up. A deleted interface is
// reported.

// waitLink waits until the stack reports the link in the given state.
func (tp *topo) waitLink(up bool) {
	tp.t.Helper()
	tp.waitStatus(learnTimeout, "link state", func(st stack.Status) bool { return st.Link.Up == up && !st.Link.Gone })
}

func TestInteropLinkDownUpReannounces(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, topoOptions{})
	g := netip.MustParseAddr("239.9.9.1")
	c, err := tp.st.ListenUDP("udp4", netip.AddrPortFrom(netip.Addr{}, 5009))
	must(t, err)
	must(t, c.JoinGroup(tp.ifc, g))
	tp.waitFilter(learnTimeout, g, "exclude")

	must(t, tp.stk.LinkDown(tp.vStk))
	tp.waitLink(false)
	tp.waitGone(learnTimeout, tp.portStk, g) // the bridge forgot the port's groups

	before := tp.ifc.Status().IGMP.Counters
	must(t, tp.stk.LinkUp(tp.vStk))
	tp.waitLink(true)
	// The re-announcement goes out at once: a report is sent while no
	// query has been heard since the link came back.
	deadline := time.Now().Add(learnTimeout)
	for {
		now := tp.ifc.Status().IGMP.Counters
		if now.ReportsSent > before.ReportsSent {
			if now.QueriesReceived != before.QueriesReceived {
				t.Logf("a query arrived before the first report after link up (%d → %d): cannot tell the re-announcement from a query response",
					before.QueriesReceived, now.QueriesReceived)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report within %v of the link coming back", learnTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	tp.waitFilter(learnTimeout, g, "exclude")
}

func TestInteropAddInterfaceWhileDown(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, topoOptions{noStack: true})
	must(t, tp.stk.LinkDown(tp.vStk))
	var ep *afpacket.Endpoint
	must(t, tp.stk.Do(func() (err error) {
		ep, err = afpacket.Open(tp.vStk, afpacket.Options{Mode: afpacketMode(t), Logger: testLogger(t)})
		return err
	}))
	tp.st = stack.New(stack.Config{Logger: testLogger(t)})
	t.Cleanup(func() { tp.st.Close() })
	ifc, err := tp.st.AddInterface(ep, stack.InterfaceConfig{Addrs: []netip.Prefix{stackAddr4}})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	tp.ifc = ifc
	tp.waitLink(false)
	g := netip.MustParseAddr("239.9.9.2")
	c, err := tp.st.ListenUDP("udp4", netip.AddrPortFrom(netip.Addr{}, 5010))
	must(t, err)
	must(t, c.JoinGroup(ifc, g))
	time.Sleep(200 * time.Millisecond) // the join's reports go nowhere
	must(t, tp.stk.LinkUp(tp.vStk))
	tp.waitLink(true)
	tp.waitFilter(learnTimeout, g, "exclude")
}

func TestInteropInterfaceDeleted(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, topoOptions{})
	c, err := tp.st.ListenUDP("udp4", netip.AddrPortFrom(netip.Addr{}, 5011))
	must(t, err)
	must(t, c.JoinGroup(tp.ifc, netip.MustParseAddr("239.9.9.3")))
	tp.stk.MustRun(t, "ip", "link", "del", tp.vStk)
	select {
	case <-tp.ifc.Done():
	case <-time.After(learnTimeout):
		t.Fatalf("Done not closed %v after the interface was deleted (status %+v)", learnTimeout, tp.ifc.Status().Link)
	}
	if err := tp.ifc.Sync(context.Background()); !errors.Is(err, stack.ErrLinkGone) {
		t.Fatalf("Sync after the interface was deleted: %v, want ErrLinkGone", err)
	}
	start := time.Now()
	must(t, tp.st.RemoveInterface(tp.ifc))
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("RemoveInterface of a deleted interface took %v", d)
	}
}

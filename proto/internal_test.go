package proto

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// TestTimerHeapBounded: query floods that keep moving group timers earlier
// leave the timer heap proportional to the running timers.
func TestTimerHeapBounded(t *testing.T) {
	e := newEngine(igmpFamily, Config{Rand: rand.New(rand.NewPCG(1, 2)), Source: netip.MustParseAddr("192.0.2.2")})
	now := time.Unix(1000, 0)
	var ds []membership.Delta
	var groups []netip.Addr
	for i := range 100 {
		g := netip.AddrFrom4([4]byte{239, 1, 0, byte(i)})
		groups = append(groups, g)
		ds = append(ds, membership.Delta{Group: g, New: membership.State{Mode: membership.Exclude}})
	}
	e.StateChanged(now, ds)
	for i := range 20000 {
		g := groups[i%len(groups)]
		b, err := wire.IGMPv3Query{MaxRespCode: uint8(255 - i%255), Group: g, Sources: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}}.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		e.Receive(now, Received{Src: netip.MustParseAddr("192.0.2.1"), Dst: g, HopLimit: 1, RouterAlert: true, Payload: b})
		if e.nTimers > len(groups) {
			t.Fatalf("%d group timers for %d groups", e.nTimers, len(groups))
		}
		if len(e.timers) > 2*e.nTimers+64 {
			t.Fatalf("timer heap of %d entries for %d timers", len(e.timers), e.nTimers)
		}
		for _, g := range e.groups {
			if len(g.qSources) > igmpFamily.maxSources(e.cfg.MTU) {
				t.Fatalf("group %v records %d sources", g.addr, len(g.qSources))
			}
		}
	}
}

// TestPackSplitsExactly checks pack against record sizes directly.
func TestPackSplitsExactly(t *testing.T) {
	src := make([]netip.Addr, 1000)
	for i := range src {
		src[i] = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
	}
	g := netip.MustParseAddr("239.1.1.1")
	for _, mtu := range []int{68, 576, 1500, 9000} {
		pkts := igmpFamily.pack([]wire.GroupRecord{
			{Type: wire.ModeIsInclude, Group: g, Sources: src},
			{Type: wire.ModeIsExclude, Group: g, Sources: src},
			{Type: wire.ChangeToExclude, Group: g},
		}, mtu)
		total := 0
		for _, p := range pkts {
			size := igmpFamily.ipHdrLen + reportHeaderLen
			for _, r := range p {
				size += r.Len()
				if r.Type == wire.ModeIsInclude {
					total += len(r.Sources)
				}
			}
			if size > mtu {
				t.Errorf("mtu %d: packet of %d bytes", mtu, size)
			}
		}
		if total != len(src) {
			t.Errorf("mtu %d: IS_IN records carry %d sources, want %d", mtu, total, len(src))
		}
		// IS_IN split into ceil(1000/per) packets, IS_EX truncated to one
		// full packet, TO_EX {} in a packet of its own; all in one when
		// everything fits.
		per := (mtu - 24 - 8 - 8) / 4
		want := (len(src)+per-1)/per + 2
		if per >= len(src) {
			want = 1
		}
		if len(pkts) != want {
			t.Errorf("mtu %d: %d packets, want %d", mtu, len(pkts), want)
		}
	}
}

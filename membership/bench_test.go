package membership

import (
	"net/netip"
	"testing"
)

// BenchmarkTableApply: join/leave churn over 10,000 groups, each with a
// resident EXCLUDE socket of 100 sources; one churning socket joins with
// an overlapping 100-source EXCLUDE filter (merged set recomputed) or a
// 100-source INCLUDE filter (patched), then leaves. One op = join + leave.
func BenchmarkTableApply(b *testing.B) {
	const groups, nsrc = 10000, 100
	gs := make([]netip.Addr, groups)
	for i := range gs {
		gs[i] = netip.AddrFrom4([4]byte{232, 1, byte(i >> 8), byte(i)})
	}
	mk := func(mode Mode, off int) State {
		s := make([]netip.Addr, nsrc)
		for i := range s {
			s[i] = netip.AddrFrom4([4]byte{10, 0, byte((i + off) >> 8), byte(i + off)})
		}
		return NewState(mode, s)
	}
	resident, exclChurn, inclChurn := mk(Exclude, 0), mk(Exclude, 50), mk(Include, 25)
	for _, c := range []struct {
		name  string
		churn State
	}{{"exclude", exclChurn}, {"include", inclChurn}} {
		b.Run(c.name, func(b *testing.B) {
			tab := NewTable(Limits{})
			for _, g := range gs {
				if _, _, err := tab.Apply(g, State{}, resident); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				g := gs[i%groups]
				i++
				if _, ch, err := tab.Apply(g, State{}, c.churn); err != nil || !ch {
					b.Fatal(err, ch)
				}
				if _, _, err := tab.Apply(g, c.churn, State{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("last-member", func(b *testing.B) {
		tab := NewTable(Limits{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			g := gs[i%groups]
			i++
			tab.Apply(g, State{}, resident) //nolint:errcheck
			tab.Apply(g, resident, State{}) //nolint:errcheck
		}
	})
}

// BenchmarkTableApplyOneSource: one socket builds a 100-source filter one
// source at a time and then removes it one source at a time (200 Apply
// calls per op; ns/apply is per call), as JoinSourceSpecificGroup /
// LeaveSourceSpecificGroup or BlockSource / UnblockSource do. "include" is
// the only socket of its group (every call changes the merged list);
// "block" joins a group that has a resident EXCLUDE socket of 100 sources,
// half of them overlapping, so half the calls change the merged list. The
// socket states are built before the timer: only Table.Apply is measured.
func BenchmarkTableApplyOneSource(b *testing.B) {
	const nsrc = 100
	g := netip.AddrFrom4([4]byte{232, 1, 1, 1})
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	steps := func(mode Mode, off int) []State {
		out := []State{{Mode: mode}}
		var s []netip.Addr
		for i := range nsrc {
			s = append(s, src(i+off))
			out = append(out, NewState(mode, s))
		}
		return out
	}
	var res []netip.Addr
	for i := range nsrc {
		res = append(res, src(i))
	}
	for _, c := range []struct {
		name     string
		resident State
		steps    []State
	}{
		{"include", State{}, steps(Include, 0)},
		{"block", NewState(Exclude, res), steps(Exclude, 50)},
	} {
		b.Run(c.name, func(b *testing.B) {
			tab := NewTable(Limits{})
			if c.resident.IsMember() {
				if _, _, err := tab.Apply(g, State{}, c.resident); err != nil {
					b.Fatal(err)
				}
			}
			st := c.steps
			if st[0].Mode == Exclude { // join any-source first, then block
				if _, _, err := tab.Apply(g, State{}, st[0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				for k := 1; k < len(st); k++ {
					if _, _, err := tab.Apply(g, st[k-1], st[k]); err != nil {
						b.Fatal(err)
					}
				}
				for k := len(st) - 1; k > 0; k-- {
					if _, _, err := tab.Apply(g, st[k], st[k-1]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*nsrc), "ns/apply")
		})
	}
}

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

package scale

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/mcstack/mcstack/membership"
)

// BenchmarkStateAccepts: membership.State.Accepts on an EXCLUDE list of
// n sources, for a listed source (rejected: the lookup hits) and an
// unlisted one (accepted: the lookup misses). ratio-vs-1 is the per-check
// cost at n over the cost at n = 1 (target: far below n).
func BenchmarkStateAccepts(b *testing.B) {
	base := map[string]float64{}
	for _, kind := range []string{"listed", "unlisted"} {
		for _, n := range excludeSizes {
			b.Run(fmt.Sprintf("%s/exclude=%d", kind, n), func(b *testing.B) {
				srcs := sources(n)
				st := membership.NewState(membership.Exclude, srcs)
				probe := srcs[n-1]
				if kind == "unlisted" {
					probe = netip.MustParseAddr("10.255.255.254")
				}
				want := kind == "unlisted"
				ok := false
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					ok = st.Accepts(probe)
				}
				if ok != want {
					b.Fatalf("Accepts(%v) = %v", probe, ok)
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if n == 1 {
					base[kind] = ns
				} else if base[kind] > 0 {
					b.ReportMetric(ns/base[kind], "ratio-vs-1")
				}
			})
		}
	}
}

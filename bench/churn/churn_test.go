package churn

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

type designSpec struct {
	name string
	mk   func(*slowEndpoint) system
}

// designs lists the teardown designs in report order; mcstack_test.go
// appends the real stack.
var designs = []designSpec{
	{"sync", func(ep *slowEndpoint) system { return newBaseline(ep, false) }},
	{"seed", func(ep *slowEndpoint) system { return newBaseline(ep, true) }},
}

var driverDelays = []time.Duration{time.Millisecond, 10 * time.Millisecond}

// BenchmarkChurn measures receive latency (arrival -> return of the
// socket read) of paced multicast traffic for each design and driver delay
// D, without churn ("quiet") and with the churn loop running. Each
// sub-benchmark alternates -churn.runs pairs of fixed-duration runs
// (-churn.duration each; quiet, then churn), whatever b.N (use
// -benchtime=1x), so that both sides of the comparison see the same
// machine load; the percentiles reported are the median over the runs, max
// the largest. p99-ratio is the churn p99 over the quiet p99 (target for
// mcstack: <= 1.2).
func BenchmarkChurn(b *testing.B) {
	for _, d := range driverDelays {
		for _, ds := range designs {
			b.Run(fmt.Sprintf("D=%v/design=%s", d, ds.name), func(b *testing.B) {
				var quiet, churn []result
				for range *flagRuns {
					quiet = append(quiet, runLatency(b, ds.name, ds.mk, d, false))
					churn = append(churn, runLatency(b, ds.name, ds.mk, d, true))
				}
				q, c := aggregate(quiet), aggregate(churn)
				q.report(b)
				c.report(b)
				if q.p99 > 0 {
					b.ReportMetric(float64(c.p99)/float64(q.p99), "p99-ratio")
				}
			})
		}
	}
}

// BenchmarkCloseBurst opens N sockets, each joined to its own group, waits
// until the driver filter holds them all, then closes all N back to back
// and counts the driver updates until the filter is final again
// (D = 1 ms). Each b.N iteration is one burst (ns/op is the whole
// open-settle-close-settle cycle and means little). Target for mcstack:
// O(1) driver calls per burst, not O(N).
func BenchmarkCloseBurst(b *testing.B) {
	const d = time.Millisecond
	for _, ds := range designs {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("design=%s/N=%d", ds.name, n), func(b *testing.B) {
				ep := newSlowEndpoint(d)
				sys := ds.mk(ep)
				defer sys.shutdown()
				base := ep.waitQuiet()
				var calls int64
				var closeDur, drainDur time.Duration
				for r := 0; r < b.N; r++ {
					socks := make([]sock, n)
					for i := range socks {
						s, err := sys.listen(burstPort+uint16(i), []netip.Addr{nextChurnGroup()})
						if err != nil {
							b.Fatalf("listen: %v", err)
						}
						socks[i] = s
					}
					ep.settle(b, base+n)
					c0 := ep.calls.Load()
					t0 := time.Now()
					for _, s := range socks {
						s.close()
					}
					closeDur += time.Since(t0)
					ep.settle(b, base)
					calls += ep.calls.Load() - c0
					drainDur += time.Unix(0, ep.lastEnd.Load()).Sub(t0)
				}
				rounds := float64(b.N)
				b.ReportMetric(float64(calls)/rounds, "driver-calls/burst")
				b.ReportMetric(float64(closeDur.Microseconds())/rounds, "close-µs/burst")
				b.ReportMetric(float64(drainDur.Microseconds())/rounds/1000, "drain-ms/burst")
			})
		}
	}
}

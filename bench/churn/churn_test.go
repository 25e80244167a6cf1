package churn

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
// D, without churn ("quiet") and with the churn loop running.
//
// For each D it runs -churn.runs rounds; in each round every design runs
// a pair of fixed-duration runs (-churn.duration each; quiet, then churn),
// the designs taking turns to go first. So the designs and both sides of
// each design's comparison see the same machine over the same minutes,
// whatever b.N (use -benchtime=1x). The sub-benchmarks D=…/design=… only
// report: a -bench pattern selects what is printed, not what is measured;
// -churn.designs measures a subset. The percentiles reported are the
// median over the runs, max the largest. p99-ratio is the churn p99 over
// the quiet p99 (target for mcstack: <= 1.2); quiet-p99-spread is the
// largest quiet p99 over the smallest, the ratio that identical runs
// already differ by on this machine. Every run keeps one far-off timer
// pending (-churn.bgtimer, see runLatency).
func BenchmarkChurn(b *testing.B) {
	specs, err := selectDesigns(*flagDesigns)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range driverDelays {
		b.Run(fmt.Sprintf("D=%v", d), func(b *testing.B) {
			quiet := make([][]result, len(specs))
			churn := make([][]result, len(specs))
			for r := range *flagRuns {
				for k := range specs {
					i := (r + k) % len(specs)
					quiet[i] = append(quiet[i], runLatency(b, specs[i].name, specs[i].mk, d, false))
					churn[i] = append(churn[i], runLatency(b, specs[i].name, specs[i].mk, d, true))
				}
			}
			for i, ds := range specs {
				q, c := aggregate(quiet[i]), aggregate(churn[i])
				writeCSV(b, q)
				writeCSV(b, c)
				b.Run("design="+ds.name, func(b *testing.B) {
					q.report(b)
					c.report(b)
					if q.p99 > 0 {
						b.ReportMetric(float64(c.p99)/float64(q.p99), "p99-ratio")
					}
					if lo, hi := p99Range(quiet[i]); lo > 0 {
						b.ReportMetric(float64(hi)/float64(lo), "quiet-p99-spread")
					}
				})
			}
		})
	}
}

// selectDesigns returns the designs named in the comma-separated list, in
// report order; all of them for "".
func selectDesigns(list string) ([]designSpec, error) {
	if list == "" {
		return designs, nil
	}
	names := strings.Split(list, ",")
	for _, name := range names {
		if !slices.ContainsFunc(designs, func(ds designSpec) bool { return ds.name == name }) {
			return nil, fmt.Errorf("-churn.designs: unknown design %q", name)
		}
	}
	return slices.DeleteFunc(slices.Clone(designs), func(ds designSpec) bool { return !slices.Contains(names, ds.name) }), nil
}

// p99Range returns the smallest and the largest p99 of the runs.
func p99Range(runs []result) (lo, hi time.Duration) {
	for i, r := range runs {
		if i == 0 || r.p99 < lo {
			lo = r.p99
		}
		hi = max(hi, r.p99)
	}
	return lo, hi
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

// BenchmarkSameGoroutine hands one frame to each design's receive handler
// and reads the datagram back on the same goroutine: the receive path's
// and the read's own cost per packet, without the reader's wake-up or any
// traffic between cores (BenchmarkChurn's handle-ns/pkt includes both).
func BenchmarkSameGoroutine(b *testing.B) {
	for _, ds := range designs {
		b.Run("design="+ds.name, func(b *testing.B) {
			ep := newSlowEndpoint(time.Millisecond)
			sys := ds.mk(ep)
			defer sys.shutdown()
			s, err := sys.listen(steadyPorts[0], steadyGroups[:1])
			if err != nil {
				b.Fatalf("listen: %v", err)
			}
			defer s.close()
			ep.waitQuiet()
			frame := [][]byte{newFrameTemplate(steadyGroups[0], steadyPorts[0]).stamp(1, 1)}
			h := sys.handler()
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for b.Loop() {
				h.HandleFrames(frame, nil)
				if n, err := s.read(buf); err != nil || n != payloadLen {
					b.Fatalf("read: %d bytes, %v", n, err)
				}
			}
		})
	}
}

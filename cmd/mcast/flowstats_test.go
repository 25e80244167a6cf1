package main

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

// TestFlowSequence feeds sequence numbers as a network could deliver them
// and checks the loss, reordering and duplicate counts.
func TestFlowSequence(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		seqs                         []uint64
		lost, reordered, dup, starts uint64
	}{
		{"in order", []uint64{0, 1, 2, 3, 4}, 0, 0, 0, 0},
		{"start mid-stream", []uint64{100, 101, 102}, 0, 0, 0, 0},
		{"one lost", []uint64{0, 1, 3, 4}, 1, 0, 0, 0},
		{"burst lost", []uint64{0, 10}, 9, 0, 0, 0},
		{"swapped", []uint64{0, 2, 1, 3}, 0, 1, 0, 0},
		{"late beyond window", []uint64{0, 1, 5000, 2}, 4997, 1, 0, 0},
		{"duplicate", []uint64{0, 1, 1, 2}, 0, 0, 1, 0},
		{"duplicate after skip", []uint64{0, 3, 3, 1, 1}, 1, 1, 2, 0},
		{"reordered before the first", []uint64{5, 4, 6}, 0, 1, 0, 0},
		{"sender restart", []uint64{3000000, 3000001, 3000003, 0, 1, 2}, 1, 0, 0, 1},
		{"window wraps", seqRange(0, 10000), 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flow{}
			now := time.Unix(100, 0)
			for _, s := range tc.seqs {
				f.add(now, 100, s, now.Add(-time.Millisecond), true)
			}
			if f.lost() != tc.lost || f.reordered != tc.reordered || f.duplicated != tc.dup || f.restarts != tc.starts {
				t.Errorf("lost %d reordered %d duplicated %d restarts %d; want %d %d %d %d",
					f.lost(), f.reordered, f.duplicated, f.restarts, tc.lost, tc.reordered, tc.dup, tc.starts)
			}
			if f.received != uint64(len(tc.seqs)) {
				t.Errorf("received %d, want %d", f.received, len(tc.seqs))
			}
		})
	}
}

func seqRange(a, b uint64) []uint64 {
	var s []uint64
	for i := a; i < b; i++ {
		s = append(s, i)
	}
	return s
}

// TestFlowForeignAndRates: datagrams without the header are counted, not
// sequenced; rates are over the time from the first datagram.
func TestFlowForeignAndRates(t *testing.T) {
	f := &flow{key: flowKey{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("232.1.1.1")}}
	t0 := time.Unix(100, 0)
	for i := range 100 {
		f.add(t0.Add(time.Duration(i)*10*time.Millisecond), 125, 0, time.Time{}, false)
	}
	r := f.total(t0.Add(time.Second))
	if r.Foreign != 100 || r.Received != 100 || r.Lost != 0 || r.LatencyP50 != nil {
		t.Fatalf("report %+v", r)
	}
	if math.Abs(r.PPS-100) > 1e-9 || math.Abs(r.BitsPerSec-100000) > 1e-6 {
		t.Errorf("pps %v bit/s %v, want 100 and 100000", r.PPS, r.BitsPerSec)
	}
	// An interval report covers only what came since the previous one.
	iv := f.interval(t0.Add(time.Second))
	f.add(t0.Add(1500*time.Millisecond), 125, 7, t0.Add(1499*time.Millisecond), true)
	iv = f.interval(t0.Add(2 * time.Second))
	if iv.Received != 1 || iv.Foreign != 100 || iv.LatencyP50 == nil || math.Abs(*iv.LatencyP50-1000) > 100 {
		t.Errorf("interval %+v", iv)
	}
}

// TestLatencyHist: quantiles within the histogram's resolution, negative
// latencies flagged as clock skew.
func TestLatencyHist(t *testing.T) {
	var h latencyHist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for q, want := range map[float64]float64{0.5: 500e3, 0.99: 990e3} {
		if got := h.quantile(q); math.Abs(got-want)/want > 0.07 {
			t.Errorf("q%v = %v, want %v ±7%%", q, got, want)
		}
	}
	if h.max != time.Millisecond {
		t.Errorf("max %v", h.max)
	}
	h.add(-time.Second)
	var r flowReport
	h.fill(&r)
	if !r.ClockSkew || *r.LatencyMax != 1000 {
		t.Errorf("fill: %+v", r)
	}
	for ns := uint64(0); ns < 1<<20; ns = ns*9/8 + 1 {
		if v := bucketValue(latencyBucket(ns)); math.Abs(v-float64(ns)) > float64(ns)/8+1 {
			t.Fatalf("bucket of %d ns has value %v", ns, v)
		}
	}
}

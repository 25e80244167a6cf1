package main

import (
	"math"
	"math/bits"
	"net/netip"
	"sort"
	"time"
)

// flowKey identifies a stream as `mcast recv` reports it: one sender to
// one group.
type flowKey struct {
	src, group netip.Addr
}

// seqWindow is how many sequence numbers below the highest one a flow
// remembers, to tell a late (reordered) datagram from a duplicate. Older
// arrivals are counted as reordered without the duplicate check.
const seqWindow = 4096

// restartGap: a sequence number this far below the highest one seen is
// not reordering but a sender that restarted (its numbering began again).
const restartGap = 1 << 20

// flow accumulates the statistics of one (source, group) stream. It is
// not safe for concurrent use: each is updated by one read loop and read
// by the reporter under flowTable's lock.
type flow struct {
	key        flowKey
	first      time.Time // first and latest arrival
	last       time.Time
	received   uint64 // every datagram, from mcast send or not
	bytes      uint64 // UDP payload bytes
	foreign    uint64 // datagrams without mcast send's header (not sequenced)
	sequenced  uint64 // datagrams with the header
	reordered  uint64 // arrived after a higher sequence number
	duplicated uint64 // a sequence number seen before
	restarts   uint64 // sender restarts detected
	lostBefore uint64 // loss of the streams before the latest restart

	started bool
	base    uint64 // first sequence number of the current stream
	maxSeq  uint64 // highest sequence number of the current stream
	unique  uint64 // distinct sequence numbers of the current stream
	seen    [seqWindow / 64]uint64

	lat latencyHist // one-way latency, whole run
	iv  latencyHist // one-way latency, current interval

	// Snapshot at the previous interval report.
	ivReceived, ivBytes, ivLost uint64
	ivTime                      time.Time
}

// add records one datagram of n payload bytes arriving at now; seq and
// sent come from the mcast send header when ok.
func (f *flow) add(now time.Time, n int, seq uint64, sent time.Time, ok bool) {
	if f.received == 0 {
		f.first = now
		f.ivTime = now
	}
	f.last = now
	f.received++
	f.bytes += uint64(n)
	if !ok {
		f.foreign++
		return
	}
	f.sequenced++
	d := now.Sub(sent)
	f.lat.add(d)
	f.iv.add(d)
	f.sequence(seq)
}

func (f *flow) sequence(seq uint64) {
	switch {
	case !f.started || seq+restartGap < f.maxSeq:
		if f.started {
			f.restarts++
			f.lostBefore += f.lostNow()
		}
		f.started = true
		f.base, f.maxSeq, f.unique = seq, seq, 1
		f.seen = [seqWindow / 64]uint64{}
		f.mark(seq)
	case seq > f.maxSeq:
		// Slide the window: clear the bits of the numbers skipped.
		gap := seq - f.maxSeq
		if gap >= seqWindow {
			f.seen = [seqWindow / 64]uint64{}
		} else {
			for s := f.maxSeq + 1; s < seq; s++ {
				f.unmark(s)
			}
		}
		f.maxSeq = seq
		f.unique++
		f.mark(seq)
	case seq < f.base:
		// Older than the stream's first datagram: it was reordered
		// across the start.
		f.reordered++
		f.base = seq
		f.unique++
	case f.maxSeq-seq >= seqWindow:
		f.reordered++
		f.unique++
	case f.marked(seq):
		f.duplicated++
	default:
		f.reordered++
		f.unique++
		f.mark(seq)
	}
}

func (f *flow) mark(s uint64)        { f.seen[(s/64)%(seqWindow/64)] |= 1 << (s % 64) }
func (f *flow) unmark(s uint64)      { f.seen[(s/64)%(seqWindow/64)] &^= 1 << (s % 64) }
func (f *flow) marked(s uint64) bool { return f.seen[(s/64)%(seqWindow/64)]&(1<<(s%64)) != 0 }

// lostNow is the loss of the current stream: the sequence numbers between
// its first and highest that never arrived (so far: a late one still
// lowers it).
func (f *flow) lostNow() uint64 {
	if !f.started {
		return 0
	}
	want := f.maxSeq - f.base + 1
	if f.unique >= want {
		return 0
	}
	return want - f.unique
}

// lost is the loss over the whole run.
func (f *flow) lost() uint64 { return f.lostBefore + f.lostNow() }

// flowReport is what the interval lines, the final table and the JSON
// lines show of a flow.
type flowReport struct {
	Source     string  `json:"source"`
	Group      string  `json:"group"`
	Received   uint64  `json:"received"`
	Bytes      uint64  `json:"bytes"`
	Lost       uint64  `json:"lost"`
	Reordered  uint64  `json:"reordered"`
	Duplicated uint64  `json:"duplicated"`
	Foreign    uint64  `json:"foreign"`
	Restarts   uint64  `json:"restarts,omitempty"`
	Seconds    float64 `json:"seconds"`
	PPS        float64 `json:"pps"`
	BitsPerSec float64 `json:"bits_per_sec"`
	// Latency percentiles in microseconds; absent without sequenced
	// datagrams. Meaningful only when sender and receiver share a clock
	// (namespaces of one host); ClockSkew is set when some latencies came
	// out negative (the clocks differ).
	LatencyP50 *float64 `json:"latency_p50_us,omitempty"`
	LatencyP99 *float64 `json:"latency_p99_us,omitempty"`
	LatencyMax *float64 `json:"latency_max_us,omitempty"`
	ClockSkew  bool     `json:"clock_skew,omitempty"`
}

// total reports the whole run; the rate is over the time from the first
// datagram to now.
func (f *flow) total(now time.Time) flowReport {
	r := f.report(now.Sub(f.first))
	r.Received, r.Bytes, r.Lost = f.received, f.bytes, f.lost()
	r.rates(now.Sub(f.first))
	f.lat.fill(&r)
	return r
}

// interval reports the datagrams since the previous interval report and
// starts a new interval.
func (f *flow) interval(now time.Time) flowReport {
	d := now.Sub(f.ivTime)
	r := f.report(d)
	r.Received, r.Bytes = f.received-f.ivReceived, f.bytes-f.ivBytes
	if l := f.lost(); l > f.ivLost {
		r.Lost = l - f.ivLost
	}
	r.rates(d)
	f.iv.fill(&r)
	f.ivReceived, f.ivBytes, f.ivLost, f.ivTime = f.received, f.bytes, f.lost(), now
	f.iv = latencyHist{}
	return r
}

func (f *flow) report(d time.Duration) flowReport {
	return flowReport{
		Source: f.key.src.String(), Group: f.key.group.String(),
		Reordered: f.reordered, Duplicated: f.duplicated, Foreign: f.foreign, Restarts: f.restarts,
		Seconds: d.Seconds(),
	}
}

func (r *flowReport) rates(d time.Duration) {
	if s := d.Seconds(); s > 0 {
		r.PPS = float64(r.Received) / s
		r.BitsPerSec = float64(r.Bytes) * 8 / s
	}
}

// latencyHist is a log-linear histogram of durations: 8 buckets per power
// of two of nanoseconds (at most 9 % relative error), plus the exact
// maximum and a count of negative values (clock skew).
type latencyHist struct {
	n        uint64
	negative uint64
	max      time.Duration
	buckets  [64 * 8]uint32
}

func (h *latencyHist) add(d time.Duration) {
	if d < 0 {
		h.negative++
		return
	}
	h.n++
	h.max = max(h.max, d)
	h.buckets[latencyBucket(uint64(d))]++
}

func latencyBucket(ns uint64) int {
	if ns < 8 {
		return int(ns)
	}
	e := bits.Len64(ns) - 1 // ns in [2^e, 2^(e+1))
	sub := (ns >> (e - 3)) & 7
	return (e-2)*8 + int(sub)
}

// bucketValue is the midpoint of bucket i, in nanoseconds.
func bucketValue(i int) float64 {
	if i < 8 {
		return float64(i)
	}
	e := i/8 + 2
	sub := i % 8
	lo := float64(uint64(1)<<e) * (1 + float64(sub)/8)
	return lo * (1 + 1.0/16)
}

// quantile returns the q-quantile in nanoseconds.
func (h *latencyHist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.buckets {
		seen += uint64(c)
		if seen >= rank {
			return min(bucketValue(i), float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *latencyHist) fill(r *flowReport) {
	r.ClockSkew = h.negative > 0
	if h.n == 0 {
		return
	}
	us := func(ns float64) *float64 { v := ns / 1e3; return &v }
	r.LatencyP50, r.LatencyP99, r.LatencyMax = us(h.quantile(0.5)), us(h.quantile(0.99)), us(float64(h.max))
}

// sortedFlows returns the flows ordered by group, then source.
func sortedFlows(m map[flowKey]*flow) []*flow {
	fs := make([]*flow, 0, len(m))
	for _, f := range m {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool {
		if c := fs[i].key.group.Compare(fs[j].key.group); c != 0 {
			return c < 0
		}
		return fs[i].key.src.Compare(fs[j].key.src) < 0
	})
	return fs
}

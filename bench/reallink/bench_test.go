//go:build linux

package reallink

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagRounds = flag.Int("reallink.rounds", 3, "rounds per configuration (the median is reported)")
	flagWindow = flag.Duration("reallink.window", 2*time.Second, "measured window per receiver and round")
	flagWarmup = flag.Duration("reallink.warmup", 500*time.Millisecond, "time between starting trafgen and the window")
	flagPin    = flag.Bool("reallink.pin", true, "bind the receiving process's threads to the CPUs other than trafgen's CPU 0")
	flagKinds  = flag.String("reallink.kinds", "kernel,recvmsg,ring,floor", "the receivers to measure, comma-separated (a subset, e.g. to profile one with -cpuprofile)")
	flagNAPI   = flag.Bool("reallink.napi", true, "run the receiving veth's kernel receive work in its threaded NAPI kernel thread, bound to the CPUs other than trafgen's CPU 0, instead of in the softirq of the sending CPU")
)

var (
	payloads   = []int{64, 1024}
	socketNums = []int{1, 4, 16}
)

// row is the median over rounds of one receiver in one configuration.
type row struct {
	payload, sockets int
	kind             kind
	med              sample // field-wise medians
	rounds           int
}

// median returns the field-wise median of the samples.
func median(ss []sample) sample {
	m := ss[0]
	pick := func(get func(*sample) float64, set func(*sample, float64)) {
		v := make([]float64, len(ss))
		for i := range ss {
			v[i] = get(&ss[i])
		}
		slices.Sort(v)
		med := v[len(v)/2]
		if len(v)%2 == 0 {
			med = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		set(&m, med)
	}
	pick(func(s *sample) float64 { return s.offered }, func(s *sample, v float64) { s.offered = v })
	pick(func(s *sample) float64 { return s.sent }, func(s *sample, v float64) { s.sent = v })
	pick(func(s *sample) float64 { return s.linkDrops }, func(s *sample, v float64) { s.linkDrops = v })
	pick(func(s *sample) float64 { return s.seen }, func(s *sample, v float64) { s.seen = v })
	pick(func(s *sample) float64 { return s.delivered }, func(s *sample, v float64) { s.delivered = v })
	pick(func(s *sample) float64 { return s.minSocket }, func(s *sample, v float64) { s.minSocket = v })
	pick(func(s *sample) float64 { return s.drops }, func(s *sample, v float64) { s.drops = v })
	pick(func(s *sample) float64 { return s.qdrops }, func(s *sample, v float64) { s.qdrops = v })
	pick(func(s *sample) float64 { return s.invalid }, func(s *sample, v float64) { s.invalid = v })
	pick(func(s *sample) float64 { return s.cpu }, func(s *sample, v float64) { s.cpu = v })
	pick(func(s *sample) float64 { return s.cpuPerDg }, func(s *sample, v float64) { s.cpuPerDg = v })
	pick(func(s *sample) float64 { return s.softirq }, func(s *sample, v float64) { s.softirq = v })
	pick(func(s *sample) float64 { return s.napi }, func(s *sample, v float64) { s.napi = v })
	pick(func(s *sample) float64 { return s.sender }, func(s *sample, v float64) { s.sender = v })
	pick(func(s *sample) float64 { return s.totalPerDg }, func(s *sample, v float64) { s.totalPerDg = v })
	return m
}

// BenchmarkRealLink: for each payload size (64, 1024 bytes) and number of
// sockets (1, 4, 16), trafgen -P 1 floods the group from the sender
// namespace while the four receivers take turns in the receiver namespace
// (kernel UDP sockets with recvmmsg, mcstack on recvmsg, mcstack on the
// ring, the bare ring reader), -reallink.rounds rounds with the order
// rotated each round. Each sub-benchmark reports the medians per receiver
// and the ratios; the parent prints them all as a Markdown table. Run it
// with -benchtime 1x (one measurement per sub-benchmark), e.g.
//
//	go test -run '^$' -bench RealLink -benchtime 1x -timeout 30m ./bench/reallink
func BenchmarkRealLink(b *testing.B) {
	if *flagRounds < 1 {
		b.Fatalf("-reallink.rounds %d: want at least 1", *flagRounds)
	}
	e := newEnv(b)
	setup := "receiver and trafgen not pinned (they share the CPUs)"
	if *flagPin {
		if cpus, ok := pin(b); ok {
			setup = fmt.Sprintf("trafgen's worker on CPU 0, the receiving process's threads on CPU %s", cpuList(cpus))
		}
	} else {
		setup = "trafgen's worker on CPU 0, the receiving process's threads not pinned"
	}
	switch {
	case e.napi == nil:
		setup += ", the kernel's receive work in the softirq of the sending CPU (veth input backlog), trafgen on its TX_RING"
	case e.napiPinned:
		setup += fmt.Sprintf(", the kernel's receive work in the receiving veth's threaded NAPI kernel thread (GRO on, TSO off on the sending veth) on CPU %s, trafgen one sendto per frame (-t 0ns)", cpuList(e.napiCPUs))
	default:
		setup += ", the kernel's receive work in the receiving veth's threaded NAPI kernel thread (not pinned: one CPU), trafgen one sendto per frame (-t 0ns)"
	}
	ks, err := parseKinds(*flagKinds)
	if err != nil {
		b.Fatal(err)
	}
	var rows []row
	for _, payload := range payloads {
		for _, n := range socketNums {
			b.Run(fmt.Sprintf("payload=%d/sockets=%d", payload, n), func(b *testing.B) {
				rs := runConfig(b, e, ks, payload, n)
				rows = slices.DeleteFunc(rows, func(r row) bool { return r.payload == payload && r.sockets == n })
				rows = append(rows, rs...)
			})
		}
	}
	printTable(os.Stdout, rows, *flagWindow, *flagRounds, fmt.Sprintf("%s, GOMAXPROCS %d", setup, runtime.GOMAXPROCS(0)))
}

// runConfig measures the four receivers in alternating rounds for one
// payload size and socket count and reports the medians.
func runConfig(b *testing.B, e *env, kinds []kind, payload, n int) []row {
	samples := map[kind][]sample{}
	for round := range *flagRounds {
		for i := range kinds {
			k := kinds[(i+round)%len(kinds)]
			sockets := n
			if k == kindFloor {
				sockets = 1
			}
			s, err := e.measure(k, sockets, payload, *flagWarmup, *flagWindow)
			if err != nil {
				b.Fatalf("round %d, %s: %v", round, k, err)
			}
			b.Logf("round %d %-7s: offered %7.0f/s, seen %7.0f/s, delivered %8.0f/s, drops %.0f/s ring/rcvbuf %.0f/s queue %.0f/s link, invalid %.0f/s, trafgen %.2f cores, process CPU %.2f cores %5.0f ns/dgram, softirq %.2f cores, NAPI thread %.2f cores, %5.0f ns/dgram with softirq and NAPI",
				round, k, s.offered, s.seen, s.delivered, s.drops, s.qdrops, s.linkDrops, s.invalid, s.sender, s.cpu, s.cpuPerDg, s.softirq, s.napi, s.totalPerDg)
			samples[k] = append(samples[k], s)
		}
	}
	var rows []row
	med := map[kind]sample{}
	for _, k := range kinds {
		m := median(samples[k])
		med[k] = m
		rows = append(rows, row{payload: payload, sockets: n, kind: k, med: m, rounds: len(samples[k])})
		b.ReportMetric(m.offered, string(k)+"-offered/s")
		b.ReportMetric(m.seen, string(k)+"-seen/s")
		b.ReportMetric(m.delivered, string(k)+"-dgrams/s")
		b.ReportMetric(m.drops+m.qdrops, string(k)+"-drops/s")
		b.ReportMetric(m.cpuPerDg, string(k)+"-cpu-ns/dgram")
		b.ReportMetric(m.totalPerDg, string(k)+"-cpu+softirq+napi-ns/dgram")
		if m.offered > 0 {
			b.ReportMetric(m.minSocket/m.offered, string(k)+"-share-of-offered")
		}
	}
	if kd := med[kindKernel].delivered; kd > 0 {
		b.ReportMetric(med[kindRing].delivered/kd, "ring/kernel")
		b.ReportMetric(med[kindRecvmsg].delivered/kd, "recvmsg/kernel")
	}
	if fs := med[kindFloor].seen; fs > 0 {
		b.ReportMetric(med[kindRing].delivered/float64(n)/fs, "ring/floor")
		b.ReportMetric(med[kindRecvmsg].delivered/float64(n)/fs, "recvmsg/floor")
	}
	b.ReportMetric(0, "ns/op") // one fixed run: the time per op means nothing
	return rows
}

// parseKinds parses -reallink.kinds.
func parseKinds(s string) ([]kind, error) {
	var ks []kind
	for _, f := range strings.Split(s, ",") {
		k := kind(strings.TrimSpace(f))
		if !slices.Contains(allKinds, k) {
			return nil, fmt.Errorf("-reallink.kinds: unknown receiver %q (want some of %v)", k, allKinds)
		}
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks, nil
}

// printTable writes the rows as a Markdown table.
func printTable(w io.Writer, rows []row, window time.Duration, rounds int, setup string) {
	if len(rows) == 0 {
		return
	}
	k := func(v float64) string {
		switch {
		case v >= 10e3:
			return fmt.Sprintf("%.0fk", v/1e3)
		case v >= 1e3:
			return fmt.Sprintf("%.1fk", v/1e3)
		}
		return fmt.Sprintf("%.0f", v)
	}
	ratio := func(a, b float64) string {
		if b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(w, "\n== reallink: medians of %d rounds of %v per receiver; %s\n", rounds, window, setup)
	fmt.Fprintln(w, "(rates per second; offered = the receiving veth's rx_packets (threaded NAPI: frames its NAPI thread took off its ring); drops: ring = AF_PACKET ring or queue full, for the kernel socket buffer full (per socket);")
	fmt.Fprintln(w, " queue = mcstack socket queues; link = veth (threaded NAPI: the receiving veth's ring full, trafgen resends) and input backlog;")
	fmt.Fprintln(w, " trafgen CPU = its processes' user+system time (which includes softirqs that ran on its CPU while it was current: without threaded NAPI, most of the receive work);")
	fmt.Fprintln(w, " process CPU = getrusage of the receiving process; softirq = all CPUs' softirq time (/proc/stat); napi thread = user+system time of the receiving veth's NAPI thread (/proc/PID/stat),")
	fmt.Fprintln(w, " which /proc/stat counts as system time, not softirq; per dgram = per delivered datagram, summed over sockets)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| payload | sockets | receiver | offered (rx veth) | frames seen | delivered dgrams | least per socket | drops ring/rcvbuf | drops queue | drops link | trafgen CPU (cores) | process CPU (cores) | process ns/dgram | softirq (cores) | napi thread (cores) | process+softirq+napi ns/dgram | least per socket / offered | vs kernel | per socket vs floor |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	find := func(payload, n int, kd kind) (sample, bool) {
		for _, r := range rows {
			if r.payload == payload && r.sockets == n && r.kind == kd {
				return r.med, true
			}
		}
		return sample{}, false
	}
	for _, r := range rows {
		m := r.med
		vsKernel, vsFloor := "–", "–"
		if kr, ok := find(r.payload, r.sockets, kindKernel); ok && r.kind != kindFloor {
			vsKernel = ratio(m.delivered, kr.delivered)
		}
		if fl, ok := find(r.payload, r.sockets, kindFloor); ok && r.kind != kindFloor {
			vsFloor = ratio(m.delivered/float64(r.sockets), fl.seen)
		}
		sockets := fmt.Sprint(r.sockets)
		if r.kind == kindFloor {
			sockets = "(1 ring)"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.0f | %.2f | %.2f | %.0f | %s | %s | %s |\n",
			r.payload, sockets, r.kind, k(m.offered), k(m.seen), k(m.delivered), k(m.minSocket),
			k(m.drops), k(m.qdrops), k(m.linkDrops), m.sender, m.cpu, m.cpuPerDg, m.softirq, m.napi, m.totalPerDg, ratio(m.minSocket, m.offered), vsKernel, vsFloor)
	}
	fmt.Fprintln(w)
}

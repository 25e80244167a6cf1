// Command ratio reads `go test -bench` output (files or stdin) from the
// bench/gvisor benchmarks and prints, per sub-benchmark (sockets=N/payload=M),
// the median pkts/s and allocs/op of each implementation and the ratios of
// pkts/s relative to gVisor and to the floor.
//
//	go test -run '^$' -bench . -benchmem -count 5 ./... | go run ./cmd/ratio
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

const (
	floorImpl  = "Floor"
	gvisorImpl = "GVisor"
)

type sample struct{ pps, allocs []float64 }

var procSuffix = regexp.MustCompile(`-\d+$`)

func main() {
	var in []io.Reader
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ratio:", err)
			os.Exit(2)
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}

	data := map[string]map[string]*sample{} // case -> impl -> samples
	var cases []string
	implSeen := map[string]bool{}
	sc := bufio.NewScanner(io.MultiReader(in...))
	for sc.Scan() {
		impl, cs, pps, allocs, ok := parseLine(sc.Text())
		if !ok {
			continue
		}
		if data[cs] == nil {
			data[cs] = map[string]*sample{}
			cases = append(cases, cs)
		}
		s := data[cs][impl]
		if s == nil {
			s = &sample{}
			data[cs][impl] = s
		}
		s.pps = append(s.pps, pps)
		if allocs >= 0 {
			s.allocs = append(s.allocs, allocs)
		}
		implSeen[impl] = true
	}
	if len(cases) == 0 {
		fmt.Fprintln(os.Stderr, "ratio: no benchmark lines with pkts/s found")
		os.Exit(1)
	}

	// Column order: floor, gVisor, then the others (mcstack) alphabetically.
	var impls []string
	for _, i := range []string{floorImpl, gvisorImpl} {
		if implSeen[i] {
			impls = append(impls, i)
		}
	}
	var others []string
	for i := range implSeen {
		if i != floorImpl && i != gvisorImpl {
			others = append(others, i)
		}
	}
	sort.Strings(others)
	impls = append(impls, others...)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := []string{"case"}
	for _, i := range impls {
		hdr = append(hdr, i+" pkts/s", i+" allocs/pkt")
	}
	for _, i := range impls {
		if i != floorImpl && implSeen[floorImpl] {
			hdr = append(hdr, i+"/"+floorImpl)
		}
	}
	for _, i := range impls {
		if i != floorImpl && i != gvisorImpl && implSeen[gvisorImpl] {
			hdr = append(hdr, i+"/"+gvisorImpl)
		}
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")

	n := 0
	for _, cs := range cases {
		row := []string{cs}
		med := map[string]float64{}
		for _, i := range impls {
			s := data[cs][i]
			if s == nil {
				row = append(row, "-", "-")
				continue
			}
			med[i] = median(s.pps)
			if len(s.pps) > n {
				n = len(s.pps)
			}
			row = append(row, human(med[i]), allocStr(s.allocs))
		}
		ratio := func(a, b string) string {
			x, okx := med[a]
			y, oky := med[b]
			if !okx || !oky || y == 0 {
				return "-"
			}
			return strconv.FormatFloat(x/y, 'f', 3, 64)
		}
		for _, i := range impls {
			if i != floorImpl && implSeen[floorImpl] {
				row = append(row, ratio(i, floorImpl))
			}
		}
		for _, i := range impls {
			if i != floorImpl && i != gvisorImpl && implSeen[gvisorImpl] {
				row = append(row, ratio(i, gvisorImpl))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Printf("medians of up to %d runs per cell; ratio = pkts/s of the row's impl / pkts/s of the reference (>1 = faster)\n", n)
}

// parseLine takes a line such as
//
//	BenchmarkGVisorMulticastUDP/sockets=4/payload=64-2  5000  5341 ns/op  748886 deliveries/s  187222 pkts/s  1256 B/op  17 allocs/op
//
// and returns impl "GVisor", case "sockets=4/payload=64", pkts/s and
// allocs/op (-1 if absent).
func parseLine(line string) (impl, cs string, pps, allocs float64, ok bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return
	}
	name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
	top, cs, found := strings.Cut(name, "/")
	if !found {
		return
	}
	impl = strings.TrimSuffix(top, "MulticastUDP")
	pps, allocs = -1, -1
	for k := 2; k+1 < len(f); k += 2 {
		v, err := strconv.ParseFloat(f[k], 64)
		if err != nil {
			continue
		}
		switch f[k+1] {
		case "pkts/s":
			pps = v
		case "allocs/op":
			allocs = v
		}
	}
	return impl, cs, pps, allocs, pps >= 0
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func allocStr(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return strconv.FormatFloat(median(v), 'f', -1, 64)
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

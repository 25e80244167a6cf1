package main

import (
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/mcstack/mcstack/internal/plot"
	"github.com/mcstack/mcstack/membership"
)

// pct are latency percentiles of one kind of event.
type pct struct {
	N                       int // events with a latency
	Missing                 int // events without one (no report, no data, not pruned)
	Shared                  int // leaves while other hosts kept the (S,G)
	P50, P90, P99, Max, Min time.Duration
}

func percentiles(evs []*event, kind evKind, phase string) pct {
	var p pct
	var ds []time.Duration
	for _, ev := range evs {
		if ev.kind != kind || (phase != "" && ev.phase != phase) {
			continue
		}
		if ev.shared {
			p.Shared++
			continue
		}
		d, ok := ev.latency()
		if !ok {
			p.Missing++
			continue
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return p
	}
	slices.Sort(ds)
	q := func(f float64) time.Duration { return ds[min(len(ds)-1, int(f*float64(len(ds))))] }
	p.N, p.P50, p.P90, p.P99, p.Max, p.Min = len(ds), q(0.5), q(0.9), q(0.99), ds[len(ds)-1], ds[0]
	return p
}

func (p pct) String() string {
	if p.N == 0 {
		return fmt.Sprintf("none measured (%d without latency)", p.Missing)
	}
	s := fmt.Sprintf("%d measured: p50 %v  p90 %v  p99 %v  max %v", p.N, roundDur(p.P50), roundDur(p.P90), roundDur(p.P99), roundDur(p.Max))
	if p.Missing > 0 {
		s += fmt.Sprintf("  (%d without latency)", p.Missing)
	}
	return s
}

// measuredPhase is the phase whose events the scenario is about.
func (r *emuResult) measuredPhase() string {
	if r.cfg.scenario == "zap" {
		return "zap"
	}
	return "ramp"
}

func (r *emuResult) statusCounts() map[string]int {
	out := map[string]int{}
	for _, ev := range r.events {
		if ev.phase == r.measuredPhase() {
			out[ev.kind.String()+" "+ev.status()]++
		}
	}
	return out
}

func (r *emuResult) printSummary(w io.Writer) {
	c := r.cfg
	ph := r.measuredPhase()
	fmt.Fprintf(w, "mcast emulate: %s, %d hosts on %s (%s backend)\n", c.scenario, c.hosts, c.iface, c.backend)
	vers := "IGMP"
	vs := c.igmp
	if c.groupBase.Is6() {
		vers, vs = "MLD", c.mld
	}
	fmt.Fprintf(w, "  hosts:     %s versions %v (cycled), filter %s over %d sources, %d of %d groups from %v each\n",
		vers, vs, fmtFilter(c), len(c.sources), c.perHost, c.groups, c.groupBase)
	rate := "as fast as possible"
	if c.rate > 0 {
		rate = fmt.Sprintf("%g/s requested", c.rate)
	}
	achieved := 0.0
	if r.rampTime > 0 {
		achieved = float64(r.rampOps) / r.rampTime.Seconds()
	}
	fmt.Fprintf(w, "  ops:       %d membership calls in the %s phase (%s; %.0f/s achieved), %d in setup, %d failed; hosts created in %v\n",
		r.rampOps, r.measuredPhase(), rate, achieved, r.ops-r.rampOps, r.opErrors, r.setupTime.Round(time.Millisecond))
	if r.firstOpErr != nil {
		fmt.Fprintf(w, "             first error: %v\n", r.firstOpErr)
	}
	fmt.Fprintf(w, "  join:      %s\n", percentiles(r.events, evJoin, ph))
	if c.scenario != "join-ramp" {
		fmt.Fprintf(w, "  leave:     %s", percentiles(r.events, evLeave, ph))
		if s := percentiles(r.events, evLeave, ph).Shared; s > 0 {
			fmt.Fprintf(w, "  (%d shared: another host kept the (S,G))", s)
		}
		fmt.Fprintln(w)
	}
	sc := r.statusCounts()
	keys := make([]string, 0, len(sc))
	for k := range sc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "  events:   ")
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, sc[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  port:      %d datagrams; %d flooded (no host a member, %d groups), %d from excluded sources\n",
		r.datagrams, r.flood, r.floodGroups, r.excluded)
	fmt.Fprintf(w, "  reports:   %d sent by the hosts\n", r.reports)
	if r.learned >= 0 {
		fmt.Fprintf(w, "  device:    the memlan model device held %d memberships at the end\n", r.learned)
	}
	if r.interrupted {
		fmt.Fprintln(w, "  (interrupted)")
	}
}

func fmtFilter(c *emuConfig) string {
	if len(c.overrides) > 0 {
		return "from --filter-file"
	}
	switch {
	case c.filter.mixed:
		return fmt.Sprintf("mixed:%d", c.filter.k)
	case c.filter.mode == membership.Exclude && c.filter.k == 0:
		return "asm"
	}
	return fmt.Sprintf("%s:%d", c.filter.mode, c.filter.k)
}

// writeEventsCSV writes one line per event; times are seconds since the
// run started, latency in milliseconds (empty when there is none).
func writeEventsCSV(path string, r *emuResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := eventsCSV(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func eventsCSV(w io.Writer, r *emuResult) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"kind", "phase", "host", "group", "source", "call_s", "report_s", "data_s", "latency_ms", "status"})
	rel := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatFloat(t.Sub(r.start).Seconds(), 'f', 6, 64)
	}
	for _, ev := range r.events {
		lat := ""
		if d, ok := ev.latency(); ok {
			lat = strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64)
		}
		cw.Write([]string{ev.kind.String(), ev.phase, strconv.Itoa(ev.host), ev.group.String(), ev.source.String(),
			rel(ev.call), rel(ev.report), rel(ev.data), lat, ev.status()})
	}
	cw.Flush()
	return cw.Error()
}

// Plot layout.
const (
	plotW, plotH   = 1000, 560
	plotMarginL    = 90
	plotMarginR    = 30
	plotMarginT    = 70
	plotMarginB    = 60
	plotFontScale  = 2
	plotPointWidth = 2
)

var (
	plotWhite = color.RGBA{255, 255, 255, 255}
	plotBlack = color.RGBA{0, 0, 0, 255}
	plotGray  = color.RGBA{110, 110, 110, 255}
	plotGrid  = color.RGBA{225, 225, 225, 255}
	plotJoin  = color.RGBA{31, 119, 180, 255}
	plotLeave = color.RGBA{214, 39, 40, 255}
)

// plotEvents draws each measured event's latency (log scale) against the
// time of its report: joins blue, leaves red.
func plotEvents(path string, r *emuResult) error {
	img, err := drawEvents(r)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawEvents(r *emuResult) (*image.RGBA, error) {
	type pt struct {
		t, lat float64 // seconds, microseconds
		kind   evKind
	}
	var pts []pt
	lo, hi, tmax := math.Inf(1), math.Inf(-1), 0.0
	for _, ev := range r.events {
		d, ok := ev.latency()
		if !ok {
			continue
		}
		us := max(float64(d)/1e3, 1) // 0 (a leave with no datagram after the report) is drawn at 1 µs
		t := ev.report.Sub(r.start).Seconds()
		pts = append(pts, pt{t, us, ev.kind})
		lo, hi, tmax = min(lo, us), max(hi, us), max(tmax, t)
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("no measured latencies to plot")
	}
	ylo := math.Pow(10, math.Floor(math.Log10(lo)))
	yhi := math.Pow(10, math.Ceil(math.Log10(hi)))
	if yhi <= ylo {
		yhi = ylo * 10
	}
	tmax = max(tmax, 1e-3) * 1.02
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	plot.Fill(img, img.Bounds(), plotWhite)
	c := r.cfg
	title := fmt.Sprintf("mcast emulate %s: %d hosts, %d groups, latency per event", c.scenario, c.hosts, c.groups)
	plot.DrawText(img, (plotW-plot.TextWidth(title, plotFontScale))/2, 12, title, plotFontScale, plotBlack)
	sub := "x: time of the host's report (s); y: latency (log); blue: join (report -> first datagram), red: leave (report -> last datagram)"
	plot.DrawText(img, (plotW-plot.TextWidth(sub, 1))/2, 40, sub, 1, plotGray)
	px0, px1 := plotMarginL, plotW-plotMarginR
	py0, py1 := plotMarginT, plotH-plotMarginB
	yOf := func(v float64) int {
		f := (math.Log10(v) - math.Log10(ylo)) / (math.Log10(yhi) - math.Log10(ylo))
		return py1 - int(math.Round(f*float64(py1-py0)))
	}
	xOf := func(t float64) int { return px0 + int(math.Round(t/tmax*float64(px1-px0))) }
	for v := ylo; v <= yhi*1.0001; v *= 10 {
		y := yOf(v)
		plot.HLine(img, px0, px1, y, plotGrid)
		l := decadeLabelUS(v)
		plot.DrawText(img, px0-8-plot.TextWidth(l, plotFontScale), y-plot.TextHeight(plotFontScale)/2, l, plotFontScale, plotGray)
	}
	step := niceStep(tmax)
	for t := 0.0; t <= tmax; t += step {
		x := xOf(t)
		plot.VLine(img, x, py1, py1+4, plotGray)
		l := strconv.FormatFloat(t, 'g', 4, 64)
		plot.DrawText(img, x-plot.TextWidth(l, plotFontScale)/2, py1+10, l, plotFontScale, plotGray)
	}
	plot.VLine(img, px0, py0, py1, plotGray)
	plot.HLine(img, px0, px1, py1, plotGray)
	for _, p := range pts {
		col := plotJoin
		if p.kind == evLeave {
			col = plotLeave
		}
		x, y := xOf(p.t), yOf(p.lat)
		plot.Fill(img, image.Rect(x-plotPointWidth/2, y-plotPointWidth/2, x+plotPointWidth/2+1, y+plotPointWidth/2+1), col)
	}
	lx, ly := px1-200, py0-20
	plot.Fill(img, image.Rect(lx, ly, lx+12, ly+12), plotJoin)
	plot.DrawText(img, lx+16, ly-1, "join", plotFontScale, plotBlack)
	plot.Fill(img, image.Rect(lx+100, ly, lx+112, ly+12), plotLeave)
	plot.DrawText(img, lx+116, ly-1, "leave", plotFontScale, plotBlack)
	return img, nil
}

func niceStep(span float64) float64 {
	raw := span / 8
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func decadeLabelUS(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gms", v/1e3)
	}
	return fmt.Sprintf("%gus", v)
}

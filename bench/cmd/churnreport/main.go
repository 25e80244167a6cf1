// Command churnreport turns the CSV written by bench/churn's BenchmarkChurn
// (MCSTACK_CHURN_CSV) into a Markdown table on standard output and, with
// -png, a bar chart of the latency percentiles (p50, p99, max; log scale)
// of every design without and with churn, one panel per driver delay D.
// It uses only the standard library (image/png and a built-in 5x7 font).
//
//	go run ./bench/cmd/churnreport -csv bench/out/churn.csv -png bench/churn-latency.png
//
// When a CSV holds a (design, D, churn) row more than once, the last wins.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"

	"github.com/mcstack/mcstack/internal/plot"
	"slices"
	"strconv"
	"strings"
)

// row is one line of the CSV.
type row struct {
	design              string
	delayMS             float64
	churn               bool
	p50, p99, p999, max float64 // µs
	pps                 float64
	sent, delivered     int64
	calls, cycles       float64 // per run
	runs                int
}

type key struct {
	design  string
	delayMS float64
	churn   bool
}

// targetRatio is the target for mcstack: p99 with churn at most
// 1.2 times p99 without churn (the fast-path issue's target; it was 1.5).
const targetRatio = 1.2

func main() {
	csvPath := flag.String("csv", "bench/out/churn.csv", "CSV written by BenchmarkChurn")
	pngPath := flag.String("png", "", "write the latency plot to this PNG file")
	flag.Parse()
	rows, designs, delays, err := load(*csvPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "churnreport:", err)
		os.Exit(1)
	}
	printTable(rows, designs, delays)
	if *pngPath != "" {
		if err := plotPNG(*pngPath, rows, designs, delays); err != nil {
			fmt.Fprintln(os.Stderr, "churnreport:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "churnreport: wrote", *pngPath)
	}
}

func load(path string) (map[key]row, []string, []float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) < 2 {
		return nil, nil, nil, fmt.Errorf("%s: no data rows", path)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"design", "delay_ms", "churn", "p50_us", "p99_us", "max_us", "delivered_pps", "sent", "delivered", "driver_calls_per_run", "runs"} {
		if _, ok := col[h]; !ok {
			return nil, nil, nil, fmt.Errorf("%s: no column %q", path, h)
		}
	}
	rows := map[key]row{}
	var designs []string
	var delays []float64
	for n, r := range recs[1:] {
		num := func(h string) float64 {
			i, ok := col[h]
			if !ok {
				return math.NaN()
			}
			v, perr := strconv.ParseFloat(r[i], 64)
			if perr != nil && err == nil {
				err = fmt.Errorf("%s line %d: %s: %v", path, n+2, h, perr)
			}
			return v
		}
		x := row{
			design:    r[col["design"]],
			delayMS:   num("delay_ms"),
			churn:     r[col["churn"]] == "true",
			p50:       num("p50_us"),
			p99:       num("p99_us"),
			p999:      num("p999_us"),
			max:       num("max_us"),
			pps:       num("delivered_pps"),
			sent:      int64(num("sent")),
			delivered: int64(num("delivered")),
			calls:     num("driver_calls_per_run"),
			cycles:    num("churn_cycles_per_run"),
			runs:      int(num("runs")),
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if !slices.Contains(designs, x.design) {
			designs = append(designs, x.design)
		}
		if !slices.Contains(delays, x.delayMS) {
			delays = append(delays, x.delayMS)
		}
		rows[key{x.design, x.delayMS, x.churn}] = x
	}
	slices.Sort(delays)
	return rows, designs, delays, nil
}

var designLabel = map[string]string{"sync": "sync (a)", "seed": "seed (b)", "mcstack": "mcstack (c)"}

func label(d string) string {
	if l, ok := designLabel[d]; ok {
		return l
	}
	return d
}

func us(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v >= 100 {
		return commas(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func printTable(rows map[key]row, designs []string, delays []float64) {
	fmt.Println("| D | design | quiet p50 / p99 / max (µs) | churn p50 / p99 / max (µs) | p99 churn / quiet | delivered pkt/s quiet / churn | lost quiet / churn | driver calls per run (churn) | churn cycles/s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, d := range delays {
		for _, ds := range designs {
			q, okq := rows[key{ds, d, false}]
			c, okc := rows[key{ds, d, true}]
			cell := func(r row, ok bool) string {
				if !ok {
					return "not measured"
				}
				return us(r.p50) + " / " + us(r.p99) + " / " + us(r.max)
			}
			ratio := "-"
			if okq && okc && q.p99 > 0 {
				v := c.p99 / q.p99
				ratio = strconv.FormatFloat(v, 'f', 2, 64)
				if ds == "mcstack" {
					if v <= targetRatio {
						ratio += " (target ≤ 1.2: met)"
					} else {
						ratio = "**" + ratio + " (target ≤ 1.2: MISSED)**"
					}
				}
			}
			pps := func(r row, ok bool) string {
				if !ok {
					return "-"
				}
				return commas(int64(math.Round(r.pps)))
			}
			lost := func(r row, ok bool) string {
				if !ok {
					return "-"
				}
				return strconv.FormatInt(r.sent-r.delivered, 10)
			}
			calls, cyc := "-", "-"
			if okc {
				calls = strconv.FormatFloat(c.calls, 'f', 0, 64)
				if dur := c.sent; dur > 0 && c.pps > 0 && !math.IsNaN(c.cycles) {
					// cycles per run over the run's traffic duration
					secs := float64(c.delivered) / c.pps / float64(max(c.runs, 1))
					if secs > 0 {
						cyc = strconv.FormatFloat(c.cycles/secs, 'f', 1, 64)
					}
				}
			}
			fmt.Printf("| %g ms | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s |\n",
				d, label(ds), cell(q, okq), cell(c, okc), ratio, pps(q, okq), pps(c, okc), lost(q, okq), lost(c, okc), calls, cyc)
		}
	}
}

// Plot geometry.
const (
	panelW, panelH = 640, 520
	titleH         = 56
	marginL        = 84
	marginR        = 16
	marginT        = 40
	marginB        = 74
	fontScale      = 2
)

var (
	white     = color.RGBA{255, 255, 255, 255}
	black     = color.RGBA{0, 0, 0, 255}
	gridGray  = color.RGBA{220, 220, 220, 255}
	axisGray  = color.RGBA{90, 90, 90, 255}
	targetRed = color.RGBA{200, 0, 0, 255}
	barColors = []color.RGBA{
		{66, 133, 244, 255}, // p50
		{251, 140, 0, 255},  // p99
		{120, 120, 120, 255},
	}
	barNames = []string{"p50", "p99", "max"}
)

func plotPNG(path string, rows map[key]row, designs []string, delays []float64) error {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, v := range []float64{r.p50, r.p99, r.max} {
			if v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return fmt.Errorf("no positive latencies to plot")
	}
	// Start a decade below when the smallest bar would be (nearly) invisible.
	ylo := math.Pow(10, math.Floor(math.Log10(lo/2)))
	yhi := math.Pow(10, math.Ceil(math.Log10(hi)))
	if yhi <= ylo {
		yhi = ylo * 10
	}

	w := panelW * len(delays)
	h := titleH + panelH
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	plot.Fill(img, img.Bounds(), white)
	title := "Receive latency of paced multicast UDP while sockets join and close; driver takes D per filter update"
	plot.DrawText(img, (w-plot.TextWidth(title, fontScale))/2, 12, title, fontScale, black)
	sub := "bars: p50, p99, max (µs, log scale) per design, without (quiet) and with churn; red line: mcstack target 1.2 × quiet p99"
	plot.DrawText(img, (w-plot.TextWidth(sub, 1))/2, 12+plot.TextHeight(fontScale)+10, sub, 1, axisGray)

	for i, d := range delays {
		x0 := i * panelW
		drawPanel(img, x0, titleH, d, rows, designs, ylo, yhi)
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

func drawPanel(img *image.RGBA, x0, y0 int, d float64, rows map[key]row, designs []string, ylo, yhi float64) {
	px0, px1 := x0+marginL, x0+panelW-marginR
	py0, py1 := y0+marginT, y0+panelH-marginB // plot area: top py0, bottom py1
	yOf := func(v float64) int {
		v = min(max(v, ylo), yhi)
		f := (math.Log10(v) - math.Log10(ylo)) / (math.Log10(yhi) - math.Log10(ylo))
		return py1 - int(math.Round(f*float64(py1-py0)))
	}
	t := fmt.Sprintf("D = %g ms", d)
	plot.DrawText(img, (px0+px1-plot.TextWidth(t, fontScale))/2, y0+10, t, fontScale, black)

	// Decade grid lines and labels.
	for v := ylo; v <= yhi*1.0001; v *= 10 {
		y := yOf(v)
		plot.HLine(img, px0, px1, y, gridGray)
		l := decadeLabel(v)
		plot.DrawText(img, px0-8-plot.TextWidth(l, fontScale), y-plot.TextHeight(fontScale)/2, l, fontScale, axisGray)
	}
	plot.VLine(img, px0, py0, py1, axisGray)
	plot.HLine(img, px0, px1, py1, axisGray)
	plot.DrawTextUp(img, x0+8, (py0+py1)/2+plot.TextWidth("latency", fontScale)/2, "latency", fontScale, axisGray)

	// One cluster of three bars per (design, churn).
	clusters := len(designs) * 2
	cw := float64(px1-px0) / float64(clusters)
	barW := int(cw*0.8) / 3
	for ci := 0; ci < clusters; ci++ {
		ds := designs[ci/2]
		churn := ci%2 == 1
		cx := px0 + int(cw*float64(ci)+cw*0.1)
		r, ok := rows[key{ds, d, churn}]
		mode := "quiet"
		if churn {
			mode = "churn"
		}
		plot.DrawText(img, cx+(3*barW-plot.TextWidth(mode, 1))/2, py1+6, mode, 1, black)
		if ci%2 == 0 {
			l := label(ds)
			mid := px0 + int(cw*float64(ci+1))
			plot.DrawText(img, mid-plot.TextWidth(l, fontScale)/2, py1+22, l, fontScale, black)
			if ci > 0 {
				plot.VLine(img, px0+int(cw*float64(ci)), py1-4, py1+40, axisGray)
			}
		}
		if !ok {
			plot.DrawText(img, cx, py1-20, "n/a", 1, axisGray)
			continue
		}
		for bi, v := range []float64{r.p50, r.p99, r.max} {
			if !(v > 0) {
				continue
			}
			bx := cx + bi*barW
			plot.Fill(img, image.Rect(bx, yOf(v), bx+barW-1, py1), barColors[bi])
		}
		if ds == "mcstack" && churn {
			if q, okq := rows[key{ds, d, false}]; okq && q.p99 > 0 {
				y := yOf(targetRatio * q.p99)
				for x := cx - 4; x < cx+3*barW+4; x++ {
					if (x/4)%2 == 0 {
						img.Set(x, y, targetRed)
						img.Set(x, y+1, targetRed)
					}
				}
			}
		}
	}

	// Legend, top right of the plot area.
	lx, ly := px1-3*64, py0-22
	for i, n := range barNames {
		plot.Fill(img, image.Rect(lx+i*64, ly, lx+i*64+12, ly+12), barColors[i])
		plot.DrawText(img, lx+i*64+16, ly-1, n, fontScale, black)
	}
}

func decadeLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gms", v/1e3)
	}
	return fmt.Sprintf("%gµs", v)
}

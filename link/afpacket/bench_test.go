//go:build linux

package afpacket_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/wire"
)

// The receive-mode benchmarks: run as root with trafgen (Debian
// netsniff-ng) installed, one iteration each, e.g.
//
//	go test -run XXX -bench 'ReceiveModes|RetireLatency' -benchtime 1x ./link/afpacket/
//
// They alternate the modes in rounds on one veth pair and report each
// mode's figures side by side (the machine is shared: compare ratios).

// benchPair is newPair for benchmarks.
func benchPair(b *testing.B) pair {
	b.Helper()
	netns.RequireRoot(b)
	p := pair{a: netns.New(b, "mcba"), b: netns.New(b, "mcbb"), va: netns.UniqueName("mcbva"), vb: netns.UniqueName("mcbvb")}
	for _, ns := range []*netns.NS{p.a, p.b} {
		if err := ns.Quiet(); err != nil {
			b.Fatal(err)
		}
	}
	if err := netns.AddVeth(p.a, p.va, p.b, p.vb); err != nil {
		b.Fatal(err)
	}
	for _, f := range []func() error{func() error { return p.a.LinkUp(p.va) }, func() error { return p.b.LinkUp(p.vb) }} {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

func rxPackets(b *testing.B, ns *netns.NS, ifname string) uint64 {
	b.Helper()
	s := strings.TrimSpace(ns.MustRun(b, "cat", "/sys/class/net/"+ifname+"/statistics/rx_packets"))
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReceiveModes: trafgen -P 1 floods 64-byte UDP to 239.1.1.1 on
// a veth; an endpoint in each mode in turn (3 rounds of 3 s each) counts
// what reaches its handler. Reported per mode: frames/s delivered, the
// share of the frames the veth received, CPU time of the receiving
// process per delivered frame, frames per handler call.
func BenchmarkReceiveModes(b *testing.B) {
	trafgen, err := exec.LookPath("trafgen")
	if err != nil {
		b.Skip("skipping: trafgen (Debian netsniff-ng) not installed")
	}
	p := benchPair(b)
	conf := filepath.Join(b.TempDir(), "udp64.cfg")
	if err := os.WriteFile(conf, []byte(`{ eth(da=01:00:5e:01:01:01, type=0x0800), ipv4(saddr=192.0.2.2, daddr=239.1.1.1, ttl=4), udp(sport=4000, dport=5000), fill(0x61, 64) }`+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	const window = 3 * time.Second
	type result struct{ fps, share, cpuPerFrame, perBatch []float64 }
	results := map[afpacket.Mode]*result{afpacket.ModeRing: {}, afpacket.ModeRecvmsg: {}}
	for round := range 3 {
		for _, mode := range modes {
			ep := open(b, p.b, p.vb, afpacket.Options{Mode: mode})
			var frames, batches atomic.Uint64
			if err := ep.Attach(batchCounter{&frames, &batches}); err != nil {
				b.Fatal(err)
			}
			if _, err := ep.SetMulticastFilter([]wire.MAC{{0x01, 0x00, 0x5e, 0x01, 0x01, 0x01}}); err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("ip", "netns", "exec", p.a.Name, "timeout", "-s", "INT", fmt.Sprint(int(window/time.Second)+1),
				trafgen, "--dev", p.va, "--conf", conf, "--cpp", "-P", "1", "-q")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // let trafgen reach its rate
			rx0, f0, b0, c0, t0 := rxPackets(b, p.b, p.vb), frames.Load(), batches.Load(), cpuTime(), time.Now()
			time.Sleep(window - time.Second)
			rx1, f1, b1, c1, t1 := rxPackets(b, p.b, p.vb), frames.Load(), batches.Load(), cpuTime(), time.Now()
			_ = cmd.Wait()
			ep.Close()
			df, dt := float64(f1-f0), t1.Sub(t0).Seconds()
			r := results[mode]
			r.fps = append(r.fps, df/dt)
			r.share = append(r.share, df/float64(rx1-rx0))
			r.cpuPerFrame = append(r.cpuPerFrame, float64(c1-c0)/df)
			r.perBatch = append(r.perBatch, df/float64(b1-b0))
			b.Logf("round %d %-7v: %.0f frames/s of %.0f offered (%.0f%%), %.0f ns CPU per frame, %.1f frames per batch",
				round, mode, df/dt, float64(rx1-rx0)/dt, 100*df/float64(rx1-rx0), float64(c1-c0)/df, df/float64(b1-b0))
		}
	}
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	for mode, r := range results {
		b.ReportMetric(med(r.fps), mode.String()+"-frames/s")
		b.ReportMetric(med(r.share)*100, mode.String()+"-%offered")
		b.ReportMetric(med(r.cpuPerFrame), mode.String()+"-cpu-ns/frame")
		b.ReportMetric(med(r.perBatch), mode.String()+"-frames/batch")
	}
	b.ReportMetric(med(results[afpacket.ModeRing].fps)/med(results[afpacket.ModeRecvmsg].fps), "ring/recvmsg-frames/s")
}

type batchCounter struct{ frames, batches *atomic.Uint64 }

func (c batchCounter) HandleFrames(frames [][]byte, _ []link.FrameFlags) {
	c.frames.Add(uint64(len(frames)))
	c.batches.Add(1)
}
func (batchCounter) HandleLinkState(link.LinkState) {}

func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// BenchmarkRetireLatency: at a low rate (200 frames/s) the time from a
// frame's send(2) in the peer namespace to the handler, per mode and per
// retire timeout, alternated in 3 rounds of 300 frames. Reported: p50 and
// p99 in microseconds.
func BenchmarkRetireLatency(b *testing.B) {
	p := benchPair(b)
	type variant struct {
		name string
		opts afpacket.Options
	}
	variants := []variant{
		{"recvmsg", afpacket.Options{Mode: afpacket.ModeRecvmsg}},
		{"ring-1ms", afpacket.Options{Mode: afpacket.ModeRing, RetireTimeout: time.Millisecond}},
		{"ring-4ms", afpacket.Options{Mode: afpacket.ModeRing, RetireTimeout: 4 * time.Millisecond}},
		{"ring-8ms", afpacket.Options{Mode: afpacket.ModeRing, RetireTimeout: 8 * time.Millisecond}},
	}
	tx := rawSender(b, p.a, p.va)
	samples := map[string][]float64{}
	for range 3 {
		for _, v := range variants {
			ep := open(b, p.b, p.vb, v.opts)
			lat := make(chan float64, 1024)
			if err := ep.Attach(link.FrameFunc(func(f []byte) {
				if len(f) >= 22 && binary.BigEndian.Uint16(f[12:14]) == testEtherType {
					lat <- float64(monotonic()-int64(binary.BigEndian.Uint64(f[14:22]))) / 1e3
				}
			})); err != nil {
				b.Fatal(err)
			}
			f := frame(ep.HardwareAddr(), wire.MAC{2, 0, 0, 0, 0, 7}, string(make([]byte, 46)))
			for range 300 {
				binary.BigEndian.PutUint64(f[14:], uint64(monotonic()))
				if _, err := unix.Write(tx, f); err != nil {
					b.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			ep.Close()
			close(lat)
			for l := range lat {
				samples[v.name] = append(samples[v.name], l)
			}
		}
	}
	for _, v := range variants {
		s := samples[v.name]
		slices.Sort(s)
		if len(s) == 0 {
			b.Fatalf("%s: nothing received", v.name)
		}
		p50, p99 := s[len(s)/2], s[len(s)*99/100]
		b.Logf("%-8s %d frames: p50 %.0f µs, p99 %.0f µs", v.name, len(s), p50, p99)
		b.ReportMetric(p50, v.name+"-p50-µs")
		b.ReportMetric(p99, v.name+"-p99-µs")
	}
}

package mux_test

import (
	"fmt"
	"testing"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/mux"
	"github.com/mcstack/mcstack/wire"
)

// nullParent is a parent endpoint that hands its handler to the benchmark
// and accepts every filter at once.
type nullParent struct{ h link.Handler }

func (p *nullParent) Name() string                { return "null" }
func (p *nullParent) MTU() int                    { return 1500 }
func (p *nullParent) HardwareAddr() wire.MAC      { return wire.MAC{2, 0, 0, 0, 0, 1} }
func (p *nullParent) Attach(h link.Handler) error { p.h = h; return nil }
func (p *nullParent) WriteFrame([]byte) error     { return nil }
func (p *nullParent) SetMulticastFilter(a []wire.MAC) (link.FilterStatus, error) {
	return link.FilterStatus{Exact: len(a)}, nil
}
func (p *nullParent) Close() error { return nil }

type countHandler struct{ n int }

func (c *countHandler) HandleFrames(f [][]byte, _ []link.FrameFlags) { c.n += len(f) }
func (c *countHandler) HandleLinkState(link.LinkState)               {}

// BenchmarkDeliver measures the mux's cost per received frame for N hosts,
// each joined to its own group, in batches of 64 frames: unicast to one
// host, multicast to a group one host joined, multicast to a group ten
// hosts joined (cost per frame, not per delivery). ratio-vs-N=10 compares
// each N with the smallest, measured in the same run: flat means the cost
// does not grow with the number of hosts.
func BenchmarkDeliver(b *testing.B) {
	base := map[string]float64{}
	for _, n := range []int{10, 1000, 10000} {
		for _, kind := range []string{"unicast", "mcast-1-host", "mcast-10-hosts"} {
			b.Run(fmt.Sprintf("hosts=%d/%s", n, kind), func(b *testing.B) {
				p := &nullParent{}
				m, err := mux.New(p, mux.Options{Base: wire.MAC{2, 0xaa, 0, 0, 0, 0}})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				shared := wire.MAC{0x01, 0x00, 0x5e, 0x7f, 0, 1}
				for i := range n {
					e, err := m.NewEndpoint(i)
					if err != nil {
						b.Fatal(err)
					}
					if err := e.Attach(&countHandler{}); err != nil {
						b.Fatal(err)
					}
					f := []wire.MAC{{0x01, 0x00, 0x5e, 0x10, byte(i >> 8), byte(i)}}
					if i < 10 {
						f = append(f, shared)
					}
					if _, err := e.SetMulticastFilter(f); err != nil {
						b.Fatal(err)
					}
				}
				var dst wire.MAC
				switch kind {
				case "unicast":
					dst = m.MAC(n / 2)
				case "mcast-1-host":
					dst = wire.MAC{0x01, 0x00, 0x5e, 0x10, byte(n / 2 >> 8), byte(n / 2)}
				default:
					dst = shared
				}
				frame := append(wire.AppendEthernet(nil, dst, wire.MAC{2, 0, 0, 0, 0, 9}, 0x0800), make([]byte, 64)...)
				batch := make([][]byte, 64)
				for i := range batch {
					batch[i] = frame
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p.h.HandleFrames(batch, nil)
				}
				b.StopTimer()
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(len(batch))
				b.ReportMetric(ns, "ns/frame")
				if n == 10 {
					base[kind] = ns
				} else if base[kind] > 0 {
					b.ReportMetric(ns/base[kind], "ratio-vs-N=10")
				}
			})
		}
	}
}

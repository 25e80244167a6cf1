package membership

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestStateString(t *testing.T) {
	s := NewState(Exclude, []netip.Addr{srcB, srcA, srcB})
	if s.String() != "exclude{192.0.2.1,192.0.2.2}" {
		t.Fatalf("String = %q", s)
	}
	if (State{}).String() != "include{}" {
		t.Fatalf("zero String = %q", State{})
	}
	in := []netip.Addr{srcB, srcA}
	_ = NewState(Include, in)
	if in[0] != srcB {
		t.Fatal("NewState modified its argument")
	}
	if !(State{Include, nil}).Equal(State{Include, []netip.Addr{}}) || s.Equal(State{Include, s.Sources}) ||
		s.Equal(State{Exclude, s.Sources[:1]}) || !s.Equal(NewState(Exclude, []netip.Addr{srcA, srcB})) {
		t.Fatal("Equal wrong")
	}
}

func TestAcceptsMatchesLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		n := r.IntN(40)
		var srcs []netip.Addr
		for range n {
			srcs = append(srcs, netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(64))}))
		}
		mode := Mode(r.IntN(2))
		s := NewState(mode, srcs)
		for range 20 {
			p := netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(70))})
			listed := false
			for _, a := range srcs {
				if a == p {
					listed = true
				}
			}
			if want := listed == (mode == Include); s.Accepts(p) != want {
				t.Fatalf("%v Accepts(%v) = %v, want %v", s, p, !want, want)
			}
		}
	}
	s := NewState(Include, []netip.Addr{srcA, netip.MustParseAddr("fe80::1")})
	if !s.Accepts(netip.MustParseAddr("::ffff:192.0.2.1")) || !s.Accepts(netip.MustParseAddr("fe80::1%eth0")) {
		t.Fatal("Accepts should unmap / ignore zones")
	}
	if (State{}).Accepts(srcA) || !(State{Mode: Exclude}).Accepts(srcA) {
		t.Fatal("empty states")
	}
}

func TestAcceptsNoAlloc(t *testing.T) {
	s := NewState(Exclude, sources6(1000))
	p := netip.MustParseAddr("2001:db8::ffff:1")
	p2 := netip.MustParseAddr("fe80::1%eth0")
	if n := testing.AllocsPerRun(1000, func() { s.Accepts(p); s.Accepts(p2) }); n != 0 {
		t.Fatalf("Accepts allocates %v", n)
	}
}

func sources6(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	return out
}

var sinkBool bool

func BenchmarkAccepts(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("exclude-%d", n), func(b *testing.B) {
			srcs := sources6(n)
			s := NewState(Exclude, srcs)
			// Probe a mix of listed and unlisted sources.
			probes := []netip.Addr{srcs[n/2], srcs[n-1], netip.MustParseAddr("2001:db8::ffff:1"), netip.MustParseAddr("2001:db9::")}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkBool = s.Accepts(probes[i&3])
				i++
			}
		})
	}
}

package membership

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestTableFastPathMatchesGeneral drives two tables with the same random
// socket changes, mostly single-source deltas (one source added or removed
// in the same mode, which Apply serves on its fast path), and checks that
// the fast table gives exactly what the general path gives in a table
// with the fast path disabled: deltas, changed, errors (including
// ErrTooManyIfcSources), merged states, refs, and Revert. It also checks
// that published states never change afterwards.
func TestTableFastPathMatchesGeneral(t *testing.T) {
	pool := make([]netip.Addr, 30)
	for i := range pool {
		pool[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)})
	}
	groups := addrs("232.1.1.1", "232.1.1.2")
	for _, lim := range []Limits{{}, {SourcesPerInterfaceGroup: 8}} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("ifc%d/seed%d", lim.WithDefaults().SourcesPerInterfaceGroup, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 99))
				fast, slow := NewTable(lim), NewTable(lim)
				slow.noFast = true
				type sock struct{ st [2]State } // per group
				socks := make([]sock, 5)
				var kept []State
				var keptStr []string
				oneDeltas, fastErrs, fastChanged, reverts := 0, 0, 0, 0

				randomState := func() State {
					if r.IntN(6) == 0 {
						return State{} // leave
					}
					var s []netip.Addr
					for range r.IntN(10) {
						s = append(s, pool[r.IntN(len(pool))])
					}
					return NewState(Mode(r.IntN(2)), s)
				}
				for step := range 20000 {
					i, gi := r.IntN(len(socks)), r.IntN(len(groups))
					g := groups[gi]
					old := socks[i].st[gi]
					var new State
					one := false
					if old.IsMember() && r.IntN(10) < 8 {
						// One source added or removed, same mode.
						a := pool[r.IntN(len(pool))]
						if contains(old.Sources, a) {
							new = State{Mode: old.Mode, Sources: removeSorted(old.Sources, a)}
						} else {
							new = State{Mode: old.Mode, Sources: insertSorted(old.Sources, a)}
						}
					} else {
						new = randomState()
					}
					one = old.IsMember() && new.IsMember() && old.Mode == new.Mode && symDiff(old.Sources, new.Sources) == 1
					nf := fast.nFast
					df, cf, ef := fast.Apply(g, old, new)
					ds, cs, es := slow.Apply(g, old, new)
					if took := fast.nFast != nf; took != one {
						t.Fatalf("step %d: %v -> %v: fast path taken %v, want %v", step, old, new, took, one)
					}
					if slow.nFast != 0 {
						t.Fatalf("step %d: fast path taken with noFast", step)
					}
					if one {
						oneDeltas++
						if ef != nil {
							fastErrs++
						}
						if cf {
							fastChanged++
						}
					}
					same := func(what string, df, ds Delta, cf, cs bool, ef, es error) {
						t.Helper()
						if cf != cs || !errors.Is(ef, es) || !errors.Is(es, ef) ||
							df.Group != ds.Group || !df.Old.Equal(ds.Old) || !df.New.Equal(ds.New) {
							t.Fatalf("step %d: %s %v -> %v: fast %v->%v %v %v, general %v->%v %v %v",
								step, what, old, new, df.Old, df.New, cf, ef, ds.Old, ds.New, cs, es)
						}
					}
					same("apply", df, ds, cf, cs, ef, es)
					if cf {
						kept = append(kept, df.Old, df.New)
						keptStr = append(keptStr, df.Old.String(), df.New.String())
					}
					if ef == nil {
						socks[i].st[gi] = new
						if r.IntN(10) == 0 {
							reverts++
							df, cf := fast.Revert(g, new, old)
							ds, cs := slow.Revert(g, new, old)
							same("revert", df, ds, cf, cs, nil, nil)
							socks[i].st[gi] = old
						}
					}
					for _, g := range groups {
						sf, rf, okf := fast.Get(g)
						ss, rs, oks := slow.Get(g)
						if okf != oks || rf != rs || !sf.Equal(ss) {
							t.Fatalf("step %d: %v: fast %v refs %d %v, general %v refs %d %v", step, g, sf, rf, okf, ss, rs, oks)
						}
					}
				}
				for j, s := range kept {
					if s.String() != keptStr[j] {
						t.Fatalf("published state changed from %s to %s", keptStr[j], s)
					}
				}
				t.Logf("%d single-source deltas (%d changed the merged state, %d refused), %d reverts", oneDeltas, fastChanged, fastErrs, reverts)
				if oneDeltas < 10000 || fastChanged < 500 {
					t.Errorf("fast path under-exercised: %d deltas, %d changed", oneDeltas, fastChanged)
				}
				if lim.SourcesPerInterfaceGroup != 0 && fastErrs == 0 {
					t.Errorf("ErrTooManyIfcSources never returned on the fast path")
				}
			})
		}
	}
}

func TestOneSourceDelta(t *testing.T) {
	A := addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
	cases := []struct {
		old, new []netip.Addr
		a        netip.Addr
		added    bool
		ok       bool
	}{
		{nil, A[:1], A[0], true, true},
		{A[:1], nil, A[0], false, true},
		{A[:3], A[:4], A[3], true, true},
		{A[1:], A, A[0], true, true},
		{[]netip.Addr{A[0], A[2]}, A[:3], A[1], true, true},
		{A[:3], []netip.Addr{A[0], A[2]}, A[1], false, true},
		{A[:2], A[:2], netip.Addr{}, false, false},                     // no change
		{A[:2], A[2:], netip.Addr{}, false, false},                     // same length, different
		{A[:1], A[:3], netip.Addr{}, false, false},                     // two added
		{A[:2], A[1:4], netip.Addr{}, false, false},                    // one removed, two added
		{[]netip.Addr{A[0], A[3]}, A[1:4], netip.Addr{}, false, false}, // swap plus add
	}
	for _, c := range cases {
		a, added, ok := oneSourceDelta(c.old, c.new)
		if ok != c.ok || ok && (a != c.a || added != c.added) {
			t.Errorf("oneSourceDelta(%v, %v) = %v %v %v, want %v %v %v", c.old, c.new, a, added, ok, c.a, c.added, c.ok)
		}
	}
}

// symDiff is the size of the symmetric difference of two source lists,
// computed naively.
func symDiff(x, y []netip.Addr) int {
	in := map[netip.Addr]int{}
	for _, a := range x {
		in[a]++
	}
	for _, a := range y {
		in[a]--
	}
	n := 0
	for _, v := range in {
		if v != 0 {
			n++
		}
	}
	return n
}

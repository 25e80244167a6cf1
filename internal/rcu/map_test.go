package rcu

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func hashInt(k int) uint64 {
	x := uint64(k)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

// collide puts every key in one bucket, so that the list surgery of Store
// and Delete is exercised at every position.
func collide(int) uint64 { return 7 }

// The map behaves as a Go map under random operations, with every hash
// function (including one where all keys collide).
func TestMapModel(t *testing.T) {
	for name, h := range map[string]func(int) uint64{"mixed": hashInt, "colliding": collide} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m := New[int, int](h)
			want := map[int]int{}
			span := 2000
			if name == "colliding" {
				span = 60
			}
			for i := range 20000 {
				k := r.IntN(span)
				switch r.IntN(3) {
				case 0, 1:
					m.Store(k, i)
					want[k] = i
				case 2:
					_, had := want[k]
					if got := m.Delete(k); got != had {
						t.Fatalf("op %d: Delete(%d) = %v, want %v", i, k, got, had)
					}
					delete(want, k)
				}
				if m.Len() != len(want) {
					t.Fatalf("op %d: Len %d, want %d", i, m.Len(), len(want))
				}
				if i%997 == 0 {
					for kk := range span {
						v, ok := m.Load(kk)
						wv, wok := want[kk]
						if ok != wok || v != wv {
							t.Fatalf("op %d: Load(%d) = %d,%v want %d,%v", i, kk, v, ok, wv, wok)
						}
					}
					seen := 0
					m.Range(func(k, v int) bool {
						if want[k] != v {
							t.Fatalf("Range: %d=%d, want %d", k, v, want[k])
						}
						seen++
						return true
					})
					if seen != len(want) {
						t.Fatalf("Range saw %d entries, want %d", seen, len(want))
					}
				}
			}
		})
	}
}

// The table grows with the entries and shrinks back, so a map that held
// many keys does not keep a large bucket array.
func TestMapResizes(t *testing.T) {
	m := New[int, int](hashInt)
	for i := range 10000 {
		m.Store(i, i)
	}
	if n := len(m.tab.Load().buckets); n < 10000/2 {
		t.Fatalf("%d buckets for 10000 entries", n)
	}
	for i := range 10000 {
		m.Delete(i)
	}
	if n := len(m.tab.Load().buckets); n > 4*minBuckets {
		t.Fatalf("%d buckets left after deleting everything", n)
	}
}

// Readers never see a torn or missing value for a key that stays present,
// while a writer churns other keys and resizes the table (run with -race).
func TestMapConcurrentReaders(t *testing.T) {
	m := New[int, int](hashInt)
	const stable = 100
	for k := range stable {
		m.Store(k, k)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for k := range stable {
					if v, ok := m.Load(k); !ok || v != k {
						t.Errorf("Load(%d) = %d,%v during churn", k, v, ok)
						return
					}
				}
			}
		}()
	}
	for round := range 50 {
		for k := stable; k < stable+2000; k++ {
			m.Store(k, round)
		}
		for k := stable; k < stable+2000; k++ {
			m.Delete(k)
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestLoadDoesNotAllocate(t *testing.T) {
	m := New[int, *int](hashInt)
	for i := range 100 {
		v := i
		m.Store(i, &v)
	}
	if n := testing.AllocsPerRun(1000, func() { m.Load(42); m.Load(1000) }); n != 0 {
		t.Fatalf("Load: %v allocations", n)
	}
}

func BenchmarkLoad(b *testing.B) {
	m := New[int, int](hashInt)
	for i := range 1000 {
		m.Store(i, i)
	}
	for i := 0; b.Loop(); i++ {
		m.Load(i & 1023)
	}
}

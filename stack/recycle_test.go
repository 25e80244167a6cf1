package stack

import (
	"sync"
	"testing"
)

// A receive batch reuses the datagram its interface's readers freed last,
// keeps at most freeCacheCap of a long free stack, and datagrams made
// without a batch do not join the free stacks.
func TestRecycleLIFO(t *testing.T) {
	const ifIndex = 5
	b := new(rxBatch)
	// Drain what earlier tests left on this shard.
	freeStacks[ifIndex%freeShards].top.Store(nil)

	var ds []*datagram
	for range 3 {
		d := allocDatagram(b, ifIndex)
		if d.home != &freeStacks[ifIndex%freeShards] {
			t.Fatal("a batch's datagram has no home stack")
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		d.free()
	}
	for i := len(ds) - 1; i >= 0; i-- {
		if d := allocDatagram(b, ifIndex); d != ds[i] {
			t.Fatalf("allocation %d: not the datagram freed %d-th", len(ds)-1-i, i)
		}
	}

	// A long stack: the cache keeps the freeCacheCap most recent.
	b.cache = nil
	n := freeCacheCap + 10
	ds = ds[:0]
	for range n {
		ds = append(ds, &datagram{home: &freeStacks[ifIndex%freeShards]})
	}
	for _, d := range ds {
		d.free()
	}
	b.refill(&freeStacks[ifIndex%freeShards])
	got := 0
	for d := b.cache; d != nil; d = d.next {
		if want := ds[n-1-got]; d != want {
			t.Fatalf("cache entry %d is not the %d-th most recently freed", got, got)
		}
		got++
	}
	if got != freeCacheCap {
		t.Fatalf("cache holds %d datagrams, want %d", got, freeCacheCap)
	}
	if freeStacks[ifIndex%freeShards].top.Load() != nil {
		t.Fatal("refill left datagrams on the stack")
	}

	// Looped back: no home, back to the pool.
	if d := allocDatagram(nil, ifIndex); d.home != nil && d.home.top.Load() == d {
		t.Fatal("a looped-back datagram is on a free stack")
	}
}

// Datagrams freed concurrently by many readers all come back (run with
// -race).
func TestRecycleConcurrentFree(t *testing.T) {
	const ifIndex, readers, per = 6, 4, 100
	home := &freeStacks[ifIndex%freeShards]
	home.top.Store(nil)
	all := map[*datagram]bool{}
	var ds [readers][]*datagram
	for r := range ds {
		for range per {
			d := &datagram{home: home}
			all[d] = true
			ds[r] = append(ds[r], d)
		}
	}
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range ds[r] {
				d.free()
			}
		}()
	}
	wg.Wait()
	seen := 0
	for d := home.top.Swap(nil); d != nil; d = d.next {
		if !all[d] {
			t.Fatal("unknown datagram on the stack")
		}
		delete(all, d)
		seen++
	}
	if seen != readers*per {
		t.Fatalf("%d of %d datagrams on the stack", seen, readers*per)
	}
}

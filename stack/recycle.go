package stack

import (
	"sync"
	"sync/atomic"
)

// Recycling datagrams.
//
// A datagram's buffer is written by the receive goroutine (the payload
// copy) and read by a reader (the copy out); reusing the buffer a reader
// released last keeps both copies in cache. sync.Pool would instead hand
// the receive goroutine the coldest buffer: its Get on one P, finding
// nothing local, takes the oldest item another P put, and readers run on
// other Ps than the receive goroutine. Measured on a real link
// (BENCHMARKS.md §1), the LIFO below costs less process time per
// 1,024-byte datagram.
//
// So a datagram made by a receive batch returns, when its last reader
// releases it, to one of freeShards lock-free LIFO stacks (chosen by the
// interface's index): one compare-and-swap. The receive goroutine takes a
// whole stack at once (one swap) into its batch's cache and uses it
// most-recently-freed first; beyond freeCacheCap datagrams it passes the
// rest to datagramPool, which the garbage collector trims, so a burst
// does not keep its datagrams for ever. A stack is only ever pushed to
// and emptied whole, never popped one by one, so it has no ABA problem.
// Datagrams made without a batch (a looped-back send) come from and go to
// the pool. The stacks are shared by all Stacks in the process, so many
// small stacks (an emulation of thousands of hosts) keep few datagrams
// between them.

// freeStack is a lock-free LIFO stack of free datagrams linked through
// datagram.next.
type freeStack struct {
	top atomic.Pointer[datagram]
	_   [56]byte // keep the shards on separate cache lines
}

const (
	freeShards   = 8
	freeCacheCap = 512 // datagrams a batch's cache keeps (~1 MiB of buffers)
)

var (
	freeStacks   [freeShards]freeStack
	datagramPool = sync.Pool{New: func() any { return &datagram{buf: make([]byte, 0, 2048)} }}
)

// allocDatagram returns a free datagram for a batch of interface ifIndex
// (b non-nil) or for a looped-back send (b nil).
func allocDatagram(b *rxBatch, ifIndex int) *datagram {
	if b == nil {
		return datagramPool.Get().(*datagram)
	}
	home := &freeStacks[uint(ifIndex)%freeShards]
	if b.cache == nil {
		b.refill(home)
	}
	if d := b.cache; d != nil {
		b.cache, d.next = d.next, nil
		return d
	}
	d := datagramPool.Get().(*datagram)
	if d.home == nil {
		d.home = home
	}
	return d
}

// refill takes home's whole stack as the batch's cache, keeping at most
// freeCacheCap datagrams (the most recently freed) and giving the rest to
// the pool.
func (b *rxBatch) refill(home *freeStack) {
	d := home.top.Swap(nil)
	b.cache = d
	for n := 1; d != nil; d, n = d.next, n+1 {
		if n == freeCacheCap {
			rest := d.next
			d.next = nil
			for rest != nil {
				r := rest
				rest, r.next = r.next, nil
				datagramPool.Put(r)
			}
			return
		}
	}
}

// free recycles d, whose last reference was dropped.
func (d *datagram) free() {
	f := d.home
	if f == nil {
		datagramPool.Put(d)
		return
	}
	for {
		top := f.top.Load()
		d.next = top
		if f.top.CompareAndSwap(top, d) {
			return
		}
	}
}

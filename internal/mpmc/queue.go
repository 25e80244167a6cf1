// Package mpmc is a bounded lock-free queue of pointers for any number of
// producers and consumers: the stack's per-socket receive queue (producers:
// the receive goroutines of the interfaces and looping-back senders;
// consumers: the socket's readers) and the protocol worker's inbox.
//
// It is D. Vyukov's bounded MPMC array queue: each cell carries a sequence
// number telling producers and consumers whose turn it is, so a push or a
// pop is one compare-and-swap on a shared index plus two atomic accesses to
// the cell, with no lock and no allocation. A full queue refuses the push
// (the caller drops and counts); an empty one refuses the pop (the caller
// decides how to wait). Order is FIFO among completed pushes.
package mpmc

import (
	"math/bits"
	"sync/atomic"
)

// Queue holds up to Cap pointers. The zero value is not usable: create it
// with New.
type Queue[T any] struct {
	mask  uint64
	limit uint64 // capacity; below len(cells) when not a power of two
	cells []cell[T]
	_     [64]byte // keep the producer and consumer indexes on their own cache lines
	tail  atomic.Uint64
	_     [56]byte
	head  atomic.Uint64
	_     [56]byte
}

type cell[T any] struct {
	seq atomic.Uint64
	val *T
}

// New returns an empty queue holding at most n (≥ 1) pointers.
func New[T any](n int) *Queue[T] {
	n = max(n, 1)
	// At least two cells: with one, a full cell's sequence number would
	// equal the next position and look free.
	size := max(uint64(1)<<bits.Len64(uint64(n-1)), 2)
	q := &Queue[T]{mask: size - 1, limit: uint64(n), cells: make([]cell[T], size)}
	for i := range q.cells {
		q.cells[i].seq.Store(uint64(i))
	}
	return q
}

// Cap returns the queue's capacity.
func (q *Queue[T]) Cap() int { return int(q.limit) }

// Len returns the number of queued pointers (a snapshot: concurrent pushes
// and pops change it).
func (q *Queue[T]) Len() int {
	t, h := q.tail.Load(), q.head.Load()
	if t < h {
		return 0
	}
	return int(t - h)
}

// Push appends v and reports whether there was room. It never blocks.
func (q *Queue[T]) Push(v *T) bool {
	pos := q.tail.Load()
	for {
		c := &q.cells[pos&q.mask]
		seq := c.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			if q.limit != q.mask+1 && pos-q.head.Load() >= q.limit {
				return false
			}
			if q.tail.CompareAndSwap(pos, pos+1) {
				c.val = v
				c.seq.Store(pos + 1)
				return true
			}
			pos = q.tail.Load()
		case d < 0:
			return false // the cell still holds the value of a lap ago: full
		default:
			pos = q.tail.Load()
		}
	}
}

// Pop removes and returns the oldest pointer, or nil if the queue is
// empty. It never blocks.
func (q *Queue[T]) Pop() *T {
	pos := q.head.Load()
	for {
		c := &q.cells[pos&q.mask]
		seq := c.seq.Load()
		switch d := int64(seq - (pos + 1)); {
		case d == 0:
			if q.head.CompareAndSwap(pos, pos+1) {
				v := c.val
				c.val = nil
				c.seq.Store(pos + q.mask + 1)
				return v
			}
			pos = q.head.Load()
		case d < 0:
			return nil // not yet written: empty
		default:
			pos = q.head.Load()
		}
	}
}

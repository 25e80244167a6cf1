// Package rcu provides the read-mostly hash map behind the stack's receive
// path: lookups take no lock and never allocate; updates are made by one
// writer at a time (the caller serializes them) and copy only the part of
// one bucket they change, so a control operation costs O(what changed), not
// O(size of the map).
//
// It is the read-copy-update pattern with Go's garbage collector doing the
// reclamation: a bucket is an immutable linked list published through an
// atomic.Pointer; a writer builds the new list (sharing the unchanged tail)
// and publishes it with one atomic store. A reader sees either the old or
// the new list, both consistent. Growing or shrinking the bucket array
// rebuilds every list into a new array published the same way; it happens
// when the number of entries doubles or falls to an eighth, so its cost is
// amortized O(1) per update.
package rcu

import "sync/atomic"

// Map maps keys to values. The zero value is not usable: create it with
// New. Load may be called from any goroutine at any time; Store, Delete,
// Len and Range must not be called concurrently with each other (the caller
// holds a lock or owns the map).
//
// Values are stored as given: a value read by Load must be treated as
// immutable (publish a new value instead of changing one in place).
type Map[K comparable, V any] struct {
	hash func(K) uint64
	tab  atomic.Pointer[table[K, V]]
	n    int // entries; writer-owned
}

type table[K comparable, V any] struct {
	mask    uint64
	buckets []atomic.Pointer[node[K, V]]
}

type node[K comparable, V any] struct {
	key  K
	val  V
	next *node[K, V]
}

// minBuckets is the bucket count of a map's first table (allocated on the
// first Store, so an empty map costs only the Map itself).
const minBuckets = 8

// New returns an empty map using hash, which must return equal values for
// equal keys and should spread distinct keys over all 64 bits.
func New[K comparable, V any](hash func(K) uint64) *Map[K, V] {
	return &Map[K, V]{hash: hash}
}

// Load returns the value stored for k. It takes no lock and does not
// allocate.
func (m *Map[K, V]) Load(k K) (v V, ok bool) {
	t := m.tab.Load()
	if t == nil {
		return v, false
	}
	for n := t.buckets[m.hash(k)&t.mask].Load(); n != nil; n = n.next {
		if n.key == k {
			return n.val, true
		}
	}
	return v, false
}

// Len returns the number of entries. Writer side only.
func (m *Map[K, V]) Len() int { return m.n }

// Store sets k's value. Writer side only. It allocates one node, plus a
// copy of the nodes in front of k's old node in its bucket when k was
// present (the load factor is kept at most 2, so a bucket holds a few
// entries).
func (m *Map[K, V]) Store(k K, v V) {
	t := m.tab.Load()
	if t == nil {
		t = newTable[K, V](minBuckets)
		m.tab.Store(t)
	}
	b := &t.buckets[m.hash(k)&t.mask]
	head := b.Load()
	if at := find(head, k); at != nil {
		b.Store(rebuild(head, at, &node[K, V]{key: k, val: v, next: at.next}))
		return
	}
	b.Store(&node[K, V]{key: k, val: v, next: head})
	m.n++
	if uint64(m.n) > 2*(t.mask+1) {
		m.resize(t, 2*(t.mask+1))
	}
}

// Delete removes k. Writer side only. It reports whether k was present.
func (m *Map[K, V]) Delete(k K) bool {
	t := m.tab.Load()
	if t == nil {
		return false
	}
	b := &t.buckets[m.hash(k)&t.mask]
	head := b.Load()
	at := find(head, k)
	if at == nil {
		return false
	}
	b.Store(rebuild(head, at, at.next))
	m.n--
	if size := t.mask + 1; size > minBuckets && uint64(m.n) < size/8 {
		m.resize(t, size/2)
	}
	return true
}

// Range calls f for every entry until f returns false. Writer side only
// (it reads the current table; concurrent Loads are fine).
func (m *Map[K, V]) Range(f func(K, V) bool) {
	t := m.tab.Load()
	if t == nil {
		return
	}
	for i := range t.buckets {
		for n := t.buckets[i].Load(); n != nil; n = n.next {
			if !f(n.key, n.val) {
				return
			}
		}
	}
}

func newTable[K comparable, V any](size uint64) *table[K, V] {
	return &table[K, V]{mask: size - 1, buckets: make([]atomic.Pointer[node[K, V]], size)}
}

// find returns the node holding k, or nil.
func find[K comparable, V any](head *node[K, V], k K) *node[K, V] {
	for n := head; n != nil; n = n.next {
		if n.key == k {
			return n
		}
	}
	return nil
}

// rebuild returns the list starting at head with the node at (which is on
// it) and everything after it replaced by tail: the nodes in front of at
// are copied, tail is shared.
func rebuild[K comparable, V any](head, at, tail *node[K, V]) *node[K, V] {
	if head == at {
		return tail
	}
	first := &node[K, V]{key: head.key, val: head.val}
	last := first
	for n := head.next; n != at; n = n.next {
		c := &node[K, V]{key: n.key, val: n.val}
		last.next = c
		last = c
	}
	last.next = tail
	return first
}

// resize publishes a new table of size buckets holding every entry of t.
func (m *Map[K, V]) resize(t *table[K, V], size uint64) {
	nt := newTable[K, V](size)
	for i := range t.buckets {
		for n := t.buckets[i].Load(); n != nil; n = n.next {
			b := &nt.buckets[m.hash(n.key)&nt.mask]
			b.Store(&node[K, V]{key: n.key, val: n.val, next: b.Load()})
		}
	}
	m.tab.Store(nt)
}

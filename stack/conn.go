package stack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/internal/mpmc"
	"github.com/mcstack/mcstack/membership"
)

// Conn is a UDP socket on a Stack. It implements net.PacketConn and offers
// the multicast API of golang.org/x/net/ipv4 and ipv6 (RFC 3678), on this
// package's *Interface and on netip addresses. Its methods are safe for
// concurrent use.
//
// Several sockets may bind one port (as with SO_REUSEADDR for multicast
// receivers): each gets every datagram it accepts. Sockets that accept the
// same datagram share one copy of it in memory (it is immutable once
// queued); each reader copies it into its own buffer.
type Conn struct {
	stack *Stack
	is4   bool
	port  uint16
	// bound is the local address if the socket is bound to a specific
	// one (unicast or a multicast group), else invalid.
	bound netip.Addr

	// The receive queue: created on the first datagram (an idle socket
	// costs no queue), bounded by queueCap; pushes never block (a full
	// queue drops and counts), readers park on wakec when it is empty.
	queue    atomic.Pointer[mpmc.Queue[datagram]]
	queueCap atomic.Int32
	// retired is the queue SetReadBuffer replaced, drained by readers
	// first (a producer that loaded it just before the swap may still
	// push to it).
	retired atomic.Pointer[mpmc.Queue[datagram]]
	// resizeMu serializes SetReadBuffer calls; held for a few
	// instructions, never by the receive path.
	resizeMu sync.Mutex
	// waiting counts readers parked on wakec; a producer (once per batch
	// of frames), Close and the read deadline signal wakec only when it
	// is nonzero (see next).
	waiting atomic.Int32
	wakec   chan struct{} // capacity 1; see next

	closed    atomic.Bool
	closeOnce sync.Once
	released  chan struct{} // closed when Close has released everything
	drops     atomic.Uint64

	// filters is the socket's membership state. Guarded by Stack.mu.
	filters *membership.SocketFilters

	// mcastIfc is the interface for outgoing multicast (nil: the only
	// interface); an atomic so senders take no lock.
	mcastIfc atomic.Pointer[Interface]

	// Send options; atomics so senders take no lock.
	ttl      atomic.Uint32
	tos      atomic.Uint32 // IPv4 TOS / IPv6 Traffic Class
	noLoop   atomic.Bool
	ipID     atomic.Uint32
	sendBufs sync.Pool

	// dlMu guards the deadline timers and channels. Held only to swap
	// them, never while waiting.
	dlMu          sync.Mutex
	readDeadline  deadline
	writeDeadline deadline
}

// datagram is one received datagram, shared by every socket it was queued
// to and immutable once queued; recycled (recycle.go; when the last
// reference is released) so the receive path does not allocate in the
// steady state.
//
// Ownership: each queue entry holds one reference. The producer sets the
// count before it pushes (deliver: 1 for a single socket; for several, a
// large bias that it settles to the number of successful pushes once
// done), so a datagram queued to one socket costs no atomic update of the
// count at all.
type datagram struct {
	// refs is accessed with sync/atomic once d is queued; the producer
	// sets it with a plain store while d is still its own (fresh from
	// recycling), which the queue's push then publishes.
	refs    int32
	buf     []byte
	src     netip.AddrPort
	dst     netip.Addr
	ifIndex int
	ttl     uint8
	// home is the free stack d returns to (nil: the pool); set once,
	// when d is first made. next links d on a free stack or a batch's
	// cache while d is free (see recycle.go).
	home *freeStack
	next *datagram
}

// newDatagram copies payload into a recycled datagram (see recycle.go)
// holding refs references; b is the receive batch making it, or nil.
func newDatagram(b *rxBatch, refs int32, ifIndex int, src netip.Addr, srcPort uint16, dst netip.Addr, ttl uint8, payload []byte) *datagram {
	d := allocDatagram(b, ifIndex)
	d.refs = refs
	d.buf = append(d.buf[:0], payload...)
	d.src = netip.AddrPortFrom(src, srcPort)
	d.dst, d.ifIndex, d.ttl = dst, ifIndex, ttl
	return d
}

// release drops one reference; the last recycles d. A holder that sees a
// count of 1 is the only one left (counts only fall once the datagram is
// queued), so it needs no atomic update.
func (d *datagram) release() {
	if atomic.LoadInt32(&d.refs) == 1 || atomic.AddInt32(&d.refs, -1) == 0 {
		d.free()
	}
}

// refBias is the count a datagram queued to several sockets holds while
// the producer pushes it (see datagram).
const refBias = 1 << 30

// ListenUDP opens a UDP socket. network is "udp4", "udp6" or "udp" (the
// family of laddr, IPv6 when unspecified and invalid). laddr's address may
// be the unspecified address (receive everything on the port), an address
// of an interface, or a multicast group (receive only that group); an
// IPv4-mapped IPv6 address is taken as the IPv4 address. Port 0 picks a
// free ephemeral port.
//
// Cost: O(sockets bound to the port) under Stack.mu (O(ports) to find an
// ephemeral port in the worst case).
func (s *Stack) ListenUDP(network string, laddr netip.AddrPort) (*Conn, error) {
	a := laddr.Addr().Unmap()
	var is4 bool
	switch network {
	case "udp4":
		is4 = true
	case "udp6":
	case "udp":
		is4 = a.IsValid() && a.Is4()
	default:
		return nil, fmt.Errorf("listen %s: %w", network, ErrBadNetwork)
	}
	if !a.IsValid() {
		a = netip.IPv6Unspecified()
		if is4 {
			a = netip.IPv4Unspecified()
		}
	}
	if a.Is4() != is4 || a.Zone() != "" {
		return nil, fmt.Errorf("listen %s %v: %w", network, laddr, ErrBadAddress)
	}
	c := &Conn{
		stack:    s,
		is4:      is4,
		wakec:    make(chan struct{}, 1),
		released: make(chan struct{}),
	}
	if !a.IsUnspecified() {
		c.bound = a
	}
	c.queueCap.Store(int32(s.cfg.QueueLen))
	c.ttl.Store(1)
	c.filters = membership.NewSocketFilters(s.cfg.Limits)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("listen %s %v: %w", network, laddr, ErrStackClosed)
	}
	if !a.IsUnspecified() && !a.IsMulticast() && !s.isLocalLocked(a) {
		return nil, fmt.Errorf("listen %s %v: not an interface address: %w", network, laddr, ErrBadAddress)
	}
	port := laddr.Port()
	if port == 0 {
		var ok bool
		if port, ok = s.ephemeralPortLocked(); !ok {
			return nil, fmt.Errorf("listen %s %v: no free ephemeral port", network, laddr)
		}
	}
	c.port = port
	var subs []sub
	if l, ok := s.ports.Load(port); ok {
		subs = l.subs
	}
	s.ports.Store(port, &portList{subs: append(slices.Clip(subs), sub{c: c, st: acceptAll})})
	s.conns[c] = struct{}{}
	return c, nil
}

func (s *Stack) isLocalLocked(a netip.Addr) bool {
	for _, ifc := range s.ifcs {
		for _, p := range ifc.addrs {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func (s *Stack) ephemeralPortLocked() (uint16, bool) {
	const lo, hi = 49152, 65535
	start := lo + int(time.Now().UnixNano()%int64(hi-lo+1))
	for i := 0; i <= hi-lo; i++ {
		p := uint16(lo + (start-lo+i)%(hi-lo+1))
		if _, used := s.ports.Load(p); !used {
			return p, true
		}
	}
	return 0, false
}

// acceptAll is the filter of a port-table entry: unicast and broadcast
// datagrams are not source-filtered.
var acceptAll = membership.State{Mode: membership.Exclude}

// unbindLocked removes c from its port's list: O(sockets on the port).
func (s *Stack) unbindLocked(c *Conn) {
	l, ok := s.ports.Load(c.port)
	if !ok {
		return
	}
	kept := make([]sub, 0, len(l.subs))
	for _, o := range l.subs {
		if o.c != c {
			kept = append(kept, o)
		}
	}
	if len(kept) == 0 {
		s.ports.Delete(c.port)
		return
	}
	s.ports.Store(c.port, &portList{subs: kept})
}

// closeChunk is how many memberships Close releases per hold of Stack.mu,
// so that closing a socket joined to thousands of groups never keeps other
// operations waiting for more than a few microseconds per group.
const closeChunk = 64

// Close closes the socket. The socket stops receiving and its readers are
// woken with net.ErrClosed at once; then its memberships are released in
// memory (no I/O; Stack.mu is taken for at most closeChunk groups at a
// time, so other operations interleave); the driver updates and reports
// that follow are made by the interfaces' workers (coalesced with other
// changes). Close returns when the release is done; a concurrent or later
// Close waits for the same and returns an error wrapping net.ErrClosed.
//
// Cost: O(G) for a socket joined to G groups, plus O(sockets on its port).
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closed.Store(true)
		c.notify() // parked readers return (see next)
	})
	if !first {
		<-c.released
		return c.opErr("close", ErrClosed)
	}
	defer close(c.released)
	c.stopDeadlines()
	s := c.stack
	s.mu.Lock()
	s.unbindLocked(c)
	entries := c.filters.All()
	s.mu.Unlock()
	for {
		n := min(len(entries), closeChunk)
		s.mu.Lock()
		for _, e := range entries[:n] {
			// An interface removal may have released it meanwhile.
			st, ok := c.filters.Get(e.Key)
			if !ok {
				continue
			}
			if ifc := s.ifcs[e.Key.IfIndex]; ifc != nil {
				ifc.publishSubLocked(c, e.Key.Group, membership.State{})
				ifc.applyLocked(e.Key.Group, st, membership.State{})
			}
			c.filters.Commit(e.Key, membership.State{})
		}
		entries = entries[n:]
		if len(entries) == 0 {
			// Until now detachLocked could still find the socket and
			// release its memberships on a removed interface.
			delete(s.conns, c)
			c.mcastIfc.Store(nil)
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
	}
	// Datagrams still queued go back to the pool. (A receive goroutine
	// that looked the socket up before it was unlinked may still queue
	// one; the collector takes it with the socket.)
	if q := c.queue.Load(); q != nil {
		for d := q.Pop(); d != nil; d = q.Pop() {
			d.release()
		}
	}
	return nil
}

// enqueue queues d for the socket's readers; the queue entry owns one of
// d's references (the caller accounts for them: see datagram). With a
// batch, the readers are woken when the batch ends; without one (a
// looped-back datagram), at once. Never blocks: a full queue drops and
// counts, and the reference stays the caller's.
func (c *Conn) enqueue(d *datagram, b *rxBatch) bool {
	q := c.queue.Load()
	if q == nil {
		q = mpmc.New[datagram](int(c.queueCap.Load()))
		if !c.queue.CompareAndSwap(nil, q) {
			q = c.queue.Load()
		}
	}
	if !q.Push(d) {
		c.drops.Add(1)
		return false
	}
	if b == nil {
		c.notify()
	} else {
		b.touch(c)
	}
	return true
}

// notify wakes a parked reader, if any.
func (c *Conn) notify() {
	if c.waiting.Load() > 0 {
		select {
		case c.wakec <- struct{}{}:
		default:
		}
	}
}

// pop returns the oldest queued datagram, or nil.
func (c *Conn) pop() *datagram {
	if q := c.retired.Load(); q != nil {
		if d := q.Pop(); d != nil {
			return d
		}
	}
	if q := c.queue.Load(); q != nil {
		return q.Pop()
	}
	return nil
}

// readBufferUnit is what one queued datagram counts for in SetReadBuffer.
const readBufferUnit = 2048

// maxQueueLen bounds the receive queue SetReadBuffer may ask for.
const maxQueueLen = 1 << 20

// SetReadBuffer sets the size of the socket's receive queue, like
// net.UDPConn.SetReadBuffer (SO_RCVBUF): the queue holds bytes/2048
// datagrams (at least 1, at most 2^20), each queued datagram counting for
// 2 KiB whatever its size; the default is Config.QueueLen datagrams.
// Datagrams already queued are kept (beyond the new size too); datagrams
// that find the queue full are dropped and counted (Dropped). It may be
// called at any time; like SO_RCVBUF it is best set before traffic flows.
func (c *Conn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opErr("set read buffer", fmt.Errorf("size %d: %w", bytes, ErrBadBufferSize))
	}
	if c.closed.Load() {
		return c.opErr("set read buffer", ErrClosed)
	}
	n := min(max((bytes+readBufferUnit-1)/readBufferUnit, 1), maxQueueLen)
	c.resizeMu.Lock()
	defer c.resizeMu.Unlock()
	c.queueCap.Store(int32(n))
	old := c.queue.Load()
	if old == nil || old.Cap() == n {
		return nil // the queue is made at the first datagram, with the new size
	}
	nq := mpmc.New[datagram](max(n, old.Len()+1))
	// What an earlier resize retired goes first, then the current queue.
	if r := c.retired.Load(); r != nil {
		for d := r.Pop(); d != nil; d = r.Pop() {
			if !nq.Push(d) {
				d.release()
				c.drops.Add(1)
			}
		}
	}
	c.retired.Store(old)
	c.queue.Store(nq)
	return nil
}

// ReadBuffer returns the receive queue's size in bytes as SetReadBuffer
// counts it.
func (c *Conn) ReadBuffer() int { return int(c.queueCap.Load()) * readBufferUnit }

// next waits for a datagram, the read deadline or Close.
//
// A parked reader waits on wakec alone. Whatever should end its wait (a
// queued datagram, Close, the read deadline passing) first makes itself
// visible (the push, closed, the deadline's passed) and then signals wakec
// if waiting is nonzero; the reader counts itself in waiting before its
// last look at all three. With sequentially consistent atomics, either the
// look sees the event or the signaller sees the waiter, so no wake-up is
// lost. wakec holds one token: a reader woken for Close or a deadline
// passes the token on to the next parked reader, as one woken for a
// datagram does while datagrams remain.
func (c *Conn) next() (*datagram, error) {
	for {
		d, err := c.poll()
		if d != nil || err != nil {
			return d, err
		}
		c.waiting.Add(1)
		if d, err := c.poll(); d != nil || err != nil {
			c.waiting.Add(-1)
			return d, err
		}
		<-c.wakec
		c.waiting.Add(-1)
		// Several readers: pass the wake-up on while datagrams remain,
		// or to report Close or the deadline to the others.
		if q := c.queue.Load(); c.closed.Load() || c.readDeadline.passed.Load() || (q != nil && q.Len() > 1) {
			c.notify()
		}
	}
}

// poll returns the oldest queued datagram, an error if the socket is
// closed or its read deadline has passed, or neither.
func (c *Conn) poll() (*datagram, error) {
	if c.closed.Load() {
		return nil, c.opErr("read", ErrClosed)
	}
	// As with package net, a passed deadline fails the read even when a
	// datagram is queued.
	if c.readDeadline.passed.Load() {
		return nil, c.opErr("read", os.ErrDeadlineExceeded)
	}
	return c.pop(), nil
}

// ControlMessage describes a received datagram, like the control message
// of golang.org/x/net/ipv4.
type ControlMessage struct {
	Src     netip.AddrPort // sender
	Dst     netip.Addr     // destination: the group for multicast
	IfIndex int            // arriving interface (Interface.Index)
	TTL     int            // IPv4 TTL or IPv6 hop limit
}

// ReadMsg reads one datagram into b (truncating it if b is short) and
// describes it. It blocks until a datagram arrives, the read deadline
// passes (an error wrapping os.ErrDeadlineExceeded) or the socket is closed
// (net.ErrClosed).
func (c *Conn) ReadMsg(b []byte) (n int, cm ControlMessage, err error) {
	d, err := c.next()
	if err != nil {
		return 0, ControlMessage{}, err
	}
	n = copy(b, d.buf)
	// Fields stored straight into the result: a ControlMessage built in a
	// temporary is copied out with 16-byte loads of its 8-byte stores, a
	// store-forwarding stall of ~15 ns on every read.
	cm.Src, cm.Dst, cm.IfIndex, cm.TTL = d.src, d.dst, d.ifIndex, int(d.ttl)
	d.release()
	return
}

// Message is one datagram read by ReadBatch.
type Message struct {
	// Buf is the caller's buffer; the datagram is copied into it.
	Buf []byte
	// N is the number of bytes copied into Buf.
	N int
	// Truncated is set when the datagram was longer than Buf (the rest
	// is lost, as with a short buffer for ReadMsg).
	Truncated bool
	ControlMessage
}

// ReadBatch reads up to len(ms) datagrams, like ReadBatch of
// golang.org/x/net/ipv4's PacketConn (recvmmsg): it blocks until at least
// one datagram is queued (or the deadline passes, or the socket closes, as
// ReadMsg), then takes, without blocking again, as many as are queued and
// fit in ms. Each is copied into ms[i].Buf and described in ms[i]. It
// returns the number of messages filled.
//
// Under load a reader gets many datagrams per call and per wake-up: the
// receive path wakes a socket once per batch of frames from the link, not
// once per datagram.
func (c *Conn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	d, err := c.next()
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		m := &ms[n]
		m.N = copy(m.Buf, d.buf)
		m.Truncated = len(d.buf) > len(m.Buf)
		// Field by field, as in ReadMsg (no temporary to copy out).
		m.Src, m.Dst, m.IfIndex, m.TTL = d.src, d.dst, d.ifIndex, int(d.ttl)
		d.release()
		if n++; n == len(ms) {
			return n, nil
		}
		if d = c.pop(); d == nil {
			return n, nil
		}
	}
}

// ReadFromAddrPort reads one datagram and returns its sender.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, cm, err := c.ReadMsg(b)
	return n, cm.Src, err
}

// ReadFrom implements net.PacketConn; the address is a *net.UDPAddr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, cm, err := c.ReadMsg(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(cm.Src), nil
}

// LocalAddr implements net.PacketConn.
func (c *Conn) LocalAddr() net.Addr {
	a := c.bound
	if !a.IsValid() {
		a = netip.IPv6Unspecified()
		if c.is4 {
			a = netip.IPv4Unspecified()
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, c.port))
}

// Dropped returns how many datagrams this socket lost to a full queue.
func (c *Conn) Dropped() uint64 { return c.drops.Load() }

func (c *Conn) network() string {
	if c.is4 {
		return "udp4"
	}
	return "udp6"
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network(), Source: nil, Addr: c.LocalAddr(), Err: err}
}

// writeErr is a write's error as the net package forms it: Source is the
// local address, Addr the destination ("write udp4 0.0.0.0:40000->
// 192.0.2.9:5000: ...").
func (c *Conn) writeErr(dst netip.AddrPort, err error) error {
	return &net.OpError{Op: "write", Net: c.network(), Source: c.LocalAddr(), Addr: net.UDPAddrFromAddrPort(dst), Err: err}
}

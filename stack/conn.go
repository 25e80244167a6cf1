package stack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/membership"
)

// Conn is a UDP socket on a Stack. It implements net.PacketConn and offers
// the multicast API of golang.org/x/net/ipv4 and ipv6 (RFC 3678), on this
// package's *Interface and on netip addresses. Its methods are safe for
// concurrent use.
//
// Several sockets may bind one port (as with SO_REUSEADDR for multicast
// receivers): each gets its own copy of every datagram it accepts.
type Conn struct {
	stack *Stack
	is4   bool
	port  uint16
	// bound is the local address if the socket is bound to a specific
	// one (unicast or a multicast group), else invalid.
	bound netip.Addr

	// shards is the receive path's view of the socket's filters: an
	// immutable map per shard, replaced under Stack.mu when a group is
	// joined or left; a group's state is replaced in its cell.
	shards [numShards]atomic.Pointer[filterShard]

	queue     chan *datagram
	done      chan struct{} // closed by Close; wakes readers
	closed    atomic.Bool
	closeOnce sync.Once
	drops     atomic.Uint64

	// filters is the socket's membership state. Guarded by Stack.mu.
	filters *membership.SocketFilters

	// mcastIfc is the interface for outgoing multicast (nil: the only
	// interface); an atomic so senders take no lock.
	mcastIfc atomic.Pointer[Interface]

	// Send options; atomics so senders take no lock.
	ttl      atomic.Uint32
	noLoop   atomic.Bool
	ipID     atomic.Uint32
	sendBufs sync.Pool

	// dlMu guards the deadline timers and channels. Held only to swap
	// them, never while waiting.
	dlMu          sync.Mutex
	readDeadline  deadline
	writeDeadline deadline
}

const numShards = 32

type filterShard map[membership.Key]*filterCell

// emptyShard is shared by every socket's unused shards; it is never
// modified (publishLocked copies before adding).
var emptyShard = filterShard{}

// filterCell holds one (interface, group) filter of a socket.
type filterCell struct {
	st atomic.Pointer[membership.State]
}

func shardOf(k membership.Key) int {
	a := k.Group.As16()
	return int(a[15]^a[14]<<3^a[13]<<5^byte(k.IfIndex)) % numShards
}

// datagram is one queued received datagram; recycled through a pool so the
// receive path does not allocate in the steady state.
type datagram struct {
	buf     []byte
	src     netip.AddrPort
	dst     netip.Addr
	ifIndex int
	ttl     uint8
}

var datagramPool = sync.Pool{New: func() any { return &datagram{buf: make([]byte, 0, 2048)} }}

// ListenUDP opens a UDP socket. network is "udp4", "udp6" or "udp" (the
// family of laddr, IPv6 when unspecified and invalid). laddr's address may
// be the unspecified address (receive everything on the port), an address
// of an interface, or a multicast group (receive only that group); port 0
// picks a free ephemeral port.
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
		stack: s,
		is4:   is4,
		queue: make(chan *datagram, s.cfg.QueueLen),
		done:  make(chan struct{}),
	}
	if !a.IsUnspecified() {
		c.bound = a
	}
	c.ttl.Store(1)
	c.filters = membership.NewSocketFilters(s.cfg.Limits)
	for i := range c.shards {
		c.shards[i].Store(&emptyShard)
	}
	c.initDeadlines()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("listen %s %v: %w", network, laddr, ErrStackClosed)
	}
	if !a.IsUnspecified() && !a.IsMulticast() && !s.isLocalLocked(a) {
		return nil, fmt.Errorf("listen %s %v: not an interface address: %w", network, laddr, ErrBadAddress)
	}
	ports := *s.ports.Load()
	port := laddr.Port()
	if port == 0 {
		var ok bool
		if port, ok = ephemeralPort(ports); !ok {
			return nil, fmt.Errorf("listen %s %v: no free ephemeral port", network, laddr)
		}
	}
	c.port = port
	next := make(portTable, len(ports)+1)
	for p, l := range ports {
		next[p] = l
	}
	next[port] = append(append([]*Conn(nil), ports[port]...), c)
	s.ports.Store(&next)
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

func ephemeralPort(t portTable) (uint16, bool) {
	const lo, hi = 49152, 65535
	start := lo + int(time.Now().UnixNano()%int64(hi-lo+1))
	for i := 0; i <= hi-lo; i++ {
		p := uint16(lo + (start-lo+i)%(hi-lo+1))
		if len(t[p]) == 0 {
			return p, true
		}
	}
	return 0, false
}

// Close closes the socket and returns at once: readers are woken with
// net.ErrClosed, the socket stops receiving, and its memberships are
// released in memory; the driver updates and reports that follow are made
// by the interfaces' workers (coalesced with other changes).
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closed.Store(true)
		close(c.done)
	})
	if !first {
		return c.opErr("close", ErrClosed)
	}
	c.stopDeadlines()
	s := c.stack
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	ports := *s.ports.Load()
	next := make(portTable, len(ports))
	for p, l := range ports {
		if p != c.port {
			next[p] = l
			continue
		}
		var kept []*Conn
		for _, o := range l {
			if o != c {
				kept = append(kept, o)
			}
		}
		if len(kept) > 0 {
			next[p] = kept
		}
	}
	s.ports.Store(&next)
	for _, e := range c.filters.All() {
		if ifc := s.ifcs[e.Key.IfIndex]; ifc != nil {
			ifc.applyLocked(e.Key.Group, e.State, membership.State{})
		}
		c.filters.Commit(e.Key, membership.State{})
		c.publishLocked(e.Key, membership.State{})
	}
	c.mcastIfc.Store(nil)
	return nil
}

// filterFor returns the socket's filter for k, or nil if not joined.
// Receive path: lock-free.
func (c *Conn) filterFor(k membership.Key) *membership.State {
	cell := (*c.shards[shardOf(k)].Load())[k]
	if cell == nil {
		return nil
	}
	return cell.st.Load()
}

// publishLocked makes st the receive path's view of the socket's filter for
// k. Called with Stack.mu held.
func (c *Conn) publishLocked(k membership.Key, st membership.State) {
	sh := &c.shards[shardOf(k)]
	cur := *sh.Load()
	cell := cur[k]
	if st.IsMember() {
		if cell != nil {
			cell.st.Store(&st)
			return
		}
		cell = &filterCell{}
		cell.st.Store(&st)
		next := make(filterShard, len(cur)+1)
		for kk, v := range cur {
			next[kk] = v
		}
		next[k] = cell
		sh.Store(&next)
		return
	}
	if cell == nil {
		return
	}
	next := make(filterShard, len(cur))
	for kk, v := range cur {
		if kk != k {
			next[kk] = v
		}
	}
	sh.Store(&next)
}

// enqueue queues a copy of payload. Receive path: never blocks; a full
// queue drops.
func (c *Conn) enqueue(ifIndex int, src netip.Addr, srcPort uint16, dst netip.Addr, ttl uint8, payload []byte) bool {
	d := datagramPool.Get().(*datagram)
	d.buf = append(d.buf[:0], payload...)
	d.src = netip.AddrPortFrom(src, srcPort)
	d.dst, d.ifIndex, d.ttl = dst, ifIndex, ttl
	select {
	case c.queue <- d:
		return true
	default:
		datagramPool.Put(d)
		c.drops.Add(1)
		return false
	}
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
func (c *Conn) ReadMsg(b []byte) (int, ControlMessage, error) {
	if c.closed.Load() {
		return 0, ControlMessage{}, c.opErr("read", ErrClosed)
	}
	// As with package net, a passed deadline fails the read even when a
	// datagram is queued.
	expired := c.readExpired()
	select {
	case <-expired:
		return 0, ControlMessage{}, c.opErr("read", os.ErrDeadlineExceeded)
	default:
	}
	select {
	case d := <-c.queue:
		return c.take(b, d)
	case <-c.done:
		return 0, ControlMessage{}, c.opErr("read", ErrClosed)
	case <-expired:
		return 0, ControlMessage{}, c.opErr("read", os.ErrDeadlineExceeded)
	}
}

func (c *Conn) take(b []byte, d *datagram) (int, ControlMessage, error) {
	n := copy(b, d.buf)
	cm := ControlMessage{Src: d.src, Dst: d.dst, IfIndex: d.ifIndex, TTL: int(d.ttl)}
	datagramPool.Put(d)
	return n, cm, nil
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

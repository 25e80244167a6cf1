package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/clock"
	"github.com/mcstack/mcstack/internal/rcu"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
)

// Config configures a Stack. The zero value is usable.
type Config struct {
	// Logger receives the stack's diagnostics; nil discards them.
	Logger *slog.Logger
	// Clock drives the protocol engines' timers; nil means the wall clock.
	// Tests pass a *clock.Fake to step the engines deterministically.
	Clock clock.Clock
	// Limits bounds socket and interface filter state; zero fields take
	// the membership package defaults (4096 groups per socket, 1024
	// sources per socket filter, 4096 sources per interface group).
	Limits membership.Limits
	// IGMP and MLD are the engine configurations used for every
	// interface. Interface, MTU and Source are filled in by the stack.
	IGMP, MLD proto.Config
	// NewIGMP and NewMLD build the engines; nil means proto.NewIGMP and
	// proto.NewMLD. Tests substitute recording engines.
	NewIGMP, NewMLD func(proto.Config) proto.Engine
	// QueueLen is each socket's receive queue in datagrams; default 512.
	QueueLen int
	// CoalesceDelay is how long the interface workers wait after the first
	// change of a burst before acting, so that a burst (a socket closing
	// with many groups, a leave followed by a join) becomes one driver
	// update and one set of state deltas. Default 2 ms; negative means 0.
	CoalesceDelay time.Duration
	// FilterRetry is the first delay before a failed driver filter update
	// is retried; it doubles up to 1 s. Default 10 ms.
	FilterRetry time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	c.Limits = c.Limits.WithDefaults()
	if c.NewIGMP == nil {
		c.NewIGMP = proto.NewIGMP
	}
	if c.NewMLD == nil {
		c.NewMLD = proto.NewMLD
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 512
	}
	switch {
	case c.CoalesceDelay == 0:
		c.CoalesceDelay = 2 * time.Millisecond
	case c.CoalesceDelay < 0:
		c.CoalesceDelay = 0
	}
	if c.FilterRetry <= 0 {
		c.FilterRetry = 10 * time.Millisecond
	}
	return c
}

// Stack is a user-space multicast host stack: a set of interfaces and the
// UDP sockets bound on them. Its methods are safe for concurrent use.
type Stack struct {
	cfg Config
	log *slog.Logger

	// mu is the control-plane mutex. It guards ifcs, byName, reserved,
	// nextIndex, detached, conns, closed, every Conn's membership state
	// (Conn.filters, Conn.mcastIfc) and every Interface's control state
	// (tables, MAC reference counts, pending deltas) and the writers of
	// the receive path's maps (ports, Interface.subs). It is held only for
	// computation: never across a call on an endpoint, a transmission, a
	// channel wait, a sleep or a log call; a test (TestLockRules) checks
	// it from every endpoint method and from the log handler. Under it,
	// workers may be woken (worker.mu is taken briefly after it); the
	// receive path never takes it.
	mu        sync.Mutex
	ifcs      map[int]*Interface
	byName    map[string]*Interface
	reserved  map[string]int      // names (→ index) of interfaces being attached
	detached  map[*Interface]bool // removed, maybe still draining
	nextIndex int                 // next index for endpoints without a kernel one
	conns     map[*Conn]struct{}
	closed    bool

	// adds counts AddInterface calls between their reservation and their
	// registration, so Close can wait for them (and then drain what they
	// added).
	adds sync.WaitGroup
	// closeOnce runs Close once; closeDone is closed when it finished and
	// closeErr is its result, for every caller.
	closeOnce sync.Once
	closeDone chan struct{}
	closeErr  error

	// ports is the receive path's view of bound sockets: port → the
	// sockets bound to it (an immutable list, replaced under mu when one
	// is bound or closed: O(sockets on that port)).
	ports *rcu.Map[uint16, *portList]
	// ifList is the receive path's view of the interfaces (for looping
	// back sent datagrams), replaced under mu.
	ifList atomic.Pointer[[]*Interface]
}

// portList is the immutable list of the sockets bound to one port, as
// subscriptions that accept every source (unicast and broadcast delivery
// share the multicast fan-out).
type portList struct {
	subs []sub
}

func hashPort(p uint16) uint64 { return uint64(p) * 0x9e3779b97f4a7c15 >> 7 }

// New returns a stack with no interfaces.
func New(cfg Config) *Stack {
	cfg = cfg.withDefaults()
	s := &Stack{
		cfg:       cfg,
		log:       cfg.Logger,
		ifcs:      map[int]*Interface{},
		byName:    map[string]*Interface{},
		nextIndex: 1,
		conns:     map[*Conn]struct{}{},
		closeDone: make(chan struct{}),
		ports:     rcu.New[uint16, *portList](hashPort),
	}
	s.ifList.Store(&[]*Interface{})
	return s
}

// InterfaceConfig describes an interface added to the stack.
type InterfaceConfig struct {
	// Name is the interface's name in the stack; default the endpoint's.
	Name string
	// Addrs are the interface's addresses. The first IPv4 address is the
	// source of IGMP reports and of datagrams sent from unbound sockets.
	// When no IPv6 link-local address is given, one is derived from the
	// MAC address (modified EUI-64, RFC 4291 §2.5.1) as the MLD source.
	Addrs []netip.Prefix
}

// AddInterface attaches the endpoint to the stack and starts the
// interface's workers. Before Attach returns it calls nothing on the
// endpoint but Name, MTU, HardwareAddr (and Index, for a link.Indexed
// one): no filter is programmed and no frame sent until the endpoint is
// attached. If Attach fails, AddInterface returns its error and the
// endpoint stays the caller's, untouched. Otherwise the stack owns the
// endpoint: RemoveInterface and Close close it. The interface's index is
// the endpoint's kernel ifindex when it has one.
//
// Cost: O(1) under Stack.mu; the engines are built outside it.
func (s *Stack) AddInterface(ep link.Endpoint, cfg InterfaceConfig) (*Interface, error) {
	if ep == nil {
		return nil, errors.New("add interface: nil endpoint")
	}
	name := cfg.Name
	if name == "" {
		name = ep.Name()
	}
	addrs, err := checkAddrs(cfg.Addrs)
	if err != nil {
		return nil, fmt.Errorf("add interface %s: %w", name, err)
	}
	mac, mtu := ep.HardwareAddr(), ep.MTU()
	kernelIndex := 0
	if ix, ok := ep.(link.Indexed); ok {
		kernelIndex = ix.Index()
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("add interface %s: %w", name, ErrStackClosed)
	}
	if _, dup := s.byName[name]; dup || s.reserved[name] != 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("add interface %s: %w", name, ErrInterfaceExists)
	}
	index, err := s.pickIndexLocked(kernelIndex)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("add interface %s: %w", name, err)
	}
	if s.reserved == nil {
		s.reserved = map[string]int{}
	}
	s.reserved[name] = index
	s.adds.Add(1)
	s.mu.Unlock()
	defer s.adds.Done()

	ifc := newInterface(s, ep, name, index, mac, mtu, addrs)
	if err := ep.Attach(linkHandler{ifc: ifc, b: &rxBatch{}}); err != nil {
		s.mu.Lock()
		delete(s.reserved, name)
		s.mu.Unlock()
		return nil, fmt.Errorf("add interface %s: attach: %w", name, err)
	}
	s.mu.Lock()
	delete(s.reserved, name)
	s.ifcs[index] = ifc
	s.byName[name] = ifc
	s.publishIfListLocked()
	// Program the always-needed groups (all-systems, all-nodes).
	ifc.filter.kick()
	ifc.start()
	s.mu.Unlock()
	return ifc, nil
}

// pickIndexLocked returns the index of a new interface: the kernel's when
// there is one, else the lowest free number from nextIndex.
func (s *Stack) pickIndexLocked(kernel int) (int, error) {
	taken := func(i int) bool {
		if _, ok := s.ifcs[i]; ok {
			return true
		}
		for _, r := range s.reserved {
			if r == i {
				return true
			}
		}
		return false
	}
	if kernel > 0 {
		if taken(kernel) {
			return 0, fmt.Errorf("kernel interface index %d already attached: %w", kernel, ErrInterfaceExists)
		}
		return kernel, nil
	}
	i := s.nextIndex
	for taken(i) {
		i++
	}
	s.nextIndex = i + 1
	return i, nil
}

func checkAddrs(in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		a := p.Addr()
		bits := p.Bits()
		if a.Is4In6() {
			// ::ffff:a.b.c.d/n: the IPv4 address, with the prefix length
			// counted in its 32 bits.
			a, bits = a.Unmap(), bits-96
		}
		if !p.IsValid() || bits < 0 || a.IsMulticast() || a.IsUnspecified() {
			return nil, fmt.Errorf("address %v: %w", p, ErrBadAddress)
		}
		out = append(out, netip.PrefixFrom(a.WithZone(""), bits))
	}
	return out, nil
}

func (s *Stack) publishIfListLocked() {
	l := s.sortedIfcsLocked()
	s.ifList.Store(&l)
}

func (s *Stack) sortedIfcsLocked() []*Interface {
	out := make([]*Interface, 0, len(s.ifcs))
	for _, ifc := range s.ifcs {
		out = append(out, ifc)
	}
	slices.SortFunc(out, func(a, b *Interface) int { return a.index - b.index })
	return out
}

// Interfaces returns the stack's interfaces, by index.
func (s *Stack) Interfaces() []*Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedIfcsLocked()
}

// InterfaceByName returns the named interface.
func (s *Stack) InterfaceByName(name string) (*Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ifc, ok := s.byName[name]; ok {
		return ifc, nil
	}
	return nil, fmt.Errorf("interface %q: %w", name, ErrUnknownInterface)
}

// InterfaceByIndex returns the interface with the given index (the value
// of ControlMessage.IfIndex).
func (s *Stack) InterfaceByIndex(index int) (*Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ifc, ok := s.ifcs[index]; ok {
		return ifc, nil
	}
	return nil, fmt.Errorf("interface index %d: %w", index, ErrUnknownInterface)
}

// RemoveInterface detaches the interface: every socket's memberships on it
// are dropped, the final reports are sent — each [Robustness Variable]
// times, which takes up to (Robustness-1) × Unsolicited Report Interval
// (1 s with the defaults) on Config.Clock — the driver filter is cleared
// and the endpoint is closed, all before it returns. A concurrent Close
// waits for this drain too.
//
// Cost: O(memberships on the interface) under Stack.mu, then the drain
// with no lock held.
func (s *Stack) RemoveInterface(ifc *Interface) error {
	s.mu.Lock()
	if ifc == nil || ifc.stack != s || s.ifcs[ifc.index] != ifc {
		s.mu.Unlock()
		return fmt.Errorf("remove interface: %w", ErrUnknownInterface)
	}
	s.detachLocked(ifc)
	s.mu.Unlock()
	err := ifc.drain()
	s.mu.Lock()
	delete(s.detached, ifc)
	s.mu.Unlock()
	return err
}

// detachLocked unlinks ifc from the stack and releases every socket
// membership on it. The caller drains it afterwards.
func (s *Stack) detachLocked(ifc *Interface) {
	delete(s.ifcs, ifc.index)
	delete(s.byName, ifc.name)
	if s.detached == nil {
		s.detached = map[*Interface]bool{}
	}
	s.detached[ifc] = true
	s.publishIfListLocked()
	ifc.removed.Store(true)
	for c := range s.conns {
		for _, e := range c.filters.RemoveInterface(ifc.index) {
			ifc.publishSubLocked(c, e.Key.Group, membership.State{})
			ifc.applyLocked(e.Key.Group, e.State, membership.State{})
		}
		c.mcastIfc.CompareAndSwap(ifc, nil)
	}
}

// Close closes every socket and removes every interface, draining each as
// RemoveInterface does (the interfaces drain in parallel, so Close takes
// as long as the slowest). It returns when all of that is done — also
// when called again or concurrently (every call waits for the one close
// and returns its result), or while a RemoveInterface drains (Close waits
// for that interface too). An AddInterface racing Close either fails with
// ErrStackClosed or completes, and Close then drains its interface. The
// stack cannot be used afterwards.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.close()
		close(s.closeDone)
	})
	<-s.closeDone
	return s.closeErr
}

func (s *Stack) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.adds.Wait()

	s.mu.Lock()
	// Detach every interface first, in one critical section: the sockets'
	// memberships are released as part of the removal, so the engines
	// send their shutdown reports rather than ordinary leaves.
	ifcs := s.sortedIfcsLocked()
	for _, ifc := range ifcs {
		s.detachLocked(ifc)
	}
	for ifc := range s.detached {
		if !slices.Contains(ifcs, ifc) {
			ifcs = append(ifcs, ifc) // being drained by RemoveInterface: wait for it
		}
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	errs := make([]error, len(ifcs))
	var wg sync.WaitGroup
	for i, ifc := range ifcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ifc.drain()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	clear(s.detached)
	s.mu.Unlock()
	return errors.Join(errs...)
}

// resolveLocked returns the interface a membership or send refers to: ifc
// itself if it belongs to the stack, or the only interface when ifc is nil.
func (s *Stack) resolveLocked(ifc *Interface) (*Interface, error) {
	if ifc == nil {
		if len(s.ifcs) == 1 {
			for _, only := range s.ifcs {
				return only, nil
			}
		}
		return nil, fmt.Errorf("nil interface with %d interfaces: %w", len(s.ifcs), ErrUnknownInterface)
	}
	if ifc.stack != s || s.ifcs[ifc.index] != ifc {
		return nil, fmt.Errorf("interface %s: %w", ifc.name, ErrUnknownInterface)
	}
	return ifc, nil
}

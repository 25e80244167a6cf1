package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/clock"
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

	// mu is the control-plane mutex. It guards ifcs, byName, nextIndex,
	// conns, closed, every Conn's membership state (Conn.filters,
	// Conn.mcastIfc) and every Interface's control state (tables, MAC
	// reference counts, pending deltas). It is held only for computation:
	// never across a driver call, a transmission, a channel wait or a
	// sleep. The receive path never takes it.
	mu        sync.Mutex
	ifcs      map[int]*Interface
	byName    map[string]*Interface
	nextIndex int
	conns     map[*Conn]struct{}
	closed    bool

	// ports is the receive path's view of bound sockets, replaced (copy on
	// write, under mu) when a socket is bound or closed.
	ports atomic.Pointer[portTable]
	// ifList is the receive path's view of the interfaces (for looping
	// back sent datagrams), replaced under mu.
	ifList atomic.Pointer[[]*Interface]
}

// portTable maps a UDP port to the sockets bound to it. It is immutable.
type portTable map[uint16][]*Conn

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
	}
	s.ports.Store(&portTable{})
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
// interface's workers. The stack owns the endpoint from then on:
// RemoveInterface and Close close it.
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("add interface %s: %w", name, ErrStackClosed)
	}
	if _, dup := s.byName[name]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("add interface %s: %w", name, ErrInterfaceExists)
	}
	ifc := newInterface(s, ep, name, s.nextIndex, addrs)
	s.nextIndex++
	s.ifcs[ifc.index] = ifc
	s.byName[name] = ifc
	s.publishIfListLocked()
	// The workers start before mu is released: a concurrent Close or
	// RemoveInterface may drain the interface from then on, and draining
	// waits for them to exit.
	ifc.start()
	s.mu.Unlock()

	if err := ep.Attach(linkHandler{ifc}); err != nil {
		s.mu.Lock()
		ours := s.ifcs[ifc.index] == ifc
		if ours {
			s.detachLocked(ifc)
		}
		s.mu.Unlock()
		if ours {
			// The endpoint stays the caller's: stop the workers only.
			ifc.stopWorkers()
		}
		return nil, fmt.Errorf("add interface %s: attach: %w", name, err)
	}
	// Program the always-needed groups (all-systems, all-nodes) at once.
	ifc.filter.kick()
	return ifc, nil
}

func checkAddrs(in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		a := p.Addr()
		if !p.IsValid() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() {
			return nil, fmt.Errorf("address %v: %w", p, ErrBadAddress)
		}
		out = append(out, netip.PrefixFrom(a.WithZone(""), p.Bits()))
	}
	return out, nil
}

func (s *Stack) publishIfListLocked() {
	l := make([]*Interface, 0, len(s.ifcs))
	for _, ifc := range s.ifcs {
		l = append(l, ifc)
	}
	s.ifList.Store(&l)
}

// Interfaces returns the stack's interfaces, by index.
func (s *Stack) Interfaces() []*Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Interface, 0, len(s.ifcs))
	for i := 1; i < s.nextIndex; i++ {
		if ifc, ok := s.ifcs[i]; ok {
			out = append(out, ifc)
		}
	}
	return out
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

// RemoveInterface detaches the interface: every socket's memberships on it
// are dropped, the final reports are sent, the driver filter is cleared,
// the workers stop and the endpoint is closed, all before it returns.
func (s *Stack) RemoveInterface(ifc *Interface) error {
	s.mu.Lock()
	if ifc == nil || ifc.stack != s || s.ifcs[ifc.index] != ifc {
		s.mu.Unlock()
		return fmt.Errorf("remove interface: %w", ErrUnknownInterface)
	}
	s.detachLocked(ifc)
	s.mu.Unlock()
	return ifc.drain()
}

// detachLocked unlinks ifc from the stack and releases every socket
// membership on it. The caller drains it afterwards.
func (s *Stack) detachLocked(ifc *Interface) {
	delete(s.ifcs, ifc.index)
	delete(s.byName, ifc.name)
	s.publishIfListLocked()
	ifc.removed.Store(true)
	for c := range s.conns {
		for _, e := range c.filters.RemoveInterface(ifc.index) {
			c.publishLocked(e.Key, membership.State{})
			ifc.applyLocked(e.Key.Group, e.State, membership.State{})
		}
		c.mcastIfc.CompareAndSwap(ifc, nil)
	}
}

// Close closes every socket and removes every interface (draining each as
// RemoveInterface does). The stack cannot be used afterwards.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Detach every interface first, in one critical section: the sockets'
	// memberships are released as part of the removal, so the engines
	// send their shutdown reports rather than ordinary leaves, and a
	// concurrent RemoveInterface of one of them cannot make Close fail
	// with ErrUnknownInterface (that caller drains the interface it took).
	ifcs := make([]*Interface, 0, len(s.ifcs))
	for i := 1; i < s.nextIndex; i++ {
		if ifc, ok := s.ifcs[i]; ok {
			ifcs = append(ifcs, ifc)
			s.detachLocked(ifc)
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
	var errs []error
	for _, ifc := range ifcs {
		if err := ifc.drain(); err != nil {
			errs = append(errs, err)
		}
	}
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

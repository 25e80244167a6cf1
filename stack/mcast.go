package stack

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/mcstack/mcstack/membership"
)

// The RFC 3678 multicast API. Every method applies whole or not at all: on
// error (a sentinel of this package or of package membership, wrapped with
// context) nothing changed. ifc may be nil when the stack has exactly one
// interface. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, which
// netip.AddrFromSlice(net.ParseIP(...)) returns) are taken as the IPv4
// addresses they map, for groups and sources alike, as everywhere in the
// package.
//
// Cost: a join, leave or source change is O(sources of the socket's filter
// for the group + sources of the interface's merged state for the group +
// sockets joined to the group on the same port) under Stack.mu, plus an
// amortized O(1) for the receive path's maps; no I/O (the driver update
// and reports follow on the interface's workers).

// JoinGroup joins group any-source: the socket's filter for (ifc, group)
// becomes EXCLUDE {} (RFC 3678 §4.1.1). Joining twice is ErrAlreadyJoined.
func (c *Conn) JoinGroup(ifc *Interface, group netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpJoin})
}

// LeaveGroup leaves group, whatever the filter mode.
func (c *Conn) LeaveGroup(ifc *Interface, group netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpLeave})
}

// JoinSourceSpecificGroup adds source to the socket's INCLUDE filter for
// group, joining it if needed (RFC 3678 §4.1.2). On a group joined
// any-source it is ErrModeMismatch.
func (c *Conn) JoinSourceSpecificGroup(ifc *Interface, group, source netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpJoinSource, Source: source})
}

// LeaveSourceSpecificGroup removes source from the INCLUDE filter; the
// last one leaves the group.
func (c *Conn) LeaveSourceSpecificGroup(ifc *Interface, group, source netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpLeaveSource, Source: source})
}

// ExcludeSourceSpecificGroup blocks source on a group joined any-source
// (RFC 3678 §4.1.1 block). On an INCLUDE filter it is ErrModeMismatch.
func (c *Conn) ExcludeSourceSpecificGroup(ifc *Interface, group, source netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpBlock, Source: source})
}

// IncludeSourceSpecificGroup unblocks a source blocked with
// ExcludeSourceSpecificGroup.
func (c *Conn) IncludeSourceSpecificGroup(ifc *Interface, group, source netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpUnblock, Source: source})
}

// BlockSource is ExcludeSourceSpecificGroup, under RFC 3678's name.
func (c *Conn) BlockSource(ifc *Interface, group, source netip.Addr) error {
	return c.ExcludeSourceSpecificGroup(ifc, group, source)
}

// UnblockSource is IncludeSourceSpecificGroup, under RFC 3678's name.
func (c *Conn) UnblockSource(ifc *Interface, group, source netip.Addr) error {
	return c.IncludeSourceSpecificGroup(ifc, group, source)
}

// SetSourceFilter replaces the socket's filter for (ifc, group) with mode
// and sources (RFC 3678 §4.2.1, setsourcefilter). INCLUDE with no sources
// leaves the group; an unjoined group is joined.
func (c *Conn) SetSourceFilter(ifc *Interface, group netip.Addr, mode membership.Mode, sources []netip.Addr) error {
	return c.update(ifc, group, membership.Op{Kind: membership.OpSetFilter, Mode: mode, Sources: slices.Clone(sources)})
}

// SourceFilter returns the socket's filter for (ifc, group) (RFC 3678
// §4.2.2, getsourcefilter); ErrNotJoined when there is none.
func (c *Conn) SourceFilter(ifc *Interface, group netip.Addr) (membership.Mode, []netip.Addr, error) {
	group = group.Unmap()
	s := c.stack
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed.Load() {
		return 0, nil, fmt.Errorf("get source filter %v: %w", group, ErrClosed)
	}
	ifc, err := s.resolveLocked(ifc)
	if err != nil {
		return 0, nil, fmt.Errorf("get source filter %v: %w", group, err)
	}
	st, ok := c.filters.Get(membership.Key{IfIndex: ifc.index, Group: group})
	if !ok {
		return 0, nil, fmt.Errorf("get source filter %v on %s: %w", group, ifc.name, membership.ErrNotJoined)
	}
	return st.Mode, slices.Clone(st.Sources), nil
}

// update applies one membership operation: the socket's filter, then the
// interface's merged state (whose limit may still refuse it), then queues
// the delta and filter change for the interface's workers.
func (c *Conn) update(ifc *Interface, group netip.Addr, op membership.Op) error {
	group = group.Unmap()
	op.Source = op.Source.Unmap()
	for i, a := range op.Sources {
		op.Sources[i] = a.Unmap()
	}
	s := c.stack
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("%s %v: %w", op.Kind, group, ErrClosed)
	}
	ifc, err := s.resolveLocked(ifc)
	if err != nil {
		return fmt.Errorf("%s %v: %w", op.Kind, group, err)
	}
	if group.IsValid() && group.Is4() != c.is4 {
		return fmt.Errorf("%s %v on %s: %s socket: %w", op.Kind, group, ifc.name, c.network(), membership.ErrFamilyMismatch)
	}
	k := membership.Key{IfIndex: ifc.index, Group: group}
	old, new, err := c.filters.Propose(k, op)
	if err != nil {
		return fmt.Errorf("%s: %w", ifc.name, err)
	}
	d, changed, err := ifc.tableFor(group).Apply(group, old, new)
	if err != nil {
		return fmt.Errorf("%s %v on %s: %w", op, group, ifc.name, err)
	}
	c.filters.Commit(k, new)
	ifc.publishSubLocked(c, group, new)
	if changed {
		ifc.noteDeltaLocked(d)
	}
	return nil
}

// SetMulticastInterface sets the interface outgoing multicast datagrams
// use; nil means the stack's only interface.
func (c *Conn) SetMulticastInterface(ifc *Interface) error {
	s := c.stack
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("set multicast interface: %w", ErrClosed)
	}
	if ifc != nil {
		if _, err := s.resolveLocked(ifc); err != nil {
			return fmt.Errorf("set multicast interface: %w", err)
		}
	}
	// Stored under mu so that a concurrent RemoveInterface (which resets
	// it under mu) cannot leave it pointing at a removed interface.
	c.mcastIfc.Store(ifc)
	return nil
}

// MulticastInterface returns the interface set by SetMulticastInterface.
func (c *Conn) MulticastInterface() *Interface { return c.mcastIfc.Load() }

// SetMulticastTTL sets the IPv4 TTL of outgoing multicast datagrams
// (default 1, as RFC 1112 §6.1 requires).
func (c *Conn) SetMulticastTTL(ttl int) error {
	if ttl < 0 || ttl > 255 {
		return fmt.Errorf("set multicast ttl %d: out of range 0..255", ttl)
	}
	c.ttl.Store(uint32(ttl))
	return nil
}

// MulticastTTL returns the multicast TTL.
func (c *Conn) MulticastTTL() int { return int(c.ttl.Load()) }

// SetMulticastHopLimit is SetMulticastTTL for IPv6 (default 1).
func (c *Conn) SetMulticastHopLimit(hops int) error { return c.SetMulticastTTL(hops) }

// MulticastHopLimit returns the multicast hop limit.
func (c *Conn) MulticastHopLimit() int { return c.MulticastTTL() }

// SetMulticastLoopback sets whether multicast datagrams sent by this
// socket are also delivered to the host's own sockets joined to the group
// on the outgoing interface (default true, as in the BSD socket API).
func (c *Conn) SetMulticastLoopback(on bool) error {
	c.noLoop.Store(!on)
	return nil
}

// MulticastLoopback returns the loopback setting.
func (c *Conn) MulticastLoopback() bool { return !c.noLoop.Load() }

// SetTOS sets the IPv4 type-of-service octet of outgoing datagrams (DSCP
// in its upper six bits, e.g. 0xb8 for EF or 0x88 for AF41 video), as
// x/net/ipv4's SetTOS. Default 0.
func (c *Conn) SetTOS(tos int) error {
	if tos < 0 || tos > 255 {
		return fmt.Errorf("set tos %d: %w", tos, ErrBadTOS)
	}
	c.tos.Store(uint32(tos))
	return nil
}

// TOS returns the type-of-service octet set by SetTOS.
func (c *Conn) TOS() int { return int(c.tos.Load()) }

// SetTrafficClass is SetTOS for IPv6 (the Traffic Class octet), as
// x/net/ipv6's SetTrafficClass.
func (c *Conn) SetTrafficClass(tclass int) error { return c.SetTOS(tclass) }

// TrafficClass returns the traffic class set by SetTrafficClass.
func (c *Conn) TrafficClass() int { return c.TOS() }

package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/wire"
)

// Interface is one link endpoint attached to a stack.
type Interface struct {
	stack *Stack
	ep    link.Endpoint
	name  string
	index int
	mac   wire.MAC
	mtu   int
	log   *slog.Logger

	// Immutable after creation: read by the receive path without locks.
	addrs    []netip.Prefix
	src4     netip.Addr // IGMP and default IPv4 source; invalid if none
	src6LL   netip.Addr // MLD source: link-local
	src6     netip.Addr // default IPv6 source for non-link-local scopes
	removed  atomic.Bool
	counters counterSet

	// Control state, guarded by Stack.mu.
	table4, table6 *membership.Table
	macRefs        map[wire.MAC]int // member groups per MAC
	pending        map[netip.Addr]*pendingDelta
	pendingOrder   []netip.Addr

	filter *filterWorker
	proto  *protoWorker
}

// pendingDelta is the coalesced change of one group's merged state since
// the protocol worker last took the deltas.
type pendingDelta struct {
	old, new membership.State
}

func newInterface(s *Stack, ep link.Endpoint, name string, index int, addrs []netip.Prefix) *Interface {
	ifc := &Interface{
		stack:   s,
		ep:      ep,
		name:    name,
		index:   index,
		mac:     ep.HardwareAddr(),
		mtu:     ep.MTU(),
		log:     s.log.With("interface", name),
		table4:  membership.NewTable(s.cfg.Limits),
		table6:  membership.NewTable(s.cfg.Limits),
		macRefs: map[wire.MAC]int{},
		pending: map[netip.Addr]*pendingDelta{},
	}
	haveLL := false
	for _, p := range addrs {
		a := p.Addr()
		switch {
		case a.Is4() && !ifc.src4.IsValid():
			ifc.src4 = a
		case a.Is6() && a.IsLinkLocalUnicast():
			haveLL = true
			if !ifc.src6LL.IsValid() {
				ifc.src6LL = a
			}
		case a.Is6() && !ifc.src6.IsValid():
			ifc.src6 = a
		}
	}
	if !haveLL {
		ll := linkLocalFromMAC(ifc.mac)
		addrs = append(addrs, netip.PrefixFrom(ll, 64))
		ifc.src6LL = ll
	}
	if !ifc.src6.IsValid() {
		ifc.src6 = ifc.src6LL
	}
	ifc.addrs = addrs
	ifc.filter = newFilterWorker(ifc)
	ifc.proto = newProtoWorker(ifc)
	return ifc
}

// linkLocalFromMAC derives fe80::/64 with a modified EUI-64 interface
// identifier (RFC 4291 §2.5.1, appendix A).
func linkLocalFromMAC(m wire.MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0,
		m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]})
}

// Name returns the interface's name in the stack.
func (ifc *Interface) Name() string { return ifc.name }

// Index returns the interface's index in the stack (1, 2, ...).
func (ifc *Interface) Index() int { return ifc.index }

// Addrs returns the interface's addresses, including a derived IPv6
// link-local address.
func (ifc *Interface) Addrs() []netip.Prefix { return slices.Clone(ifc.addrs) }

// HardwareAddr returns the endpoint's MAC address.
func (ifc *Interface) HardwareAddr() wire.MAC { return ifc.mac }

// MTU returns the endpoint's MTU.
func (ifc *Interface) MTU() int { return ifc.mtu }

func (ifc *Interface) String() string { return ifc.name }

func (ifc *Interface) tableFor(group netip.Addr) *membership.Table {
	if group.Is4() {
		return ifc.table4
	}
	return ifc.table6
}

// applyLocked moves one socket's contribution to group from old to new in
// the interface's merged state, and queues the resulting delta and filter
// change for the workers. It cannot fail (limits are checked by the
// caller's Apply, or skipped for releases). Called with Stack.mu held.
func (ifc *Interface) applyLocked(group netip.Addr, old, new membership.State) {
	d, changed := ifc.tableFor(group).Revert(group, old, new)
	if changed {
		ifc.noteDeltaLocked(d)
	}
}

// noteDeltaLocked records a change of the merged state of d.Group: MAC
// reference counts for the filter worker, the coalesced delta for the
// protocol worker. Called with Stack.mu held.
func (ifc *Interface) noteDeltaLocked(d membership.Delta) {
	was, is := d.Old.IsMember(), d.New.IsMember()
	if was != is {
		mac, _ := wire.MulticastMAC(d.Group)
		if is {
			ifc.macRefs[mac]++
		} else if ifc.macRefs[mac]--; ifc.macRefs[mac] <= 0 {
			delete(ifc.macRefs, mac)
		}
		ifc.filter.kick()
	}
	if p, ok := ifc.pending[d.Group]; ok {
		p.new = d.New
	} else {
		ifc.pending[d.Group] = &pendingDelta{old: d.Old, new: d.New}
		ifc.pendingOrder = append(ifc.pendingOrder, d.Group)
	}
	ifc.proto.kick()
}

// takeDeltasLocked returns the coalesced deltas, dropping groups whose
// state came back to where it was. Called with Stack.mu held.
func (ifc *Interface) takeDeltasLocked() (v4, v6 []membership.Delta) {
	for _, g := range ifc.pendingOrder {
		p := ifc.pending[g]
		if p.old.Equal(p.new) {
			continue
		}
		d := membership.Delta{Group: g, Old: p.old, New: p.new}
		if g.Is4() {
			v4 = append(v4, d)
		} else {
			v6 = append(v6, d)
		}
	}
	clear(ifc.pending)
	ifc.pendingOrder = ifc.pendingOrder[:0]
	return v4, v6
}

// neededMACsLocked is the multicast MAC set the driver must accept: every
// member group's MAC plus all-systems (224.0.0.1) and all-nodes (ff02::1),
// whose queries a host must hear. Called with Stack.mu held; unsorted (the
// caller sorts after unlocking, so joins do not wait for the sort).
func (ifc *Interface) neededMACsLocked() []wire.MAC {
	out := make([]wire.MAC, 0, len(ifc.macRefs)+2)
	for m := range ifc.macRefs {
		out = append(out, m)
	}
	for _, g := range alwaysJoined {
		m, _ := wire.MulticastMAC(g)
		if _, ok := ifc.macRefs[m]; !ok {
			out = append(out, m)
		}
	}
	return out
}

func sortMACs(ms []wire.MAC) {
	slices.SortFunc(ms, func(a, b wire.MAC) int { return slices.Compare(a[:], b[:]) })
}

var alwaysJoined = []netip.Addr{
	netip.AddrFrom4([4]byte{224, 0, 0, 1}),
	netip.MustParseAddr("ff02::1"),
}

func (ifc *Interface) start() {
	go ifc.filter.run()
	go ifc.proto.run()
}

// drain finishes the interface after detachLocked: the protocol worker
// sends the pending reports and the engines' final reports; the filter
// worker clears the driver filter; both exit; the endpoint is closed.
func (ifc *Interface) drain() error {
	ifc.proto.stopAndWait()
	ferr := ifc.filter.stopAndWait()
	cerr := ifc.ep.Close()
	if cerr != nil && errors.Is(cerr, link.ErrClosed) {
		cerr = nil
	}
	if ferr != nil || cerr != nil {
		return fmt.Errorf("remove interface %s: %w", ifc.name, errors.Join(ferr, cerr))
	}
	return nil
}

// stopWorkers stops the workers of an interface whose endpoint could not
// be attached, without touching the endpoint further.
func (ifc *Interface) stopWorkers() {
	ifc.proto.stopAndWait()
	close(ifc.filter.stopc)
	<-ifc.filter.done
}

// Sync waits until the workers have finished the work queued before the
// call: the driver filter reflects the current memberships (or the update
// failed, and Sync returns the driver's error) and the engines have been
// given the current deltas and have transmitted what they queued.
func (ifc *Interface) Sync(ctx context.Context) error {
	if err := ifc.proto.sync(ctx); err != nil {
		return fmt.Errorf("sync %s: %w", ifc.name, err)
	}
	if err := ifc.filter.sync(ctx); err != nil {
		return fmt.Errorf("sync %s: %w", ifc.name, err)
	}
	return nil
}

// Status is a snapshot of an interface's state for displays such as
// `mcast stat`.
type Status struct {
	Name   string
	Index  int
	MAC    wire.MAC
	MTU    int
	Addrs  []netip.Prefix
	Groups []membership.GroupInfo // IPv4 groups first, each family sorted
	IGMP   proto.Status
	MLD    proto.Status
	Driver DriverStatus
	// Counters of the receive and send paths, by name (see CounterNames).
	Counters map[string]uint64
}

// DriverStatus describes the link-layer multicast filter.
type DriverStatus struct {
	// Exact is the MAC set last programmed successfully.
	Exact []wire.MAC
	// AllMulticast is set when the driver fell back to accepting every
	// multicast frame (its exact filter was too small).
	AllMulticast bool
	// Requests counts the requests to reprogram: the initial one and one
	// per group that became or stopped being a member (a leave and a
	// re-join count two even if they cancel out); Calls counts the driver
	// updates actually made for them (coalescing makes Calls ≤ Requests).
	Requests, Calls uint64
	// Errors counts failed updates; LastError is the latest failure's
	// message, cleared by the next success.
	Errors    uint64
	LastError string
	// Pending is set when the programmed set differs from the needed one
	// (an update is waiting, running or failed).
	Pending bool
}

// Status returns a snapshot of the interface.
func (ifc *Interface) Status() Status {
	s := ifc.stack
	s.mu.Lock()
	groups := append(ifc.table4.Groups(), ifc.table6.Groups()...)
	var needed []wire.MAC
	if !ifc.removed.Load() {
		needed = ifc.neededMACsLocked()
	}
	s.mu.Unlock()
	sortMACs(needed)
	st := Status{
		Name:     ifc.name,
		Index:    ifc.index,
		MAC:      ifc.mac,
		MTU:      ifc.mtu,
		Addrs:    ifc.Addrs(),
		Groups:   groups,
		Driver:   ifc.filter.status(),
		Counters: ifc.counters.snapshot(),
	}
	// A change the filter worker has not picked up yet (it is coalescing
	// or busy) is pending too.
	if !slices.Equal(st.Driver.Exact, needed) {
		st.Driver.Pending = true
	}
	if es := ifc.proto.status.Load(); es != nil {
		st.IGMP, st.MLD = es.igmp, es.mld
	}
	return st
}

package stack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/internal/rcu"
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

	// subs is the receive path's multicast demultiplexer: (group, port) →
	// the sockets joined to the group on this interface and bound to the
	// port, each with its filter. Values are immutable; a membership
	// change publishes a new value for its one key under Stack.mu.
	subs *rcu.Map[groupPort, subList]

	// linkState is the last state the endpoint reported (nil: none yet,
	// taken to be up); gone is closed when it reported Gone or the
	// interface was removed (Done). linkMu serializes HandleLinkState
	// with itself (the endpoint calls it from one goroutine, but Done may
	// close gone concurrently); held for a few instructions only.
	linkState atomic.Pointer[link.LinkState]
	linkMu    sync.Mutex
	wasDown   bool // guarded by linkMu: the link was down since the last announcement
	gone      chan struct{}
	goneOnce  sync.Once

	// Control state, guarded by Stack.mu. The maps are nil while empty
	// (an idle interface of an emulated host costs none).
	table4, table6 *membership.Table
	macRefs        map[wire.MAC]int       // member groups per MAC
	macGone        map[wire.MAC]time.Time // MACs no longer needed, and since when (see neededMACsLocked)
	pending        map[netip.Addr]pendingDelta
	pendingOrder   []netip.Addr
	lastChange     time.Time // when the newest pending delta changed

	filter *filterWorker
	proto  *protoWorker

	// drainOnce runs the drain once; later callers wait on drained and
	// return drainErr.
	drainOnce sync.Once
	drained   chan struct{}
	drainErr  error
}

// groupPort is the key of Interface.subs.
type groupPort struct {
	group netip.Addr
	port  uint16
}

func hashGroupPort(k groupPort) uint64 {
	// As4 for IPv4 (the common case): As16's 16-byte array is built with
	// two 8-byte stores and read back whole, a store-forwarding stall of
	// ~15 cycles on each received datagram.
	var x uint64
	if k.group.Is4() {
		a := k.group.As4()
		x = uint64(binary.LittleEndian.Uint32(a[:])) * 0x9e3779b97f4a7c15
	} else {
		a := k.group.As16()
		x = binary.LittleEndian.Uint64(a[8:]) ^ binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15
	}
	x ^= uint64(k.port) << 7
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}

// subList is the immutable list of one (group, port)'s subscribers.
type subList struct {
	subs []sub
}

// sub is one socket's subscription: its filter for the group on the
// interface (immutable: its source slice is never modified; a change
// publishes a new list).
type sub struct {
	c  *Conn
	st membership.State
}

// pendingDelta is the coalesced change of one group's merged state since
// the protocol worker last took the deltas: since is when the first change
// was made, changed when the latest was.
type pendingDelta struct {
	old, new       membership.State
	since, changed time.Time
}

// newInterface builds an interface from what the endpoint told about
// itself. It takes no lock and calls nothing on the endpoint.
func newInterface(s *Stack, ep link.Endpoint, name string, index int, mac wire.MAC, mtu int, addrs []netip.Prefix) *Interface {
	ifc := &Interface{
		stack:   s,
		ep:      ep,
		name:    name,
		index:   index,
		mac:     mac,
		mtu:     mtu,
		log:     s.log.With("interface", name),
		subs:    rcu.New[groupPort, subList](hashGroupPort),
		gone:    make(chan struct{}),
		drained: make(chan struct{}),
		table4:  membership.NewTable(s.cfg.Limits),
		table6:  membership.NewTable(s.cfg.Limits),
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

// Index returns the interface's index: the kernel's ifindex when the
// endpoint is on a kernel interface (it implements link.Indexed), so that
// net.InterfaceByIndex(ControlMessage.IfIndex) finds it; otherwise a small
// number unique in the stack (1, 2, ...).
func (ifc *Interface) Index() int { return ifc.index }

// Addrs returns the interface's addresses, including a derived IPv6
// link-local address.
func (ifc *Interface) Addrs() []netip.Prefix { return slices.Clone(ifc.addrs) }

// HardwareAddr returns the endpoint's MAC address.
func (ifc *Interface) HardwareAddr() wire.MAC { return ifc.mac }

// MTU returns the endpoint's MTU.
func (ifc *Interface) MTU() int { return ifc.mtu }

func (ifc *Interface) String() string { return ifc.name }

// LinkState returns the link's state as the endpoint last reported it (Up
// when it never reported one).
func (ifc *Interface) LinkState() link.LinkState {
	if st := ifc.linkState.Load(); st != nil {
		return *st
	}
	return link.LinkState{Up: true}
}

// Done returns a channel closed when the interface can no longer carry
// traffic for good: its link is gone (the kernel interface was deleted,
// the TAP device removed) or it was removed from the stack. A program
// receiving on the interface selects on it to stop instead of running on.
func (ifc *Interface) Done() <-chan struct{} { return ifc.gone }

func (ifc *Interface) markGone() { ifc.goneOnce.Do(func() { close(ifc.gone) }) }

func (ifc *Interface) linkGone() bool {
	st := ifc.linkState.Load()
	return st != nil && st.Gone
}

// setLinkState records a state the endpoint reported (link.Handler). When
// the link comes up after having been down (also when it was down at
// AddInterface) the protocol worker re-announces every group, as the
// kernel does on NETDEV_UP; the reports sent while it was down were lost.
// When it is gone, Done is closed and Sync fails with ErrLinkGone.
// Memberships are kept in every case.
func (ifc *Interface) setLinkState(st link.LinkState) {
	ifc.linkMu.Lock()
	prev := ifc.linkState.Load()
	ifc.linkState.Store(&st)
	announce := false
	switch {
	case st.Gone:
	case !st.Up:
		ifc.wasDown = true
	case ifc.wasDown:
		ifc.wasDown = false
		announce = true
	}
	ifc.linkMu.Unlock()
	switch {
	case st.Gone:
		if prev == nil || !prev.Gone {
			ifc.log.Warn("link gone: the interface disappeared; remove it from the stack", "err", st.Err)
			ifc.counters.inc(cLinkChanges)
			ifc.markGone()
			// Let the workers notice: they stop calling the driver.
			ifc.filter.w.wake()
			ifc.proto.w.wake()
		}
	case prev == nil || prev.Up != st.Up:
		ifc.counters.inc(cLinkChanges)
		if st.Up {
			ifc.log.Info("link up", "reannounce", announce)
		} else {
			ifc.log.Warn("link down; memberships kept, reports resume when it comes back", "err", st.Err)
		}
		if announce {
			ifc.proto.reannounce.Store(true)
			ifc.proto.w.wake()
		}
	}
}

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

// publishSubLocked makes st the receive path's view of c's filter for
// group on this interface: one (group, port) list is replaced, O(sockets
// on that list). Called with Stack.mu held.
func (ifc *Interface) publishSubLocked(c *Conn, group netip.Addr, st membership.State) {
	k := groupPort{group, c.port}
	cur, _ := ifc.subs.Load(k)
	n := len(cur.subs)
	if st.IsMember() {
		n++
	}
	next := make([]sub, 0, n)
	for _, sb := range cur.subs {
		if sb.c != c {
			next = append(next, sb)
		}
	}
	if st.IsMember() {
		next = append(next, sub{c: c, st: st})
	}
	if len(next) == 0 {
		ifc.subs.Delete(k)
		return
	}
	ifc.subs.Store(k, subList{subs: next})
}

// noteDeltaLocked records a change of the merged state of d.Group: MAC
// reference counts for the filter worker, the coalesced delta (with the
// time of the change) for the protocol worker. Called with Stack.mu held.
func (ifc *Interface) noteDeltaLocked(d membership.Delta) {
	now := ifc.stack.cfg.Clock.Now()
	was, is := d.Old.IsMember(), d.New.IsMember()
	if was != is {
		mac, _ := wire.MulticastMAC(d.Group)
		if is {
			if ifc.macRefs == nil {
				ifc.macRefs = map[wire.MAC]int{}
			}
			if ifc.macRefs[mac]++; ifc.macRefs[mac] == 1 {
				delete(ifc.macGone, mac)
			}
		} else if ifc.macRefs[mac]--; ifc.macRefs[mac] <= 0 {
			delete(ifc.macRefs, mac)
			if ifc.macGone == nil {
				ifc.macGone = map[wire.MAC]time.Time{}
			}
			ifc.macGone[mac] = now
		}
		ifc.filter.kick()
	}
	if p, ok := ifc.pending[d.Group]; ok {
		p.new, p.changed = d.New, now
		ifc.pending[d.Group] = p
	} else {
		if ifc.pending == nil {
			ifc.pending = map[netip.Addr]pendingDelta{}
		}
		ifc.pending[d.Group] = pendingDelta{old: d.Old, new: d.New, since: now, changed: now}
		ifc.pendingOrder = append(ifc.pendingOrder, d.Group)
	}
	ifc.lastChange = now
	ifc.proto.w.wake()
}

// takeDeltasLocked returns the coalesced deltas that are ready for the
// engines at now, dropping groups whose state came back to where it was,
// and when the rest will be ready (zero: nothing left). Called with
// Stack.mu held.
//
// A change is held until it is CoalesceDelay old, so that a leave followed
// within CoalesceDelay by a re-join of the group cancels out whatever woke
// the worker in between (a query, an engine timer, another group's
// change): no leave is sent. A burst of changes, each less than
// CoalesceDelay after the previous one, is handed over whole once the
// burst is quiet for CoalesceDelay — but no group waits more than
// coalesceHold(CoalesceDelay) behind a burst that never ends. force (Sync,
// stop) takes everything at once.
func (ifc *Interface) takeDeltasLocked(now time.Time, force bool) (v4, v6 []membership.Delta, next time.Time) {
	delay := ifc.stack.cfg.CoalesceDelay
	quiet := force || !now.Before(ifc.lastChange.Add(delay))
	hold := coalesceHold(delay)
	kept := ifc.pendingOrder[:0]
	for _, g := range ifc.pendingOrder {
		p := ifc.pending[g]
		stable := !now.Before(p.changed.Add(delay))
		if !quiet && !(stable && !now.Before(p.since.Add(hold))) {
			kept = append(kept, g)
			ready := maxTime(p.changed.Add(delay), minTime(ifc.lastChange.Add(delay), p.since.Add(hold)))
			next = minTime(next, ready)
			continue
		}
		delete(ifc.pending, g)
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
	clear(ifc.pendingOrder[len(kept):])
	ifc.pendingOrder = kept
	if len(kept) == 0 {
		ifc.pending, ifc.pendingOrder = nil, nil // free an idle interface's memory
	}
	return v4, v6, next
}

// coalesceHold bounds how long a change waits behind a burst that keeps
// going: ten coalescing delays.
func coalesceHold(delay time.Duration) time.Duration { return 10 * delay }

// minTime returns the earlier of a and b, a zero time meaning "none".
func minTime(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// neededMACsLocked is the multicast MAC set the driver must accept at now:
// every member group's MAC, all-systems (224.0.0.1) and all-nodes
// (ff02::1), whose queries a host must hear, and the MACs released less
// than CoalesceDelay ago (unless force): a leave followed at once by a
// re-join must not take the group off the filter in between, whatever woke
// the filter worker. next is when the youngest of those may go (zero:
// none). Called with Stack.mu held; unsorted (the caller sorts after
// unlocking, so joins do not wait for the sort).
func (ifc *Interface) neededMACsLocked(now time.Time, force bool) (macs []wire.MAC, next time.Time) {
	delay := ifc.stack.cfg.CoalesceDelay
	out := make([]wire.MAC, 0, len(ifc.macRefs)+len(ifc.macGone)+2)
	for m := range ifc.macRefs {
		out = append(out, m)
	}
	for m, at := range ifc.macGone {
		if force || !now.Before(at.Add(delay)) {
			delete(ifc.macGone, m)
			continue
		}
		out = append(out, m)
		next = minTime(next, at.Add(delay))
	}
	if len(ifc.macGone) == 0 {
		ifc.macGone = nil
	}
	for _, g := range alwaysJoined {
		m, _ := wire.MulticastMAC(g)
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, next
}

func sortMACs(ms []wire.MAC) {
	slices.SortFunc(ms, func(a, b wire.MAC) int { return slices.Compare(a[:], b[:]) })
}

var alwaysJoined = []netip.Addr{
	netip.AddrFrom4([4]byte{224, 0, 0, 1}),
	netip.MustParseAddr("ff02::1"),
}

func (ifc *Interface) start() {
	ifc.filter.w.start()
	ifc.proto.w.start()
}

// drain finishes the interface after detachLocked: the protocol worker
// sends the pending reports and the engines' final reports, retransmitted
// (bounded: see Stack.RemoveInterface); the filter worker clears the
// driver filter; the endpoint is closed. Concurrent calls all wait for the
// one drain and return its result.
func (ifc *Interface) drain() error {
	ifc.drainOnce.Do(func() {
		ifc.markGone()
		ifc.proto.w.stop()
		ifc.filter.w.stop()
		ferr := ifc.filter.finalErr
		cerr := ifc.ep.Close()
		if cerr != nil && (errors.Is(cerr, link.ErrClosed) || errors.Is(cerr, link.ErrGone)) {
			cerr = nil
		}
		if ferr != nil || cerr != nil {
			ifc.drainErr = fmt.Errorf("remove interface %s: %w", ifc.name, errors.Join(ferr, cerr))
		}
		close(ifc.drained)
	})
	<-ifc.drained
	return ifc.drainErr
}

// Sync waits until the workers have finished the work queued before the
// call, cutting coalescing short: the driver filter reflects the current
// memberships (or the update failed, and Sync returns the driver's error)
// and the engines have been given the current deltas and have transmitted
// what they queued. Once the link is gone it returns an error wrapping
// ErrLinkGone; after the interface was removed, one wrapping
// ErrUnknownInterface.
func (ifc *Interface) Sync(ctx context.Context) error {
	if err := ifc.proto.w.sync(ctx); err != nil {
		return fmt.Errorf("sync %s: %w", ifc.name, err)
	}
	if err := ifc.filter.w.sync(ctx); err != nil {
		return fmt.Errorf("sync %s: %w", ifc.name, err)
	}
	if st := ifc.linkState.Load(); st != nil && st.Gone {
		if st.Err != nil {
			return fmt.Errorf("sync %s: %w: %w", ifc.name, ErrLinkGone, st.Err)
		}
		return fmt.Errorf("sync %s: %w", ifc.name, ErrLinkGone)
	}
	return nil
}

// Status is a snapshot of an interface's state for displays such as
// `mcast stat`. It is a deep copy: the caller may modify it.
type Status struct {
	Name   string
	Index  int
	MAC    wire.MAC
	MTU    int
	Addrs  []netip.Prefix
	Link   link.LinkState
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

// Status returns a snapshot of the interface. The engines' part is taken
// by the protocol worker in a pass made for the call (so it is current);
// after the interface was removed it is the state at removal.
func (ifc *Interface) Status() Status {
	s := ifc.stack
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	_ = ifc.proto.w.refresh(ctx)
	cancel()
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	groups := append(ifc.table4.Groups(), ifc.table6.Groups()...)
	var needed []wire.MAC
	if !ifc.removed.Load() {
		needed, _ = ifc.neededMACsLocked(now, false)
	}
	s.mu.Unlock()
	for i := range groups {
		groups[i].State.Sources = slices.Clone(groups[i].State.Sources)
	}
	sortMACs(needed)
	st := Status{
		Name:     ifc.name,
		Index:    ifc.index,
		MAC:      ifc.mac,
		MTU:      ifc.mtu,
		Addrs:    ifc.Addrs(),
		Link:     ifc.LinkState(),
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

// statusTimeout bounds how long Status waits for the protocol worker (a
// pass is microseconds; it can only be slow while a transmission waits on
// a full link queue, itself bounded).
const statusTimeout = 2 * time.Second

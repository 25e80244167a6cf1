// Package mux turns one link.Endpoint (the parent) into many virtual
// endpoints, each with its own unicast MAC address, as if many hosts sat
// behind one switch port. Each virtual endpoint is a complete
// link.Endpoint: a stack.Stack attaches to it as to a NIC. `mcast emulate`
// runs thousands of full hosts this way.
//
// # Delivery
//
// The mux is the parent's Handler. For each frame the parent delivers it
// looks at the destination address: a unicast frame goes to the virtual
// endpoint owning that MAC (one map lookup), a multicast frame to the
// endpoints whose multicast filter holds the address (an index MAC → hosts
// keeps this O(hosts interested), not O(hosts)), a broadcast frame to every
// attached endpoint. The frames of one parent batch are grouped per
// receiver and each receiver's handler gets one batch, in arrival order,
// holding the parent's own buffers (no copy): the frames are valid only
// during the call, as link.Handler requires. All handlers are called from
// the parent's delivery goroutine, one at a time; a virtual endpoint has
// no goroutine of its own, so an idle host costs only its memory.
//
// A frame is not reflected: what a virtual endpoint writes goes to the
// parent only, never to its siblings (a switch does not send a frame back
// out of the port it came in on). IGMPv1/v2 report suppression therefore
// does not happen between emulated hosts, which is what a load test wants.
//
// # Multicast filters
//
// SetMulticastFilter on a virtual endpoint updates the index (O(addresses
// changed)) and, when the union of all hosts' filters gained or lost an
// address, programs the parent with the union. Parent calls are coalesced
// by group commit: the caller that finds no parent call running makes one
// with the current union; callers that change the union meanwhile wait for
// the next call, which covers all of them. A virtual SetMulticastFilter
// returns when a parent call made after its change finished (returning
// that call's error, if any), so that, as with a NIC, the filter is in
// effect when it returns. No lock the receive path needs is held across a
// parent call. The parent's exact table usually overflows with many
// groups; it then falls back to all multicast and the mux filters exactly
// in software.
//
// # Unicast and AF_PACKET
//
// Emulated hosts need no unicast for IGMP and MLD: queries and reports are
// multicast. A NIC, or a veth or bridge port, delivers frames addressed to
// a MAC that is not its own only in promiscuous mode, and the afpacket
// endpoint drops such frames (PACKET_OTHERHOST) in its socket filter in
// any case; so on afpacket, unicast to an emulated host's MAC does not
// arrive, while multicast and broadcast do, without promiscuous mode. On
// an in-memory LAN, make the parent promiscuous (memlan.EndpointConfig)
// to receive unicast for the virtual MACs.
//
// # Link state and Close
//
// The parent's link state is handed to every attached virtual endpoint
// (the last known state right after its Attach, then every change). Close
// of a virtual endpoint detaches it: its handler is not called after Close
// returns; Close of the Mux closes the parent.
package mux

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// MaxEndpoints is the largest number of virtual endpoints a Mux numbers:
// endpoint i has MAC Base + i with i < MaxEndpoints.
const MaxEndpoints = 1 << 24

// Sentinel errors; methods wrap them (and link.ErrClosed) with context.
var (
	// ErrNotMulticast: SetMulticastFilter got a non-multicast address.
	ErrNotMulticast = errors.New("mux: not a multicast MAC address")
	// ErrIndex: the endpoint number is out of range or already in use.
	ErrIndex = errors.New("mux: bad endpoint index")
	// ErrAttached: Attach was called a second time.
	ErrAttached = errors.New("mux: already attached")
)

// Options configures a Mux.
type Options struct {
	// Base is the MAC of virtual endpoint 0; endpoint i gets Base + i (as
	// a 48-bit number), with the locally-administered bit set and the
	// group bit cleared in the first octet. Zero means 02:P3:P4:P5:00:00
	// where P3..P5 are the last octets of the parent's MAC.
	Base wire.MAC
	// Observe, when set, sees every batch the parent delivers, before it
	// is demultiplexed, on the delivery goroutine. It must not keep the
	// frames or call back into the Mux.
	Observe func(frames [][]byte)
	// Logger receives diagnostics; nil means discard.
	Logger *slog.Logger
}

// Stats counts what the Mux delivered.
type Stats struct {
	// RxFrames counts frames the parent delivered; Deliveries the frames
	// handed to virtual endpoints (a multicast frame counts once per
	// receiving host).
	RxFrames, Deliveries uint64
	// Unwanted counts frames no virtual endpoint accepted (unicast to an
	// unknown MAC, multicast no host's filter holds); Runts frames shorter
	// than an Ethernet header.
	Unwanted, Runts uint64
	// ParentFilterCalls counts SetMulticastFilter calls on the parent;
	// FilterRequests the virtual endpoints' SetMulticastFilter calls.
	ParentFilterCalls, FilterRequests uint64
}

// Mux multiplexes one parent endpoint. Create it with New.
type Mux struct {
	parent  link.Endpoint
	base    uint64
	mtu     int
	log     *slog.Logger
	observe func([][]byte)

	// idx guards the delivery index: byMAC, groups, all, nums, unionGen,
	// closed, and every Endpoint's macs and allPos. The receive path holds
	// it for reading during the planning pass of a batch (lookups and
	// appends to its own buffers; no handler call); writers (NewEndpoint,
	// Attach, Endpoint.Close, SetMulticastFilter, Close) hold it for
	// O(addresses changed) work. Nobody holds it across a parent call, a
	// handler call or a wait.
	idx      sync.RWMutex
	byMAC    map[wire.MAC]*Endpoint
	groups   map[wire.MAC][]*Endpoint // multicast MAC → attached endpoints whose filter holds it
	all      []*Endpoint              // attached endpoints, for broadcast and link state
	nums     map[int]bool             // endpoint numbers in use
	unionGen uint64                   // bumped when the key set of groups changes
	closed   bool

	// rxMu serializes the calls to the virtual endpoints' handlers: held
	// by the delivery path for each batch and link-state change, by Attach
	// while it reports the initial state, and taken by Endpoint.Close to
	// wait out a delivery in progress. It is taken before idx, never while
	// holding it; it is held while handlers run (they must not call Close
	// or Attach).
	rxMu sync.Mutex
	rx   rxScratch // owned by the holder of rxMu

	state atomic.Pointer[link.LinkState] // last parent state; nil: none yet (up)

	// progMu guards the parent-programming state below (group commit);
	// held for a few instructions, never across the parent call.
	progMu      sync.Mutex
	progWant    uint64        // highest union generation a caller waits for
	progTried   uint64        // generation the last finished parent call covered
	progErr     error         // that call's error
	progRunning bool          // a leader is programming the parent
	progRound   chan struct{} // closed when a parent call finishes (or at Close)
	progFailed  atomic.Bool   // the last parent call failed: retry on the next request

	stats struct {
		rx, deliveries, unwanted, runts, parentCalls, requests atomic.Uint64
	}
	closeOnce sync.Once
	closeErr  error
}

// rxScratch holds the delivery path's reusable buffers.
type rxScratch struct {
	plan     []delivery
	out      [][]byte
	outFlags []link.FrameFlags // nil when the parent's batch had none
	touched  []*Endpoint
	// barriers counts Close calls that waited out a delivery.
	barriers uint64
}

type delivery struct {
	ep    *Endpoint
	frame []byte
	flags link.FrameFlags
}

// keepScratch bounds the delivery buffers kept between batches (a
// broadcast batch to 10,000 hosts needs a million entries once; keeping
// them would cost every later batch nothing but the process 16 MB).
const keepScratch = 1 << 14

// New attaches the mux to parent and returns it. The Mux owns parent from
// then on (Close closes it); if Attach fails, parent stays the caller's.
func New(parent link.Endpoint, opts Options) (*Mux, error) {
	if parent == nil {
		return nil, errors.New("mux: nil parent")
	}
	base := opts.Base
	if base == (wire.MAC{}) {
		p := parent.HardwareAddr()
		base = wire.MAC{0x02, p[3], p[4], p[5], 0, 0}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mux{
		parent:    parent,
		base:      macToU64(base),
		mtu:       parent.MTU(),
		log:       log.With("interface", parent.Name()),
		observe:   opts.Observe,
		byMAC:     map[wire.MAC]*Endpoint{},
		groups:    map[wire.MAC][]*Endpoint{},
		nums:      map[int]bool{},
		progRound: make(chan struct{}),
	}
	if err := parent.Attach(muxHandler{m}); err != nil {
		return nil, fmt.Errorf("mux: attach %s: %w", parent.Name(), err)
	}
	return m, nil
}

func macToU64(m wire.MAC) uint64 {
	var v uint64
	for _, b := range m {
		v = v<<8 | uint64(b)
	}
	return v
}

func u64ToMAC(v uint64) wire.MAC {
	var m wire.MAC
	for i := 5; i >= 0; i-- {
		m[i] = byte(v)
		v >>= 8
	}
	m[0] = m[0]&^0x01 | 0x02 // unicast, locally administered
	return m
}

// MAC returns the address virtual endpoint i gets.
func (m *Mux) MAC(i int) wire.MAC { return u64ToMAC(m.base + uint64(i)) }

// Parent returns the parent endpoint.
func (m *Mux) Parent() link.Endpoint { return m.parent }

// NewEndpoint creates virtual endpoint number i (0 <= i < MaxEndpoints),
// with MAC Base + i and the parent's MTU, named "PARENT#i". It fails with
// ErrIndex when i is out of range or in use, or when its MAC is the
// parent's or another endpoint's, and with link.ErrClosed after Close.
func (m *Mux) NewEndpoint(i int) (*Endpoint, error) {
	if i < 0 || i >= MaxEndpoints {
		return nil, fmt.Errorf("mux: new endpoint %d: %w: want 0..%d", i, ErrIndex, MaxEndpoints-1)
	}
	mac := m.MAC(i)
	m.idx.Lock()
	defer m.idx.Unlock()
	switch {
	case m.closed:
		return nil, fmt.Errorf("mux: new endpoint %d: %w", i, link.ErrClosed)
	case m.nums[i]:
		return nil, fmt.Errorf("mux: new endpoint %d: %w: in use", i, ErrIndex)
	case mac == m.parent.HardwareAddr():
		return nil, fmt.Errorf("mux: new endpoint %d: %w: MAC %v is the parent's", i, ErrIndex, mac)
	}
	if _, dup := m.byMAC[mac]; dup {
		return nil, fmt.Errorf("mux: new endpoint %d: %w: MAC %v in use", i, ErrIndex, mac)
	}
	e := &Endpoint{m: m, num: i, mac: mac, allPos: -1}
	m.nums[i] = true
	m.byMAC[mac] = e
	return e, nil
}

// Len returns the number of virtual endpoints not closed.
func (m *Mux) Len() int {
	m.idx.RLock()
	defer m.idx.RUnlock()
	return len(m.byMAC)
}

// Union returns the multicast addresses the hosts' filters hold, sorted:
// what the parent is (being) programmed with.
func (m *Mux) Union() []wire.MAC {
	m.idx.RLock()
	out := make([]wire.MAC, 0, len(m.groups))
	for mac := range m.groups {
		out = append(out, mac)
	}
	m.idx.RUnlock()
	slices.SortFunc(out, compareMAC)
	return out
}

// Stats returns the mux's counters.
func (m *Mux) Stats() Stats {
	return Stats{
		RxFrames:          m.stats.rx.Load(),
		Deliveries:        m.stats.deliveries.Load(),
		Unwanted:          m.stats.unwanted.Load(),
		Runts:             m.stats.runts.Load(),
		ParentFilterCalls: m.stats.parentCalls.Load(),
		FilterRequests:    m.stats.requests.Load(),
	}
}

// Close detaches every virtual endpoint and closes the parent. Pending
// SetMulticastFilter calls fail with link.ErrClosed. It must not be
// called from a handler. Closing twice returns the first result.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		m.idx.Lock()
		m.closed = true
		for _, e := range m.all {
			e.closed.Store(true)
		}
		m.all = nil
		clear(m.groups)
		m.idx.Unlock()
		m.progMu.Lock()
		close(m.progRound)
		m.progRound = make(chan struct{})
		m.progMu.Unlock()
		if err := m.parent.Close(); err != nil {
			m.closeErr = fmt.Errorf("mux: close %s: %w", m.parent.Name(), err)
		}
		// Wait out a delivery in progress (the parent's Close normally
		// has already).
		m.barrier()
	})
	return m.closeErr
}

// barrier waits for a delivery in progress to finish.
func (m *Mux) barrier() {
	m.rxMu.Lock()
	m.rx.barriers++ // a critical section: the delivery path owns rx
	m.rxMu.Unlock()
}

// muxHandler is the parent's handler (a separate type keeps the
// link.Handler methods out of Mux's API).
type muxHandler struct{ m *Mux }

func (h muxHandler) HandleFrames(frames [][]byte, flags []link.FrameFlags) {
	h.m.deliver(frames, flags)
}

func (h muxHandler) HandleLinkState(st link.LinkState) { h.m.linkState(st) }

// deliver demultiplexes one parent batch.
func (m *Mux) deliver(frames [][]byte, flags []link.FrameFlags) {
	m.stats.rx.Add(uint64(len(frames)))
	if m.observe != nil {
		m.observe(frames)
	}
	m.rxMu.Lock()
	defer m.rxMu.Unlock()
	rx := &m.rx
	var unwanted, runts uint64

	// Plan: who gets which frame, under the read lock.
	m.idx.RLock()
	for i, f := range frames {
		var fl link.FrameFlags
		if flags != nil {
			fl = flags[i]
		}
		if len(f) < wire.EthernetHeaderLen {
			runts++
			continue
		}
		dst := wire.MAC(f[0:6])
		n := len(rx.plan)
		switch {
		case dst == wire.BroadcastMAC:
			for _, e := range m.all {
				rx.add(e, f, fl)
			}
		case dst.IsMulticast():
			for _, e := range m.groups[dst] {
				rx.add(e, f, fl)
			}
		default:
			if e := m.byMAC[dst]; e != nil && e.allPos >= 0 {
				rx.add(e, f, fl)
			}
		}
		if len(rx.plan) == n {
			unwanted++
		}
	}
	m.idx.RUnlock()

	// Group per receiver, keeping arrival order (a counting sort).
	off := 0
	for _, e := range rx.touched {
		e.off, off, e.fill = off, off+e.cnt, 0
	}
	rx.out = slices.Grow(rx.out[:0], len(rx.plan))[:len(rx.plan)]
	if flags != nil {
		rx.outFlags = slices.Grow(rx.outFlags[:0], len(rx.plan))[:len(rx.plan)]
	}
	for _, d := range rx.plan {
		i := d.ep.off + d.ep.fill
		rx.out[i] = d.frame
		if flags != nil {
			rx.outFlags[i] = d.flags
		}
		d.ep.fill++
	}
	for _, e := range rx.touched {
		if !e.closed.Load() {
			var fl []link.FrameFlags
			if flags != nil {
				fl = rx.outFlags[e.off : e.off+e.cnt]
			}
			e.h.HandleFrames(rx.out[e.off:e.off+e.cnt], fl)
		}
		e.cnt = 0
	}
	m.stats.deliveries.Add(uint64(len(rx.plan)))
	if unwanted > 0 {
		m.stats.unwanted.Add(unwanted)
	}
	if runts > 0 {
		m.stats.runts.Add(runts)
	}
	rx.reset()
}

func (rx *rxScratch) add(e *Endpoint, f []byte, fl link.FrameFlags) {
	if e.cnt == 0 {
		rx.touched = append(rx.touched, e)
	}
	e.cnt++
	rx.plan = append(rx.plan, delivery{e, f, fl})
}

// reset drops the batch's references (frames belong to the parent) and
// oversized buffers.
func (rx *rxScratch) reset() {
	if cap(rx.plan) > keepScratch {
		rx.plan, rx.out, rx.outFlags = nil, nil, nil
	} else {
		clear(rx.plan)
		clear(rx.out)
		rx.plan, rx.out = rx.plan[:0], rx.out[:0]
	}
	if cap(rx.touched) > keepScratch {
		rx.touched = nil
	} else {
		clear(rx.touched)
		rx.touched = rx.touched[:0]
	}
}

// linkState fans a parent state change out to every attached endpoint.
func (m *Mux) linkState(st link.LinkState) {
	m.state.Store(&st)
	m.rxMu.Lock()
	defer m.rxMu.Unlock()
	m.idx.RLock()
	eps := slices.Clone(m.all)
	m.idx.RUnlock()
	for _, e := range eps {
		if !e.closed.Load() {
			e.h.HandleLinkState(st)
		}
	}
}

// requestUnion makes sure a parent call covering generation gen (or
// later) finishes, making the call itself if none is running (group
// commit), and returns its result.
func (m *Mux) requestUnion(gen uint64) error {
	m.progMu.Lock()
	if gen > m.progWant {
		m.progWant = gen
	}
	for {
		switch {
		case m.progTried >= gen:
			err := m.progErr
			m.progMu.Unlock()
			return err
		case m.isClosed():
			m.progMu.Unlock()
			return link.ErrClosed
		case !m.progRunning:
			m.progRunning = true
			m.progMu.Unlock()
			m.programParent()
			m.progMu.Lock()
			continue
		}
		ch := m.progRound
		m.progMu.Unlock()
		<-ch
		m.progMu.Lock()
	}
}

func (m *Mux) isClosed() bool {
	m.idx.RLock()
	defer m.idx.RUnlock()
	return m.closed
}

// programParent is the group-commit leader: it programs the parent with
// the current union (unsorted: a filter is a set) until no caller waits
// for a newer one. Each call costs O(union); callers that arrive during
// it share the next one.
func (m *Mux) programParent() {
	for {
		m.idx.RLock()
		gen, closed := m.unionGen, m.closed
		macs := make([]wire.MAC, 0, len(m.groups))
		for mac := range m.groups {
			macs = append(macs, mac)
		}
		m.idx.RUnlock()
		var err error
		if closed {
			err = link.ErrClosed
		} else {
			m.stats.parentCalls.Add(1)
			var st link.FilterStatus
			st, err = m.parent.SetMulticastFilter(macs)
			if err != nil {
				err = fmt.Errorf("mux: program %s with %d addresses: %w", m.parent.Name(), len(macs), err)
				m.log.Warn("parent filter update failed", "err", err)
			} else {
				m.log.Debug("parent filter programmed", "exact", st.Exact, "allMulticast", st.AllMulticast)
			}
		}
		m.progFailed.Store(err != nil)
		m.progMu.Lock()
		m.progTried, m.progErr = gen, err
		close(m.progRound)
		m.progRound = make(chan struct{})
		if m.progWant <= gen || closed {
			m.progRunning = false
			m.progMu.Unlock()
			return
		}
		m.progMu.Unlock()
	}
}

func compareMAC(a, b wire.MAC) int { return slices.Compare(a[:], b[:]) }

// Endpoint is one virtual endpoint of a Mux; it implements link.Endpoint.
type Endpoint struct {
	m   *Mux
	num int
	mac wire.MAC
	h   link.Handler // set once by Attach, under idx and rxMu

	// Guarded by Mux.idx: the multicast addresses of the filter, sorted,
	// each with the endpoint's position in Mux.groups[mac]; the position
	// in Mux.all (-1: not attached or detached).
	macs   []macPos
	allPos int

	closed    atomic.Bool
	closeOnce sync.Once

	// Scratch of the delivery path, owned by the holder of Mux.rxMu.
	cnt, off, fill int
}

type macPos struct {
	mac wire.MAC
	pos int32
}

var _ link.Endpoint = (*Endpoint)(nil)

// Name returns "PARENT#i".
func (e *Endpoint) Name() string { return e.m.parent.Name() + "#" + strconv.Itoa(e.num) }

// Num returns the endpoint's number in the Mux.
func (e *Endpoint) Num() int { return e.num }

// MTU returns the parent's MTU.
func (e *Endpoint) MTU() int { return e.m.mtu }

// HardwareAddr returns the endpoint's own MAC address.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Attach starts delivery to h: the parent's last known link state at once
// (when the parent reported one), then frames and changes.
func (e *Endpoint) Attach(h link.Handler) error {
	if h == nil {
		return fmt.Errorf("mux: %s: attach: nil handler", e.Name())
	}
	m := e.m
	m.rxMu.Lock()
	defer m.rxMu.Unlock()
	m.idx.Lock()
	switch {
	case e.closed.Load() || m.closed:
		m.idx.Unlock()
		return fmt.Errorf("mux: %s: attach: %w", e.Name(), link.ErrClosed)
	case e.h != nil:
		m.idx.Unlock()
		return fmt.Errorf("mux: %s: attach: %w", e.Name(), ErrAttached)
	}
	e.h = h
	e.allPos = len(m.all)
	m.all = append(m.all, e)
	// Addresses programmed before Attach join the index now.
	changed := false
	for i := range e.macs {
		changed = m.addGroupLocked(e, i) || changed
	}
	if changed {
		m.unionGen++
	}
	m.idx.Unlock()
	if st := m.state.Load(); st != nil {
		h.HandleLinkState(*st)
	}
	return nil
}

// addGroupLocked puts e into groups[e.macs[i].mac] and reports whether the
// union gained the address. Called with idx held for writing.
func (m *Mux) addGroupLocked(e *Endpoint, i int) bool {
	mac := e.macs[i].mac
	l := m.groups[mac]
	e.macs[i].pos = int32(len(l))
	m.groups[mac] = append(l, e)
	return len(l) == 0
}

// removeGroupLocked takes e out of groups[e.macs[i].mac] (swap-delete,
// fixing the moved endpoint's position) and reports whether the union
// lost the address. Called with idx held for writing.
func (m *Mux) removeGroupLocked(e *Endpoint, i int) bool {
	mac := e.macs[i].mac
	l := m.groups[mac]
	p := int(e.macs[i].pos)
	last := len(l) - 1
	if p > last || l[p] != e {
		panic(fmt.Sprintf("mux: index corrupt for %v", mac))
	}
	if p != last {
		moved := l[last]
		l[p] = moved
		j, _ := slices.BinarySearchFunc(moved.macs, mac, func(x macPos, t wire.MAC) int { return compareMAC(x.mac, t) })
		moved.macs[j].pos = int32(p)
	}
	l[last] = nil
	l = l[:last]
	if len(l) == 0 {
		delete(m.groups, mac)
		return true
	}
	m.groups[mac] = l
	return false
}

// WriteFrame transmits frame through the parent.
func (e *Endpoint) WriteFrame(frame []byte) error {
	if e.closed.Load() {
		return fmt.Errorf("mux: %s: write: %w", e.Name(), link.ErrClosed)
	}
	return e.m.parent.WriteFrame(frame)
}

// SetMulticastFilter makes the endpoint receive multicast frames to
// exactly addrs (the broadcast address is always received and may be
// omitted). It updates the mux's index at once and returns when the
// parent has been programmed with a union that includes the change (see
// the package documentation); the status is the endpoint's own exact
// filter, which has no capacity limit.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	want := make([]macPos, 0, len(addrs))
	for _, a := range addrs {
		if !a.IsMulticast() {
			return link.FilterStatus{}, fmt.Errorf("mux: %s: set filter: %w: %v", e.Name(), ErrNotMulticast, a)
		}
		if a != wire.BroadcastMAC {
			want = append(want, macPos{mac: a})
		}
	}
	slices.SortFunc(want, func(x, y macPos) int { return compareMAC(x.mac, y.mac) })
	want = slices.CompactFunc(want, func(x, y macPos) bool { return x.mac == y.mac })
	m := e.m
	m.stats.requests.Add(1)

	m.idx.Lock()
	if e.closed.Load() || m.closed {
		m.idx.Unlock()
		return link.FilterStatus{}, fmt.Errorf("mux: %s: set filter: %w", e.Name(), link.ErrClosed)
	}
	attached := e.allPos >= 0
	changed := false
	// Merge old and new (both sorted): remove what went, add what came.
	old := e.macs
	i, j := 0, 0
	for i < len(old) || j < len(want) {
		switch {
		case j == len(want) || (i < len(old) && compareMAC(old[i].mac, want[j].mac) < 0):
			if attached {
				changed = m.removeGroupLocked(e, i) || changed
			}
			i++
		case i == len(old) || compareMAC(old[i].mac, want[j].mac) > 0:
			j++ // added below, once e.macs holds it
		default:
			want[j].pos = old[i].pos
			i++
			j++
		}
	}
	// Adopt the new list, then index the additions (their positions must
	// live in e.macs for a later swap-delete).
	prev := e.macs
	e.macs = want
	if attached {
		k := 0
		for idx := range e.macs {
			mac := e.macs[idx].mac
			for k < len(prev) && compareMAC(prev[k].mac, mac) < 0 {
				k++
			}
			if k < len(prev) && prev[k].mac == mac {
				continue
			}
			changed = m.addGroupLocked(e, idx) || changed
		}
	}
	if changed || m.progFailed.Load() {
		m.unionGen++
	}
	gen := m.unionGen
	m.idx.Unlock()

	if err := m.requestUnion(gen); err != nil {
		return link.FilterStatus{}, fmt.Errorf("mux: %s: set filter: %w", e.Name(), err)
	}
	return link.FilterStatus{Exact: len(want)}, nil
}

// Close detaches the endpoint: it receives nothing more (its handler is
// not called after Close returns), its addresses leave the union (the
// parent is reprogrammed by the next filter request), and its number and
// MAC may be used again. It must not be called from a handler. Closing
// twice is harmless.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		m := e.m
		m.idx.Lock()
		e.closed.Store(true)
		if !m.closed {
			changed := false
			if e.allPos >= 0 {
				for i := range e.macs {
					changed = m.removeGroupLocked(e, i) || changed
				}
				last := len(m.all) - 1
				moved := m.all[last]
				m.all[e.allPos] = moved
				moved.allPos = e.allPos
				m.all[last] = nil
				m.all = m.all[:last]
				e.allPos = -1
			}
			if changed {
				m.unionGen++
			}
			delete(m.byMAC, e.mac)
			delete(m.nums, e.num)
		}
		e.macs = nil
		m.idx.Unlock()
		// A delivery that planned with e before it left the index may be
		// running: wait for it.
		m.barrier()
	})
	return nil
}

// Package memlan is an in-memory Ethernet segment for tests and the demo: a
// LAN to which any number of link.Endpoint values attach, with no kernel,
// privileges or real network involved.
//
// A frame written by one endpoint is copied once per receiver and handed to
// every other endpoint on the LAN whose receive filter accepts its
// destination: frames to the endpoint's own MAC address, broadcast, multicast
// addresses in its filter (a link.ExactFilter of EndpointConfig.FilterCapacity
// entries that, like a NIC, falls back to all multicast when asked to hold
// more), or everything when the endpoint is promiscuous. A frame is never
// delivered back to its sender. The filter is applied when the frame is put
// on the wire, as a NIC applies it when the frame arrives.
//
// Each endpoint has a bounded receive queue (Options.QueueLen frames) and one
// goroutine that calls its handler in arrival order, handing it everything
// that is due at once (up to link.MaxBatch frames per call). A frame that finds the
// queue full is dropped and counted, as a NIC drops frames when its receive
// ring overflows. Options.Delay and Options.Jitter hold every frame back
// before delivery; Options.Loss drops frames at random per receiver. All
// randomness comes from generators seeded with Options.Seed and the receiving
// endpoint's name, so a receiver offered the same sequence of frames drops
// and delays the same ones on every run.
//
// Each endpoint recycles its frame buffers, so steady-state delivery does
// not allocate. The slice passed to a handler is such a buffer: it is reused
// once the handler returns, and a handler that keeps bytes must copy them
// (as link.Handler requires anyway).
//
// SetMulticastFilter can be made slow (EndpointConfig.FilterDelay,
// Endpoint.SetFilterDelay) or made to fail (Endpoint.FailFilter) to model a
// sluggish or flaky driver. A slow update does not stall delivery: the new
// filter is built aside and swapped in atomically when the delay is over.
//
// Observers registered with LAN.Capture see every frame put on the segment,
// and LAN.Inject puts a frame on it as if from a host outside the test (a
// multicast querier, say).
//
// Link faults: Endpoint.SetCarrier(false) unplugs an endpoint's cable (it
// neither sends nor receives; WriteFrame fails with link.ErrLinkDown) and
// SetCarrier(true) plugs it back; Endpoint.Remove takes it off the LAN for
// good, as if the device disappeared (link.ErrGone). The handler hears of
// each change through HandleLinkState, as from a kernel backend: the state
// right after Attach (up unless the carrier was already off), then every
// change, and Gone last.
package memlan

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// Defaults applied to zero fields of Options and EndpointConfig.
const (
	DefaultQueueLen       = 1024
	DefaultMTU            = 1500
	DefaultFilterCapacity = 16
)

// Frame size limits. An endpoint sends frames of up to its MTU plus
// MaxHeaderLen bytes (an Ethernet header with one 802.1Q tag; no FCS).
const (
	MinFrameLen    = wire.EthernetHeaderLen
	MaxHeaderLen   = wire.EthernetHeaderLen + wire.VLANTagLen
	MaxInjectedLen = 65535 + MaxHeaderLen // largest frame Inject accepts
)

// InjectName is the sender name Capture observers see for injected frames.
const InjectName = "inject"

// Sentinel errors; methods wrap them (and link.ErrClosed) with context.
var (
	// ErrFrameSize: a frame is shorter than an Ethernet header or longer
	// than the MTU allows.
	ErrFrameSize = errors.New("memlan: bad frame size")
	// ErrAttached: Attach was called a second time.
	ErrAttached = errors.New("memlan: already attached")
	// ErrNotMulticast: SetMulticastFilter got a non-multicast address.
	ErrNotMulticast = errors.New("memlan: not a multicast MAC address")
)

// Options configures a LAN.
type Options struct {
	// Seed seeds the loss and jitter randomness. Each receiver draws from
	// its own generator seeded with Seed and its name.
	Seed uint64
	// Delay is added to every frame's delivery, per receiver.
	Delay time.Duration
	// Jitter adds a random delay in [0, Jitter) on top of Delay. Frames
	// still reach each receiver in the order they were written: a frame
	// is never delivered before one written earlier to the same receiver.
	Jitter time.Duration
	// Loss is the probability in [0, 1] that a frame is dropped, drawn
	// independently for each receiver that accepts it.
	Loss float64
	// QueueLen is the number of frames each endpoint's receive queue
	// holds; a frame that finds it full is dropped and counted. Zero
	// means DefaultQueueLen.
	QueueLen int
	// Logger receives diagnostics; nil means discard.
	Logger *slog.Logger
}

// EndpointConfig configures one endpoint of a LAN.
type EndpointConfig struct {
	// MAC is the endpoint's unicast address. It must not be a multicast
	// address.
	MAC wire.MAC
	// MTU is the largest Ethernet payload the endpoint sends; zero means
	// DefaultMTU.
	MTU int
	// FilterCapacity is the number of exact multicast addresses the
	// filter holds; programming more makes the endpoint accept all
	// multicast, as NICs do. Zero means DefaultFilterCapacity.
	FilterCapacity int
	// FilterDelay is how long each SetMulticastFilter call takes, to model
	// a slow driver. Zero means instant. See also Endpoint.SetFilterDelay.
	FilterDelay time.Duration
	// Promiscuous makes the endpoint receive every frame on the LAN
	// (except its own).
	Promiscuous bool
}

// EndpointStats counts an endpoint's frames. Each frame offered to a
// receiver ends up in exactly one of FramesReceived and the Dropped
// counters, except frames still queued (or dropped at Close).
type EndpointStats struct {
	FramesSent     uint64 // frames written by WriteFrame
	FramesReceived uint64 // frames handed to the handler
	DroppedFilter  uint64 // rejected by the address or multicast filter
	DroppedQueue   uint64 // accepted, but the receive queue was full
	DroppedLoss    uint64 // accepted, but lost to Options.Loss
	// DroppedDetached counts accepted frames that arrived before Attach.
	DroppedDetached uint64
	// DroppedCarrier counts frames that reached the endpoint while its
	// carrier was off (SetCarrier).
	DroppedCarrier uint64
}

// LAN is an in-memory Ethernet segment. Create it with New; its methods are
// safe for concurrent use.
type LAN struct {
	delay    time.Duration
	jitter   time.Duration
	loss     float64
	seed     uint64
	queueLen int
	log      *slog.Logger
	epoch    time.Time // delivery times are durations since epoch

	// endpoints and captures are copy-on-write snapshots read by the
	// send path without locking; mu serializes their replacement.
	endpoints atomic.Pointer[[]*Endpoint]
	captures  atomic.Pointer[[]func(from string, frame []byte)]
	// captureMu serializes calls to the capture observers.
	captureMu sync.Mutex

	// mu guards closed and serializes replacing the snapshots above; held
	// only for those few instructions, never while delivering.
	mu     sync.Mutex
	closed bool
}

// New returns an empty LAN. It panics when opts holds a value no LAN could
// have (negative Delay, Jitter or QueueLen, Loss outside [0, 1]): those are
// programming errors in a test.
func New(opts Options) *LAN {
	switch {
	case opts.Delay < 0:
		panic(fmt.Sprintf("memlan: negative Delay %v", opts.Delay))
	case opts.Jitter < 0:
		panic(fmt.Sprintf("memlan: negative Jitter %v", opts.Jitter))
	case !(opts.Loss >= 0 && opts.Loss <= 1):
		panic(fmt.Sprintf("memlan: Loss %v outside [0, 1]", opts.Loss))
	case opts.QueueLen < 0:
		panic(fmt.Sprintf("memlan: negative QueueLen %d", opts.QueueLen))
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = DefaultQueueLen
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &LAN{
		delay:    opts.Delay,
		jitter:   opts.Jitter,
		loss:     opts.Loss,
		seed:     opts.Seed,
		queueLen: opts.QueueLen,
		log:      log,
		epoch:    time.Now(),
	}
	l.endpoints.Store(&[]*Endpoint{})
	l.captures.Store(&[]func(string, []byte){})
	return l
}

// now is the time since the LAN's epoch on the monotonic clock.
func (l *LAN) now() time.Duration { return time.Since(l.epoch) }

// NewEndpoint adds an endpoint named name to the LAN. The name identifies
// the endpoint in logs, errors and Capture; it should be unique. On a
// closed LAN the endpoint is returned already closed. NewEndpoint panics
// when cfg holds a value no NIC could have (negative MTU or FilterCapacity,
// negative FilterDelay, a multicast MAC).
func (l *LAN) NewEndpoint(name string, cfg EndpointConfig) *Endpoint {
	switch {
	case cfg.MTU < 0:
		panic(fmt.Sprintf("memlan: endpoint %s: negative MTU %d", name, cfg.MTU))
	case cfg.FilterCapacity < 0:
		panic(fmt.Sprintf("memlan: endpoint %s: negative FilterCapacity %d", name, cfg.FilterCapacity))
	case cfg.FilterDelay < 0:
		panic(fmt.Sprintf("memlan: endpoint %s: negative FilterDelay %v", name, cfg.FilterDelay))
	case cfg.MAC.IsMulticast():
		panic(fmt.Sprintf("memlan: endpoint %s: MAC %v is a multicast address", name, cfg.MAC))
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.FilterCapacity == 0 {
		cfg.FilterCapacity = DefaultFilterCapacity
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	e := &Endpoint{
		lan:      l,
		name:     name,
		mac:      cfg.MAC,
		mtu:      cfg.MTU,
		maxFrame: cfg.MTU + MaxHeaderLen,
		capacity: cfg.FilterCapacity,
		promisc:  cfg.Promiscuous,
		log:      l.log.With("interface", name),
		stop:     make(chan struct{}),
	}
	e.filterDelay.Store(int64(cfg.FilterDelay))
	e.carrier.Store(true)
	e.filter.Store(&programmedFilter{f: &link.ExactFilter{Capacity: cfg.FilterCapacity}})
	e.q.slots = make([]slot, l.queueLen)
	e.q.wake = make(chan struct{}, 1)
	e.q.rng = rand.New(rand.NewPCG(l.seed, h.Sum64()))

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.log.Warn("endpoint added to a closed LAN", "interface", name)
		e.Close()
		return e
	}
	eps := append(slices.Clip(*l.endpoints.Load()), e)
	l.endpoints.Store(&eps)
	l.mu.Unlock()
	e.log.Debug("endpoint added", "mac", cfg.MAC, "mtu", cfg.MTU)
	return e
}

// detach removes e from the LAN; frames written afterwards do not reach it.
func (l *LAN) detach(e *Endpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.endpoints.Load()
	i := slices.Index(old, e)
	if i < 0 {
		return
	}
	eps := slices.Delete(slices.Clone(old), i, i+1)
	l.endpoints.Store(&eps)
}

// Capture registers f to be called for every frame put on the LAN, by an
// endpoint (from is its name) or by Inject (from is InjectName), whether or
// not any endpoint accepts it. f is called synchronously by the writer,
// before the frame is queued for the receivers; calls to the observers are
// serialized, so f need not be safe for concurrent use, but it must not
// write to the LAN itself. The frame is only valid during the call and must
// not be modified.
func (l *LAN) Capture(f func(from string, frame []byte)) {
	if f == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := append(slices.Clip(*l.captures.Load()), f)
	l.captures.Store(&cs)
}

// Inject puts frame on the LAN as if sent by a host that is not an
// endpoint: it reaches every endpoint whose filter accepts it, and the
// Capture observers. frame is not kept after Inject returns.
func (l *LAN) Inject(frame []byte) error {
	if len(frame) < MinFrameLen || len(frame) > MaxInjectedLen {
		return fmt.Errorf("memlan: inject: %w: %d bytes, want %d..%d", ErrFrameSize, len(frame), MinFrameLen, MaxInjectedLen)
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return fmt.Errorf("memlan: inject: LAN closed: %w", link.ErrClosed)
	}
	l.transmit(nil, InjectName, frame)
	return nil
}

// transmit shows frame to the observers and queues a copy for every
// endpoint but from that accepts it.
func (l *LAN) transmit(from *Endpoint, fromName string, frame []byte) {
	if cs := *l.captures.Load(); len(cs) > 0 {
		l.captureMu.Lock()
		for _, f := range cs {
			f(fromName, frame)
		}
		l.captureMu.Unlock()
	}
	dst := wire.MAC(frame[0:6])
	var now time.Duration
	if l.delay > 0 || l.jitter > 0 {
		now = l.now()
	}
	for _, e := range *l.endpoints.Load() {
		if e == from {
			continue
		}
		if !e.accepts(dst) {
			e.stats.droppedFilter.Add(1)
			continue
		}
		e.enqueue(frame, now)
	}
}

// Close closes every endpoint, waiting for their delivery goroutines to
// exit. Afterwards Inject fails and NewEndpoint returns closed endpoints.
// Closing twice is harmless. It must not be called from a handler.
func (l *LAN) Close() error {
	l.mu.Lock()
	l.closed = true
	eps := *l.endpoints.Load()
	l.mu.Unlock()
	var errs []error
	for _, e := range eps {
		if err := e.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("memlan: close LAN: %w", err)
	}
	return nil
}

// programmedFilter is the filter currently in effect on an endpoint. It is
// never modified after it is stored, so the send path reads it lock-free.
type programmedFilter struct {
	f     *link.ExactFilter
	exact []wire.MAC // sorted; nil when all
	all   bool
}

// slot is one receive queue entry.
type slot struct {
	buf []byte
	at  time.Duration // delivery time since the LAN epoch; 0 = at once
}

// rxQueue is an endpoint's bounded receive ring. Frame buffers circulate
// between the free list, the ring and the handler, so the queue allocates
// a buffer only when more frames are in flight than ever before.
type rxQueue struct {
	// mu guards every field below; held only to push or pop a slot, never
	// while the handler runs or while sleeping until a frame is due.
	mu       sync.Mutex
	slots    []slot
	head, n  int
	free     [][]byte      // buffers not in use, each of at least maxFrame bytes
	last     time.Duration // latest delivery time queued, for ordering
	attached bool
	closed   bool
	// states are link-state changes not yet handed to the handler.
	states []link.LinkState
	rng    *rand.Rand
	wake   chan struct{} // capacity 1: "the queue may be non-empty"
}

// Endpoint is one station on a LAN; it implements link.Endpoint. Create it
// with LAN.NewEndpoint.
type Endpoint struct {
	lan      *LAN
	name     string
	mac      wire.MAC
	mtu      int
	maxFrame int
	capacity int
	promisc  bool
	log      *slog.Logger

	filter      atomic.Pointer[programmedFilter]
	filterDelay atomic.Int64 // time.Duration
	filterCalls atomic.Int64
	// filterMu serializes SetMulticastFilter; delivery never takes it.
	filterMu sync.Mutex

	// failMu guards failErr and failN (FailFilter); held for a few
	// instructions only.
	failMu  sync.Mutex
	failErr error
	failN   int

	q rxQueue

	closed    atomic.Bool
	carrier   atomic.Bool // cable plugged in (SetCarrier)
	removed   atomic.Bool // Remove was called
	closeOnce sync.Once
	// stateMu serializes SetCarrier and Remove, so that the states they
	// queue are in the order of the changes; held for a few instructions.
	stateMu sync.Mutex
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the delivery goroutine exits; nil before Attach

	stats struct {
		sent, received, droppedFilter, droppedQueue, droppedLoss, droppedDetached, droppedCarrier atomic.Uint64
	}
}

var _ link.Endpoint = (*Endpoint)(nil)

// Name returns the name given to NewEndpoint.
func (e *Endpoint) Name() string { return e.name }

// MTU returns the configured MTU.
func (e *Endpoint) MTU() int { return e.mtu }

// HardwareAddr returns the endpoint's MAC address.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Attach starts the goroutine that delivers received frames to h in order,
// in batches of everything due (at most link.MaxBatch frames), and the
// link's state: first the current one, then every change (SetCarrier,
// Remove). The frames passed to h are reused after h returns. Frames that
// arrived before Attach were dropped (EndpointStats.DroppedDetached). A
// second call fails with ErrAttached.
func (e *Endpoint) Attach(h link.Handler) error {
	if h == nil {
		return fmt.Errorf("memlan: %s: attach: nil handler", e.name)
	}
	e.q.mu.Lock()
	defer e.q.mu.Unlock()
	if e.q.closed {
		return fmt.Errorf("memlan: %s: attach: %w", e.name, link.ErrClosed)
	}
	if e.q.attached {
		return fmt.Errorf("memlan: %s: attach: %w", e.name, ErrAttached)
	}
	e.q.attached = true
	e.stateMu.Lock()
	e.q.states = append(e.q.states[:0], e.state())
	e.stateMu.Unlock()
	e.done = make(chan struct{})
	go e.run(h, e.done)
	return nil
}

// state is the endpoint's link state now.
func (e *Endpoint) state() link.LinkState {
	if e.removed.Load() {
		return link.LinkState{Gone: true}
	}
	return link.LinkState{Up: e.carrier.Load()}
}

// SetCarrier plugs the endpoint's cable in (true) or pulls it (false).
// Without carrier the endpoint receives nothing (frames that reach it are
// counted in DroppedCarrier) and WriteFrame fails with link.ErrLinkDown;
// frames already queued are still delivered. The handler is told of each
// change. Setting the state it already has does nothing.
func (e *Endpoint) SetCarrier(up bool) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if e.removed.Load() || e.carrier.Swap(up) == up {
		return
	}
	e.log.Debug("carrier", "up", up)
	e.queueState(link.LinkState{Up: up})
}

// Remove takes the endpoint off the LAN for good, as if its device
// disappeared: frames still queued are dropped, the handler is told Gone
// and hears nothing more, and WriteFrame fails with link.ErrGone. Close
// is still needed to release it. Removing twice does nothing.
func (e *Endpoint) Remove() {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if e.removed.Swap(true) {
		return
	}
	e.lan.detach(e)
	e.log.Debug("endpoint removed")
	e.q.mu.Lock()
	e.q.n = 0
	e.q.mu.Unlock()
	e.queueState(link.LinkState{Gone: true, Err: errors.New("memlan: endpoint removed")})
}

// queueState hands st to the delivery goroutine (if attached); the caller
// holds stateMu.
func (e *Endpoint) queueState(st link.LinkState) {
	q := &e.q
	q.mu.Lock()
	if q.attached && !q.closed {
		q.states = append(q.states, st)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// WriteFrame puts a copy of frame on the LAN. frame must hold at least an
// Ethernet header and at most MTU plus MaxHeaderLen bytes; it is not kept
// after WriteFrame returns. It is safe for concurrent use.
func (e *Endpoint) WriteFrame(frame []byte) error {
	if e.closed.Load() {
		return fmt.Errorf("memlan: %s: write: %w", e.name, link.ErrClosed)
	}
	if e.removed.Load() {
		return fmt.Errorf("memlan: %s: write: %w", e.name, link.ErrGone)
	}
	if !e.carrier.Load() {
		return fmt.Errorf("memlan: %s: write: %w", e.name, link.ErrLinkDown)
	}
	if len(frame) < MinFrameLen || len(frame) > e.maxFrame {
		return fmt.Errorf("memlan: %s: write: %w: %d bytes, want %d..%d", e.name, ErrFrameSize, len(frame), MinFrameLen, e.maxFrame)
	}
	e.lan.transmit(e, e.name, frame)
	e.stats.sent.Add(1)
	return nil
}

// SetMulticastFilter replaces the multicast filter with addrs. It takes the
// current filter delay (see SetFilterDelay) before the new filter takes
// effect; frames keep flowing through the old filter meanwhile. Calls are
// serialized. While FailFilter failures are pending, a call takes the delay
// and then fails, leaving the filter unchanged. Close cuts a pending delay
// short and the call fails with link.ErrClosed.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	for _, a := range addrs {
		if !a.IsMulticast() {
			return link.FilterStatus{}, fmt.Errorf("memlan: %s: set filter: %w: %v", e.name, ErrNotMulticast, a)
		}
	}
	e.filterMu.Lock()
	defer e.filterMu.Unlock()
	if e.closed.Load() {
		return link.FilterStatus{}, fmt.Errorf("memlan: %s: set filter: %w", e.name, link.ErrClosed)
	}
	e.filterCalls.Add(1)
	e.failMu.Lock()
	var fail error
	if e.failN > 0 {
		fail = e.failErr
		e.failN--
	}
	e.failMu.Unlock()

	if d := time.Duration(e.filterDelay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-e.stop:
			t.Stop()
			return link.FilterStatus{}, fmt.Errorf("memlan: %s: set filter: %w", e.name, link.ErrClosed)
		}
	}
	if fail != nil {
		return link.FilterStatus{}, fmt.Errorf("memlan: %s: set filter (injected failure): %w", e.name, fail)
	}
	f := &link.ExactFilter{Capacity: e.capacity}
	st := f.Set(addrs)
	pf := &programmedFilter{f: f, all: st.AllMulticast}
	if !pf.all {
		pf.exact = slices.Clone(addrs)
		slices.SortFunc(pf.exact, compareMAC)
		pf.exact = slices.Compact(pf.exact)
	}
	e.filter.Store(pf)
	e.log.Debug("multicast filter set", "exact", st.Exact, "allMulticast", st.AllMulticast)
	return st, nil
}

func compareMAC(a, b wire.MAC) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// FilterCalls returns the number of SetMulticastFilter calls that reached
// the driver (the endpoint was open and the addresses valid), including
// ones that failed through FailFilter.
func (e *Endpoint) FilterCalls() int { return int(e.filterCalls.Load()) }

// Filter returns the multicast filter in effect: the exact addresses,
// sorted, or allMulticast when the last successful SetMulticastFilter asked
// for more than FilterCapacity of them.
func (e *Endpoint) Filter() (exact []wire.MAC, allMulticast bool) {
	pf := e.filter.Load()
	return slices.Clone(pf.exact), pf.all
}

// FailFilter makes the next n SetMulticastFilter calls fail with an error
// wrapping err, after taking the filter delay. n <= 0 or a nil err cancels
// pending failures.
func (e *Endpoint) FailFilter(err error, n int) {
	e.failMu.Lock()
	defer e.failMu.Unlock()
	if err == nil || n <= 0 {
		e.failErr, e.failN = nil, 0
		return
	}
	e.failErr, e.failN = err, n
}

// SetFilterDelay changes how long subsequent SetMulticastFilter calls take.
// A negative d counts as zero.
func (e *Endpoint) SetFilterDelay(d time.Duration) {
	e.filterDelay.Store(int64(max(d, 0)))
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() EndpointStats {
	return EndpointStats{
		FramesSent:      e.stats.sent.Load(),
		FramesReceived:  e.stats.received.Load(),
		DroppedFilter:   e.stats.droppedFilter.Load(),
		DroppedQueue:    e.stats.droppedQueue.Load(),
		DroppedLoss:     e.stats.droppedLoss.Load(),
		DroppedDetached: e.stats.droppedDetached.Load(),
		DroppedCarrier:  e.stats.droppedCarrier.Load(),
	}
}

// Close detaches the endpoint from the LAN, stops its delivery goroutine
// and waits for it; frames still queued are dropped. The handler is not
// called after Close returns. Later WriteFrame, SetMulticastFilter and
// Attach calls fail with link.ErrClosed. Closing twice is harmless. Close
// must not be called from the endpoint's own handler.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.lan.detach(e)
		e.q.mu.Lock()
		e.q.closed = true
		pending := e.q.n
		e.q.n = 0
		done := e.done
		e.q.mu.Unlock()
		close(e.stop)
		if done != nil {
			<-done
		}
		e.log.Debug("endpoint closed", "dropped_pending", pending)
	})
	return nil
}

// accepts reports whether the receive filter passes a frame to dst.
func (e *Endpoint) accepts(dst wire.MAC) bool {
	switch {
	case e.promisc, dst == e.mac, dst == wire.BroadcastMAC:
		return true
	case dst.IsMulticast():
		return e.filter.Load().f.Accepts(dst)
	}
	return false
}

// enqueue copies frame into the receive queue, or drops and counts it.
// now is the send time (only meaningful with a delay or jitter).
func (e *Endpoint) enqueue(frame []byte, now time.Duration) {
	l := e.lan
	q := &e.q
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if !q.attached {
		q.mu.Unlock()
		e.stats.droppedDetached.Add(1)
		return
	}
	if !e.carrier.Load() {
		q.mu.Unlock()
		e.stats.droppedCarrier.Add(1)
		return
	}
	if l.loss > 0 && q.rng.Float64() < l.loss {
		q.mu.Unlock()
		e.stats.droppedLoss.Add(1)
		return
	}
	if q.n == len(q.slots) {
		q.mu.Unlock()
		e.queueFull()
		return
	}
	var at time.Duration
	if l.delay > 0 || l.jitter > 0 {
		at = now + l.delay
		if l.jitter > 0 {
			at += time.Duration(q.rng.Int64N(int64(l.jitter)))
		}
		// Keep per-receiver order, and keep 0 meaning "at once".
		at = max(at, q.last, 1)
		q.last = at
	}
	var buf []byte
	if n := len(q.free); n > 0 {
		buf = q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
	}
	if cap(buf) < len(frame) {
		buf = make([]byte, 0, max(len(frame), e.maxFrame))
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	s.buf = append(buf[:0], frame...)
	s.at = at
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// queueFull counts a queue overflow. The first one is logged as a warning,
// later ones only at debug level.
func (e *Endpoint) queueFull() {
	n := e.stats.droppedQueue.Add(1)
	switch {
	case n == 1:
		e.log.Warn("receive queue full, dropping frames", "queue", len(e.q.slots))
	case e.log.Enabled(context.Background(), slog.LevelDebug):
		e.log.Debug("receive queue full", "queue", len(e.q.slots), "dropped", n)
	}
}

// run delivers queued frames and link states to h until Close (or Gone).
func (e *Endpoint) run(h link.Handler, done chan struct{}) {
	defer close(done)
	q := &e.q
	timer := time.NewTimer(math.MaxInt64)
	timer.Stop()
	defer timer.Stop()
	batch := make([][]byte, 0, link.MaxBatch)
	var states []link.LinkState
	for {
		select {
		case <-e.stop:
			return
		default:
		}
		q.mu.Lock()
		// Give back the buffers of the last batch.
		for i, b := range batch {
			q.free = append(q.free, b[:0])
			batch[i] = nil
		}
		batch = batch[:0]
		if len(q.states) > 0 {
			states = append(states[:0], q.states...)
			q.states = q.states[:0]
			q.mu.Unlock()
			for _, st := range states {
				h.HandleLinkState(st)
				if st.Gone {
					return
				}
			}
			continue
		}
		var wait time.Duration
		var now time.Duration
		for q.n > 0 && len(batch) < link.MaxBatch {
			s := &q.slots[q.head]
			if s.at > 0 {
				if now == 0 {
					now = e.lan.now()
				}
				if w := s.at - now; w > 0 {
					wait = w
					break
				}
			}
			batch = append(batch, s.buf)
			s.buf = nil
			q.head = (q.head + 1) % len(q.slots)
			q.n--
		}
		empty := q.n == 0
		q.mu.Unlock()
		if len(batch) > 0 {
			h.HandleFrames(batch, nil)
			e.stats.received.Add(uint64(len(batch)))
			continue
		}
		if !empty && wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-q.wake:
				timer.Stop() // Go 1.23+: no stale tick is left in timer.C
			case <-e.stop:
				return
			}
			continue
		}
		select {
		case <-q.wake:
		case <-e.stop:
			return
		}
	}
}

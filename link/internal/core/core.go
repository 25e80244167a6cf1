//go:build linux

// Package core is the mechanism the kernel backends (link/afpacket in both
// its modes, link/tap, link/tun) share: attach once, one reader goroutine
// that hands batches to the handler, the software multicast filter behind
// an atomic pointer, link-state monitoring over rtnetlink, bounded writes,
// error backoff, and a Close that wakes a reader parked in poll(2) at once
// and waits for it. A backend supplies only its I/O: read a batch without
// blocking, write a frame without blocking, program the hardware filter,
// close.
//
// The reader never blocks in a read: it asks the backend for a batch, and
// when there is none it waits in poll(2) on the backend's descriptor and
// an eventfd that Close and the link-state monitor signal. Under load the
// next batch is ready when the previous one is done, so the reader makes
// no poll call at all.
package core

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// DefaultWriteTimeout is how long WriteFrame waits for room in a full
// transmit queue before it gives up with link.ErrWouldBlock, when
// Config.WriteTimeout is zero.
const DefaultWriteTimeout = 10 * time.Millisecond

// DefaultFilterCapacity is the exact multicast filter size when
// Config.FilterCapacity is zero.
const DefaultFilterCapacity = 64

// ErrAgain is what a Reader returns when no frame is available now; the
// core then waits for the descriptor to become readable.
var ErrAgain = errors.New("core: no frame available")

// Reader is a backend's receive side. The core calls it from its reader
// goroutine only.
type Reader interface {
	// ReadBatch adds the frames available now to b (b.Offer) without
	// blocking. It returns nil when it read anything (even if the filter
	// offered nothing to the handler), ErrAgain when nothing was
	// available, an error wrapping link.ErrGone when the interface is
	// gone, or another error. pollErr tells that the last poll(2)
	// reported an error condition (POLLERR, POLLHUP) on the descriptor,
	// for backends whose reads do not return it themselves.
	ReadBatch(b *Batch, pollErr bool) error
	// Done is called when the handler has returned from the frames of
	// the last successful ReadBatch: their memory may be reused.
	Done()
}

// Backend is what a kernel backend supplies.
type Backend interface {
	Reader
	// Write makes one non-blocking attempt to transmit frame. A full
	// queue is reported as unix.EAGAIN or unix.ENOBUFS (the core then
	// waits and retries); the frame must not be kept.
	Write(frame []byte) error
	// Close releases the backend's descriptor and memory. The core calls
	// it once, after the reader has stopped and the monitor has exited.
	Close() error
}

// HardwareFilter is implemented by backends with a real multicast filter
// to program (AF_PACKET memberships).
type HardwareFilter interface {
	// ProgramFilter programs want (distinct multicast addresses; the
	// software filter's status is st) and calls publish, which swaps in
	// the new software filter, at the moment that loses no wanted frame:
	// after adding entries, before dropping old ones. It returns what is
	// programmed. Calls are serialized.
	ProgramFilter(want []wire.MAC, st link.FilterStatus, publish func()) (link.FilterStatus, error)
}

// KernelDrops is implemented by backends that can ask the kernel how many
// frames it dropped for them since the last call.
type KernelDrops interface {
	KernelDrops() uint64
}

// Config configures a Core.
type Config struct {
	// Backend names the backend in errors ("afpacket").
	Backend string
	// Name is the interface name.
	Name string
	// Index is the kernel ifindex; the link-state monitor watches it.
	// Zero means no monitor (tests): the link is reported up.
	Index int
	// Conn is the backend's descriptor, polled for readability.
	Conn syscall.RawConn
	// FilterCapacity is the exact multicast filter size; zero means
	// DefaultFilterCapacity.
	FilterCapacity int
	// WriteTimeout bounds WriteFrame's wait on a full queue; zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger receives diagnostics; nil means discard.
	Logger *slog.Logger
	// ErrAttached and ErrNotMulticast are the backend's sentinels for a
	// second Attach and a unicast address in SetMulticastFilter.
	ErrAttached, ErrNotMulticast error
}

// Core is the shared part of a kernel endpoint. Its exported methods are
// the link.Endpoint methods a backend forwards to.
type Core struct {
	backend  string
	name     string
	prefix   string // "backend: name"
	capacity int
	wtimeout time.Duration
	log      *slog.Logger
	be       Backend
	hw       HardwareFilter // nil: software filter only
	waiter   *waiter
	mon      *monitor // nil without Config.Index
	errAtt   error
	errNotMC error

	// filter is the software multicast filter the reader consults. Each
	// SetMulticastFilter stores a fresh ExactFilter that is never
	// modified afterwards, so the reader reads it without locking.
	filter atomic.Pointer[link.ExactFilter]
	closed atomic.Bool
	gone   atomic.Bool
	stop   chan struct{} // closed by Close

	// filterMu serializes SetMulticastFilter (and the hardware calls it
	// makes, which may block as long as the driver needs); the reader
	// and WriteFrame never take it.
	filterMu sync.Mutex

	// mu guards attached, done and monDone; held for a few instructions
	// only, never while blocking.
	mu       sync.Mutex
	attached bool
	done     chan struct{} // closed when the reader exits; nil before Attach
	monDone  chan struct{} // closed when the monitor exits; nil before Attach

	// states carries link-state changes from the monitor (and Attach) to
	// the reader, which delivers them in order. statesMu guards states;
	// held for a few instructions by the monitor and by the reader when
	// statesPending says there is something, never while blocking.
	statesMu      sync.Mutex
	states        []link.LinkState
	statesPending atomic.Bool

	batch Batch // the reader's, reused

	stats struct {
		rxFrames, rxBatches, rxFiltered, rxInvalid, rxErrors, rxKernelDrops atomic.Uint64
		txFrames, txWaits, txWouldBlock, txErrors                           atomic.Uint64
	}
	// kdropsMu serializes KernelDrops calls (they read and reset a
	// kernel counter); held across that one getsockopt.
	kdropsMu sync.Mutex
}

// New returns a Core for backend be. With cfg.Index set it opens the
// link-state monitor now, in the calling thread's network namespace (the
// namespace of the interface), and reads the link's current state.
func New(cfg Config, be Backend) (*Core, error) {
	if cfg.FilterCapacity == 0 {
		cfg.FilterCapacity = DefaultFilterCapacity
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Core{
		backend:  cfg.Backend,
		name:     cfg.Name,
		prefix:   cfg.Backend + ": " + cfg.Name,
		capacity: cfg.FilterCapacity,
		wtimeout: cfg.WriteTimeout,
		log:      log.With("interface", cfg.Name),
		be:       be,
		errAtt:   cfg.ErrAttached,
		errNotMC: cfg.ErrNotMulticast,
		stop:     make(chan struct{}),
	}
	if c.errAtt == nil {
		c.errAtt = errors.New("already attached")
	}
	if c.errNotMC == nil {
		c.errNotMC = errors.New("not a multicast MAC address")
	}
	c.hw, _ = be.(HardwareFilter)
	c.filter.Store(&link.ExactFilter{Capacity: c.capacity})
	c.batch.frames = make([][]byte, 0, link.MaxBatch)
	c.batch.flags = make([]link.FrameFlags, 0, link.MaxBatch)
	w, err := newWaiter(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.prefix, err)
	}
	c.waiter = w
	initial := link.LinkState{Up: true}
	if cfg.Index != 0 {
		m, st, err := openMonitor(cfg.Index)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("%s: link-state monitor: %w", c.prefix, err)
		}
		c.mon, initial = m, st
	}
	c.states = append(c.states, initial)
	return c, nil
}

// Attach starts the reader (and the link-state monitor) delivering to h.
// The first thing h receives is the link's state.
func (c *Core) Attach(h link.Handler) error {
	if h == nil {
		return fmt.Errorf("%s: attach: nil handler", c.prefix)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("%s: attach: %w", c.prefix, link.ErrClosed)
	}
	if c.attached {
		return fmt.Errorf("%s: %w", c.prefix, c.errAtt)
	}
	c.attached = true
	c.statesPending.Store(true)
	c.done = make(chan struct{})
	go c.run(h, c.done)
	if c.mon != nil {
		c.monDone = make(chan struct{})
		go c.monitor(c.monDone)
	}
	return nil
}

// postState queues a link-state change for the reader and wakes it. A
// Gone state makes writes fail from now on.
func (c *Core) postState(st link.LinkState) {
	if st.Gone {
		c.gone.Store(true)
	}
	c.statesMu.Lock()
	if len(c.states) >= 64 {
		// The reader is far behind (its handler is stuck): keep the
		// newest changes.
		copy(c.states, c.states[1:])
		c.states = c.states[:len(c.states)-1]
	}
	c.states = append(c.states, st)
	c.statesMu.Unlock()
	c.statesPending.Store(true)
	c.waiter.wake()
}

// deliverStates hands the queued link-state changes to h and reports
// whether one of them was Gone.
func (c *Core) deliverStates(h link.Handler) (gone bool) {
	c.statesPending.Store(false)
	c.statesMu.Lock()
	var buf [8]link.LinkState
	sts := append(buf[:0], c.states...)
	c.states = c.states[:0]
	c.statesMu.Unlock()
	for _, st := range sts {
		c.log.Debug("link state", "state", st.String())
		h.HandleLinkState(st)
		if st.Gone {
			return true
		}
	}
	return false
}

// run is the reader goroutine.
func (c *Core) run(h link.Handler, done chan struct{}) {
	defer close(done)
	b := &c.batch
	pollErr := false
	backoff := time.Duration(0)
	for {
		if c.closed.Load() {
			return
		}
		if c.statesPending.Load() && c.deliverStates(h) {
			return
		}
		b.reset(c.filter.Load())
		err := c.be.ReadBatch(b, pollErr)
		pollErr = false
		c.stats.rxFiltered.Add(b.filtered)
		c.stats.rxInvalid.Add(b.invalid)
		switch {
		case err == nil:
			backoff = 0
			if len(b.frames) > 0 {
				if c.closed.Load() {
					c.be.Done()
					return
				}
				c.stats.rxFrames.Add(uint64(len(b.frames)))
				c.stats.rxBatches.Add(1)
				h.HandleFrames(b.frames, b.flags)
				clear(b.frames)
			}
			c.be.Done()
		case errors.Is(err, ErrAgain):
			rev, werr := c.waiter.wait()
			if werr != nil {
				if c.closed.Load() {
					return
				}
				c.readFailed(fmt.Errorf("poll: %w", werr), &backoff)
				continue
			}
			pollErr = rev&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0
		case errors.Is(err, link.ErrLinkDown):
			// ENETDOWN, once per down event on AF_PACKET; the monitor
			// reports the state itself.
			c.log.Debug("read: link down", "err", err)
			c.pause(&backoff)
		case errors.Is(err, link.ErrGone):
			if c.closed.Load() {
				return
			}
			c.log.Warn("interface gone", "err", err)
			c.postState(link.LinkState{Gone: true, Err: err})
			c.deliverStates(h)
			return
		default:
			if c.closed.Load() {
				return
			}
			c.readFailed(err, &backoff)
		}
	}
}

// readFailed counts and logs a read error and waits a growing backoff
// (1 ms to 100 ms), cut short by Close.
func (c *Core) readFailed(err error, backoff *time.Duration) {
	c.stats.rxErrors.Add(1)
	c.log.Warn("read failed", "err", err)
	c.pause(backoff)
}

// pause waits a growing backoff (1 ms to 100 ms), cut short by Close.
func (c *Core) pause(backoff *time.Duration) {
	*backoff = min(max(2**backoff, time.Millisecond), 100*time.Millisecond)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-c.stop:
	case <-t.C:
	}
}

// WriteFrame transmits one complete Ethernet frame; see link.Endpoint.
// When the queue is full it retries with a growing pause (20 µs to 1 ms)
// for up to the write timeout, then fails with link.ErrWouldBlock. Close
// cuts the wait short (link.ErrClosed).
func (c *Core) WriteFrame(frame []byte) error {
	if c.closed.Load() {
		return fmt.Errorf("%s: write: %w", c.prefix, link.ErrClosed)
	}
	if c.gone.Load() {
		return fmt.Errorf("%s: write: %w", c.prefix, link.ErrGone)
	}
	if len(frame) < wire.EthernetHeaderLen {
		return fmt.Errorf("%s: write: frame of %d bytes is shorter than an Ethernet header", c.prefix, len(frame))
	}
	err := c.be.Write(frame)
	if err == nil {
		c.stats.txFrames.Add(1)
		return nil
	}
	if !wouldBlock(err) {
		return c.writeFailed(err)
	}
	deadline := time.Now().Add(c.wtimeout)
	pause := 20 * time.Microsecond
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.stats.txErrors.Add(1)
			return fmt.Errorf("%s: write: %w", c.prefix, link.ErrClosed)
		case <-t.C:
		}
		err = c.be.Write(frame)
		if err == nil {
			c.stats.txFrames.Add(1)
			c.stats.txWaits.Add(1)
			return nil
		}
		if !wouldBlock(err) {
			return c.writeFailed(err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			n := c.stats.txWouldBlock.Add(1)
			if n == 1 {
				c.log.Warn("transmit queue full, dropping frames", "err", err)
			}
			return fmt.Errorf("%s: write: %w (%v for %v)", c.prefix, link.ErrWouldBlock, err, c.wtimeout)
		}
		pause = min(2*pause, time.Millisecond, left)
		t.Reset(pause)
	}
}

// writeFailed counts a failed write and wraps err with the link sentinel
// its errno means.
func (c *Core) writeFailed(err error) error {
	c.stats.txErrors.Add(1)
	switch {
	case c.closed.Load() || errors.Is(err, link.ErrClosed):
		return fmt.Errorf("%s: write: %w", c.prefix, link.ErrClosed)
	case errors.Is(err, link.ErrGone) || errors.Is(err, link.ErrLinkDown):
		return fmt.Errorf("%s: write: %w", c.prefix, err)
	case IsGoneErrno(err):
		return fmt.Errorf("%s: write: %w: %v", c.prefix, link.ErrGone, err)
	case errors.Is(err, unix.ENETDOWN):
		return fmt.Errorf("%s: write: %w: %v", c.prefix, link.ErrLinkDown, err)
	}
	return fmt.Errorf("%s: write: %w", c.prefix, err)
}

// wouldBlock tells whether a write failed only because the queue was full.
func wouldBlock(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS)
}

// IsGoneErrno tells whether err is an errno that means the device under a
// descriptor disappeared: ENODEV (AF_PACKET after the interface was
// unregistered), ENXIO, EBADFD (a TUN/TAP descriptor whose device was
// deleted).
func IsGoneErrno(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EBADFD)
}

// ReadError wraps a read errno for the core: link.ErrGone for the errnos
// IsGoneErrno names, link.ErrLinkDown for ENETDOWN, unchanged otherwise.
func ReadError(op string, err error) error {
	if IsGoneErrno(err) {
		return fmt.Errorf("%s: %w: %w", op, link.ErrGone, err)
	}
	if errors.Is(err, unix.ENETDOWN) {
		return fmt.Errorf("%s: %w: %w", op, link.ErrLinkDown, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// SetMulticastFilter replaces the multicast filter with exactly addrs:
// the software filter (a link.ExactFilter of the configured capacity) and,
// for backends that have one, the hardware filter.
func (c *Core) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	for _, a := range addrs {
		if !a.IsMulticast() {
			return c.Filter(), fmt.Errorf("%s: set filter: %w: %v", c.prefix, c.errNotMC, a)
		}
	}
	c.filterMu.Lock()
	defer c.filterMu.Unlock()
	if c.closed.Load() {
		return link.FilterStatus{}, fmt.Errorf("%s: set filter: %w", c.prefix, link.ErrClosed)
	}
	sw := &link.ExactFilter{Capacity: c.capacity}
	st := sw.Set(addrs)
	publish := func() { c.filter.Store(sw) }
	if c.hw == nil {
		publish()
		return st, nil
	}
	want := make([]wire.MAC, 0, len(addrs))
	seen := make(map[wire.MAC]struct{}, len(addrs))
	for _, a := range addrs {
		if _, ok := seen[a]; !ok {
			seen[a] = struct{}{}
			want = append(want, a)
		}
	}
	got, err := c.hw.ProgramFilter(want, st, publish)
	if err != nil {
		return got, fmt.Errorf("%s: set filter: %w", c.prefix, err)
	}
	if got.AllMulticast {
		c.log.Debug("multicast filter: all-multicast", "wanted", len(want), "capacity", c.capacity)
	} else {
		c.log.Debug("multicast filter: exact", "addresses", got.Exact)
	}
	return got, nil
}

// Filter returns the status of the software filter in effect.
func (c *Core) Filter() link.FilterStatus {
	return c.filter.Load().Status()
}

// Stats returns the endpoint's counters.
func (c *Core) Stats() link.Stats {
	if kd, ok := c.be.(KernelDrops); ok && !c.closed.Load() {
		c.kdropsMu.Lock()
		c.stats.rxKernelDrops.Add(kd.KernelDrops())
		c.kdropsMu.Unlock()
	}
	return link.Stats{
		RxFrames:      c.stats.rxFrames.Load(),
		RxBatches:     c.stats.rxBatches.Load(),
		RxFiltered:    c.stats.rxFiltered.Load(),
		RxInvalid:     c.stats.rxInvalid.Load(),
		RxErrors:      c.stats.rxErrors.Load(),
		RxKernelDrops: c.stats.rxKernelDrops.Load(),
		TxFrames:      c.stats.txFrames.Load(),
		TxWaits:       c.stats.txWaits.Load(),
		TxWouldBlock:  c.stats.txWouldBlock.Load(),
		TxErrors:      c.stats.txErrors.Load(),
	}
}

// Closed reports whether Close was called.
func (c *Core) Closed() bool { return c.closed.Load() }

// Close stops the reader and the monitor, waits for both, and closes the
// backend. It must not be called from the handler. A second call returns
// an error wrapping link.ErrClosed.
func (c *Core) Close() error {
	if c.closed.Swap(true) {
		return fmt.Errorf("%s: close: %w", c.prefix, link.ErrClosed)
	}
	close(c.stop)
	c.waiter.wake()
	if c.mon != nil {
		c.mon.close()
	}
	c.mu.Lock()
	done, monDone := c.done, c.monDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
	if monDone != nil {
		<-monDone
	}
	// A SetMulticastFilter in progress finishes (its calls fail on the
	// closed descriptor) before the backend's memory goes away.
	c.filterMu.Lock()
	err := c.be.Close()
	c.filterMu.Unlock()
	c.waiter.close()
	if err != nil {
		return fmt.Errorf("%s: close: %w", c.prefix, err)
	}
	return nil
}

//go:build linux

// Package tap is a link.Endpoint on a Linux TAP device: the stack sits at the
// far end of a virtual Ethernet cable whose near end is the kernel interface
// (typically a bridge port). Frames are read and written on the
// /dev/net/tun file descriptor opened with IFF_TAP|IFF_NO_PI.
//
// The stack's MAC address (Options.MAC, or a random locally administered
// one) is its own, distinct from the kernel tap interface's address.
//
// A TAP device hands the program every frame the kernel sends out of it and
// has no multicast filter to program. SetMulticastFilter therefore keeps a
// link.ExactFilter in software: multicast frames to addresses not in the
// filter are dropped before the handler is called, and beyond
// Options.FilterCapacity addresses the filter accepts all multicast and the
// status reports AllMulticast, as a NIC would.
package tap

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// DefaultFilterCapacity is the software filter size used when
// Options.FilterCapacity is zero.
const DefaultFilterCapacity = 64

// Sentinel errors; Open and the methods wrap them with context.
var (
	// ErrPermission: the process may not create or attach to the device
	// (needs CAP_NET_ADMIN, or ownership of a persistent device).
	ErrPermission = errors.New("tap: permission denied (needs CAP_NET_ADMIN)")
	// ErrBusy: another program is attached to the device.
	ErrBusy = errors.New("tap: device busy")
	// ErrNoTunDevice: /dev/net/tun is missing.
	ErrNoTunDevice = errors.New("tap: /dev/net/tun not available")
	// ErrInvalidName: the name is too long or names a non-TAP device.
	ErrInvalidName = errors.New("tap: invalid device name")
	// ErrInterfaceDown: the kernel side of the device is down.
	ErrInterfaceDown = errors.New("tap: interface is down")
	// ErrNotMulticast: SetMulticastFilter got a non-multicast address.
	ErrNotMulticast = errors.New("tap: not a multicast MAC address")
	// ErrAttached: Attach was called twice.
	ErrAttached = errors.New("tap: already attached")
)

// Options configures an Endpoint.
type Options struct {
	// MAC is the stack's address on this link. The zero value means a
	// random locally administered unicast address.
	MAC wire.MAC
	// FilterCapacity is the number of exact multicast addresses the
	// software filter holds before accepting all multicast. Zero means
	// DefaultFilterCapacity; negative is an error.
	FilterCapacity int
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Endpoint is a link.Endpoint on a TAP device. Create it with Open.
type Endpoint struct {
	name     string
	mtu      int
	mac      wire.MAC
	capacity int
	log      *slog.Logger
	file     *os.File

	// filter is the software multicast filter. Each SetMulticastFilter
	// stores a fresh ExactFilter that is never mutated afterwards, so the
	// receive path reads it without locking.
	filter atomic.Pointer[link.ExactFilter]
	// closed is set at the start of Close.
	closed atomic.Bool

	// mu guards attached and done.
	mu       sync.Mutex
	attached bool
	// done is closed when the read goroutine exits (nil before Attach).
	done chan struct{}
	// stop is closed by Close to cut short the reader's error backoff.
	stop chan struct{}
}

var _ link.Endpoint = (*Endpoint)(nil)

// Open creates TAP device name, or attaches to an existing one (e.g. made
// by `ip tuntap add dev NAME mode tap`), in the calling thread's network
// namespace; an empty name lets the kernel pick tapN (see Name). A device
// Open created disappears on Close; a persistent one stays. The kernel side
// must be up (`ip link set NAME up`) for frames to flow.
func Open(name string, opts Options) (*Endpoint, error) {
	if opts.FilterCapacity < 0 {
		return nil, fmt.Errorf("tap: open %s: negative FilterCapacity %d", name, opts.FilterCapacity)
	}
	if opts.FilterCapacity == 0 {
		opts.FilterCapacity = DefaultFilterCapacity
	}
	if opts.MAC != (wire.MAC{}) && opts.MAC.IsMulticast() {
		return nil, fmt.Errorf("tap: open %s: MAC %v is a multicast address", name, opts.MAC)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap: open %q: %w: longer than %d bytes", name, ErrInvalidName, unix.IFNAMSIZ-1)
	}
	// Nonblocking, so that os.NewFile registers the fd with the runtime
	// poller: reads then park the goroutine, and Close wakes them.
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("tap: open %s: %w: %v", name, ErrNoTunDevice, err)
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("tap: open %s: %w: /dev/net/tun: %v", name, ErrPermission, err)
		}
		return nil, fmt.Errorf("tap: open %s: /dev/net/tun: %w", name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap: open %q: %w: %v", name, ErrInvalidName, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("tap: open %s: %w: TUNSETIFF: %v", name, ErrPermission, err)
		case errors.Is(err, unix.EBUSY):
			return nil, fmt.Errorf("tap: open %s: %w: TUNSETIFF: %v", name, ErrBusy, err)
		case errors.Is(err, unix.EINVAL):
			return nil, fmt.Errorf("tap: open %s: %w: TUNSETIFF (existing device of another type?): %v", name, ErrInvalidName, err)
		}
		return nil, fmt.Errorf("tap: open %s: TUNSETIFF: %w", name, err)
	}
	name = ifr.Name()
	file := os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("tap: open %s: read interface: %w", name, err)
	}
	mac := opts.MAC
	if mac == (wire.MAC{}) {
		if mac, err = randomMAC(); err != nil {
			file.Close()
			return nil, fmt.Errorf("tap: open %s: %w", name, err)
		}
	}
	e := &Endpoint{
		name:     name,
		mtu:      ifi.MTU,
		mac:      mac,
		capacity: opts.FilterCapacity,
		log:      log.With("link", "tap", "if", name),
		file:     file,
		stop:     make(chan struct{}),
	}
	e.filter.Store(&link.ExactFilter{Capacity: e.capacity})
	return e, nil
}

// randomMAC returns a random locally administered unicast address.
func randomMAC() (wire.MAC, error) {
	var m wire.MAC
	if _, err := rand.Read(m[:]); err != nil {
		return m, fmt.Errorf("random MAC: %w", err)
	}
	m[0] = m[0]&^0x01 | 0x02
	return m, nil
}

// Name returns the kernel device name.
func (e *Endpoint) Name() string { return e.name }

// MTU returns the device MTU read at Open.
func (e *Endpoint) MTU() int { return e.mtu }

// HardwareAddr returns the stack's MAC address on this link.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Attach starts the read goroutine that delivers frames to h.
func (e *Endpoint) Attach(h link.Handler) error {
	if h == nil {
		return fmt.Errorf("tap: %s: attach: nil handler", e.name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return fmt.Errorf("tap: %s: attach: %w", e.name, link.ErrClosed)
	}
	if e.attached {
		return fmt.Errorf("tap: %s: %w", e.name, ErrAttached)
	}
	e.attached = true
	e.done = make(chan struct{})
	go e.readLoop(h, e.done)
	return nil
}

// readBufSize covers the largest frame a TAP device without a vnet header
// hands out (the kernel segments GSO packets first).
const readBufSize = 65536 + 64

func (e *Endpoint) readLoop(h link.Handler, done chan struct{}) {
	defer close(done)
	buf := make([]byte, readBufSize)
	batch := make([][]byte, 1)
	backoff := time.Duration(0)
	for {
		n, err := e.file.Read(buf)
		if err != nil {
			if e.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			e.log.Warn("read failed", "err", err)
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			select {
			case <-e.stop:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if n < 14 {
			continue
		}
		frame := buf[:n]
		if !e.filter.Load().Accepts(wire.MAC(frame[:6])) {
			continue
		}
		if e.closed.Load() {
			return
		}
		batch[0] = frame
		h.HandleFrames(batch)
	}
}

// WriteFrame hands one complete Ethernet frame to the kernel, which receives
// it on the tap interface. It is safe for concurrent use: each frame is one
// write(2).
func (e *Endpoint) WriteFrame(frame []byte) error {
	if e.closed.Load() {
		return fmt.Errorf("tap: %s: write: %w", e.name, link.ErrClosed)
	}
	if len(frame) < 14 {
		return fmt.Errorf("tap: %s: write: frame of %d bytes is shorter than an Ethernet header", e.name, len(frame))
	}
	if _, err := e.file.Write(frame); err != nil {
		switch {
		case errors.Is(err, os.ErrClosed):
			return fmt.Errorf("tap: %s: write: %w", e.name, link.ErrClosed)
		case errors.Is(err, unix.EIO):
			return fmt.Errorf("tap: %s: write: %w: %v", e.name, ErrInterfaceDown, err)
		}
		return fmt.Errorf("tap: %s: write: %w", e.name, err)
	}
	return nil
}

// SetMulticastFilter replaces the software multicast filter with addrs.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	for _, a := range addrs {
		if !a.IsMulticast() {
			return link.FilterStatus{}, fmt.Errorf("tap: %s: set filter: %w: %v", e.name, ErrNotMulticast, a)
		}
	}
	if e.closed.Load() {
		return link.FilterStatus{}, fmt.Errorf("tap: %s: set filter: %w", e.name, link.ErrClosed)
	}
	f := &link.ExactFilter{Capacity: e.capacity}
	st := f.Set(addrs)
	e.filter.Store(f)
	return st, nil
}

// Close stops the read goroutine, waits for it, and closes the file
// descriptor (a device Open created then disappears). It must not be called
// from the handler. Closing twice returns an error wrapping link.ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return fmt.Errorf("tap: %s: close: %w", e.name, link.ErrClosed)
	}
	close(e.stop)
	// Wake a parked reader at once; closing the file wakes it too.
	_ = e.file.SetReadDeadline(time.Now())
	err := e.file.Close()
	e.mu.Lock()
	done := e.done
	e.mu.Unlock()
	if done != nil {
		<-done
	}
	if err != nil {
		return fmt.Errorf("tap: %s: close: %w", e.name, err)
	}
	return nil
}

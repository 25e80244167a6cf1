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
//
// The reader hands the handler everything queued on the device at once
// (up to link.MaxBatch frames per call), and waits in poll(2) when the
// device is empty; Close wakes it at once. The endpoint reports the kernel
// interface's state (administratively up and, once a program is attached,
// with carrier) right after Attach and on every change, and Gone when the
// device is deleted (`ip link del`); writes then fail with link.ErrGone,
// while the interface is down with link.ErrLinkDown, and after
// Options.WriteTimeout of a full send buffer with link.ErrWouldBlock.
package tap

import (
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/internal/core"
	"github.com/mcstack/mcstack/link/internal/tundev"
	"github.com/mcstack/mcstack/wire"
)

// DefaultFilterCapacity is the software filter size used when
// Options.FilterCapacity is zero.
const DefaultFilterCapacity = core.DefaultFilterCapacity

// DefaultWriteTimeout is how long WriteFrame waits for room when
// Options.WriteTimeout is zero.
const DefaultWriteTimeout = core.DefaultWriteTimeout

// Sentinel errors; Open and the methods wrap them with context. The
// device errors are shared with package tun.
var (
	// ErrPermission: the process may not create or attach to the device
	// (needs CAP_NET_ADMIN, or ownership of a persistent device).
	ErrPermission = tundev.ErrPermission
	// ErrBusy: another program is attached to the device.
	ErrBusy = tundev.ErrBusy
	// ErrNoTunDevice: /dev/net/tun is missing.
	ErrNoTunDevice = tundev.ErrNoTunDevice
	// ErrInvalidName: the name is too long or names a non-TAP device.
	ErrInvalidName = tundev.ErrInvalidName
	// ErrInterfaceDown: the kernel side of the device is down (the same
	// value as link.ErrLinkDown).
	ErrInterfaceDown = link.ErrLinkDown
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
	// WriteTimeout bounds how long WriteFrame waits for room in a full
	// send buffer before failing with link.ErrWouldBlock. Zero means
	// DefaultWriteTimeout; negative is an error.
	WriteTimeout time.Duration
	// Logger receives diagnostics; nil means discard.
	Logger *slog.Logger
}

// Endpoint is a link.Endpoint on a TAP device. Create it with Open.
type Endpoint struct {
	dev  *tundev.Device
	mac  wire.MAC
	core *core.Core
}

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Indexed  = (*Endpoint)(nil)
)

// Open creates TAP device name, or attaches to an existing one (e.g. made
// by `ip tuntap add dev NAME mode tap`), in the calling thread's network
// namespace; an empty name lets the kernel pick tapN (see Name). A device
// Open created disappears on Close; a persistent one stays. The kernel side
// must be up (`ip link set NAME up`) for frames to flow.
func Open(name string, opts Options) (*Endpoint, error) {
	dev, mac, c, err := tundev.OpenCore(tundev.Config{
		Backend:         "tap",
		Kind:            unix.IFF_TAP,
		Name:            name,
		MAC:             opts.MAC,
		FilterCapacity:  opts.FilterCapacity,
		WriteTimeout:    opts.WriteTimeout,
		Logger:          opts.Logger,
		ErrAttached:     ErrAttached,
		ErrNotMulticast: ErrNotMulticast,
		NewBackend: func(dev *tundev.Device, _ wire.MAC) core.Backend {
			return &backend{Reader: core.NewFrameBatcher(frameReader{dev}, readBufSize), dev: dev}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Endpoint{dev: dev, mac: mac, core: c}, nil
}

// readBufSize covers the largest frame a TAP device without a vnet header
// hands out (the kernel segments GSO packets first).
const readBufSize = 65536 + 64

// frameReader reads frames as they are.
type frameReader struct{ dev *tundev.Device }

func (r frameReader) ReadFrame(buf []byte, b *core.Batch) (int, error) {
	n, err := r.dev.Read(buf)
	if err != nil {
		return 0, err
	}
	if !b.Offer(buf[:n], 0) {
		return 0, nil
	}
	return n, nil
}

// backend is the endpoint's core.Backend.
type backend struct {
	core.Reader
	dev *tundev.Device
}

func (b *backend) Write(frame []byte) error { return b.dev.Write(frame) }
func (b *backend) Close() error             { return b.dev.Close() }

// Name returns the kernel device name.
func (e *Endpoint) Name() string { return e.dev.Name }

// Index returns the kernel interface's ifindex.
func (e *Endpoint) Index() int { return e.dev.Index }

// MTU returns the device MTU read at Open.
func (e *Endpoint) MTU() int { return e.dev.MTU }

// HardwareAddr returns the stack's MAC address on this link.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Attach starts the reader that delivers frames and link-state changes to
// h; the first call h receives is the link's state. A second call fails
// with ErrAttached.
func (e *Endpoint) Attach(h link.Handler) error { return e.core.Attach(h) }

// WriteFrame hands one complete Ethernet frame to the kernel, which receives
// it on the tap interface. It is safe for concurrent use: each frame is one
// write(2).
func (e *Endpoint) WriteFrame(frame []byte) error { return e.core.WriteFrame(frame) }

// SetMulticastFilter replaces the software multicast filter with addrs.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	return e.core.SetMulticastFilter(addrs)
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() link.Stats { return e.core.Stats() }

// Close stops the reader, waits for it, and closes the file descriptor (a
// device Open created then disappears). It must not be called from the
// handler. Closing twice returns an error wrapping link.ErrClosed.
func (e *Endpoint) Close() error { return e.core.Close() }

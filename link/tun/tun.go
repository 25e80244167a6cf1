//go:build linux

// Package tun is a link.Endpoint on a Linux TUN device (IFF_TUN|IFF_NO_PI):
// an L3 device, as VPNs and overlays use, whose packets carry no Ethernet
// header. The stack speaks Ethernet, so the endpoint presents the device as
// an Ethernet link of two stations, the stack (HardwareAddr: Options.MAC,
// or a random locally administered address) and the kernel (PeerMAC):
//
//   - On receive it puts a synthetic Ethernet header in front of each
//     packet: the destination is the IPv4 or IPv6 multicast MAC address of
//     a multicast destination (RFC 1112 §6.4, RFC 2464 §7), the broadcast
//     address for 255.255.255.255, and the endpoint's own address
//     otherwise; the source is PeerMAC; the EtherType follows the IP
//     version nibble. Packets that are neither IPv4 nor IPv6 (or too short
//     to hold the header) are dropped and counted (Stats.RxInvalid).
//   - On write it strips the Ethernet header and hands the IP packet to the
//     kernel, refusing frames whose EtherType is not IPv4 or IPv6 (or does
//     not match the packet's version) with ErrNotIP.
//
// A TUN device has no multicast filter: the kernel sends the program every
// packet routed out of the device (e.g. with `ip route add 224.0.0.0/4 dev
// TUN`). SetMulticastFilter keeps a link.ExactFilter in software, as
// package tap does: multicast packets to addresses not in the filter are
// dropped before the handler, and beyond Options.FilterCapacity addresses
// the filter accepts all multicast and reports AllMulticast.
//
// Link state, writes and Close behave as in package tap: the state is
// reported right after Attach and on every change, Gone when the device is
// deleted; writes never block for long (link.ErrWouldBlock).
package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/internal/core"
	"github.com/mcstack/mcstack/link/internal/tundev"
	"github.com/mcstack/mcstack/wire"
)

// PeerMAC is the source address of every frame the endpoint hands the
// stack: the kernel's side of the synthetic Ethernet link (locally
// administered).
var PeerMAC = wire.MAC{0x02, 't', 'u', 'n', 0, 1}

// DefaultFilterCapacity is the software filter size used when
// Options.FilterCapacity is zero.
const DefaultFilterCapacity = core.DefaultFilterCapacity

// DefaultWriteTimeout is how long WriteFrame waits for room when
// Options.WriteTimeout is zero.
const DefaultWriteTimeout = core.DefaultWriteTimeout

// Sentinel errors; Open and the methods wrap them with context. The device
// errors are shared with package tap.
var (
	// ErrPermission: the process may not create or attach to the device
	// (needs CAP_NET_ADMIN, or ownership of a persistent device).
	ErrPermission = tundev.ErrPermission
	// ErrBusy: another program is attached to the device.
	ErrBusy = tundev.ErrBusy
	// ErrNoTunDevice: /dev/net/tun is missing.
	ErrNoTunDevice = tundev.ErrNoTunDevice
	// ErrInvalidName: the name is too long or names a non-TUN device.
	ErrInvalidName = tundev.ErrInvalidName
	// ErrNotIP: WriteFrame got a frame that is not IPv4 or IPv6.
	ErrNotIP = errors.New("tun: not an IPv4 or IPv6 frame")
	// ErrNotMulticast: SetMulticastFilter got a non-multicast address.
	ErrNotMulticast = errors.New("tun: not a multicast MAC address")
	// ErrAttached: Attach was called twice.
	ErrAttached = errors.New("tun: already attached")
)

// Options configures an Endpoint.
type Options struct {
	// MAC is the stack's address on the synthetic Ethernet link. The zero
	// value means a random locally administered unicast address. It must
	// not be PeerMAC.
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

// Endpoint is a link.Endpoint on a TUN device. Create it with Open.
type Endpoint struct {
	dev  *tundev.Device
	mac  wire.MAC
	core *core.Core
}

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Indexed  = (*Endpoint)(nil)
)

// Open creates TUN device name, or attaches to an existing one (e.g. made
// by `ip tuntap add dev NAME mode tun`), in the calling thread's network
// namespace; an empty name lets the kernel pick tunN. A device Open
// created disappears on Close; a persistent one stays. The device must be
// up (`ip link set NAME up`) for packets to flow.
func Open(name string, opts Options) (*Endpoint, error) {
	dev, mac, c, err := tundev.OpenCore(tundev.Config{
		Backend:         "tun",
		Kind:            unix.IFF_TUN,
		Name:            name,
		MAC:             opts.MAC,
		Reserved:        PeerMAC,
		FilterCapacity:  opts.FilterCapacity,
		WriteTimeout:    opts.WriteTimeout,
		Logger:          opts.Logger,
		ErrAttached:     ErrAttached,
		ErrNotMulticast: ErrNotMulticast,
		NewBackend: func(dev *tundev.Device, mac wire.MAC) core.Backend {
			return &backend{Reader: core.NewFrameBatcher(&packetReader{dev: dev, mac: mac}, readBufSize), dev: dev}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Endpoint{dev: dev, mac: mac, core: c}, nil
}

// readBufSize is a synthetic Ethernet header plus the largest IP packet.
const readBufSize = wire.EthernetHeaderLen + 65535

// packetReader reads IP packets and frames them.
type packetReader struct {
	dev *tundev.Device
	mac wire.MAC
}

func (r *packetReader) ReadFrame(buf []byte, b *core.Batch) (int, error) {
	n, err := r.dev.Read(buf[wire.EthernetHeaderLen:])
	if err != nil {
		return 0, err
	}
	frame := buf[:wire.EthernetHeaderLen+n]
	if !frameIP(frame, r.mac) {
		b.Invalid()
		return 0, nil
	}
	if !b.Offer(frame, 0) {
		return 0, nil
	}
	return len(frame), nil
}

// frameIP fills in the Ethernet header in front of the IP packet at
// frame[14:] (see the package comment) and reports whether the packet is
// IPv4 or IPv6 with a complete fixed header.
func frameIP(frame []byte, self wire.MAC) bool {
	ip := frame[wire.EthernetHeaderLen:]
	if len(ip) == 0 {
		return false
	}
	var dst wire.MAC
	var etherType uint16
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 {
			return false
		}
		etherType = wire.EtherTypeIPv4
		d := ip[16:20]
		switch {
		case d[0]&0xf0 == 0xe0:
			dst = wire.MAC{0x01, 0x00, 0x5e, d[1] & 0x7f, d[2], d[3]}
		case d[0] == 255 && d[1] == 255 && d[2] == 255 && d[3] == 255:
			dst = wire.BroadcastMAC
		default:
			dst = self
		}
	case 6:
		if len(ip) < 40 {
			return false
		}
		etherType = wire.EtherTypeIPv6
		d := ip[24:40]
		if d[0] == 0xff {
			dst = wire.MAC{0x33, 0x33, d[12], d[13], d[14], d[15]}
		} else {
			dst = self
		}
	default:
		return false
	}
	copy(frame[0:6], dst[:])
	copy(frame[6:12], PeerMAC[:])
	binary.BigEndian.PutUint16(frame[12:14], etherType)
	return true
}

// backend is the endpoint's core.Backend.
type backend struct {
	core.Reader
	dev *tundev.Device
}

// Write strips the Ethernet header and writes the IP packet.
func (b *backend) Write(frame []byte) error {
	et := binary.BigEndian.Uint16(frame[12:14])
	ip := frame[wire.EthernetHeaderLen:]
	var version byte
	switch et {
	case wire.EtherTypeIPv4:
		version = 4
	case wire.EtherTypeIPv6:
		version = 6
	default:
		return fmt.Errorf("%w: EtherType %#04x", ErrNotIP, et)
	}
	if len(ip) == 0 || ip[0]>>4 != version {
		return fmt.Errorf("%w: EtherType %#04x with a packet of IP version %d", ErrNotIP, et, versionOf(ip))
	}
	return b.dev.Write(ip)
}

func versionOf(ip []byte) int {
	if len(ip) == 0 {
		return 0
	}
	return int(ip[0] >> 4)
}

func (b *backend) Close() error { return b.dev.Close() }

// Name returns the kernel device name.
func (e *Endpoint) Name() string { return e.dev.Name }

// Index returns the kernel interface's ifindex.
func (e *Endpoint) Index() int { return e.dev.Index }

// MTU returns the device MTU read at Open: the largest IP packet.
func (e *Endpoint) MTU() int { return e.dev.MTU }

// HardwareAddr returns the stack's address on the synthetic Ethernet link.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Attach starts the reader that delivers frames and link-state changes to
// h; the first call h receives is the link's state. A second call fails
// with ErrAttached.
func (e *Endpoint) Attach(h link.Handler) error { return e.core.Attach(h) }

// WriteFrame strips the Ethernet header of an IPv4 or IPv6 frame and hands
// the packet to the kernel, which receives it on the TUN interface. It is
// safe for concurrent use. Other frames fail with ErrNotIP.
func (e *Endpoint) WriteFrame(frame []byte) error { return e.core.WriteFrame(frame) }

// SetMulticastFilter replaces the software multicast filter with addrs.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	return e.core.SetMulticastFilter(addrs)
}

// Stats returns the endpoint's counters; RxInvalid counts packets that
// were neither IPv4 nor IPv6.
func (e *Endpoint) Stats() link.Stats { return e.core.Stats() }

// Close stops the reader, waits for it, and closes the descriptor (a
// device Open created then disappears). It must not be called from the
// handler. Closing twice returns an error wrapping link.ErrClosed.
func (e *Endpoint) Close() error { return e.core.Close() }

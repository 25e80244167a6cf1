//go:build linux

// Package tundev opens Linux TUN/TAP devices (/dev/net/tun, TUNSETIFF) and
// reads and writes them without blocking, for link/tap and link/tun.
package tundev

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/internal/core"
	"github.com/mcstack/mcstack/wire"
)

// Sentinel errors of both backends (link/tap and link/tun export them
// under their own names; errors.Is matches either).
var (
	// ErrPermission: the process may not create or attach to the device
	// (needs CAP_NET_ADMIN, or ownership of a persistent device).
	ErrPermission = errors.New("permission denied (needs CAP_NET_ADMIN)")
	// ErrBusy: another program is attached to the device.
	ErrBusy = errors.New("device busy")
	// ErrNoTunDevice: /dev/net/tun is missing.
	ErrNoTunDevice = errors.New("/dev/net/tun not available")
	// ErrInvalidName: the name is too long or names a device of another
	// kind.
	ErrInvalidName = errors.New("invalid device name")
)

// Device is an attached TUN or TAP device.
type Device struct {
	// Name, Index and MTU are the kernel interface's.
	Name  string
	Index int
	MTU   int
	file  *os.File
	rc    syscall.RawConn

	// The reader's state: rbuf is where the current Read goes, fn reads
	// into it (a func value made once, so reads do not allocate).
	rbuf  []byte
	rn    int
	rerr  error
	readF func(fd uintptr)
}

// Open creates device name of the given kind (unix.IFF_TAP or
// unix.IFF_TUN; IFF_NO_PI is added), or attaches to an existing one, in
// the calling thread's network namespace; an empty name lets the kernel
// pick one. Errors wrap the sentinels above.
func Open(name string, kind uint16) (*Device, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, unix.IFNAMSIZ-1)
	}
	// Nonblocking, so that reads and writes never park a thread; the
	// reader waits in poll(2).
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return nil, fmt.Errorf("%w: %v", ErrNoTunDevice, err)
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("%w: /dev/net/tun: %v", ErrPermission, err)
		}
		return nil, fmt.Errorf("/dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	ifr.SetUint16(kind | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("%w: TUNSETIFF: %v", ErrPermission, err)
		case errors.Is(err, unix.EBUSY):
			return nil, fmt.Errorf("%w: TUNSETIFF: %v", ErrBusy, err)
		case errors.Is(err, unix.EINVAL):
			return nil, fmt.Errorf("%w: TUNSETIFF (existing device of another type?): %v", ErrInvalidName, err)
		}
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	d := &Device{Name: ifr.Name(), file: os.NewFile(uintptr(fd), "/dev/net/tun:"+ifr.Name())}
	ifi, err := net.InterfaceByName(d.Name)
	if err != nil {
		d.file.Close()
		return nil, fmt.Errorf("read interface %s: %w", d.Name, err)
	}
	d.Index, d.MTU = ifi.Index, ifi.MTU
	if d.rc, err = d.file.SyscallConn(); err != nil {
		d.file.Close()
		return nil, fmt.Errorf("raw descriptor: %w", err)
	}
	d.readF = func(fd uintptr) {
		for {
			n, err := unix.Read(int(fd), d.rbuf)
			if err == unix.EINTR {
				continue
			}
			d.rn, d.rerr = n, err
			return
		}
	}
	return d, nil
}

// Conn returns the descriptor, for polling.
func (d *Device) Conn() syscall.RawConn { return d.rc }

// Read reads one packet into buf without blocking, for the reader
// goroutine only. It returns core.ErrAgain when nothing is queued, an
// error wrapping link.ErrGone when the device was deleted (EBADFD).
func (d *Device) Read(buf []byte) (int, error) {
	d.rbuf = buf
	err := d.rc.Control(d.readF)
	d.rbuf = nil
	if err != nil {
		return 0, err
	}
	switch {
	case d.rerr == nil:
		return d.rn, nil
	case d.rerr == unix.EAGAIN:
		return 0, core.ErrAgain
	}
	return 0, core.ReadError("read", d.rerr)
}

// Write writes one packet without blocking. EIO (the interface is down)
// is reported wrapping link.ErrLinkDown.
func (d *Device) Write(p []byte) error {
	var werr error
	if err := d.rc.Control(func(fd uintptr) {
		for {
			_, werr = unix.Write(int(fd), p)
			if werr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(werr, unix.EIO) {
		return fmt.Errorf("%w: %v", link.ErrLinkDown, werr)
	}
	return werr
}

// Close closes the descriptor; a device Open created disappears.
func (d *Device) Close() error { return d.file.Close() }

// RandomMAC returns a random locally administered unicast address.
func RandomMAC() (wire.MAC, error) {
	var m wire.MAC
	if _, err := rand.Read(m[:]); err != nil {
		return m, fmt.Errorf("random MAC: %w", err)
	}
	m[0] = m[0]&^0x01 | 0x02
	return m, nil
}

// Config is what link/tap and link/tun pass to OpenCore: their Options,
// checked and defaulted here, and what makes them differ.
type Config struct {
	// Backend is "tap" or "tun"; Kind is unix.IFF_TAP or unix.IFF_TUN.
	Backend string
	Kind    uint16
	// Name is the device name ("" lets the kernel pick).
	Name string
	// MAC is the stack's address (zero: random); Reserved is an address
	// it must not be (tun.PeerMAC), zero for none.
	MAC, Reserved  wire.MAC
	FilterCapacity int
	WriteTimeout   time.Duration
	Logger         *slog.Logger
	// ErrAttached and ErrNotMulticast are the backend's sentinels.
	ErrAttached, ErrNotMulticast error
	// NewBackend builds the backend's I/O on the opened device.
	NewBackend func(dev *Device, mac wire.MAC) core.Backend
}

// OpenCore checks cfg, opens the device and the endpoint core on it. The
// errors say "backend: open name: ...".
func OpenCore(cfg Config) (*Device, wire.MAC, *core.Core, error) {
	fail := func(format string, args ...any) (*Device, wire.MAC, *core.Core, error) {
		return nil, wire.MAC{}, nil, fmt.Errorf("%s: open %q: "+format, append([]any{cfg.Backend, cfg.Name}, args...)...)
	}
	switch {
	case cfg.FilterCapacity < 0:
		return fail("negative FilterCapacity %d", cfg.FilterCapacity)
	case cfg.WriteTimeout < 0:
		return fail("negative WriteTimeout %v", cfg.WriteTimeout)
	case cfg.MAC.IsMulticast():
		return fail("MAC %v is a multicast address", cfg.MAC)
	case cfg.MAC != (wire.MAC{}) && cfg.MAC == cfg.Reserved:
		return fail("MAC %v is reserved for the peer", cfg.MAC)
	}
	mac := cfg.MAC
	for mac == (wire.MAC{}) || mac == cfg.Reserved {
		var err error
		if mac, err = RandomMAC(); err != nil {
			return fail("%w", err)
		}
	}
	dev, err := Open(cfg.Name, cfg.Kind)
	if err != nil {
		return fail("%w", err)
	}
	c, err := core.New(core.Config{
		Backend:         cfg.Backend,
		Name:            dev.Name,
		Index:           dev.Index,
		Conn:            dev.Conn(),
		FilterCapacity:  cfg.FilterCapacity,
		WriteTimeout:    cfg.WriteTimeout,
		Logger:          cfg.Logger,
		ErrAttached:     cfg.ErrAttached,
		ErrNotMulticast: cfg.ErrNotMulticast,
	}, cfg.NewBackend(dev, mac))
	if err != nil {
		dev.Close()
		return nil, wire.MAC{}, nil, err
	}
	return dev, mac, c, nil
}

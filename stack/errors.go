package stack

import (
	"errors"
	"net"
)

// Sentinel errors, for errors.Is. Membership misuse is reported with the
// sentinels of package membership (ErrAlreadyJoined, ErrNotJoined,
// ErrModeMismatch, ErrTooManyGroups, ...), wrapped with the operation,
// group and interface.
var (
	// ErrUnknownInterface: the interface is nil where no default exists,
	// was removed, or belongs to another stack.
	ErrUnknownInterface = errors.New("unknown interface")
	// ErrInterfaceExists: AddInterface with a name already in use.
	ErrInterfaceExists = errors.New("interface name already in use")
	// ErrNoRoute: a unicast destination (mcstack has no neighbor
	// resolution) or no interface to send a multicast datagram on.
	ErrNoRoute = errors.New("no route: mcstack sends only multicast and broadcast")
	// ErrNoAddress: the interface has no address of the datagram's family.
	ErrNoAddress = errors.New("interface has no address of this family")
	// ErrMessageTooLong: the datagram does not fit the interface MTU
	// (mcstack does not fragment).
	ErrMessageTooLong = errors.New("message too long for the interface MTU")
	// ErrBadNetwork: ListenUDP with a network other than udp, udp4, udp6.
	ErrBadNetwork = errors.New("unsupported network")
	// ErrBadAddress: a local address that is not usable for the network.
	ErrBadAddress = errors.New("bad local address")
	// ErrBadDestination: a write's destination is not usable: invalid,
	// of the other family, IPv4-mapped on a udp6 socket, port 0, or
	// (WriteTo) not a *net.UDPAddr.
	ErrBadDestination = errors.New("bad destination address")
	// ErrBadBufferSize: SetReadBuffer with a size that is not positive.
	ErrBadBufferSize = errors.New("bad buffer size")
	// ErrBadTOS: SetTOS or SetTrafficClass with a value outside 0..255.
	ErrBadTOS = errors.New("TOS / traffic class out of range 0..255")
	// ErrStackClosed: the stack was closed.
	ErrStackClosed = errors.New("stack closed")
)

// ErrClosed is returned by operations on a closed Conn. It is net.ErrClosed,
// so code written for the net package recognizes it.
var ErrClosed = net.ErrClosed

// ErrLinkGone: the interface's link disappeared (the kernel interface was
// deleted, the TAP device removed); Interface.Sync returns it wrapped, and
// Interface.Done is closed. Remove the interface from the stack.
var ErrLinkGone = errors.New("link gone")

//go:build linux

package afpacket

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/internal/core"
	"github.com/mcstack/mcstack/wire"
)

// protoTCP is the IP protocol number of TCP (RFC 9293); package wire has no
// constant for it because the stack does not speak TCP.
const protoTCP = 6

// sizeofTpacketAuxdata is sizeof(struct tpacket_auxdata), 20 bytes.
const sizeofTpacketAuxdata = int(unsafe.Sizeof(unix.TpacketAuxdata{}))

// auxdata is what the endpoint uses of a struct tpacket_auxdata control
// message (PACKET_AUXDATA, packet(7)).
type auxdata struct {
	// ok tells whether the message was present; false leaves the other
	// fields zero.
	ok bool
	// status is tp_status: TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID,
	// TP_STATUS_VLAN_VALID, ...
	status uint32
	// vlanTCI is tp_vlan_tci, meaningful when status has
	// TP_STATUS_VLAN_VALID.
	vlanTCI uint16
}

// parseAuxdata finds the PACKET_AUXDATA message in the control data oob of
// one recvmsg(2). It does not allocate.
func parseAuxdata(oob []byte) auxdata {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return auxdata{}
		}
		if h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && len(data) >= sizeofTpacketAuxdata {
			// struct tpacket_auxdata { __u32 tp_status, tp_len,
			// tp_snaplen; __u16 tp_mac, tp_net, tp_vlan_tci,
			// tp_vlan_tpid; } in host byte order.
			return auxdata{
				ok:      true,
				status:  binary.NativeEndian.Uint32(data[0:4]),
				vlanTCI: binary.NativeEndian.Uint16(data[16:18]),
			}
		}
		oob = rest
	}
	return auxdata{}
}

// readBufSize covers any frame the kernel can hand an AF_PACKET socket,
// including GRO-merged ones larger than the MTU.
const readBufSize = 65536 + 64

// receiver is the recvmsg(2) path: a core.FrameReader that reads one frame
// per call on the raw socket so that the PACKET_AUXDATA control message
// comes along (packet.Conn.ReadFrom uses recvfrom(2) and drops it). Its
// msghdr, control buffer and the callback handed to syscall.RawConn.Control
// are allocated once, so a read does not allocate. It is used by the
// reader goroutine only.
type receiver struct {
	rc  syscall.RawConn
	buf []byte // where the current read goes (set by ReadFrame)
	oob []byte
	iov unix.Iovec
	msg unix.Msghdr
	// fn is r.recvmsg as a func value, made once (a method value
	// allocates each time it is taken).
	fn func(fd uintptr)
	// Results of the last recvmsg call.
	n     int
	oobn  int
	flags int
	errno unix.Errno
}

func newReceiver(rc syscall.RawConn) *receiver {
	r := &receiver{
		rc:  rc,
		oob: make([]byte, unix.CmsgSpace(sizeofTpacketAuxdata)),
	}
	r.fn = r.recvmsg
	return r
}

// recvmsg is the syscall.RawConn.Control callback: one non-blocking
// recvmsg(2) into r.buf and r.oob, with no source address (msg_name NULL,
// which also spares the sockaddr conversion unix.Recvmsg allocates for).
func (r *receiver) recvmsg(fd uintptr) {
	r.iov.Base = &r.buf[0]
	r.iov.SetLen(len(r.buf))
	r.msg = unix.Msghdr{Iov: &r.iov, Control: &r.oob[0]}
	r.msg.SetIovlen(1)
	r.msg.SetControllen(len(r.oob))
	for {
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			r.n, r.oobn, r.flags, r.errno = 0, 0, 0, e
			return
		}
		r.n, r.oobn, r.flags, r.errno = int(n), int(r.msg.Controllen), int(r.msg.Flags), 0
		return
	}
}

// ReadFrame implements core.FrameReader: it reads one frame into buf,
// offers it to b, and completes its checksum when the kernel reported it
// partial (unless it was truncated to the buffer).
func (r *receiver) ReadFrame(buf []byte, b *core.Batch) (int, error) {
	r.buf = buf
	err := r.rc.Control(r.fn)
	r.buf = nil
	if err != nil {
		return 0, err
	}
	switch r.errno {
	case 0:
	case unix.EAGAIN:
		return 0, core.ErrAgain
	default:
		return 0, core.ReadError("recvmsg", r.errno)
	}
	if !offer(b, buf[:r.n], parseAuxdata(r.oob[:r.oobn]).status, r.flags&unix.MSG_TRUNC != 0) {
		return 0, nil
	}
	return r.n, nil
}

// offer offers frame to b with what the kernel reported of it (tp_status,
// from the ring's frame header or PACKET_AUXDATA; truncated: the frame was
// cut to the buffer): TP_STATUS_CSUM_VALID becomes
// link.FrameChecksumValid, and a checksum left partial
// (TP_STATUS_CSUMNOTREADY) is completed in place, after which it is valid
// too.
func offer(b *core.Batch, frame []byte, status uint32, truncated bool) bool {
	var fl link.FrameFlags
	if status&unix.TP_STATUS_CSUM_VALID != 0 {
		fl = link.FrameChecksumValid
	}
	if !b.Offer(frame, fl) {
		return false
	}
	if status&unix.TP_STATUS_CSUMNOTREADY != 0 && !truncated && completeChecksum(frame) {
		b.AddFlags(link.FrameChecksumValid)
	}
	return true
}

// completeChecksum finishes the transport checksum of a frame the kernel
// reported with TP_STATUS_CSUMNOTREADY (an skb in CHECKSUM_PARTIAL state:
// the sender left the checksum to offload, and a virtual device such as a
// veth passed it on as is, so the checksum field holds only the
// pseudo-header sum). It parses Ethernet (with at most one in-band 802.1Q
// tag) and IPv4 or IPv6, and for UDP, TCP and ICMPv6 recomputes the
// checksum over the pseudo-header and the segment and writes it into frame.
// Other protocols, fragments and frames it cannot parse are left alone (the
// stack then rejects or ignores them as before). It reports whether it
// wrote a checksum, and does not allocate for well-formed frames.
//
// It recomputes rather than trusting the partial sum, so it does not depend
// on what the field held, only on the segment bytes.
func completeChecksum(frame []byte) bool {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		return false
	}
	var (
		proto    uint8
		seg      []byte
		src, dst netip.Addr
	)
	switch eth.EtherType {
	case wire.EtherTypeIPv4:
		ip, err := wire.ParseIPv4(eth.Payload)
		if err != nil || ip.MoreFragments || ip.FragmentOffset != 0 {
			return false
		}
		proto, seg, src, dst = ip.Protocol, ip.Payload, ip.Src, ip.Dst
	case wire.EtherTypeIPv6:
		ip, err := wire.ParseIPv6(eth.Payload)
		if err != nil || ip.Fragment {
			return false
		}
		proto, seg, src, dst = ip.NextHeader, ip.Payload, ip.Src, ip.Dst
	default:
		return false
	}
	switch proto {
	case wire.ProtoUDP:
		if len(seg) < wire.UDPHeaderLen {
			return false
		}
		l := int(binary.BigEndian.Uint16(seg[4:]))
		if l < wire.UDPHeaderLen || l > len(seg) {
			return false
		}
		seg = seg[:l]
		seg[6], seg[7] = 0, 0
		c := wire.Checksum(seg, wire.PseudoHeaderSum(src, dst, wire.ProtoUDP, l))
		if c == 0 {
			c = 0xffff // RFC 768: a computed zero is sent as all ones
		}
		binary.BigEndian.PutUint16(seg[6:], c)
	case protoTCP:
		if len(seg) < 20 {
			return false
		}
		seg[16], seg[17] = 0, 0
		binary.BigEndian.PutUint16(seg[16:], wire.Checksum(seg, wire.PseudoHeaderSum(src, dst, protoTCP, len(seg))))
	case wire.ProtoICMPv6:
		if len(seg) < 4 || !src.Is6() {
			return false
		}
		binary.BigEndian.PutUint16(seg[2:], wire.ICMPv6Checksum(src, dst, seg))
	default:
		return false
	}
	return true
}

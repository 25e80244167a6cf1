//go:build linux

package interop

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is struct ifreq with ifr_data set.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtool issues one SIOCETHTOOL get/set of an ethtool_value on ifname, in
// the calling thread's network namespace.
func ethtool(ifname string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	val := &ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(val)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ifr)
	if errno != 0 {
		return 0, fmt.Errorf("SIOCETHTOOL %#x on %s: %w", cmd, ifname, errno)
	}
	return val.data, nil
}

// disableTxChecksumOffload is `ethtool -K ifname tx off`: the kernel then
// completes transport checksums before the frame leaves ifname.
//
// A veth passes the kernel's CHECKSUM_PARTIAL packets on with only the
// pseudo-header sum in the UDP checksum field; the receiving kernel (and
// our AF_PACKET endpoint, through PACKET_AUXDATA's TP_STATUS_CSUMNOTREADY)
// trusts the skb's checksum state. TestInteropChecksumOffload covers that
// case; the other tests turn offload off on the kernel peers' veths so that
// frames look like those of a real NIC, with complete checksums, which our
// stack then verifies itself.
func disableTxChecksumOffload(ifname string) error {
	if _, err := ethtool(ifname, unix.ETHTOOL_STXCSUM, 0); err != nil {
		return err
	}
	on, err := ethtool(ifname, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil {
		return err
	}
	if on != 0 {
		return fmt.Errorf("tx checksum offload still on for %s", ifname)
	}
	return nil
}

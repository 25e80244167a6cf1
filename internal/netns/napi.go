//go:build linux

package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// ethtool issues one SIOCETHTOOL get or set of an ethtool_value on ifname
// in the calling thread's network namespace and returns the value's data.
func ethtool(ifname string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("ethtool socket: %w", err)
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

// setOffload sets one legacy ethtool offload flag (set is the ETHTOOL_Sxxx
// command, get its ETHTOOL_Gxxx) on ifname inside the namespace and reads
// it back.
func (ns *NS) setOffload(ifname, what string, set, get uint32, on bool) error {
	err := ns.Do(func() error {
		var v uint32
		if on {
			v = 1
		}
		if _, err := ethtool(ifname, set, v); err != nil {
			return err
		}
		got, err := ethtool(ifname, get, 0)
		if err != nil {
			return err
		}
		if (got != 0) != on {
			return fmt.Errorf("%s still %s after setting it", what, onOff(got != 0))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns %s: turn %s %s on %s: %w", ns.Name, what, onOff(on), ifname, err)
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// SetGRO turns generic receive offload on ifname on or off
// (`ethtool -K ifname gro on|off`, through the SIOCETHTOOL ioctl) and checks
// that the setting took. On a veth, GRO on makes the device receive through
// its own NAPI instance instead of the CPU's input backlog.
func (ns *NS) SetGRO(ifname string, on bool) error {
	return ns.setOffload(ifname, "GRO", unix.ETHTOOL_SGRO, unix.ETHTOOL_GGRO, on)
}

// SetTxChecksum turns transmit checksum offload on ifname on or off
// (`ethtool -K ifname tx on|off`) and checks that it took. With it off the
// kernel completes transport checksums before a frame leaves ifname; on a
// veth it is on by default, and frames then carry only the pseudo-header
// sum in the UDP checksum field (CHECKSUM_PARTIAL).
func (ns *NS) SetTxChecksum(ifname string, on bool) error {
	return ns.setOffload(ifname, "tx checksum offload", unix.ETHTOOL_STXCSUM, unix.ETHTOOL_GTXCSUM, on)
}

// SetTSO turns TCP segmentation offload on ifname on or off (`ethtool -K
// ifname tso on|off`: all the TSO features) and checks that it took.
func (ns *NS) SetTSO(ifname string, on bool) error {
	return ns.setOffload(ifname, "TSO", unix.ETHTOOL_STSO, unix.ETHTOOL_GTSO, on)
}

// ErrNoThreadedNAPI is returned by SetThreadedNAPI when the device has no
// threaded attribute (a kernel before 5.12, or a device without NAPI).
var ErrNoThreadedNAPI = errors.New("netns: no threaded NAPI (/sys/class/net/IFNAME/threaded missing)")

// SetThreadedNAPI switches ifname's NAPI polling to kernel threads (writes 1
// to /sys/class/net/ifname/threaded), checks that the attribute reads back
// 1, and returns the process IDs of the device's NAPI threads
// (napi/ifname-ID, one per NAPI instance). The device must use NAPI: a
// veth does only with GRO on or an XDP program attached (SetGRO). The
// threads end when the device is deleted.
//
// sysfs shows the network devices of the namespace it was mounted in, not
// those of the calling thread, so the attribute is written through `ip
// netns exec`, which mounts a sysfs of the namespace.
func (ns *NS) SetThreadedNAPI(ifname string) ([]int, error) {
	if strings.ContainsAny(ifname, "/\x00") || ifname == "" || ifname == "." || ifname == ".." {
		return nil, fmt.Errorf("netns %s: bad interface name %q", ns.Name, ifname)
	}
	attr := "/sys/class/net/" + ifname + "/threaded"
	if _, err := ns.Run("test", "-e", attr); err != nil {
		return nil, fmt.Errorf("netns %s: %s: %w", ns.Name, ifname, ErrNoThreadedNAPI)
	}
	out, err := ns.Run("sh", "-c", `echo 1 >"$1" && cat "$1"`, "sh", attr)
	if err != nil {
		return nil, fmt.Errorf("netns %s: enable threaded NAPI on %s: %w", ns.Name, ifname, err)
	}
	if v := strings.TrimSpace(out); v != "1" {
		return nil, fmt.Errorf("netns %s: enable threaded NAPI on %s: %s reads %q after writing 1 (does the device use NAPI?)", ns.Name, ifname, attr, v)
	}
	pids, err := NAPIThreads(ifname)
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("netns %s: threaded NAPI on %s: no napi/%s-* kernel thread found", ns.Name, ifname, ifname)
	}
	return pids, nil
}

// pfKthread is PF_KTHREAD, the kernel-thread bit of a task's flags
// (/proc/PID/stat field 9).
const pfKthread = 0x00200000

// NAPIThreads returns the process IDs of the kernel threads named
// napi/ifname-ID (ID: a NAPI instance's decimal ID), the threads that poll
// ifname's NAPI instances when its NAPI is threaded. Kernel threads are
// named in full in /proc/PID/comm (not cut at 15 bytes like other tasks),
// and they live in the initial PID namespace, which this scans: interface
// names are per network namespace, so a name used in two namespaces
// matches the threads of both.
func NAPIThreads(ifname string) ([]int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("find NAPI threads of %s: %w", ifname, err)
	}
	prefix := "napi/" + ifname + "-"
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil {
			continue // exited meanwhile
		}
		id, ok := strings.CutPrefix(strings.TrimSuffix(string(comm), "\n"), prefix)
		if !ok || id == "" || strings.Trim(id, "0123456789") != "" {
			continue
		}
		if kthread, err := isKthread(pid); err != nil || !kthread {
			continue
		}
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids, nil
}

// isKthread reports whether task pid is a kernel thread.
func isKthread(pid int) (bool, error) {
	f, err := TaskStat(pid)
	if err != nil {
		return false, err
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return false, fmt.Errorf("/proc/%d/stat flags: %w", pid, err)
	}
	return flags&pfKthread != 0, nil
}

// TaskStat returns the fields of /proc/PID/stat after the command name:
// f[0] is the state (field 3 in proc(5)), f[1] the parent's PID, f[6] the
// flags, f[11] and f[12] utime and stime in clock ticks. The name may
// contain spaces and parentheses, so fields are counted after the last
// ')'. It returns an error for fewer than 13 fields.
func TaskStat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	return f, nil
}

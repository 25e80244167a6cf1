//go:build linux

// Package netns is a test kit for Linux network namespaces. Tests use it to
// build small private networks (namespaces, veth pairs, bridges with IGMP/MLD
// snooping) and to run code inside them, so that the stack's real-link
// backends and the interop suite never touch the host's own interfaces.
//
// Everything here shells out to iproute2 (`ip`, `bridge`) except Do, which
// switches one locked OS thread into a namespace with setns(2), and the
// helpers built on it (Sysctl, and SetGRO, SetTSO and SetTxChecksum, which
// issue the SIOCETHTOOL ioctl there). All helpers need root; call RequireRoot first.
package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// MaxIfNameLen is the longest Linux interface name (IFNAMSIZ - 1).
const MaxIfNameLen = 15

// ErrCommand wraps failures of an external command (ip, bridge).
var ErrCommand = errors.New("netns: command failed")

// RequireRoot skips the test unless it runs as root with `ip` and `bridge`
// on PATH: namespaces, veths and bridges cannot be created otherwise.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces (run the tests as root)")
	}
	for _, tool := range []string{"ip", "bridge"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %q (iproute2) not found on PATH: %v", tool, err)
		}
	}
}

// UniqueName returns prefix followed by random hex digits, at most
// MaxIfNameLen characters long, so it is usable as a namespace or interface
// name. The prefix is cut to leave room for at least 7 hex digits (28 random
// bits), and names already handed out by this process are never repeated, so
// tests running in parallel cannot collide with each other.
func UniqueName(prefix string) string {
	const minHex = 7
	if len(prefix) > MaxIfNameLen-minHex {
		prefix = prefix[:MaxIfNameLen-minHex]
	}
	n := MaxIfNameLen - len(prefix)
	if n > 8 {
		n = 8
	}
	issuedMu.Lock()
	defer issuedMu.Unlock()
	for {
		b := make([]byte, (n+1)/2)
		if _, err := rand.Read(b); err != nil {
			panic(fmt.Sprintf("netns: crypto/rand failed: %v", err))
		}
		name := prefix + hex.EncodeToString(b)[:n]
		if !issued[name] {
			issued[name] = true
			return name
		}
	}
}

var (
	// issuedMu guards issued; held only for the few instructions of UniqueName.
	issuedMu sync.Mutex
	// issued holds every name UniqueName has returned in this process.
	issued = map[string]bool{}
)

// NS is a named network namespace created for one test.
type NS struct {
	// Name is the namespace name as `ip netns` knows it.
	Name string
}

// New creates a namespace named UniqueName(prefix) and registers a cleanup
// that deletes it (and with it every interface inside, including veth ends
// whose peers live elsewhere). The namespace's loopback is brought up.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	ns := &NS{Name: UniqueName(prefix)}
	if _, err := run("ip", "netns", "add", ns.Name); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if _, err := run("ip", "netns", "del", ns.Name); err != nil {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("namespace %s: %v", ns.Name, err)
	}
	return ns
}

// Run executes a command inside the namespace (`ip netns exec NAME args...`)
// and returns its standard output. On failure the error wraps ErrCommand and
// includes standard error.
func (ns *NS) Run(args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("netns %s: Run needs a command: %w", ns.Name, ErrCommand)
	}
	return run("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// MustRun is Run that fails the test on error.
func (ns *NS) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Do runs f on a new goroutine locked to its OS thread, with that thread
// switched into the namespace by setns(2); the thread's original namespace
// is restored afterwards. Sockets and devices that f creates (AF_PACKET
// sockets, TAP devices, netlink queries by net.InterfaceByName) belong to
// the namespace and stay there after f returns.
//
// Only f's own thread is in the namespace: f must not start goroutines that
// expect to create things in it, since they run on other threads. Because f
// runs on another goroutine, it must report failures by returning an error,
// not with t.Fatal. A panic in f is recovered and returned as an error.
// If the original namespace cannot be restored, the thread is left locked
// and the Go runtime discards it when the goroutine exits.
func (ns *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := ns.doLocked(f)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// doLocked runs f in the namespace on the current (locked) thread and
// reports whether the thread is back in its original namespace.
func (ns *NS) doLocked(f func() error) (restored bool, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("netns %s: open current namespace: %w", ns.Name, err)
	}
	defer unix.Close(orig)
	target, err := unix.Open(filepath.Join("/run/netns", ns.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("netns %s: open namespace: %w", ns.Name, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("netns %s: setns: %w", ns.Name, err)
	}
	ferr := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("netns %s: panic in Do: %v", ns.Name, r)
			}
		}()
		return f()
	}()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return false, errors.Join(ferr, fmt.Errorf("netns %s: restore original namespace: %w", ns.Name, err))
	}
	return true, ferr
}

// WithoutCapability runs f on the calling goroutine with capability c (for
// example unix.CAP_NET_RAW) removed from the current thread's effective set,
// then puts it back. Tests use it to check permission errors while running
// as root. Linux capabilities are per thread, so the goroutine is locked to
// its thread meanwhile; if restoring fails the thread stays locked and is
// discarded when the goroutine exits. f must not rely on other goroutines
// lacking the capability.
func WithoutCapability(c int, f func() error) error {
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: capget: %w", err)
	}
	saved := data
	data[c/32].Effective &^= 1 << (uint(c) % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: capset drop %d: %w", c, err)
	}
	ferr := f()
	if err := unix.Capset(&hdr, &saved[0]); err != nil {
		return errors.Join(ferr, fmt.Errorf("netns: capset restore %d: %w", c, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// run executes a command in the current namespace.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s %s: %v: %s", ErrCommand, name,
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

//go:build linux

package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FRRouting (Debian package frr) as a test peer: zebra and pimd started by
// hand inside one test namespace, each with its own configuration, pid
// files, vty sockets and logs in a private directory, never through the
// package's service. vtysh reaches them through that directory's sockets.

// FRRDir is where Debian installs the FRR daemons.
const FRRDir = "/usr/lib/frr"

// RequireFRR skips the test unless it runs as root, the kernel has IPv4
// multicast routing (pimd cannot start without it) and zebra, pimd and
// vtysh are installed (scripts/install-test-deps.sh installs Debian's frr).
func RequireFRR(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	// /proc/net/ip_mr_vif exists when the kernel was built with
	// CONFIG_IP_MROUTE (or has the ipmr module loaded); without it pimd's
	// MRT_INIT fails with ENOPROTOOPT and pimd learns nothing.
	if _, err := os.Stat("/proc/net/ip_mr_vif"); err != nil {
		t.Skipf("skipping: this kernel has no IPv4 multicast routing (CONFIG_IP_MROUTE; /proc/net/ip_mr_vif: %v), which pimd needs", err)
	}
	for _, p := range []string{filepath.Join(FRRDir, "zebra"), filepath.Join(FRRDir, "pimd")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: FRRouting daemon %s not installed (Debian package frr; scripts/install-test-deps.sh): %v", p, err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Skipf("skipping: vtysh (Debian package frr) not found: %v", err)
	}
	if _, err := user.Lookup("frr"); err != nil {
		t.Skipf("skipping: no frr user (Debian package frr creates it): %v", err)
	}
}

// PIMInterface is one interface of a pimd configuration.
type PIMInterface struct {
	Name string
	// PIM enables PIM on the interface (`ip pim`).
	PIM bool
	// IGMP enables the IGMP querier (`ip igmp`) with version IGMPVersion
	// (2 or 3; 0 leaves FRR's default, 3).
	IGMP        bool
	IGMPVersion int
	// QueryInterval (whole seconds, `ip igmp query-interval`) and
	// MaxResponse (tenths of a second, `ip igmp query-max-response-time`);
	// zero leaves FRR's defaults (125 s, 10 s).
	QueryInterval time.Duration
	MaxResponse   time.Duration
	// LastMemberInterval (tenths of a second) and LastMemberCount set the
	// group- and source-specific queries after a leave; zero: defaults
	// (1 s, 2).
	LastMemberInterval time.Duration
	LastMemberCount    int
}

// PIMConfig renders a pimd configuration: the interfaces, then extra
// global lines verbatim (e.g. "ip pim rp 192.0.2.254 239.0.0.0/8").
//
// FRR 8.4 rejects `ip igmp query-interval` silently when it is not larger
// than the max response time in force, so the max response time is set
// first.
func PIMConfig(ifaces []PIMInterface, extra ...string) string {
	var b strings.Builder
	b.WriteString("frr defaults traditional\n")
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	for _, ifc := range ifaces {
		fmt.Fprintf(&b, "interface %s\n", ifc.Name)
		if ifc.PIM {
			b.WriteString(" ip pim\n")
		}
		if ifc.IGMP {
			b.WriteString(" ip igmp\n")
			if ifc.IGMPVersion != 0 {
				fmt.Fprintf(&b, " ip igmp version %d\n", ifc.IGMPVersion)
			}
			if ifc.MaxResponse > 0 {
				fmt.Fprintf(&b, " ip igmp query-max-response-time %d\n", deciseconds(ifc.MaxResponse))
			}
			if ifc.QueryInterval > 0 {
				fmt.Fprintf(&b, " ip igmp query-interval %d\n", max(1, int(ifc.QueryInterval/time.Second)))
			}
			if ifc.LastMemberInterval > 0 {
				fmt.Fprintf(&b, " ip igmp last-member-query-interval %d\n", deciseconds(ifc.LastMemberInterval))
			}
			if ifc.LastMemberCount > 0 {
				fmt.Fprintf(&b, " ip igmp last-member-query-count %d\n", ifc.LastMemberCount)
			}
		}
		b.WriteString("exit\n")
	}
	return b.String()
}

func deciseconds(d time.Duration) int { return max(1, int(d/(100*time.Millisecond))) }

// FRR is a zebra and a pimd running in a test namespace.
type FRR struct {
	NS *NS
	// Dir holds the configuration, pid files, vty sockets and logs.
	Dir   string
	procs []*frrProc
}

type frrProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

// StartFRR starts zebra and then pimd (with configuration pimdConf, see
// PIMConfig) in the namespace, as the frr user, and waits until pimd
// answers on its vty and lists every interface of waitIfaces in `show ip
// igmp interface`. A cleanup registered on t stops both daemons (SIGTERM,
// then SIGKILL after 5 s), logs their logs if the test failed and removes
// the directory, also when StartFRR itself fails.
func (ns *NS) StartFRR(t testing.TB, pimdConf string, waitIfaces ...string) *FRR {
	t.Helper()
	f, err := ns.startFRR(t, pimdConf, waitIfaces)
	if err != nil {
		t.Fatalf("netns %s: start FRR: %v", ns.Name, err)
	}
	return f
}

func (ns *NS) startFRR(t testing.TB, pimdConf string, waitIfaces []string) (*FRR, error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return nil, fmt.Errorf("frr user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: the daemons drop to the frr user and must reach the
	// directory, and t.TempDir's parent is root-only.
	dir, err := os.MkdirTemp("", "mcstack-frr-"+ns.Name+"-")
	if err != nil {
		return nil, err
	}
	f := &FRR{NS: ns, Dir: dir}
	t.Cleanup(func() { f.stop(t) })
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		return nil, err
	}
	files := map[string]string{
		"zebra.conf": "frr defaults traditional\n",
		"pimd.conf":  pimdConf,
		"vtysh.conf": "",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
			return nil, err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"zebra", "pimd"} {
		if err := f.startDaemon(d); err != nil {
			return nil, err
		}
		// pimd connects to zebra's socket; wait for zebra's vty first.
		if err := f.waitVty(d, 10*time.Second); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ifs map[string]json.RawMessage
		err := f.QueryJSON("show ip igmp interface json", &ifs)
		missing := ""
		for _, name := range waitIfaces {
			if _, ok := ifs[name]; !ok {
				missing = name
			}
		}
		if err == nil && missing == "" {
			return f, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("interface %s not in `show ip igmp interface`", missing)
			}
			return nil, fmt.Errorf("pimd not ready after 10 s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *FRR) startDaemon(name string) error {
	d := f.Dir
	args := []string{"netns", "exec", f.NS.Name, filepath.Join(FRRDir, name),
		"-N", f.NS.Name,
		"-f", filepath.Join(d, name+".conf"),
		"-i", filepath.Join(d, name+".pid"),
		"-z", filepath.Join(d, "zserv.api"),
		"--vty_socket", d,
		"-A", "127.0.0.1", "-P", "0", // no TCP vty
		"--log", "file:" + filepath.Join(d, name+".log"),
		"--log-level", "debug",
	}
	out, err := os.Create(filepath.Join(d, name+".out"))
	if err != nil {
		return err
	}
	// `ip netns exec` execs the daemon, so the process is the daemon.
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a ^C to the test does not reach it first, and
	// the cleanup signals exactly this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &frrProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	f.procs = append(f.procs, p)
	return nil
}

// waitVty waits until daemon's vty socket answers vtysh.
func (f *FRR) waitVty(daemon string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := f.vtysh(daemon, "show version")
		if err == nil {
			return nil
		}
		for _, p := range f.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited: %v: %s", p.name, p.err, f.tail(p.name+".out", 2000))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s vty: %w", daemon, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Vtysh runs show commands on pimd (vtysh -d pimd -c CMD ...) and returns
// the output. FRR prints errors ("% Unknown command") on stdout with exit
// status 0 for some commands, so output starting with % is an error.
func (f *FRR) Vtysh(cmds ...string) (string, error) { return f.vtysh("pimd", cmds...) }

func (f *FRR) vtysh(daemon string, cmds ...string) (string, error) {
	args := []string{"--vty_socket", f.Dir, "--config_dir", f.Dir, "-d", daemon}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "vtysh", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	if err == nil && strings.HasPrefix(strings.TrimSpace(out), "%") {
		err = errors.New(strings.TrimSpace(out))
	}
	if err != nil {
		return out, fmt.Errorf("%w: vtysh -d %s %q: %v: %s", ErrCommand, daemon, cmds, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// QueryJSON runs one pimd show command ending in "json" and decodes its
// output into v.
func (f *FRR) QueryJSON(cmd string, v any) error {
	out, err := f.Vtysh(cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("netns %s: vtysh %q: decode: %w (output %.200q)", f.NS.Name, cmd, err, out)
	}
	return nil
}

// Log returns pimd's log so far.
func (f *FRR) Log() string { return f.tail("pimd.log", 0) }

// tail returns the last n bytes of a file in Dir (all when n is 0).
func (f *FRR) tail(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(f.Dir, name))
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if n > 0 && len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stop ends the daemons (pimd first), reports their logs if the test
// failed and removes Dir.
func (f *FRR) stop(t testing.TB) {
	for i := len(f.procs) - 1; i >= 0; i-- {
		p := f.procs[i]
		select {
		case <-p.done:
			t.Logf("netns %s: %s had exited before the cleanup: %v", f.NS.Name, p.name, p.err)
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Logf("netns %s: %s did not stop on SIGTERM within 5 s; killed", f.NS.Name, p.name)
		}
	}
	if t.Failed() {
		for _, name := range []string{"zebra.out", "pimd.out", "pimd.log"} {
			t.Logf("netns %s: FRR %s (tail):\n%s", f.NS.Name, name, f.tail(name, 8000))
		}
	}
	if err := os.RemoveAll(f.Dir); err != nil {
		t.Errorf("remove %s: %v", f.Dir, err)
	}
}

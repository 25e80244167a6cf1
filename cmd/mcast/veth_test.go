package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/wire"
)

// TestRecvSendVeth runs the built mcast binary as a script would: `recv` in
// one namespace, `send` in another, over a veth pair, and `stat` against
// the receiver's admin socket. It needs root (it skips otherwise).
func TestRecvSendVeth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and uses namespaces")
	}
	netns.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "mcast")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	a, b := netns.New(t, "mcA"), netns.New(t, "mcB")
	va, vb := netns.UniqueName("vA"), netns.UniqueName("vB")
	for _, ns := range []*netns.NS{a, b} {
		if err := ns.Quiet(); err != nil {
			t.Fatal(err)
		}
	}
	if err := netns.AddVeth(a, va, b, vb); err != nil {
		t.Fatal(err)
	}
	if err := a.LinkUp(va); err != nil {
		t.Fatal(err)
	}
	if err := b.LinkUp(vb); err != nil {
		t.Fatal(err)
	}

	// Watch, from namespace B, the reports A sends to 224.0.0.22 as a
	// router would.
	var watcher atomic.Pointer[querier]
	q := newQuerier(wire.MAC{2, 0, 0, 0, 0, 0xfe}, netip.MustParseAddr("192.0.2.254"))
	watcher.Store(q)
	var capEP *afpacket.Endpoint
	if err := b.Do(func() error {
		var err error
		capEP, err = afpacket.Open(vb, afpacket.Options{Logger: slog.New(slog.DiscardHandler)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer capEP.Close()
	if err := capEP.Attach(link.FrameFunc(func(frame []byte) { watcher.Load().observe(frame) })); err != nil {
		t.Fatal(err)
	}
	reportsMAC, _ := wire.MulticastMAC(netip.MustParseAddr("224.0.0.22"))
	if _, err := capEP.SetMulticastFilter([]wire.MAC{reportsMAC}); err != nil {
		t.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "mcv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "a.sock")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rout, rerr bytes.Buffer
	recv := exec.CommandContext(ctx, "ip", "netns", "exec", a.Name, bin, "recv", "-i", va, "-a", "192.0.2.1/24",
		"-g", "232.1.1.1", "-s", "192.0.2.2", "-p", "5001", "-count", "5", "-duration", "30s", "-admin", sock)
	recv.Stdout, recv.Stderr = &rout, &rerr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the admin socket: the receiver has joined.
	waitSocket(t, recv, sock, &rerr)
	stat, err := exec.Command(bin, "stat", "-admin", sock).CombinedOutput()
	if err != nil || !strings.Contains(string(stat), "group 232.1.1.1 mode include") || !strings.Contains(string(stat), "source 192.0.2.2") {
		t.Errorf("stat: %v\n%s", err, stat)
	}
	t.Logf("stat:\n%s", stat)
	// The index stat shows is the kernel's ifindex of the interface.
	if out, err := a.Run("cat", "/sys/class/net/"+va+"/ifindex"); err != nil {
		t.Errorf("ifindex of %s: %v %s", va, err, out)
	} else if want := va + ": index " + strings.TrimSpace(string(out)) + " "; !strings.Contains(string(stat), want) {
		t.Errorf("stat does not show the kernel's ifindex (%q):\n%s", want, stat)
	}

	// An excluded source first (nothing may arrive), then the included one.
	for _, src := range []string{"192.0.2.3/24", "192.0.2.2/24"} {
		out, err := b.Run(bin, "send", "-i", vb, "-a", src, "-g", "232.1.1.1", "-p", "5001", "-count", "10", "-rate", "50")
		if err != nil {
			t.Fatalf("send from %s: %v %s", src, err, out)
		}
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("recv: %v\nstderr: %s", err, rerr.String())
	}
	lines := strings.Split(strings.TrimSpace(rout.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("recv printed %d lines, want 5 and a table of one flow:\n%s\nstderr: %s", len(lines), rout.String(), rerr.String())
	}
	for _, l := range lines[:5] {
		f := strings.Fields(l)
		if len(f) != 8 || f[1] != "192.0.2.2" || f[2] != "232.1.1.1:5001" || f[3] != "100" || f[4] != "seq" || f[6] != "latency" {
			t.Errorf("bad line %q", l)
		}
	}
	// The final table: 5 received from the included source, none lost,
	// reordered, duplicated or foreign; send and recv share the host's
	// clock, so the latency is there and not skewed.
	row := strings.Fields(lines[6])
	if !strings.HasPrefix(lines[5], "SOURCE") || len(row) < 12 || row[0] != "192.0.2.2" || row[1] != "232.1.1.1" ||
		strings.Join(row[2:7], " ") != "5 0 0 0 0" || row[10] == "-" || strings.Contains(lines[6], "skew") {
		t.Errorf("final table:\n%s\n%s", lines[5], lines[6])
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind: %v", err)
	}
	checkJoinedAndLeft(t, q, "after -count")

	// SIGTERM: recv leaves its groups (final reports), removes its admin
	// socket and exits 0.
	q = newQuerier(wire.MAC{2, 0, 0, 0, 0, 0xfe}, netip.MustParseAddr("192.0.2.254"))
	watcher.Store(q)
	rout.Reset()
	rerr.Reset()
	recv = exec.CommandContext(ctx, "ip", "netns", "exec", a.Name, bin, "recv", "-i", va, "-a", "192.0.2.1/24",
		"-g", "239.1.1.1", "-p", "5001", "-admin", sock)
	recv.Stdout, recv.Stderr = &rout, &rerr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	waitSocket(t, recv, sock, &rerr)
	time.Sleep(200 * time.Millisecond) // let the join report go out
	if err := recv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("recv after SIGTERM: %v (want exit 0)\nstderr: %s", err, rerr.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind after SIGTERM: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the capture reads asynchronously
	checkJoinedAndLeft(t, q, "after SIGTERM")
}

// waitSocket waits for recv's admin socket to appear.
func waitSocket(t *testing.T, recv *exec.Cmd, sock string, stderr *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		if time.Now().After(deadline) {
			recv.Process.Kill()
			recv.Wait()
			t.Fatalf("recv did not start: %s", stderr.String())
		}
	}
}

// checkJoinedAndLeft checks that the watcher heard reports and that they
// left it with no membership: the receiver joined, then sent its final
// reports before exiting.
func checkJoinedAndLeft(t *testing.T, q *querier, when string) {
	t.Helper()
	v := q.view()
	if !engineImplemented() {
		t.Logf("%s: proto.NewIGMP is the no-op stand-in: report checks not made (%d reports heard)", when, v.Reports)
		return
	}
	if v.Reports < 2 || len(v.Groups) != 0 {
		t.Errorf("%s: reports heard from recv: %+v; want its joins, then leaves", when, v)
	}
}

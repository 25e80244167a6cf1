package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/wire"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// useMemlan makes recv and send open endpoints named after -i on one
// in-memory LAN instead of real interfaces, for the rest of the test.
func useMemlan(t *testing.T) *memlan.LAN {
	t.Helper()
	return useMemlanOpts(t, memlan.Options{Seed: 1})
}

func useMemlanOpts(t *testing.T, opts memlan.Options) *memlan.LAN {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	lan := memlan.New(opts)
	var n atomic.Uint32
	old := openLink
	openLink = func(lf *linkFlags, _ *slog.Logger) (link.Endpoint, error) {
		i := n.Add(1)
		ep := lan.NewEndpoint(lf.iface, memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}})
		memlanEndpoints.Store(lf.iface, ep)
		return ep, nil
	}
	t.Cleanup(func() {
		openLink = old
		memlanEndpoints.Clear()
		lan.Close()
	})
	return lan
}

// goRecv runs `mcast recv args...` through run() in the background, as
// the binary would: its output streams, its exit code (once it exits) and
// what SIGTERM does (cancel its context).
func goRecv(ctx context.Context, args ...string) (stdout, stderr *syncBuffer, done <-chan int, stop context.CancelFunc) {
	rctx, cancel := context.WithCancel(ctx)
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ch := make(chan int, 1)
	go func() { ch <- run(rctx, &env{stdout: stdout, stderr: stderr}, append([]string{"recv"}, args...)) }()
	return stdout, stderr, ch, cancel
}

// memlanEndpoints holds the endpoints useMemlan opened, by -i name.
var memlanEndpoints sync.Map

func shortTemp(t *testing.T) string {
	t.Helper()
	// unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "mce")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestRecvSendStatMemlan runs the three commands through run(), as the
// binary would, over an in-memory LAN: recv joins an IPv4 and an IPv6
// source-specific group; stat reads its admin socket; send transmits from
// an excluded and then from the included sources; recv prints exactly the
// included datagrams, one line each; cancelling recv's context (what
// SIGTERM does) makes it leave and exit 0.
func TestRecvSendStatMemlan(t *testing.T) {
	lan := useMemlan(t)
	// A querier-like observer of what the receiver reports.
	q := newQuerier(wire.MAC{2, 0, 0, 0, 0, 0xfe}, netip.MustParseAddr("192.0.2.254"))
	var mldFrames atomic.Int32
	lan.Capture(func(from string, frame []byte) {
		if from != "r0" {
			return
		}
		q.observe(frame)
		if eth, err := wire.ParseEthernet(frame); err == nil && eth.EtherType == wire.EtherTypeIPv6 {
			if ip, err := wire.ParseIPv6(eth.Payload); err == nil && ip.NextHeader == wire.ProtoICMPv6 && len(ip.Payload) > 0 && ip.Payload[0] == 143 {
				mldFrames.Add(1)
			}
		}
	})
	sock := filepath.Join(shortTemp(t), "r.sock")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rout, rerr, recvDone, stopRecv := goRecv(ctx, "-i", "r0",
		"-a", "192.0.2.1/24", "-a", "2001:db8::1/64", "-g", "232.1.1.1", "-s", "192.0.2.2",
		"-g", "ff3e::8000:1", "-s", "2001:db8::2", "-p", "5001", "-admin", sock)
	defer stopRecv()

	// Wait until recv serves its status with both groups programmed in
	// its NIC filter: from then on every datagram sent must arrive.
	c := admin.NewClient(sock)
	defer c.Close()
	var st admin.Status
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-recvDone:
			t.Fatalf("recv exited %d: %s", code, rerr.String())
		default:
		}
		var err error
		if st, err = c.Status(ctx); err == nil && len(st.Interfaces) == 1 {
			d := st.Interfaces[0].Driver
			if slices.Contains(d.Exact, "01:00:5e:01:01:01") && slices.Contains(d.Exact, "33:33:80:00:00:01") && !d.Pending {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recv not ready: %+v %v\nstderr: %s", st, err, rerr.String())
		}
	}

	code, js, errOut := runCmd(t, ctx, "stat", "-admin", sock, "-json")
	if code != exitOK {
		t.Fatalf("stat -json: exit %d: %s", code, errOut)
	}
	var js2 admin.Status
	if err := json.Unmarshal([]byte(js), &js2); err != nil {
		t.Fatalf("stat -json output does not parse: %v\n%s", err, js)
	}
	fams := js2.Interfaces[0].Families
	if js2.Program != "mcast recv" || len(fams) != 2 ||
		len(fams[0].Groups) != 1 || fams[0].Groups[0].Group != "232.1.1.1" || fams[0].Groups[0].Mode != "include" ||
		!slices.Equal(fams[0].Groups[0].Sources, []string{"192.0.2.2"}) ||
		len(fams[1].Groups) != 1 || fams[1].Groups[0].Group != "ff3e::8000:1" ||
		!slices.Equal(fams[1].Groups[0].Sources, []string{"2001:db8::2"}) {
		t.Errorf("stat -json:\n%s", js)
	}
	code, text, _ := runCmd(t, ctx, "stat", "-admin", sock)
	if code != exitOK || !strings.Contains(text, "group 232.1.1.1 mode include refs 1") || !strings.Contains(text, "source 2001:db8::2") {
		t.Errorf("stat: exit %d\n%s", code, text)
	}

	// Excluded sources first: nothing of theirs may be printed.
	for _, args := range [][]string{
		{"send", "-i", "s0", "-a", "192.0.2.3/24", "-a", "2001:db8::3/64", "-g", "232.1.1.1", "-g", "ff3e::8000:1", "-p", "5001", "-count", "5", "-rate", "500"},
		{"send", "-i", "s1", "-a", "192.0.2.2/24", "-a", "2001:db8::2/64", "-g", "232.1.1.1", "-g", "ff3e::8000:1", "-p", "5001", "-count", "5", "-rate", "500"},
	} {
		code, _, errOut := runCmd(t, ctx, args...)
		if code != exitOK || !strings.Contains(errOut, "10 datagrams sent") {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(rout.String(), "\n") < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything extra would show up now
	stopRecv()                         // what SIGTERM does
	select {
	case code := <-recvDone:
		if code != exitOK {
			t.Fatalf("recv: exit %d: %s", code, rerr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recv did not exit after its context was cancelled")
	}

	out := strings.TrimSpace(rout.String())
	// The final table follows the datagram lines.
	table := ""
	if i := strings.Index(out, "\n SOURCE"); i >= 0 {
		out, table = out[:i], out[i+1:]
	} else if i := strings.Index(out, "SOURCE"); i >= 0 {
		out, table = out[:i], out[i:]
	}
	for _, want := range []string{"192.0.2.2", "232.1.1.1", "2001:db8::2", "ff3e::8000:1", "RECEIVED", "LOST"} {
		if !strings.Contains(table, want) {
			t.Errorf("final table lacks %q:\n%s", want, table)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("recv printed %d lines, want 10:\n%s\nstderr: %s", len(lines), rout.String(), rerr.String())
	}
	per := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 8 || f[3] != "100" || f[4] != "seq" || f[6] != "latency" {
			t.Errorf("bad line %q", l)
			continue
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", f[0]); err != nil {
			t.Errorf("bad time in %q: %v", l, err)
		}
		per[f[1]+" "+f[2]]++
	}
	if want := map[string]int{"192.0.2.2 232.1.1.1:5001": 5, "2001:db8::2 [ff3e::8000:1]:5001": 5}; !mapsEqual(per, want) {
		t.Errorf("datagrams by source and group: %v, want %v", per, want)
	}
	if !strings.HasSuffix(rerr.String(), "10 datagrams, 1000 bytes received\n") {
		t.Errorf("recv stderr: %s", rerr.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind: %v", err)
	}

	v := q.view()
	if engineImplemented() {
		// The receiver reported its groups, then left them on exit.
		if v.Reports < 2 || len(v.Groups) != 0 || mldFrames.Load() < 2 {
			t.Errorf("reports of recv: %+v, %d MLDv2 reports; want joins then leaves", v, mldFrames.Load())
		}
	} else {
		t.Logf("proto.NewIGMP is the no-op stand-in: report checks not made (%d reports seen)", v.Reports)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestInterfaceErrorExitThree opens an interface that does not exist with
// the real backends: that is an interface problem, exit 3, with or without
// privileges.
func TestInterfaceErrorExitThree(t *testing.T) {
	for _, backend := range []string{"afpacket", "tap", "tun"} {
		code, _, errOut := runCmd(t, context.Background(), "recv", "-backend", backend, "-i", "mcnoexist0/x",
			"-a", "192.0.2.1/24", "-g", "232.1.1.1", "-admin", "off")
		if code != exitInterface || !strings.Contains(errOut, "mcnoexist0") {
			t.Errorf("%s: exit %d, want %d; stderr %q", backend, code, exitInterface, errOut)
		}
	}
	code, _, errOut := runCmd(t, context.Background(), "send", "-i", "mcnoexist0/x", "-a", "192.0.2.1/24", "-g", "232.1.1.1", "-count", "1")
	if code != exitInterface {
		t.Errorf("send: exit %d, want %d; stderr %q", code, exitInterface, errOut)
	}
}

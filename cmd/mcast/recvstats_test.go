package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/wire"
)

type jsonLine struct {
	Type   string  `json:"type"`
	Source string  `json:"source"`
	Group  string  `json:"group"`
	Seq    *uint64 `json:"seq"`
	flowReport
}

// startRecv runs `mcast recv` with args in the background and waits until
// its socket filter is in place (a short settle: memlan programs at once).
func startRecv(t *testing.T, ctx context.Context, args ...string) (stop func() (int, string, string)) {
	t.Helper()
	out, errOut, done, cancel := goRecv(ctx, args...)
	time.Sleep(200 * time.Millisecond)
	return func() (int, string, string) {
		cancel()
		select {
		case code := <-done:
			return code, out.String(), errOut.String()
		case <-time.After(10 * time.Second):
			t.Fatal("recv did not stop")
			return 0, "", ""
		}
	}
}

// TestRecvMonitorLoss sends 300 sequenced datagrams over a LAN that drops
// 10 % of the frames and checks recv's JSON: the datagram lines are the
// ground truth; the summary's received and lost counts must match what
// they show (lost = the numbers missing between the first and last seen),
// interval lines appear, and nothing is reordered or duplicated.
func TestRecvMonitorLoss(t *testing.T) {
	useMemlanOpts(t, memlan.Options{Seed: 7, Loss: 0.1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := startRecv(t, ctx, "-i", "r0", "-a", "192.0.2.1/24", "-g", "239.1.1.1", "-json", "-interval", "100ms", "-admin", "off")
	code, _, errOut := runCmd(t, ctx, "send", "-i", "s0", "-a", "192.0.2.2/24", "-g", "239.1.1.1", "-count", "300", "-rate", "1000")
	if code != exitOK {
		t.Fatalf("send: exit %d: %s", code, errOut)
	}
	time.Sleep(200 * time.Millisecond)
	code, out, errOut := stop()
	if code != exitOK {
		t.Fatalf("recv: exit %d: %s", code, errOut)
	}
	var (
		seqs      []uint64
		intervals int
		summary   *jsonLine
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		switch l.Type {
		case "datagram":
			if l.Seq == nil || l.Source != "192.0.2.2" || l.Group != "239.1.1.1" {
				t.Fatalf("datagram line %q", sc.Text())
			}
			seqs = append(seqs, *l.Seq)
		case "interval":
			intervals++
		case "summary":
			summary = &l
		default:
			t.Fatalf("unknown line type %q", sc.Text())
		}
	}
	if summary == nil || len(seqs) < 200 {
		t.Fatalf("no summary or too few datagrams (%d):\n%s", len(seqs), out)
	}
	wantLost := seqs[len(seqs)-1] - seqs[0] + 1 - uint64(len(seqs))
	if summary.Received != uint64(len(seqs)) || summary.Lost != wantLost || summary.Reordered != 0 || summary.Duplicated != 0 || summary.Foreign != 0 {
		t.Errorf("summary %+v; want received %d lost %d", summary.flowReport, len(seqs), wantLost)
	}
	if wantLost == 0 {
		t.Errorf("a 10%% lossy LAN lost nothing of %d datagrams", len(seqs))
	}
	if summary.LatencyP50 == nil || *summary.LatencyP50 <= 0 || summary.PPS <= 0 || summary.BitsPerSec <= 0 {
		t.Errorf("summary lacks rate or latency: %+v", summary.flowReport)
	}
	if intervals < 2 {
		t.Errorf("%d interval lines, want several over 300 ms", intervals)
	}
	if !strings.HasSuffix(errOut, "mcast recv: "+itoa(len(seqs))+" datagrams, "+itoa(len(seqs)*100)+" bytes received\n") {
		t.Errorf("totals line: %q", errOut)
	}
}

// TestRecvQuietTable: -quiet prints no datagram lines, only the final
// table, and counts datagrams that are not from mcast send as foreign.
func TestRecvQuietTable(t *testing.T) {
	lan := useMemlan(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := startRecv(t, ctx, "-i", "r0", "-a", "192.0.2.1/24", "-g", "239.1.1.1", "-quiet", "-admin", "off")
	code, _, errOut := runCmd(t, ctx, "send", "-i", "s0", "-a", "192.0.2.2/24", "-g", "239.1.1.1", "-count", "20", "-rate", "1000")
	if code != exitOK {
		t.Fatalf("send: exit %d: %s", code, errOut)
	}
	foreignUDP(t, lan, "239.1.1.1", 5001, 3)
	time.Sleep(200 * time.Millisecond)
	code, out, errOut := stop()
	if code != exitOK {
		t.Fatalf("recv: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "RECEIVED") {
		t.Fatalf("want a header and one row:\n%s", out)
	}
	f := strings.Fields(lines[1])
	// SOURCE GROUP RECEIVED LOST REORDERED DUPLICATED FOREIGN ...
	if f[0] != "192.0.2.2" || f[1] != "239.1.1.1" || f[2] != "23" || f[3] != "0" || f[6] != "3" {
		t.Errorf("row %q: want 23 received (3 foreign), 0 lost", lines[1])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// foreignUDP injects n datagrams from 192.0.2.2 to group:port whose
// payload is not mcast send's.
func foreignUDP(t *testing.T, lan *memlan.LAN, group string, port uint16, n int) {
	t.Helper()
	for range n {
		f, err := udpFrame(wire.MAC{2, 0, 0, 0, 0, 0x99}, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr(group), port,
			[]byte("not from mcast send, long enough to look like a header"))
		if err != nil {
			t.Fatal(err)
		}
		if err := lan.Inject(f); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecvInterfaceGone: when the interface disappears under a running
// recv, it stops with exit 3 and says so, instead of running on; its
// totals line comes after the error.
func TestRecvInterfaceGone(t *testing.T) {
	useMemlan(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, errOut, done, stop := goRecv(ctx, "-i", "gone0", "-a", "192.0.2.1/24", "-g", "239.1.1.1", "-admin", "off")
	defer stop()
	var ep *memlan.Endpoint
	for deadline := time.Now().Add(5 * time.Second); ep == nil; time.Sleep(10 * time.Millisecond) {
		if v, ok := memlanEndpoints.Load("gone0"); ok {
			ep = v.(*memlan.Endpoint)
		}
		if time.Now().After(deadline) {
			t.Fatal("recv did not open its endpoint")
		}
	}
	time.Sleep(100 * time.Millisecond)
	ep.Remove()
	select {
	case code := <-done:
		e := errOut.String()
		if code != exitInterface || !strings.Contains(e, "interface gone0 is gone") {
			t.Errorf("exit %d, stderr %q; want %d and a message", code, e, exitInterface)
		}
		if i, j := strings.Index(e, "is gone"), strings.Index(e, "datagrams,"); i < 0 || j < i {
			t.Errorf("totals line before the error:\n%s", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recv runs on after its interface disappeared")
	}
}

// TestRecvWarnsOlderVersionSources: IGMPv2 and MLDv1 cannot carry
// sources; recv says so for each source-filtered group, and not for an
// any-source one or under IGMPv3.
func TestRecvWarnsOlderVersionSources(t *testing.T) {
	useMemlan(t)
	for _, tc := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"-igmp", "2", "-g", "232.1.1.1", "-s", "192.0.2.2", "-g", "239.1.1.1"},
			[]string{"warning: IGMPv2 reports cannot carry sources", "232.1.1.1"}, []string{"239.1.1.1"}},
		{[]string{"-mld", "1", "-a", "2001:db8::1/64", "-g", "ff3e::8000:1", "-x", "2001:db8::2"},
			[]string{"warning: MLDv1 reports cannot carry sources", "ff3e::8000:1"}, nil},
		{[]string{"-g", "232.1.1.1", "-s", "192.0.2.2"}, nil, []string{"warning"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		args := append([]string{"recv", "-i", "w0", "-a", "192.0.2.1/24", "-admin", "off", "-duration", "50ms"}, tc.args...)
		code, _, errOut := runCmd(t, ctx, args...)
		cancel()
		if code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, errOut)
			}
		}
		for _, line := range strings.Split(errOut, "\n") {
			for _, n := range tc.not {
				if strings.Contains(line, "warning") && strings.Contains(line, n) {
					t.Errorf("%q: a warning mentions %q: %s", tc.args, n, line)
				}
			}
		}
	}
}

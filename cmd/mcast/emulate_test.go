package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memlanConfig parses args (memlan backend) into a config for emulate.
func memlanConfig(t *testing.T, args ...string) emuConfig {
	t.Helper()
	var out bytes.Buffer
	fsArgs := append([]string{"--backend", "memlan", "--quiet"}, args...)
	cfg, err := parseEmulateArgs(&env{stdout: &out, stderr: &out}, fsArgs)
	if err != nil {
		t.Fatalf("parse %v: %v", fsArgs, err)
	}
	cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func runEmu(t *testing.T, args ...string) *emuResult {
	t.Helper()
	cfg := memlanConfig(t, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := emulate(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var sum bytes.Buffer
	res.printSummary(&sum)
	t.Logf("%v\n%s", args, sum.String())
	return res
}

func count(res *emuResult, kind evKind, phase, status string) int {
	n := 0
	for _, ev := range res.events {
		if ev.kind == kind && ev.phase == phase && ev.status() == status {
			n++
		}
	}
	return n
}

// A join ramp against the model snooping device: every join gets its
// traffic, nothing floods, the device learned every host.
func TestEmulateJoinRamp(t *testing.T) {
	res := runEmu(t, "--hosts", "60", "--groups", "6", "--rate", "600", "--pps", "200", "--hold", "500ms", "--filter", "include:1")
	if got := count(res, evJoin, "ramp", "ok"); got != 60 {
		t.Errorf("%d joins measured ok, want 60", got)
	}
	if res.flood != 0 || res.excluded != 0 {
		t.Errorf("flood %d, excluded %d: the model device forwards only what was joined", res.flood, res.excluded)
	}
	if res.learned != 60 {
		t.Errorf("device learned %d memberships, want 60", res.learned)
	}
	if res.reports < 60 {
		t.Errorf("%d reports for 60 joins", res.reports)
	}
	if p := percentiles(res.events, evJoin, "ramp"); p.N != 60 || p.Min <= 0 {
		t.Errorf("join percentiles %+v", p)
	}
}

// The same against a device that floods: datagrams of unjoined groups
// count as flooding, those of sources the INCLUDE filters leave out as
// excluded.
func TestEmulateFloodingDevice(t *testing.T) {
	res := runEmu(t, "--hosts", "4", "--groups", "8", "--rate", "0", "--pps", "200", "--hold", "300ms", "--filter", "include:1", "--dut-flood")
	if res.flood == 0 {
		t.Error("no flooding counted against a flooding device")
	}
	if res.excluded == 0 {
		t.Error("no excluded-source datagrams counted (each host includes 1 of 2 sources)")
	}
	if res.floodGroups != 4 {
		t.Errorf("flooded groups = %d, want the 4 nobody joined", res.floodGroups)
	}
}

// A leave ramp: each host alone on its group, so every leave is the last
// one and has a latency; the device ends with nothing learned and nothing
// is counted as flooding (the tails are within the leave window).
func TestEmulateLeaveRamp(t *testing.T) {
	res := runEmu(t, "--scenario", "leave-ramp", "--hosts", "20", "--groups", "20", "--rate", "200", "--pps", "200", "--hold", "500ms", "--filter", "exclude:1", "--sources", "192.0.2.1+3")
	// exclude:1 of 3 sources: each host wants 2 (S,G).
	if got := count(res, evLeave, "ramp", "ok"); got != 40 {
		t.Errorf("%d leaves measured ok, want 40", got)
	}
	if got := count(res, evJoin, "setup", "ok"); got != 40 {
		t.Errorf("%d setup joins got traffic, want 40", got)
	}
	if res.learned != 0 {
		t.Errorf("device still holds %d memberships after the leaves", res.learned)
	}
	if res.flood != 0 || res.excluded != 0 {
		t.Errorf("flood %d, excluded %d", res.flood, res.excluded)
	}
}

// Zapping with MLD, hosts alternating MLDv1 and MLDv2: v1 hosts announce
// no sources, so their joins want every source.
func TestEmulateZapMLDMixed(t *testing.T) {
	res := runEmu(t, "--scenario", "zap", "--hosts", "10", "--groups", "30", "--group-base", "ff3e::1:0", "--mld", "1,2",
		"--zaps", "20", "--rate", "100", "--pps", "200", "--hold", "500ms", "--filter", "include:1")
	joins := count(res, evJoin, "zap", "ok")
	if joins < 20 {
		t.Errorf("%d zap joins measured ok, want at least one per zap (20)", joins)
	}
	if res.flood != 0 || res.excluded != 0 {
		t.Errorf("flood %d, excluded %d", res.flood, res.excluded)
	}
	// v1 hosts (even) want both sources of each group joined.
	v1 := 0
	for _, ev := range res.events {
		if ev.kind == evJoin && ev.host%2 == 0 {
			v1++
		}
	}
	if v1 == 0 {
		t.Error("no MLDv1 host joined")
	}
}

func TestEmulateCommandCSVAndPNG(t *testing.T) {
	dir := t.TempDir()
	csvPath, pngPath := filepath.Join(dir, "e.csv"), filepath.Join(dir, "e.png")
	code, out, errOut := runCmd(t, context.Background(), "emulate", "--backend", "memlan", "--hosts", "20", "--groups", "4",
		"--rate", "400", "--pps", "200", "--hold", "300ms", "--csv", csvPath, "--png", pngPath)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "join:      20 measured") {
		t.Errorf("summary lacks the join line:\n%s", out)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 21 || rows[0][0] != "kind" || rows[1][9] != "ok" || rows[1][8] == "" {
		t.Errorf("CSV: %d rows, first %v / %v", len(rows), rows[0], rows[min(1, len(rows)-1)])
	}
	p, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img, err := png.Decode(p)
	if err != nil {
		t.Fatalf("PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Errorf("PNG is %v", b)
	}
}

func TestEmulateUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"emulate"}, // afpacket needs -i
		{"emulate", "-i", "eth0"},
		{"emulate", "--backend", "bogus"},
		{"emulate", "--backend", "memlan", "--hosts", "0"},
		{"emulate", "--backend", "memlan", "--hosts", "2000", "--addrs", "198.51.100.0/24"},
		{"emulate", "--backend", "memlan", "--scenario", "bogus"},
		{"emulate", "--backend", "memlan", "--filter", "include:3"},
		{"emulate", "--backend", "memlan", "--filter", "sometimes:1"},
		{"emulate", "--backend", "memlan", "--igmp", "4"},
		{"emulate", "--backend", "memlan", "--group-base", "10.0.0.1"},
		{"emulate", "--backend", "memlan", "--group-base", "ff3e::1", "--addrs", "198.51.100.0/22"},
		{"emulate", "--backend", "memlan", "--sources", "2001:db8::1"},
		{"emulate", "--backend", "memlan", "--scenario", "zap", "--groups", "1"},
		{"emulate", "--backend", "memlan", "--groups-per-host", "20", "--groups", "10"},
	} {
		if code, _, errOut := runCmd(t, context.Background(), args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
}

func TestFilterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("# comment\n0-1 include 192.0.2.2\n2 exclude\n"), 0o644)
	cfg := memlanConfig(t, "--filter-file", path)
	cases := []struct {
		host int
		want string
	}{
		{0, "include {192.0.2.2}"},
		{1, "include {192.0.2.2}"},
		{2, "exclude {}"},
		{3, "include {192.0.2.2}"}, // the pattern: include:1 rotating (3+0)%2 = source 2
		{4, "include {192.0.2.1}"},
	}
	for _, c := range cases {
		if got := fmtState(cfg.filterFor(c.host, 0)); got != c.want {
			t.Errorf("host %d: %s, want %s", c.host, got, c.want)
		}
	}
	os.WriteFile(path, []byte("x include 192.0.2.1\n"), 0o644)
	if code, _, _ := runCmd(t, context.Background(), "emulate", "--backend", "memlan", "--filter-file", path); code != exitUsage {
		t.Errorf("bad filter file: exit %d", code)
	}
}

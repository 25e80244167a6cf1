package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/internal/admin/metricstest"
	"github.com/mcstack/mcstack/internal/leakcheck"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// noLink makes opening a link fail the test: the command must have stopped
// before.
func noLink(t *testing.T) {
	t.Helper()
	old := openLink
	openLink = func(lf *linkFlags, _ *slog.Logger) (link.Endpoint, error) {
		t.Errorf("link %s opened", lf.iface)
		return nil, errors.New("no link in this test")
	}
	t.Cleanup(func() { openLink = old })
}

func TestMetricsListenUsage(t *testing.T) {
	noLink(t)
	for _, addr := range []string{"9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
		"127.0.0.1:-1", "::1:9464", "[::1:9464", "bad host!:9464", "-x.example:1", "a..b:1"} {
		code, _, errOut := runCmd(t, context.Background(), "recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1",
			"-admin", "off", "--metrics-listen", addr)
		if code != exitUsage || !strings.Contains(errOut, "--metrics-listen") {
			t.Errorf("--metrics-listen %q: exit %d, want %d; stderr %q", addr, code, exitUsage, errOut)
		}
	}
	for _, addr := range []string{"127.0.0.1:9464", "[::1]:0", ":9464", "localhost:9464", "[fe80::1%eth0]:1", "metrics.example.:80"} {
		if err := checkMetricsAddr(addr); err != nil {
			t.Errorf("%q refused: %v", addr, err)
		}
	}
}

// TestMetricsListenBindFailure: a taken port fails recv with exit 3 and a
// message that names the address, before the link is opened.
func TestMetricsListenBindFailure(t *testing.T) {
	noLink(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	code, _, errOut := runCmd(t, context.Background(), "recv", "-i", "lo", "-a", "192.0.2.1/24", "-g", "232.1.1.1",
		"-admin", "off", "--metrics-listen", addr)
	if code != exitInterface || !strings.Contains(errOut, "metrics") || !strings.Contains(errOut, addr) ||
		!strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d, want %d; stderr %q", code, exitInterface, errOut)
	}
}

// TestRecvMetricsListen runs recv over an in-memory LAN with
// --metrics-listen on a loopback port chosen by the kernel: the port serves
// the Prometheus text of the stack (valid, with its groups and every
// named counter; promtool-clean when promtool is present), the admin socket
// keeps serving beside it, and when recv exits the port is closed and no
// goroutine is left.
func TestRecvMetricsListen(t *testing.T) {
	lan := useMemlan(t)
	checkGoroutines := leakcheck.Baseline(t)
	sock := filepath.Join(shortTemp(t), "r.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, rerr, recvDone, stopRecv := goRecv(ctx, "-i", "r0",
		"-a", "192.0.2.1/24", "-a", "2001:db8::1/64", "-g", "232.1.1.1", "-s", "192.0.2.2", "-g", "ff3e::8000:1", "-s", "2001:db8::2",
		"-admin", sock, "--metrics-listen", "127.0.0.1:0")
	defer stopRecv()
	addrRE := regexp.MustCompile(`metrics on http://(127\.0\.0\.1:\d+)/metrics`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		select {
		case code := <-recvDone:
			t.Fatalf("recv exited %d: %s", code, rerr.String())
		default:
		}
		if m := addrRE.FindStringSubmatch(rerr.String()); m != nil {
			url = "http://" + m[1] + "/metrics"
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address on stderr: %q", rerr.String())
		}
	}

	tr := &http.Transport{}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() (string, *http.Response, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return "", nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp, err
	}
	// Wait until both groups are in the exposition (recv joins after it
	// starts serving).
	var text string
	var x *metricstest.Exposition
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		body, resp, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != admin.MetricsContentType {
			t.Fatalf("GET %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
		}
		text = body
		if x, err = metricstest.Parse([]byte(text)); err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		if x.Samples[`mcast_groups{interface="r0",family="ipv4"}`] == 1 && x.Samples[`mcast_groups{interface="r0",family="ipv6"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("groups never exported:\n%s", text)
		}
	}
	for k, want := range map[string]float64{
		`mcast_group_sources{interface="r0",family="ipv4",group="232.1.1.1",mode="include"}`:    1,
		`mcast_group_sources{interface="r0",family="ipv6",group="ff3e::8000:1",mode="include"}`: 1,
		`mcast_group_socket_memberships{interface="r0",family="ipv4",group="232.1.1.1"}`:        1,
		`mcast_querier_present{interface="r0",protocol="igmp"}`:                                 0,
		`mcast_interfaces`: 1,
	} {
		if got, ok := x.Samples[k]; !ok || got != want {
			t.Errorf("%s = %v, %v; want %v", k, got, ok, want)
		}
	}
	if f := x.Families["mcast_build_info"]; f == nil || f.Samples != 1 {
		t.Errorf("mcast_build_info missing:\n%s", text)
	}
	if engineImplemented() {
		if x.Samples[`mcast_robustness{interface="r0",protocol="igmp"}`] != 2 || x.Samples[`mcast_query_interval_seconds{interface="r0",protocol="mld"}`] != 125 {
			t.Errorf("robustness/query interval not the defaults:\n%s", text)
		}
	}
	// Every counter of the real stack has its own family.
	for _, c := range admin.CounterMetrics {
		if _, ok := x.Samples[c.Name+`{interface="r0"}`]; !ok {
			t.Errorf("%s missing", c.Name)
		}
	}
	if _, ok := x.Families["mcast_interface_events_total"]; ok {
		t.Errorf("a stack counter fell into the catch-all:\n%s", text)
	}
	if engineImplemented() {
		// A querier speaks: its address, version, Max Resp Time and the
		// query interval it announces are exported.
		frame, err := newQuerier(wire.MAC{2, 0, 0, 0, 0, 0xfe}, netip.MustParseAddr("192.0.2.254")).generalQuery(50, 60)
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		if err := lan.Inject(frame); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			body, _, err := get()
			if err != nil {
				t.Fatal(err)
			}
			text = body
			if x, err = metricstest.Parse([]byte(text)); err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if x.Samples[`mcast_querier_present{interface="r0",protocol="igmp"}`] == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("query not exported:\n%s", text)
			}
		}
		for k, want := range map[string]float64{
			`mcast_querier_info{interface="r0",protocol="igmp",address="192.0.2.254",version="3"}`: 1,
			`mcast_querier_max_response_seconds{interface="r0",protocol="igmp"}`:                   5,
			`mcast_query_interval_seconds{interface="r0",protocol="igmp"}`:                         60,
			`mcast_querier_present{interface="r0",protocol="mld"}`:                                 0,
		} {
			if got, ok := x.Samples[k]; !ok || got != want {
				t.Errorf("%s = %v, %v; want %v", k, got, ok, want)
			}
		}
		last := x.Samples[`mcast_querier_last_query_timestamp_seconds{interface="r0",protocol="igmp"}`]
		age, ok := x.Samples[`mcast_querier_last_query_age_seconds{interface="r0",protocol="igmp"}`]
		if last < float64(before.Add(-time.Second).UnixNano())/1e9 || last > float64(time.Now().UnixNano())/1e9 || !ok || age < 0 || age > 30 {
			t.Errorf("last query at %v, age %v: want just now", last, age)
		}
	}
	if out, err := metricstest.Promtool([]byte(text)); errors.Is(err, metricstest.ErrNoPromtool) {
		t.Logf("promtool check skipped: %v", err)
	} else if err != nil {
		t.Errorf("%v\n%s", err, text)
	} else if strings.TrimSpace(out) != "" {
		t.Logf("promtool: %s", out)
	}

	// The admin socket keeps serving beside the TCP port.
	c := admin.NewClient(sock)
	if b, err := c.Metrics(ctx); err != nil || !strings.Contains(string(b), "mcast_build_info{") {
		t.Errorf("admin socket metrics: %v\n%s", err, b)
	}
	c.Close()

	stopRecv()
	select {
	case code := <-recvDone:
		if code != exitOK {
			t.Fatalf("recv: exit %d: %s", code, rerr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recv did not exit after its context was cancelled")
	}
	tr.CloseIdleConnections()
	if _, _, err := get(); err == nil {
		t.Errorf("%s still served after recv exited", url)
	}
	tr.CloseIdleConnections()
	checkGoroutines()
}

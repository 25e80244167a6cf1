package admin

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/admin/metricstest"
)

func sampleStatus() Status {
	return Status{
		Program: "test", PID: 42, Time: time.Unix(1700000000, 0).UTC(),
		Interfaces: []Interface{{
			Name: `eth"0`, Index: 1, MAC: "02:00:00:00:00:01", MTU: 1500,
			Addrs: []string{"192.0.2.1/24"},
			Families: []Family{{
				Family:   "ipv4",
				Protocol: Protocol{Name: "igmp", Version: 3, Robustness: 2, Counters: ProtocolCounters{ReportsSent: 7, QueriesReceived: 2}},
				Groups: []Group{
					{Group: "232.1.1.1", Mode: "include", Sources: []string{"192.0.2.2"}, Refs: 1},
					{Group: "239.1.1.1", Mode: "exclude", Sources: []string{}, Refs: 2},
				},
			}},
			Driver:   Driver{Exact: []string{"01:00:5e:01:01:01"}, Calls: 3, Requests: 9, Pending: true},
			Counters: Counters{DatagramsReceived: 10, Other: map[string]uint64{"bad_udp_checksum": 1}},
		}},
	}
}

func shortSocket(t *testing.T) string {
	// unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "adm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

func TestServeStatusAndMetrics(t *testing.T) {
	path := shortSocket(t)
	srv, err := Listen(path, sampleStatus)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	c := NewClient(path)
	defer c.Close()
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Interfaces) != 1 || len(st.Interfaces[0].Families[0].Groups) != 2 || st.Interfaces[0].Driver.Calls != 3 {
		t.Fatalf("status round trip: %+v", st)
	}
	text, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x, err := metricstest.Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	m := x.Samples
	for k, want := range map[string]float64{
		`mcast_groups{interface="eth\"0",family="ipv4"}`:                   2,
		`mcast_sources{interface="eth\"0",family="ipv4"}`:                  1,
		`mcast_reports_sent_total{interface="eth\"0",protocol="igmp"}`:     7,
		`mcast_queries_received_total{interface="eth\"0",protocol="igmp"}`: 2,
		`mcast_driver_calls_total{interface="eth\"0"}`:                     3,
		`mcast_driver_update_pending{interface="eth\"0"}`:                  1,
		`mcast_datagrams_received_total{interface="eth\"0"}`:               10,
		`mcast_rx_bad_udp_checksum_total{interface="eth\"0"}`:              1,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v, %v; want %v\n%s", k, got, ok, want, text)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
	if _, err := c.Status(ctx); err == nil {
		t.Fatal("status after close succeeded")
	}
}

func TestStaleAndInUse(t *testing.T) {
	path := shortSocket(t)
	// A stale socket: bound, then its listener gone without unlinking.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	srv, err := Listen(path, sampleStatus)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer srv.Close()
	if _, err := Listen(path, sampleStatus); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	// A regular file is never removed.
	other := filepath.Join(filepath.Dir(path), "plain")
	os.WriteFile(other, nil, 0o600)
	if _, err := Listen(other, sampleStatus); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a regular file: %v", err)
	}
}

// TestSplitStale: a socket a server answers on is live; one whose server
// is gone (the file left behind) and one named after a process that does
// not exist are stale.
func TestSplitStale(t *testing.T) {
	dir := filepath.Dir(shortSocket(t))
	live := filepath.Join(dir, "mcast-live.sock")
	srv, err := Listen(live, sampleStatus)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	left := filepath.Join(dir, "mcast-left.sock")
	ln, err := net.Listen("unix", left)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	// PID 0x7ffffffe is above any pid_max: no such process.
	dead := filepath.Join(dir, "mcast-2147483646.sock")
	ln, err = net.Listen("unix", dead)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // it answers, but its PID is dead: stale anyway
	gotLive, gotStale := SplitStale([]string{dead, left, live})
	if len(gotLive) != 1 || gotLive[0] != live {
		t.Errorf("live = %q, want [%s]", gotLive, live)
	}
	if len(gotStale) != 2 || gotStale[0] != dead || gotStale[1] != left {
		t.Errorf("stale = %q, want [%s %s]", gotStale, dead, left)
	}
}

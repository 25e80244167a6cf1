package admin

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcstack/mcstack/internal/admin/metricstest"
	"github.com/mcstack/mcstack/stack"
)

// richStatus has every part WriteMetrics exports: two interfaces (one with
// a name that needs escaping), both families, a querier on one, an Older
// Version Querier Present timer, groups of both modes, every stack counter.
func richStatus() Status {
	now := time.Unix(1700000000, 0).UTC()
	other := map[string]uint64{}
	for i, c := range CounterMetrics {
		other[c.Counter] = uint64(100 + i)
	}
	v4 := Family{Family: "ipv4", Groups: []Group{
		{Group: "232.1.1.1", Mode: "include", Sources: []string{"192.0.2.2", "192.0.2.3"}, Refs: 2},
		{Group: "239.1.1.1", Mode: "exclude", Sources: []string{}, Refs: 1, Retransmissions: 2},
	}, Protocol: Protocol{Name: "igmp", Version: 2, Robustness: 3, QueryIntervalSec: 60, QueryResponseIntervalSec: 5,
		OlderQuerierUntil: map[string]time.Time{"2": now.Add(1500 * time.Millisecond)},
		Querier:           &Querier{Addr: "192.0.2.254", Version: 2, LastQuery: now.Add(-12500 * time.Millisecond), MaxRespSec: 10},
		Counters:          ProtocolCounters{QueriesReceived: 4, ReportsSent: 9, DroppedBadChecksum: 1}}}
	v6 := Family{Family: "ipv6", Groups: []Group{{Group: "ff3e::8000:1", Mode: "include", Sources: []string{"2001:db8::2"}, Refs: 1}},
		Protocol: Protocol{Name: "mld", Version: 2, Robustness: 2, QueryIntervalSec: 125, QueryResponseIntervalSec: 10}}
	return Status{
		Program: "test", PID: 1, Time: now, Build: BuildInfo{Version: "v1.2.3", Revision: "0123abc", GoVersion: "go1.26.8"},
		Interfaces: []Interface{
			{Name: "eth0", Families: []Family{v4, v6}, Driver: Driver{Exact: []string{"01:00:5e:01:01:01"}, Calls: 2},
				Counters: Counters{FramesReceived: 50, DatagramsReceived: 40, DatagramsDropped: 3, Other: other}},
			{Name: "we\\ird\"\nname", Families: []Family{{Family: "ipv4", Groups: []Group{},
				Protocol: Protocol{Name: "igmp", Version: 3, Robustness: 2, QueryIntervalSec: 125, QueryResponseIntervalSec: 10}}}},
		},
		App: AppCounters{DatagramsReceived: 40, BytesReceived: 4000},
	}
}

func writeParse(t *testing.T, st Status) ([]byte, *metricstest.Exposition) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteMetrics(&b, st); err != nil {
		t.Fatal(err)
	}
	x, err := metricstest.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.Bytes())
	}
	return b.Bytes(), x
}

func TestMetricsExposition(t *testing.T) {
	text, x := writeParse(t, richStatus())
	for _, name := range x.Order {
		f := x.Families[name]
		if !strings.HasPrefix(name, "mcast_") {
			t.Errorf("%s: not named mcast_*", name)
		}
		if (f.Type == "counter") != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: type %s; counters and only counters end in _total", name, f.Type)
		}
		if f.Type != "counter" && f.Type != "gauge" {
			t.Errorf("%s: type %s", name, f.Type)
		}
		if len(f.Help) < 10 || !strings.HasSuffix(f.Help, ".") {
			t.Errorf("%s: help %q is not a sentence", name, f.Help)
		}
		if f.Samples == 0 {
			t.Errorf("%s: HELP and TYPE without samples", name)
		}
	}
	for k, want := range map[string]float64{
		`mcast_build_info{version="v1.2.3",revision="0123abc",goversion="go1.26.8"}`: 1,
		`mcast_interfaces`: 2,
		`mcast_groups{interface="eth0",family="ipv4"}`:                                            2,
		`mcast_sources{interface="eth0",family="ipv4"}`:                                           2,
		`mcast_socket_memberships{interface="eth0",family="ipv4"}`:                                3,
		`mcast_group_sources{interface="eth0",family="ipv4",group="232.1.1.1",mode="include"}`:    2,
		`mcast_group_sources{interface="eth0",family="ipv4",group="239.1.1.1",mode="exclude"}`:    0,
		`mcast_group_sources{interface="eth0",family="ipv6",group="ff3e::8000:1",mode="include"}`: 1,
		`mcast_group_socket_memberships{interface="eth0",family="ipv4",group="232.1.1.1"}`:        2,
		`mcast_group_pending_retransmissions{interface="eth0",family="ipv4",group="239.1.1.1"}`:   2,
		`mcast_group_pending_retransmissions{interface="eth0",family="ipv4",group="232.1.1.1"}`:   0,
		`mcast_protocol_version{interface="eth0",protocol="igmp"}`:                                2,
		`mcast_robustness{interface="eth0",protocol="igmp"}`:                                      3,
		`mcast_robustness{interface="eth0",protocol="mld"}`:                                       2,
		`mcast_query_interval_seconds{interface="eth0",protocol="igmp"}`:                          60,
		`mcast_query_response_interval_seconds{interface="eth0",protocol="mld"}`:                  10,
		`mcast_older_querier_present_seconds{interface="eth0",protocol="igmp",version="2"}`:       1.5,
		`mcast_querier_present{interface="eth0",protocol="igmp"}`:                                 1,
		`mcast_querier_present{interface="eth0",protocol="mld"}`:                                  0,
		`mcast_querier_info{interface="eth0",protocol="igmp",address="192.0.2.254",version="2"}`:  1,
		`mcast_querier_last_query_timestamp_seconds{interface="eth0",protocol="igmp"}`:            1699999987.5,
		`mcast_querier_last_query_age_seconds{interface="eth0",protocol="igmp"}`:                  12.5,
		`mcast_querier_max_response_seconds{interface="eth0",protocol="igmp"}`:                    10,
		`mcast_queries_received_total{interface="eth0",protocol="igmp"}`:                          4,
		`mcast_protocol_dropped_total{interface="eth0",protocol="igmp",reason="bad_checksum"}`:    1,
		`mcast_frames_received_total{interface="eth0"}`:                                           50,
		`mcast_datagrams_dropped_total{interface="eth0"}`:                                         3,
		`mcast_rx_bad_ip_checksum_total{interface="eth0"}`:                                        105,
		`mcast_app_bytes_received_total`:                                                          4000,
		`mcast_querier_present{interface="we\\ird\"\nname",protocol="igmp"}`:                      0,
		`mcast_groups{interface="we\\ird\"\nname",family="ipv4"}`:                                 0,
	} {
		if got, ok := x.Samples[k]; !ok || got != want {
			t.Errorf("%s = %v, %v; want %v", k, got, ok, want)
		}
	}
	// The MLD side heard no querier: no querier series but "present 0".
	for k := range x.Samples {
		if strings.HasPrefix(k, "mcast_querier_") && !strings.HasPrefix(k, "mcast_querier_present") && strings.Contains(k, `protocol="mld"`) {
			t.Errorf("querier series without a querier: %s", k)
		}
	}
	if _, ok := x.Families["mcast_interface_events_total"]; ok {
		t.Errorf("catch-all family emitted though every counter is named:\n%s", text)
	}
}

// TestMetricsEveryStackCounter: every counter the stack keeps (beyond the
// three Counters has fields for) has a family of its own, and the table
// names no counter the stack does not have.
func TestMetricsEveryStackCounter(t *testing.T) {
	known := map[string]bool{}
	for _, c := range CounterMetrics {
		known[c.Counter] = true
	}
	names := map[string]bool{}
	for _, c := range CounterMetrics {
		if names[c.Name] {
			t.Errorf("family %s used twice", c.Name)
		}
		names[c.Name] = true
	}
	stackHas := map[string]bool{}
	other := map[string]uint64{}
	for i, n := range stack.CounterNames {
		stackHas[n] = true
		switch n {
		case "frames_received", "datagrams_received", "datagrams_dropped":
			continue // Counters fields
		}
		if !known[n] {
			t.Errorf("stack counter %q has no metric family in CounterMetrics", n)
		}
		other[n] = uint64(i + 1)
	}
	for _, c := range CounterMetrics {
		if !stackHas[c.Counter] {
			t.Errorf("CounterMetrics names %q, which the stack does not count", c.Counter)
		}
	}
	_, x := writeParse(t, Status{Interfaces: []Interface{{Name: "e", Counters: Counters{Other: other}}}})
	for _, c := range CounterMetrics {
		f := x.Families[c.Name]
		if f == nil || f.Type != "counter" || f.Help != c.Help {
			t.Errorf("family %s: %+v", c.Name, f)
			continue
		}
		if got, ok := x.Samples[c.Name+`{interface="e"}`]; !ok || got != float64(other[c.Counter]) {
			t.Errorf("%s = %v, %v; want %d", c.Name, got, ok, other[c.Counter])
		}
	}
}

func TestMetricsUnnamedCounter(t *testing.T) {
	text, x := writeParse(t, Status{Interfaces: []Interface{{Name: "e",
		Counters: Counters{Other: map[string]uint64{"zz_new": 7, "bad_ip_checksum": 2, "aa_new": 1}}}}})
	if x.Samples[`mcast_interface_events_total{interface="e",counter="zz_new"}`] != 7 ||
		x.Samples[`mcast_interface_events_total{interface="e",counter="aa_new"}`] != 1 ||
		x.Samples[`mcast_rx_bad_ip_checksum_total{interface="e"}`] != 2 {
		t.Errorf("unnamed counters:\n%s", text)
	}
	if strings.Contains(string(text), `counter="bad_ip_checksum"`) {
		t.Errorf("a named counter also in the catch-all:\n%s", text)
	}
	if strings.Index(string(text), `counter="aa_new"`) > strings.Index(string(text), `counter="zz_new"`) {
		t.Errorf("catch-all not sorted:\n%s", text)
	}
}

// TestMetricsEscaping checks the exact bytes of escaped label values and
// help text: backslash, double quote and newline in a label value;
// backslash and newline in help; invalid UTF-8 replaced.
func TestMetricsEscaping(t *testing.T) {
	var b bytes.Buffer
	WriteMetrics(&b, Status{Interfaces: []Interface{{Name: "a\\b\"c\nd\xffe"}}})
	want := `mcast_driver_calls_total{interface="a\\b\"c\nd` + "\uFFFD" + `e"} 0` + "\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("want line %q in\n%s", want, b.String())
	}
	if got := escapeHelp("x\\y\nz \"q\""); got != `x\\y\nz "q"` {
		t.Errorf("escapeHelp: %q", got)
	}
	if got := escapeLabel(`"\`); got != `\"\\` {
		t.Errorf("escapeLabel: %q", got)
	}
}

func TestMetricsBuildInfo(t *testing.T) {
	_, x := writeParse(t, Status{})
	if x.Samples[`mcast_build_info{version="(devel)",revision="",goversion="unknown"}`] != 1 {
		t.Errorf("build info without a build: %v", x.Samples)
	}
}

// TestMetricsPromtool runs `promtool check metrics` (parser and linter of
// the Prometheus project) on the exposition of richStatus.
func TestMetricsPromtool(t *testing.T) {
	text, _ := writeParse(t, richStatus())
	out, err := metricstest.Promtool(text)
	if errors.Is(err, metricstest.ErrNoPromtool) {
		t.Skipf("skipping promtool check: %v", err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if strings.TrimSpace(out) != "" {
		t.Logf("promtool: %s", out)
	}
}

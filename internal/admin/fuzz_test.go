package admin

import (
	"bytes"
	"testing"

	"github.com/mcstack/mcstack/internal/admin/metricstest"
)

// FuzzParseMetrics: arbitrary text is accepted or refused by the test
// parser without panicking; and the metrics WriteMetrics emits for an
// interface, group and querier address of any spelling (label escaping)
// always parse, with the labels intact.
func FuzzParseMetrics(f *testing.F) {
	f.Add("eth0", "239.1.1.1", []byte("# HELP x X.\n# TYPE x counter\nx 1\n"))
	f.Add(`e"th\0`+"\n", "\xff", []byte("x{a=\"\\\"\"} 2\n"))
	f.Fuzz(func(t *testing.T, name, addr string, text []byte) {
		metricstest.Parse(text)

		var b bytes.Buffer
		st := Status{Interfaces: []Interface{{Name: name, Families: []Family{{
			Family: "ipv4", Protocol: Protocol{Name: "igmp", Version: 3, Querier: &Querier{Addr: addr, Version: 3}},
			Groups: []Group{{Group: addr, Mode: "exclude"}},
		}}}}}
		if err := WriteMetrics(&b, st); err != nil {
			t.Fatal(err)
		}
		x, err := metricstest.Parse(b.Bytes())
		if err != nil {
			t.Fatalf("our own metrics for interface %q do not parse: %v\n%s", name, err, b.Bytes())
		}
		in := escapeLabel(name)
		for _, key := range []string{
			`mcast_driver_calls_total{interface="` + in + `"}`,
			`mcast_group_socket_memberships{interface="` + in + `",family="ipv4",group="` + escapeLabel(addr) + `"}`,
			`mcast_querier_info{interface="` + in + `",protocol="igmp",address="` + escapeLabel(addr) + `",version="3"}`,
		} {
			if _, ok := x.Samples[key]; !ok {
				t.Fatalf("series %s missing from %v", key, x.Samples)
			}
		}
	})
}

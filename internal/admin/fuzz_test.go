package admin

import (
	"bytes"
	"testing"
)

// FuzzParseMetrics: arbitrary text is accepted or refused without
// panicking; and the metrics WriteMetrics emits for an interface of any
// name (label escaping) always parse, with the interface's label intact.
func FuzzParseMetrics(f *testing.F) {
	f.Add("eth0", []byte("# TYPE x counter\nx 1\n"))
	f.Add(`e"th\0`+"\n", []byte("x{a=\"\\\"\"} 2\n"))
	f.Fuzz(func(t *testing.T, name string, text []byte) {
		ParseMetrics(text)

		var b bytes.Buffer
		st := Status{Interfaces: []Interface{{Name: name, Families: []Family{{
			Family: "ipv4", Protocol: Protocol{Name: "igmp", Version: 3},
			Groups: []Group{{Group: "239.1.1.1", Mode: "exclude"}},
		}}}}}
		if err := WriteMetrics(&b, st); err != nil {
			t.Fatal(err)
		}
		m, err := ParseMetrics(b.Bytes())
		if err != nil {
			t.Fatalf("our own metrics for interface %q do not parse: %v\n%s", name, err, b.Bytes())
		}
		key := `mcast_driver_calls_total{interface="` + escapeLabel(name) + `"}`
		if _, ok := m[key]; !ok {
			t.Fatalf("series %s missing from %v", key, m)
		}
	})
}

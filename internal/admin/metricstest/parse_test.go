package metricstest

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	x, err := Parse([]byte("# HELP a_total A \\\\ help.\n# TYPE a_total counter\na_total{x=\"q\\\"\\n\",y=\"\"} 3\na_total 4\n" +
		"# HELP b B.\n# TYPE b gauge\nb 1.5e+09\n"))
	if err != nil {
		t.Fatal(err)
	}
	if x.Samples[`a_total{x="q\"\n",y=""}`] != 3 || x.Samples["a_total"] != 4 || x.Samples["b"] != 1.5e9 {
		t.Errorf("samples: %v", x.Samples)
	}
	if f := x.Families["a_total"]; f == nil || f.Type != "counter" || f.Help != `A \\ help.` || f.Samples != 2 {
		t.Errorf("family a_total: %+v", f)
	}
	if len(x.Order) != 2 || x.Order[0] != "a_total" || x.Order[1] != "b" {
		t.Errorf("order: %v", x.Order)
	}
}

func TestParseRejects(t *testing.T) {
	for _, bad := range []string{
		"mcast_x 1\n", // no TYPE
		"# HELP mcast_x x\n# TYPE mcast_x gauge\nmcast_x{a=\"b} 1\n", // broken label
		"# HELP mcast_x x\n# TYPE mcast_x gauge\nmcast_x one\n",
		"# HELP mcast_x x\n# TYPE mcast_x bogus\n",
		"# TYPE mcast_x gauge\nmcast_x 1\n", // no HELP
		"# HELP mcast_x x\n# HELP mcast_x y\n# TYPE mcast_x gauge\n",
		"# HELP mcast_x x\n# TYPE mcast_x gauge\n# TYPE mcast_x gauge\n",
		"# HELP mcast_x x\n# TYPE mcast_x gauge\nmcast_x 1\nmcast_x 2\n", // duplicate series
		"# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na 1\n",  // a's samples not contiguous
		"# HELP mcast_x x\n# TYPE mcast_x gauge\nmcast_x 1 1700000000\n", // timestamps are not emitted
		"# HELP 1x x\n# TYPE 1x gauge\n",                                 // bad name
		"# HELP mcast_x x\n# TYPE mcast_x gauge\nmcast_x{1a=\"b\"} 1\n",  // bad label name
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestPromtool makes sure the wrapper reports promtool's findings: a
// counter without _total and a family without HELP fail its lint.
func TestPromtool(t *testing.T) {
	if _, err := Promtool([]byte("# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n")); errors.Is(err, ErrNoPromtool) {
		t.Skip(err)
	} else if err != nil {
		t.Fatalf("good text refused: %v", err)
	}
	for _, bad := range []string{
		"# HELP x X.\n# TYPE x counter\nx 1\n",
		"# TYPE x_total counter\nx_total 1\n",
		"x_total{ 1\n",
	} {
		if out, err := Promtool([]byte(bad)); err == nil {
			t.Errorf("promtool accepted %q: %s", bad, out)
		}
	}
}

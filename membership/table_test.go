package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// st parses "exclude{A,B}"-style states with A..F standing for 192.0.2.1..6.
func st(t testing.TB, s string) State {
	t.Helper()
	mode := Include
	if strings.HasPrefix(s, "exclude") {
		mode = Exclude
	}
	body := s[strings.IndexByte(s, '{')+1 : len(s)-1]
	var srcs []netip.Addr
	for _, f := range strings.Split(body, ",") {
		if f == "" {
			continue
		}
		srcs = append(srcs, netip.AddrFrom4([4]byte{192, 0, 2, f[0] - 'A' + 1}))
	}
	return NewState(mode, srcs)
}

func TestMergeRule(t *testing.T) {
	cases := []struct {
		sockets []string
		want    string
	}{
		// RFC 9776 §3.2 / RFC 3376 §3.2 merge rule examples.
		{[]string{"exclude{A,B,C}", "exclude{B,C,D}"}, "exclude{B,C}"},
		{[]string{"exclude{A,B}", "include{A,C}"}, "exclude{B}"},
		{[]string{"include{A}", "include{B}"}, "include{A,B}"},
		{[]string{"exclude{A,B,C}", "exclude{B,C,D}", "include{B,E}"}, "exclude{C}"},
		{[]string{"include{A,B}", "include{B,C}"}, "include{A,B,C}"},
		{[]string{"exclude{}", "exclude{A}"}, "exclude{}"},
		{[]string{"exclude{A}", "include{A}"}, "exclude{}"},
		{[]string{"exclude{A}"}, "exclude{A}"},
		{[]string{"include{A}", "exclude{B}", "exclude{B,C}"}, "exclude{B}"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.sockets, "+"), func(t *testing.T) {
			tab := NewTable(Limits{})
			for i, s := range c.sockets {
				d, _, err := tab.Apply(g4, State{}, st(t, s))
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && !d.New.Equal(st(t, s)) {
					t.Fatalf("single socket merge = %v", d.New)
				}
			}
			got, refs, ok := tab.Get(g4)
			if !ok || refs != len(c.sockets) || got.String() != st(t, c.want).String() {
				t.Fatalf("merged = %v refs %d ok %v, want %v", got, refs, ok, st(t, c.want))
			}
			// Leaving in reverse order ends with no record and a leave delta.
			for i := len(c.sockets) - 1; i >= 0; i-- {
				d, _, err := tab.Apply(g4, st(t, c.sockets[i]), State{})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && (d.New.IsMember() || !d.Old.IsMember()) {
					t.Fatalf("last leave delta = %+v", d)
				}
			}
			if tab.Len() != 0 {
				t.Fatalf("records left: %v", tab.Groups())
			}
		})
	}
}

func TestTableDeltaAndChanged(t *testing.T) {
	tab := NewTable(Limits{})
	d, ch, _ := tab.Apply(g4, State{}, st(t, "include{A}"))
	if !ch || d.Old.IsMember() || d.New.String() != "include{192.0.2.1}" || d.Group != g4 {
		t.Fatalf("join delta %+v changed %v", d, ch)
	}
	// A second socket with a subset changes nothing at the interface.
	d, ch, _ = tab.Apply(g4, State{}, st(t, "include{A}"))
	if ch || !d.Old.Equal(d.New) {
		t.Fatalf("redundant join changed: %+v", d)
	}
	if _, refs, _ := tab.Get(g4); refs != 2 {
		t.Fatalf("refs = %d", refs)
	}
	old := d.New
	d, ch, _ = tab.Apply(g4, st(t, "include{A}"), st(t, "exclude{}"))
	if !ch || d.New.String() != "exclude{}" || !d.Old.Equal(old) {
		t.Fatalf("mode change delta %+v", d)
	}
	if old.String() != "include{192.0.2.1}" {
		t.Fatalf("earlier delta state mutated: %v", old)
	}
	// Leaving a non-member is a no-op.
	if d, ch, err := tab.Apply(g6, State{}, State{}); ch || err != nil || d.New.IsMember() || tab.Len() != 1 {
		t.Fatalf("no-op apply: %+v %v %v", d, ch, err)
	}
	gi := tab.Groups()
	if len(gi) != 1 || gi[0].Group != g4 || gi[0].Refs != 2 || gi[0].State.String() != "exclude{}" {
		t.Fatalf("Groups = %+v", gi)
	}
}

func TestTableLimit(t *testing.T) {
	tab := NewTable(Limits{SourcesPerInterfaceGroup: 2})
	if _, _, err := tab.Apply(g4, State{}, st(t, "include{A,B}")); err != nil {
		t.Fatal(err)
	}
	_, _, err := tab.Apply(g4, State{}, st(t, "include{C}"))
	if !errors.Is(err, ErrTooManyIfcSources) {
		t.Fatalf("err = %v", err)
	}
	if got, refs, _ := tab.Get(g4); refs != 1 || got.String() != st(t, "include{A,B}").String() {
		t.Fatalf("failed Apply changed the record: %v refs %d", got, refs)
	}
	// Failing on a new group leaves no record behind.
	if _, _, err := tab.Apply(g6, State{}, NewState(Include, addrs("2001:db8::1", "2001:db8::2", "2001:db8::3"))); !errors.Is(err, ErrTooManyIfcSources) {
		t.Fatalf("err = %v", err)
	}
	if _, _, ok := tab.Get(g6); ok || tab.Len() != 1 {
		t.Fatal("failed first join left a record")
	}

	// A leave that exposes more sources than the limit still applies.
	tab = NewTable(Limits{SourcesPerInterfaceGroup: 2})
	for _, s := range []string{"exclude{}", "exclude{A,B,C,D}"} {
		if _, _, err := tab.Apply(g4, State{}, st(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	d, ch, err := tab.Apply(g4, st(t, "exclude{}"), State{})
	if err != nil || !ch || len(d.New.Sources) != 4 {
		t.Fatalf("leave over limit: %+v %v %v", d, ch, err)
	}
	// Shrinking while still over the limit is allowed; growing is not.
	if _, _, err := tab.Apply(g4, State{}, st(t, "include{A}")); err != nil {
		t.Fatalf("shrinking update refused: %v", err)
	}
	if _, _, err := tab.Apply(g4, st(t, "include{A}"), st(t, "include{E}")); !errors.Is(err, ErrTooManyIfcSources) {
		t.Fatalf("growing update: err = %v", err)
	}
}

func TestTableRevert(t *testing.T) {
	tab := NewTable(Limits{SourcesPerInterfaceGroup: 2})
	for _, s := range []string{"exclude{}", "exclude{A,B,C}"} {
		if _, _, err := tab.Apply(g4, State{}, st(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	// exclude{} -> include{D}: merged goes exclude{} -> exclude{A,B,C} (over
	// the limit) and is refused by Apply...
	if _, _, err := tab.Apply(g4, st(t, "exclude{}"), st(t, "include{D}")); !errors.Is(err, ErrTooManyIfcSources) {
		t.Fatalf("err = %v", err)
	}
	// ...but the leave applies, and a rollback of that leave must too.
	d, _, err := tab.Apply(g4, st(t, "exclude{}"), State{})
	if err != nil || len(d.New.Sources) != 3 {
		t.Fatalf("leave: %+v %v", d, err)
	}
	if _, _, err := tab.Apply(g4, st(t, "exclude{A,B,C}"), st(t, "exclude{A}")); err != nil {
		t.Fatal(err)
	}
	d, ch := tab.Revert(g4, st(t, "exclude{A}"), st(t, "exclude{A,B,C}"))
	if !ch || d.New.String() != st(t, "exclude{A,B,C}").String() {
		t.Fatalf("Revert delta %+v %v", d, ch)
	}
	if got, refs, _ := tab.Get(g4); refs != 1 || got.String() != st(t, "exclude{A,B,C}").String() {
		t.Fatalf("after Revert: %v refs %d", got, refs)
	}
}

func TestTableLastLeaveNoAlloc(t *testing.T) {
	tab := NewTable(Limits{})
	s := st(t, "exclude{A,B,C}")
	const runs = 100
	groups := make([]netip.Addr, runs+1) // AllocsPerRun makes one extra warm-up call
	for i := range groups {
		groups[i] = netip.AddrFrom4([4]byte{232, 0, 0, byte(i)})
		if _, _, err := tab.Apply(groups[i], State{}, s); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	n := testing.AllocsPerRun(runs, func() {
		tab.Apply(groups[i], s, State{}) //nolint:errcheck
		i++
	})
	if n != 0 || tab.Len() != 0 {
		t.Fatalf("last leave allocated %v times; %d records left", n, tab.Len())
	}
}

func TestTableMisusePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an old state never applied")
		}
	}()
	tab := NewTable(Limits{})
	tab.Apply(g4, State{}, st(t, "include{A}"))            //nolint:errcheck
	tab.Apply(g4, st(t, "include{B}"), st(t, "exclude{}")) //nolint:errcheck
}

func ExampleTable_Apply() {
	tab := NewTable(Limits{})
	a, b, c, d := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4")
	g := netip.MustParseAddr("232.1.1.1")
	tab.Apply(g, State{}, NewState(Exclude, []netip.Addr{a, b, c})) //nolint:errcheck
	delta, changed, _ := tab.Apply(g, State{}, NewState(Exclude, []netip.Addr{b, c, d}))
	fmt.Println(delta.Old, "->", delta.New, changed)
	// Output: exclude{192.0.2.1,192.0.2.2,192.0.2.3} -> exclude{192.0.2.2,192.0.2.3} true
}

package link_test

import (
	"testing"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

func groupMAC(i int) wire.MAC { return wire.MAC{0x01, 0x00, 0x5e, 0x01, byte(i >> 8), byte(i)} }

// ExactFilter accepts exactly the addresses set (few of them or many, with
// duplicates), everything multicast beyond its capacity, and unicast and
// broadcast always.
func TestExactFilter(t *testing.T) {
	for _, n := range []int{0, 1, 8, 9, 40} {
		f := link.ExactFilter{Capacity: 32}
		var addrs []wire.MAC
		for i := range n {
			addrs = append(addrs, groupMAC(i), groupMAC(i)) // duplicates count once
		}
		st := f.Set(addrs)
		all := n > 32
		if st.AllMulticast != all || (!all && st.Exact != n) || f.Status() != st {
			t.Fatalf("n=%d: Set = %+v, Status = %+v", n, st, f.Status())
		}
		for i := range n + 2 {
			if got, want := f.Accepts(groupMAC(i)), i < n || all; got != want {
				t.Errorf("n=%d: Accepts(group %d) = %v, want %v", n, i, got, want)
			}
		}
		for _, mac := range []wire.MAC{{0x02, 0, 0, 0, 0, 1}, wire.BroadcastMAC} {
			if !f.Accepts(mac) {
				t.Errorf("n=%d: %v refused", n, mac)
			}
		}
	}
	var zero link.ExactFilter
	if zero.Accepts(groupMAC(0)) {
		t.Error("the zero filter accepts a group")
	}
}

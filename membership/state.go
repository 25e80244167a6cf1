package membership

import (
	"net/netip"
	"slices"
	"strings"
)

// NewState returns a State with mode and a sorted, deduplicated copy of
// sources (the argument is not retained or modified). IPv4-mapped IPv6
// sources are kept as given; validation is the job of SocketFilters.Propose.
func NewState(mode Mode, sources []netip.Addr) State {
	if len(sources) == 0 {
		return State{Mode: mode}
	}
	s := slices.Clone(sources)
	slices.SortFunc(s, netip.Addr.Compare)
	s = slices.Compact(s)
	return State{Mode: mode, Sources: s}
}

// Accepts reports whether a packet from src passes the filter: for INCLUDE
// src must be listed, for EXCLUDE it must not be. It is a binary search over
// the sorted sources (O(log n)) and does not allocate. An IPv4-mapped IPv6
// src is compared in its IPv4 form and a zone is ignored, matching how
// Propose stores sources.
func (s State) Accepts(src netip.Addr) bool {
	if len(s.Sources) == 0 {
		// EXCLUDE {} (any source, the common join) or INCLUDE {}: small
		// enough to inline into the receive path's loop.
		return s.Mode == Exclude
	}
	return s.listed(src) != (s.Mode == Exclude)
}

// listed reports whether src is one of the sources, in the form Propose
// stores them.
func (s State) listed(src netip.Addr) bool {
	if src.Is4In6() {
		src = src.Unmap()
	} else if src.Zone() != "" {
		src = src.WithZone("")
	}
	return contains(s.Sources, src)
}

// contains is a binary search over a sorted source list.
func contains(srcs []netip.Addr, a netip.Addr) bool {
	lo, hi := 0, len(srcs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := srcs[m].Compare(a); {
		case c == 0:
			return true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// sortedUnique reports whether srcs is strictly ascending.
func sortedUnique(srcs []netip.Addr) bool {
	for i := 1; i < len(srcs); i++ {
		if srcs[i-1].Compare(srcs[i]) >= 0 {
			return false
		}
	}
	return true
}

// Equal reports whether s and o have the same mode and sources (a nil and an
// empty source list are equal).
func (s State) Equal(o State) bool {
	return s.Mode == o.Mode && slices.Equal(s.Sources, o.Sources)
}

// String formats the state like "exclude{192.0.2.1,192.0.2.2}".
func (s State) String() string {
	var b strings.Builder
	b.WriteString(s.Mode.String())
	b.WriteByte('{')
	for i, a := range s.Sources {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.String())
	}
	b.WriteByte('}')
	return b.String()
}

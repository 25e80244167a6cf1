package membership

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Key names one socket membership: an interface and a group. Group must be
// an unzoned multicast address in its natural form (IPv4 groups as 4-byte
// addresses, not IPv4-mapped IPv6); the interface is IfIndex.
type Key struct {
	IfIndex int
	Group   netip.Addr
}

// OpKind is a socket membership operation (RFC 3678 §4.1 delta-based API,
// §4.2 full-state API).
type OpKind uint8

const (
	// OpJoin is an any-source join: the filter becomes EXCLUDE {}.
	OpJoin OpKind = iota
	// OpLeave drops the membership whatever its mode.
	OpLeave
	// OpJoinSource adds Source to an INCLUDE filter (joining if needed).
	OpJoinSource
	// OpLeaveSource removes Source from an INCLUDE filter.
	OpLeaveSource
	// OpBlock adds Source to an EXCLUDE filter.
	OpBlock
	// OpUnblock removes Source from an EXCLUDE filter.
	OpUnblock
	// OpSetFilter replaces the filter with Mode and Sources.
	OpSetFilter
)

var opNames = [...]string{"join", "leave", "join-source", "leave-source", "block", "unblock", "set-filter"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Op is one socket operation. Source is used by the four per-source kinds;
// Mode and Sources by OpSetFilter (Sources may be unsorted and contain
// duplicates).
type Op struct {
	Kind    OpKind
	Source  netip.Addr
	Mode    Mode
	Sources []netip.Addr
}

// String formats the op for error messages, e.g. "block 192.0.2.1" or
// "set-filter exclude{192.0.2.1}".
func (o Op) String() string {
	switch o.Kind {
	case OpJoinSource, OpLeaveSource, OpBlock, OpUnblock:
		return o.Kind.String() + " " + o.Source.String()
	case OpSetFilter:
		var b strings.Builder
		b.WriteString("set-filter ")
		b.WriteString(o.Mode.String())
		b.WriteByte('{')
		for i, a := range o.Sources {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.String())
		}
		b.WriteByte('}')
		return b.String()
	}
	return o.Kind.String()
}

// Entry is one socket membership.
type Entry struct {
	Key   Key
	State State
}

// SocketFilters is one socket's source filters, one per (interface, group).
// It is not safe for concurrent use.
//
// Stored source slices are never modified in place: every change builds a
// new slice, so any State handed out (by Propose, Get, All, RemoveInterface)
// stays valid and unchanged forever and may be published as an immutable
// snapshot.
type SocketFilters struct {
	lim Limits
	m   map[Key]State
}

// NewSocketFilters returns empty filters bounded by lim (zero fields mean
// the defaults).
func NewSocketFilters(lim Limits) *SocketFilters {
	return &SocketFilters{lim: lim.WithDefaults(), m: make(map[Key]State)}
}

// Propose computes the state op would give k, without changing anything.
// old is k's current state (INCLUDE {} when not joined); on success new is
// the proposed state (INCLUDE {} means the socket leaves), to be passed to
// Table.Apply and then Commit. On error new equals old and err wraps one of
// the sentinel errors, with the op and the group as context.
//
// Rules (RFC 3678): see the package tests; in short OpJoin needs the group
// not joined; OpLeave needs it joined; OpJoinSource/OpLeaveSource need
// INCLUDE mode (OpJoinSource joins an unjoined group); OpBlock/OpUnblock
// need EXCLUDE mode and a joined group. OpSetFilter is full state: its
// sources are deduplicated and sorted, INCLUDE {} leaves a joined group (and
// is ErrNotJoined on an unjoined one), and any other state JOINS an unjoined
// group — unlike setsourcefilter() on some kernels, our full-state call does
// not require a prior join.
//
// Address rules: the group must be a valid, unzoned multicast address
// (ErrNotMulticast) and not IPv4-mapped (ErrFamilyMismatch). Sources must be
// valid unicast addresses: not unspecified, not multicast, not
// 255.255.255.255 (ErrBadSource). An IPv4-mapped IPv6 source for an IPv4
// group is unmapped and accepted; any other family difference, including an
// IPv4-mapped source for an IPv6 group, is ErrFamilyMismatch. Zones on
// sources are dropped. Address errors are checked before state errors, and
// limits last: ErrTooManyGroups when an unjoined group would join and the
// socket already holds GroupsPerSocket groups, ErrTooManySources when the
// new filter would have more than SourcesPerSocketFilter sources.
func (s *SocketFilters) Propose(k Key, op Op) (old, new State, err error) {
	old = s.m[k]
	_, joined := s.m[k]
	fail := func(e error) (State, State, error) {
		return old, old, fmt.Errorf("%s on %s (ifindex %d): %w", op, k.Group, k.IfIndex, e)
	}
	g := k.Group
	switch {
	case !g.IsValid() || g.Zone() != "":
		return fail(ErrNotMulticast)
	case g.Is4In6():
		return fail(ErrFamilyMismatch)
	case !g.IsMulticast():
		return fail(ErrNotMulticast)
	}

	var src netip.Addr
	switch op.Kind {
	case OpJoin, OpLeave:
	case OpJoinSource, OpLeaveSource, OpBlock, OpUnblock:
		if src, err = canonSource(g, op.Source); err != nil {
			return fail(err)
		}
	case OpSetFilter:
		if op.Mode != Include && op.Mode != Exclude {
			return fail(ErrBadOp)
		}
	default:
		return fail(ErrBadOp)
	}

	switch op.Kind {
	case OpJoin:
		if joined {
			return fail(ErrAlreadyJoined)
		}
		new = State{Mode: Exclude}
	case OpLeave:
		if !joined {
			return fail(ErrNotJoined)
		}
		new = State{}
	case OpJoinSource:
		switch {
		case !joined:
			new = State{Mode: Include, Sources: []netip.Addr{src}}
		case old.Mode == Exclude:
			return fail(ErrModeMismatch)
		case contains(old.Sources, src):
			return fail(ErrSourceExists)
		default:
			new = State{Mode: Include, Sources: insertSorted(old.Sources, src)}
		}
	case OpLeaveSource, OpUnblock:
		want := Include
		if op.Kind == OpUnblock {
			want = Exclude
		}
		switch {
		case !joined:
			return fail(ErrNotJoined)
		case old.Mode != want:
			return fail(ErrModeMismatch)
		case !contains(old.Sources, src):
			return fail(ErrSourceNotFound)
		default:
			new = State{Mode: want, Sources: removeSorted(old.Sources, src)}
		}
	case OpBlock:
		switch {
		case !joined:
			return fail(ErrNotJoined)
		case old.Mode != Exclude:
			return fail(ErrModeMismatch)
		case contains(old.Sources, src):
			return fail(ErrSourceExists)
		default:
			new = State{Mode: Exclude, Sources: insertSorted(old.Sources, src)}
		}
	case OpSetFilter:
		srcs := make([]netip.Addr, 0, len(op.Sources))
		for _, a := range op.Sources {
			c, err := canonSource(g, a)
			if err != nil {
				return fail(err)
			}
			srcs = append(srcs, c)
		}
		slices.SortFunc(srcs, netip.Addr.Compare)
		srcs = slices.Compact(srcs)
		if len(srcs) == 0 {
			srcs = nil
		}
		new = State{Mode: op.Mode, Sources: srcs}
		if !new.IsMember() && !joined {
			return fail(ErrNotJoined)
		}
	}

	if !joined && new.IsMember() && len(s.m) >= s.lim.GroupsPerSocket {
		return fail(ErrTooManyGroups)
	}
	if len(new.Sources) > s.lim.SourcesPerSocketFilter {
		return fail(ErrTooManySources)
	}
	if !new.IsMember() {
		new = State{}
	}
	return old, new, nil
}

// canonSource validates a source for group g and returns its stored form.
func canonSource(g, a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		return a, ErrBadSource
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	if g.Is4() {
		if a.Is4In6() {
			a = a.Unmap()
		}
		if !a.Is4() {
			return a, ErrFamilyMismatch
		}
		if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return a, ErrBadSource
		}
	} else if !a.Is6() || a.Is4In6() {
		return a, ErrFamilyMismatch
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return a, ErrBadSource
	}
	return a, nil
}

// insertSorted returns a new sorted slice with a added (a not present).
func insertSorted(srcs []netip.Addr, a netip.Addr) []netip.Addr {
	i, _ := slices.BinarySearchFunc(srcs, a, netip.Addr.Compare)
	out := make([]netip.Addr, len(srcs)+1)
	copy(out, srcs[:i])
	out[i] = a
	copy(out[i+1:], srcs[i:])
	return out
}

// removeSorted returns a new slice without a (a present); nil when empty.
func removeSorted(srcs []netip.Addr, a netip.Addr) []netip.Addr {
	if len(srcs) == 1 {
		return nil
	}
	i, _ := slices.BinarySearchFunc(srcs, a, netip.Addr.Compare)
	out := make([]netip.Addr, 0, len(srcs)-1)
	out = append(out, srcs[:i]...)
	return append(out, srcs[i+1:]...)
}

// Commit stores st as k's state, deleting the entry when st is not a
// membership (INCLUDE {}). st should come from Propose; a source list that
// is not sorted and unique is normalised (copied) first. The caller must
// not modify st.Sources afterwards. Commit does not check limits.
func (s *SocketFilters) Commit(k Key, st State) {
	if !st.IsMember() {
		delete(s.m, k)
		return
	}
	if !sortedUnique(st.Sources) {
		st = NewState(st.Mode, st.Sources)
	}
	s.m[k] = st
}

// Get returns k's state and whether the socket is a member.
func (s *SocketFilters) Get(k Key) (State, bool) {
	st, ok := s.m[k]
	return st, ok
}

// Len returns the number of (interface, group) memberships.
func (s *SocketFilters) Len() int { return len(s.m) }

// All returns every membership sorted by IfIndex then Group (for socket
// close: apply each as State→INCLUDE {} to the interface tables).
func (s *SocketFilters) All() []Entry {
	out := make([]Entry, 0, len(s.m))
	for k, st := range s.m {
		out = append(out, Entry{k, st})
	}
	sortEntries(out)
	return out
}

// RemoveInterface removes and returns (sorted by Group) every membership on
// ifIndex, for interface removal.
func (s *SocketFilters) RemoveInterface(ifIndex int) []Entry {
	var out []Entry
	for k, st := range s.m {
		if k.IfIndex == ifIndex {
			out = append(out, Entry{k, st})
			delete(s.m, k)
		}
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := cmp.Compare(a.Key.IfIndex, b.Key.IfIndex); c != 0 {
			return c
		}
		return a.Key.Group.Compare(b.Key.Group)
	})
}

package membership

import (
	"errors"
	"net/netip"
)

// Mode is a source filter mode (RFC 3376 §3.1 / RFC 9776 §3, RFC 3678 §4).
type Mode uint8

const (
	// Include accepts only the listed sources. INCLUDE with no sources is
	// "not a member".
	Include Mode = iota
	// Exclude accepts every source but the listed ones. EXCLUDE with no
	// sources is an any-source join.
	Exclude
)

func (m Mode) String() string {
	if m == Exclude {
		return "exclude"
	}
	return "include"
}

// State is a filter state: a mode and a set of sources, kept sorted
// ascending (netip.Addr.Less) and without duplicates. It is a value; the
// sources slice must not be modified once a State is shared.
type State struct {
	Mode    Mode
	Sources []netip.Addr
}

// IsMember reports whether the state means any membership at all
// (anything but INCLUDE {}).
func (s State) IsMember() bool { return s.Mode == Exclude || len(s.Sources) > 0 }

// Delta is one interface-level change of a group's merged state, the input
// the IGMP/MLD engines turn into state-change records (RFC 9776 §5.1).
// Old.IsMember() false means a new membership; New.IsMember() false means
// the interface left the group.
type Delta struct {
	Group netip.Addr
	Old   State
	New   State
}

// Sentinel errors. Every misuse of the socket API wraps one of these, so
// callers test with errors.Is; an operation that fails changes nothing.
var (
	ErrNotMulticast      = errors.New("not a multicast group address")
	ErrBadSource         = errors.New("source is not a valid unicast address of the group's family")
	ErrAlreadyJoined     = errors.New("group already joined")
	ErrNotJoined         = errors.New("group not joined")
	ErrSourceExists      = errors.New("source already in filter")
	ErrSourceNotFound    = errors.New("source not in filter")
	ErrModeMismatch      = errors.New("operation does not match the group's filter mode")
	ErrTooManyGroups     = errors.New("too many groups on this socket")
	ErrTooManySources    = errors.New("too many sources in the socket filter")
	ErrTooManyIfcSources = errors.New("too many sources in the interface group filter")
	ErrFamilyMismatch    = errors.New("address family does not match")
	// ErrBadOp reports an Op with an unknown Kind, or an OpSetFilter whose
	// Mode is neither Include nor Exclude.
	ErrBadOp = errors.New("invalid membership operation")
)

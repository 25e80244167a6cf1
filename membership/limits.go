package membership

// Default limits. They are generous on purpose: market-data and IPTV
// receivers join hundreds of groups on one socket, which Linux's default of
// 20 (igmp_max_memberships) refuses; FreeBSD allows 4095 (IP_MAX_MEMBERSHIPS).
const (
	// DefaultGroupsPerSocket is the default number of (interface, group)
	// memberships one socket may hold.
	DefaultGroupsPerSocket = 4096
	// DefaultSourcesPerSocketFilter is the default number of sources in one
	// socket's filter for one (interface, group).
	DefaultSourcesPerSocketFilter = 1024
	// DefaultSourcesPerInterfaceGroup is the default number of sources in an
	// interface group's merged filter.
	DefaultSourcesPerInterfaceGroup = 4096
)

// Limits bounds the state a socket or an interface may build up. A zero (or
// negative) field means the default for that field.
type Limits struct {
	GroupsPerSocket          int // (interface, group) memberships per socket
	SourcesPerSocketFilter   int // sources in one socket filter
	SourcesPerInterfaceGroup int // sources in one interface group's merged filter
}

// DefaultLimits returns the documented defaults: 4096 groups per socket,
// 1024 sources per socket filter and 4096 sources per interface group.
func DefaultLimits() Limits {
	return Limits{
		GroupsPerSocket:          DefaultGroupsPerSocket,
		SourcesPerSocketFilter:   DefaultSourcesPerSocketFilter,
		SourcesPerInterfaceGroup: DefaultSourcesPerInterfaceGroup,
	}
}

// WithDefaults returns l with every zero or negative field replaced by its
// default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.GroupsPerSocket <= 0 {
		l.GroupsPerSocket = d.GroupsPerSocket
	}
	if l.SourcesPerSocketFilter <= 0 {
		l.SourcesPerSocketFilter = d.SourcesPerSocketFilter
	}
	if l.SourcesPerInterfaceGroup <= 0 {
		l.SourcesPerInterfaceGroup = d.SourcesPerInterfaceGroup
	}
	return l
}

//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// MDBEntry is one multicast database entry of a bridge, as printed by
// `bridge -j -d mdb show`: what a port's host announced.
type MDBEntry struct {
	Index int    `json:"index"`
	Dev   string `json:"dev"`
	// Port is the bridge port the group was learned on.
	Port string `json:"port"`
	// Grp is the group address ("232.1.1.1", "ff3e::1").
	Grp string `json:"grp"`
	// Src is set on (S,G) entries.
	Src   string `json:"src,omitempty"`
	State string `json:"state"`
	// FilterMode is "include" or "exclude" (IGMPv3/MLDv2 entries; absent
	// for some IPv6 and link-local entries).
	FilterMode string      `json:"filter_mode,omitempty"`
	Protocol   string      `json:"protocol,omitempty"`
	Flags      []string    `json:"flags,omitempty"`
	SourceList []MDBSource `json:"source_list,omitempty"`
	Timer      string      `json:"timer,omitempty"`
	VID        int         `json:"vid,omitempty"`
}

// MDBSource is one source of an entry's source list.
type MDBSource struct {
	Address string `json:"address"`
	Timer   string `json:"timer,omitempty"`
}

// Group parses Grp.
func (e MDBEntry) Group() (netip.Addr, error) {
	a, err := netip.ParseAddr(e.Grp)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netns: mdb group %q: %w", e.Grp, err)
	}
	return a, nil
}

// Sources returns the addresses of the source list.
func (e MDBEntry) Sources() []string {
	out := make([]string, 0, len(e.SourceList))
	for _, s := range e.SourceList {
		out = append(out, s.Address)
	}
	return out
}

// HasSource reports whether addr is in the source list.
func (e MDBEntry) HasSource(addr string) bool {
	for _, s := range e.SourceList {
		if s.Address == addr {
			return true
		}
	}
	return false
}

// ParseMDB parses the output of `bridge -j -d mdb show`: a JSON array of
// objects, each with an "mdb" array (router ports are ignored).
func ParseMDB(data []byte) ([]MDBEntry, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var doc []struct {
		MDB []MDBEntry `json:"mdb"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("netns: parse mdb json: %w", err)
	}
	var out []MDBEntry
	for _, d := range doc {
		out = append(out, d.MDB...)
	}
	return out, nil
}

// MDB returns the multicast database of every bridge in the namespace.
func (ns *NS) MDB() ([]MDBEntry, error) {
	out, err := ns.Run("bridge", "-j", "-d", "mdb", "show")
	if err != nil {
		return nil, fmt.Errorf("mdb show: %w", err)
	}
	return ParseMDB([]byte(out))
}

// MDBPort returns the entries learned on bridge port port. (`bridge mdb
// show ... port X` does not filter in iproute2 6.1, so this filters here.)
func (ns *NS) MDBPort(port string) ([]MDBEntry, error) {
	all, err := ns.MDB()
	if err != nil {
		return nil, err
	}
	return FilterMDB(all, func(e MDBEntry) bool { return e.Port == port }), nil
}

// FilterMDB returns the entries for which keep is true.
func FilterMDB(entries []MDBEntry, keep func(MDBEntry) bool) []MDBEntry {
	var out []MDBEntry
	for _, e := range entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

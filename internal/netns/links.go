//go:build linux

package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BridgeOptions configures a bridge's IGMP/MLD snooping. The zero value is
// a bridge with snooping off, which floods all multicast.
type BridgeOptions struct {
	// Snooping turns on IGMP/MLD snooping (mcast_snooping 1).
	Snooping bool
	// Querier makes the bridge send general queries (mcast_querier 1).
	Querier bool
	// IGMPVersion (2 or 3) and MLDVersion (1 or 2) select the query
	// versions; 0 leaves the kernel default.
	IGMPVersion int
	MLDVersion  int
	// FastTimers sets short query, response and membership intervals so
	// that tests see queries within about 2 s and expiry within seconds.
	FastTimers bool
	// Extra is appended to `ip link set BR type bridge` verbatim.
	Extra []string
}

// FastTimerArgs are the `ip link ... type bridge` arguments FastTimers sets
// (values in centiseconds).
var FastTimerArgs = []string{
	"mcast_query_interval", "500",
	"mcast_query_response_interval", "100",
	"mcast_startup_query_interval", "100",
	"mcast_startup_query_count", "2",
	"mcast_last_member_interval", "100",
	"mcast_last_member_count", "2",
	"mcast_membership_interval", "2600",
	"mcast_querier_interval", "2550",
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// AddBridge creates bridge name in the namespace with the given snooping
// options and brings it up. STP stays off, so ports forward at once.
func (ns *NS) AddBridge(name string, opts BridgeOptions) error {
	if _, err := ns.Run("ip", "link", "add", name, "type", "bridge"); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	args := []string{"ip", "link", "set", name, "type", "bridge",
		"mcast_snooping", boolArg(opts.Snooping), "mcast_querier", boolArg(opts.Querier)}
	if opts.IGMPVersion != 0 {
		args = append(args, "mcast_igmp_version", strconv.Itoa(opts.IGMPVersion))
	}
	if opts.MLDVersion != 0 {
		args = append(args, "mcast_mld_version", strconv.Itoa(opts.MLDVersion))
	}
	if opts.FastTimers {
		args = append(args, FastTimerArgs...)
	}
	args = append(args, opts.Extra...)
	if _, err := ns.Run(args...); err != nil {
		return fmt.Errorf("configure bridge: %w", err)
	}
	return ns.LinkUp(name)
}

// AddVeth creates a veth pair with end aName in namespace a and end bName in
// namespace b. Both ends start down. The pair is created inside a, so the
// host namespace is never involved.
func AddVeth(a *NS, aName string, b *NS, bName string) error {
	if _, err := a.Run("ip", "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", aName, bName, err)
	}
	return nil
}

// AddTap creates a persistent TAP device in the namespace (`ip tuntap add`).
// It shows NO-CARRIER until a program attaches to it.
func (ns *NS) AddTap(name string) error {
	if _, err := ns.Run("ip", "tuntap", "add", "dev", name, "mode", "tap"); err != nil {
		return fmt.Errorf("add tap: %w", err)
	}
	return nil
}

// SetMaster enslaves ifname to bridge br.
func (ns *NS) SetMaster(ifname, br string) error {
	if _, err := ns.Run("ip", "link", "set", ifname, "master", br); err != nil {
		return fmt.Errorf("enslave: %w", err)
	}
	return nil
}

// LinkUp brings ifname up.
func (ns *NS) LinkUp(ifname string) error {
	if _, err := ns.Run("ip", "link", "set", ifname, "up"); err != nil {
		return fmt.Errorf("link up: %w", err)
	}
	return nil
}

// LinkDown takes ifname down.
func (ns *NS) LinkDown(ifname string) error {
	if _, err := ns.Run("ip", "link", "set", ifname, "down"); err != nil {
		return fmt.Errorf("link down: %w", err)
	}
	return nil
}

// AddAddr adds an address in CIDR form (e.g. "192.0.2.1/24") to ifname.
func (ns *NS) AddAddr(ifname, cidr string) error {
	if _, err := ns.Run("ip", "addr", "add", cidr, "dev", ifname); err != nil {
		return fmt.Errorf("add address: %w", err)
	}
	return nil
}

// Sysctl sets a sysctl inside the namespace. key is in dotted form
// ("net.ipv6.conf.all.disable_ipv6"); interface names containing dots are
// not supported.
func (ns *NS) Sysctl(key, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	return ns.Do(func() error {
		if err := os.WriteFile(path, []byte(value+"\n"), 0); err != nil {
			return fmt.Errorf("netns %s: sysctl %s=%s: %w", ns.Name, key, value, err)
		}
		return nil
	})
}

// ReadSysctl reads a sysctl inside the namespace.
func (ns *NS) ReadSysctl(key string) (string, error) {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	var v string
	err := ns.Do(func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("netns %s: read sysctl %s: %w", ns.Name, key, err)
		}
		v = strings.TrimSpace(string(b))
		return nil
	})
	return v, err
}

// DisableIPv6 turns IPv6 off on ifname so the kernel's own stack sends no
// MLD or neighbour discovery there. ifname may be "all" or "default";
// disabling "default" before creating interfaces keeps new ones quiet too.
func (ns *NS) DisableIPv6(ifname string) error {
	return ns.Sysctl("net.ipv6.conf."+ifname+".disable_ipv6", "1")
}

// Quiet disables IPv6 for all current and future interfaces of the
// namespace, so that only traffic the test sends appears on its links.
func (ns *NS) Quiet() error {
	if err := ns.DisableIPv6("default"); err != nil {
		return err
	}
	return ns.DisableIPv6("all")
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/afpacket"
	"github.com/mcstack/mcstack/link/tap"
	"github.com/mcstack/mcstack/link/tun"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/stack"
)

// linkFlags are the flags recv and send share: which interface, through
// which backend, with which addresses and protocol versions.
type linkFlags struct {
	iface     string
	addrs     prefixList
	backend   string
	igmp      int
	mld       int
	filterCap int
	verbose   bool
}

func (lf *linkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&lf.iface, "i", "", "`IFACE`: the Linux interface (afpacket), TAP device (tap) or TUN device (tun) to run the stack on (required)")
	fs.Var(&lf.addrs, "a", "`ADDR/PREFIX` of the stack on the link; repeatable, IPv4 and IPv6 (required for each family used)")
	fs.StringVar(&lf.backend, "backend", "afpacket", "link `backend`: afpacket (an existing interface, needs CAP_NET_RAW), tap (a TAP device) or tun (a TUN device, an L3 link; both need CAP_NET_ADMIN)")
	fs.IntVar(&lf.igmp, "igmp", 0, "force IGMP `version` 1, 2 or 3 (0: automatic, starts at 3)")
	fs.IntVar(&lf.mld, "mld", 0, "force MLD `version` 1 or 2 (0: automatic, starts at 2)")
	fs.IntVar(&lf.filterCap, "filter-capacity", 0, "exact multicast MAC filter `size` before falling back to all-multicast (0: backend default)")
	fs.BoolVar(&lf.verbose, "v", false, "log stack debug events to stderr")
}

func (lf *linkFlags) validate(groups []netip.Addr) error {
	if lf.iface == "" {
		return usageErr("-i IFACE is required")
	}
	switch lf.backend {
	case "afpacket", "tap", "tun":
	default:
		return usageErr("-backend %q: want afpacket, tap or tun", lf.backend)
	}
	if lf.igmp < 0 || lf.igmp > 3 {
		return usageErr("-igmp %d: want 1, 2, 3 or 0 (automatic)", lf.igmp)
	}
	if lf.mld < 0 || lf.mld > 2 {
		return usageErr("-mld %d: want 1, 2 or 0 (automatic)", lf.mld)
	}
	if lf.filterCap < 0 {
		return usageErr("-filter-capacity must not be negative")
	}
	for _, g := range groups {
		if !lf.hasFamily(g) {
			return usageErr("group %s needs an %s interface address: add -a ADDR/PREFIX", g, family(g))
		}
	}
	return nil
}

func (lf *linkFlags) hasFamily(a netip.Addr) bool {
	for _, p := range lf.addrs {
		if p.Addr().Is4() == a.Is4() {
			return true
		}
	}
	return false
}

// host is one stack on one real interface.
type host struct {
	st  *stack.Stack
	ifc *stack.Interface
}

func (lf *linkFlags) logger(w io.Writer) *slog.Logger {
	lvl := slog.LevelWarn
	if lf.verbose {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// openEndpoint opens the backend; failures are interface problems (exit 3).
func (lf *linkFlags) openEndpoint(log *slog.Logger) (link.Endpoint, error) {
	var (
		ep  link.Endpoint
		err error
	)
	switch lf.backend {
	case "tap":
		var t *tap.Endpoint
		t, err = tap.Open(lf.iface, tap.Options{FilterCapacity: lf.filterCap, Logger: log})
		ep = t
	case "tun":
		var t *tun.Endpoint
		t, err = tun.Open(lf.iface, tun.Options{FilterCapacity: lf.filterCap, Logger: log})
		ep = t
	default:
		var a *afpacket.Endpoint
		a, err = afpacket.Open(lf.iface, afpacket.Options{FilterCapacity: lf.filterCap, Logger: log})
		ep = a
	}
	if err != nil {
		// The backend's error names itself and the interface.
		return nil, ifaceErr(err)
	}
	return ep, nil
}

// openLink opens the endpoint for lf. It is a variable so that tests can
// run recv and send over an in-memory LAN (link/memlan) instead of a real
// interface.
var openLink = (*linkFlags).openEndpoint

func (lf *linkFlags) open(log *slog.Logger) (*host, error) {
	ep, err := openLink(lf, log)
	if err != nil {
		return nil, err
	}
	st := stack.New(stack.Config{
		Logger: log,
		IGMP:   proto.Config{ForceVersion: lf.igmp},
		MLD:    proto.Config{ForceVersion: lf.mld},
	})
	ifc, err := st.AddInterface(ep, stack.InterfaceConfig{Name: lf.iface, Addrs: lf.addrs})
	if err != nil {
		st.Close()
		ep.Close()
		return nil, fmt.Errorf("add interface %s: %w", lf.iface, err)
	}
	return &host{st: st, ifc: ifc}, nil
}

// close sends the final reports (the stack does on RemoveInterface/Close)
// and releases the link.
func (h *host) close() error {
	return errors.Join(h.st.Close())
}

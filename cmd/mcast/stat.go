package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
)

const statUsage = `
usage: mcast stat [-admin SOCKET] [-i IFACE] [-g GROUP]... [-json | -metrics]
                  [-watch INTERVAL]

Connects to the admin socket of a running 'mcast recv' and prints, per
interface (like FreeBSD's ifmcstat): the kernel interface index, link state
and addresses; per IGMP/MLD engine the protocol version and compatibility
mode, robustness and query intervals, the querier last heard (address,
version, time since its last query, its Max Resp Time) and the Older
Version Querier Present timers, pending reports and counters; every group
with its filter mode, sources, socket references, pending query response
timer and retransmissions still to send (a group whose leave is being
repeated shows as "leaving"); the driver multicast filter (the exact MAC
list, or all-multicast), the driver calls and errors; and the receive
counters. With -watch, each report after the first also gives the rates
since the previous one.

-i shows only that interface, -g only those groups (repeatable).

Without -admin, the one live socket matching /run/mcast-*.sock or
$TMPDIR/mcast-*.sock is used; sockets left behind by a process that is gone
are ignored.

-json prints the JSON of GET /status (filtered by -i and -g); -metrics the
Prometheus text of GET /metrics (unfiltered).

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 admin socket not found
or not reachable.
`

func runStat(ctx context.Context, e *env, args []string) error {
	var (
		path    string
		asJSON  bool
		metrics bool
		watch   time.Duration
		iface   string
		groups  addrList
	)
	fs := newFlagSet("stat")
	fs.StringVar(&path, "admin", "", "admin unix `socket` of the running 'mcast recv'")
	fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	fs.BoolVar(&metrics, "metrics", false, "print the Prometheus metrics")
	fs.DurationVar(&watch, "watch", 0, "repeat every `interval` until interrupted (0: once)")
	fs.StringVar(&iface, "i", "", "show only interface `IFACE`")
	fs.Var(&groups, "g", "show only `GROUP`; repeatable")
	if err := parse(e, fs, statUsage, args); err != nil {
		return err
	}
	if asJSON && metrics {
		return usageErr("-json and -metrics are exclusive")
	}
	if watch < 0 {
		return usageErr("-watch must not be negative")
	}
	if metrics && (iface != "" || len(groups) > 0) {
		return usageErr("-i and -g filter the text and -json output, not -metrics")
	}
	for _, g := range groups {
		if !g.IsMulticast() {
			return usageErr("-g %s is not a multicast group", g)
		}
	}
	if path == "" {
		live, stale := admin.FindLiveSockets()
		switch len(live) {
		case 0:
			msg := fmt.Sprintf("no admin socket found (%s); is 'mcast recv' running? give -admin SOCKET",
				strings.Join(admin.SocketGlobs(), ", "))
			if len(stale) > 0 {
				msg = fmt.Sprintf("no live admin socket found (ignored %s, left by processes that are gone); is 'mcast recv' running?",
					strings.Join(stale, " "))
			}
			return ifaceErr(errors.New(msg))
		case 1:
			path = live[0]
		default:
			return usageErr("several admin sockets found, pick one with -admin: %s", strings.Join(live, " "))
		}
	}
	filter := statFilter{iface: iface, groups: groups}
	var prev *admin.Status
	c := admin.NewClient(path)
	defer c.Close()
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		switch {
		case asJSON:
			var st admin.Status
			if st, err = c.Status(rctx); err == nil {
				if err = filter.apply(&st); err == nil {
					enc := json.NewEncoder(e.stdout)
					enc.SetIndent("", "  ")
					err = enc.Encode(st)
				}
			}
		case metrics:
			var b []byte
			if b, err = c.Metrics(rctx); err == nil {
				_, err = e.stdout.Write(b)
			}
		default:
			var st admin.Status
			if st, err = c.Status(rctx); err == nil {
				if err = filter.apply(&st); err == nil {
					if watch > 0 && e.tty {
						fmt.Fprint(e.stdout, "\x1b[H\x1b[2J")
					}
					formatStatus(e.stdout, st)
					if prev != nil {
						formatRates(e.stdout, *prev, st)
					}
					prev = &st
				}
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errNoMatch) {
				return err
			}
			return ifaceErr(err)
		}
		if watch == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watch):
		}
		if !e.tty {
			fmt.Fprintln(e.stdout)
		}
	}
}

// errNoMatch: -i names no interface of the running program.
var errNoMatch = errors.New("no such interface")

// statFilter keeps only the interface and groups asked for.
type statFilter struct {
	iface  string
	groups []netip.Addr
}

func (f statFilter) apply(st *admin.Status) error {
	if f.iface != "" {
		var names []string
		kept := st.Interfaces[:0]
		for _, ifc := range st.Interfaces {
			names = append(names, ifc.Name)
			if ifc.Name == f.iface {
				kept = append(kept, ifc)
			}
		}
		if len(kept) == 0 {
			return fmt.Errorf("-i %s: %w in %s (it has %s)", f.iface, errNoMatch, st.Program, strings.Join(names, ", "))
		}
		st.Interfaces = kept
	}
	if len(f.groups) == 0 {
		return nil
	}
	want := make(map[netip.Addr]bool, len(f.groups))
	for _, g := range f.groups {
		want[g] = true
	}
	for i := range st.Interfaces {
		for j := range st.Interfaces[i].Families {
			fam := &st.Interfaces[i].Families[j]
			kept := fam.Groups[:0]
			for _, g := range fam.Groups {
				if a, err := netip.ParseAddr(g.Group); err == nil && want[a] {
					kept = append(kept, g)
				}
			}
			fam.Groups = kept
		}
	}
	return nil
}

// formatRates prints, per interface, the rates of the main counters
// between two snapshots.
func formatRates(w io.Writer, prev, cur admin.Status) {
	dt := cur.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		return
	}
	rate := func(a, b uint64) float64 {
		if b < a {
			return 0 // the program restarted
		}
		return float64(b-a) / dt
	}
	before := make(map[string]admin.Interface, len(prev.Interfaces))
	for _, ifc := range prev.Interfaces {
		before[ifc.Name] = ifc
	}
	fmt.Fprintf(w, "rates over the last %.1fs: program %.0f datagrams/s\n", dt, rate(prev.App.DatagramsReceived, cur.App.DatagramsReceived))
	for _, ifc := range cur.Interfaces {
		p, ok := before[ifc.Name]
		if !ok {
			continue
		}
		a, b := p.Counters, ifc.Counters
		fmt.Fprintf(w, "\t%s: frames %.0f/s datagrams %.0f/s dropped %.0f/s driver calls %.1f/s",
			ifc.Name, rate(a.FramesReceived, b.FramesReceived), rate(a.DatagramsReceived, b.DatagramsReceived),
			rate(a.DatagramsDropped, b.DatagramsDropped), rate(p.Driver.Calls, ifc.Driver.Calls))
		for k := range min(len(p.Families), len(ifc.Families)) {
			pc, cc := p.Families[k].Protocol.Counters, ifc.Families[k].Protocol.Counters
			fmt.Fprintf(w, " %s queries %.1f/s reports %.1f/s", ifc.Families[k].Protocol.Name,
				rate(pc.QueriesReceived, cc.QueriesReceived), rate(pc.ReportsSent, cc.ReportsSent))
		}
		fmt.Fprintln(w)
	}
}

// formatStatus prints st in the ifmcstat-like text layout.
func formatStatus(w io.Writer, st admin.Status) {
	fmt.Fprintf(w, "%s (pid %d) at %s: %d datagrams, %d bytes received by the program\n",
		st.Program, st.PID, st.Time.Local().Format("15:04:05"), st.App.DatagramsReceived, st.App.BytesReceived)
	for _, ifc := range st.Interfaces {
		fmt.Fprintf(w, "%s: index %d", ifc.Name, ifc.Index)
		if ifc.Link != "" {
			fmt.Fprintf(w, " link %s", ifc.Link)
		}
		if ifc.MAC != "" {
			fmt.Fprintf(w, " ether %s", ifc.MAC)
		}
		if ifc.MTU > 0 {
			fmt.Fprintf(w, " mtu %d", ifc.MTU)
		}
		fmt.Fprintln(w)
		for _, a := range ifc.Addrs {
			kw := "inet6"
			if !strings.Contains(a, ":") {
				kw = "inet"
			}
			fmt.Fprintf(w, "\t%s %s\n", kw, a)
		}
		for _, fam := range ifc.Families {
			formatFamily(w, st.Time, fam)
		}
		d := ifc.Driver
		if d.AllMulticast {
			fmt.Fprintf(w, "\tdriver filter: all-multicast (exact table overflowed)\n")
		} else if len(d.Exact) == 0 {
			fmt.Fprintf(w, "\tdriver filter: exact, empty\n")
		} else {
			fmt.Fprintf(w, "\tdriver filter: exact, %d: %s\n", len(d.Exact), strings.Join(d.Exact, " "))
		}
		fmt.Fprintf(w, "\t\tcalls %d", d.Calls)
		if d.Requests > 0 {
			coalesced := uint64(0)
			if d.Requests > d.Calls {
				coalesced = d.Requests - d.Calls
			}
			fmt.Fprintf(w, " requests %d (coalesced %d)", d.Requests, coalesced)
		}
		fmt.Fprintf(w, " errors %d", d.Errors)
		if d.Pending {
			fmt.Fprintf(w, " (update pending)")
		}
		if d.LastError != "" {
			fmt.Fprintf(w, " last error: %s", d.LastError)
		}
		fmt.Fprintln(w)
		c := ifc.Counters
		fmt.Fprintf(w, "\tcounters: frames %d datagrams received %d dropped %d", c.FramesReceived, c.DatagramsReceived, c.DatagramsDropped)
		keys := make([]string, 0, len(c.Other))
		for k := range c.Other {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, " %s %d", k, c.Other[k])
		}
		fmt.Fprintln(w)
	}
}

func formatFamily(w io.Writer, now time.Time, fam admin.Family) {
	p := fam.Protocol
	mode := "automatic"
	if p.Forced != 0 {
		mode = fmt.Sprintf("forced v%d", p.Forced)
	}
	if p.Version == 0 {
		// An engine that reports no version does nothing (a no-op
		// stand-in): say so rather than print made-up parameters.
		fmt.Fprintf(w, "\t%s v? (engine reports no protocol version: no reports are sent)", p.Name)
	} else {
		fmt.Fprintf(w, "\t%sv%d (%s) rv %d qi %gs qri %gs", p.Name, p.Version, mode, p.Robustness, p.QueryIntervalSec, p.QueryResponseIntervalSec)
	}
	if len(p.OlderQuerierUntil) > 0 {
		vs := make([]string, 0, len(p.OlderQuerierUntil))
		for v := range p.OlderQuerierUntil {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		for _, v := range vs {
			left := p.OlderQuerierUntil[v].Sub(now).Round(100 * time.Millisecond)
			fmt.Fprintf(w, " [v%s querier present, %s left]", v, left)
		}
	}
	fmt.Fprintln(w)
	if q := p.Querier; q == nil {
		fmt.Fprintf(w, "\t\tquerier: none heard\n")
	} else {
		fmt.Fprintf(w, "\t\tquerier %s %sv%d, last query %s ago, max resp %gs\n", q.Addr, p.Name, q.Version,
			now.Sub(q.LastQuery).Round(100*time.Millisecond), q.MaxRespSec)
	}
	c := p.Counters
	dropped := c.DroppedNoRouterAlert + c.DroppedBadHopLimit + c.DroppedBadSource + c.DroppedBadChecksum + c.DroppedMalformed + c.DroppedOther
	fmt.Fprintf(w, "\t\tpending state changes %d query responses %d\n", p.PendingStateChanges, p.PendingQueryResponses)
	fmt.Fprintf(w, "\t\tqueries %d reports sent %d leaves sent %d reports heard %d dropped %d\n",
		c.QueriesReceived, c.ReportsSent, c.LeavesSent, c.ReportsReceived, dropped)
	if len(fam.Groups) == 0 {
		fmt.Fprintf(w, "\t\tno groups\n")
	}
	for _, g := range fam.Groups {
		fmt.Fprintf(w, "\t\tgroup %s mode %s refs %d", g.Group, g.Mode, g.Refs)
		if g.MAC != "" {
			fmt.Fprintf(w, " mcast-macaddr %s", g.MAC)
		}
		if g.State != "" {
			fmt.Fprintf(w, " state %s", g.State)
		}
		if g.ResponseAt != nil {
			fmt.Fprintf(w, " response in %s", g.ResponseAt.Sub(now).Round(time.Millisecond))
		}
		if g.Retransmissions > 0 {
			fmt.Fprintf(w, " retransmissions %d", g.Retransmissions)
		}
		if g.LastReporter {
			fmt.Fprintf(w, " last-reporter")
		}
		fmt.Fprintln(w)
		if g.Mode == "exclude" && len(g.Sources) == 0 {
			fmt.Fprintf(w, "\t\t\t(any source)\n")
		}
		for _, s := range g.Sources {
			fmt.Fprintf(w, "\t\t\tsource %s\n", s)
		}
	}
}

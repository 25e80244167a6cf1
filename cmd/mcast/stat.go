package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
)

const statUsage = `
usage: mcast stat [-admin SOCKET] [-json | -metrics] [-watch INTERVAL]

Connects to the admin socket of a running 'mcast recv' and prints, per
interface (like FreeBSD's ifmcstat): the addresses; per IGMP/MLD engine the
protocol version and compatibility mode, robustness and query intervals,
pending reports and counters; every group with its filter mode, sources and
socket references; the driver multicast filter (the exact MAC list, or
all-multicast), the driver calls and errors; and the receive counters.

Without -admin, the one socket matching /run/mcast-*.sock or
$TMPDIR/mcast-*.sock is used.

-json prints the raw JSON of GET /status; -metrics the Prometheus text of
GET /metrics.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 admin socket not found
or not reachable.
`

func runStat(ctx context.Context, e *env, args []string) error {
	var (
		path    string
		asJSON  bool
		metrics bool
		watch   time.Duration
	)
	fs := newFlagSet("stat")
	fs.StringVar(&path, "admin", "", "admin unix `socket` of the running 'mcast recv'")
	fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	fs.BoolVar(&metrics, "metrics", false, "print the Prometheus metrics")
	fs.DurationVar(&watch, "watch", 0, "repeat every `interval` until interrupted (0: once)")
	if err := parse(e, fs, statUsage, args); err != nil {
		return err
	}
	if asJSON && metrics {
		return usageErr("-json and -metrics are exclusive")
	}
	if watch < 0 {
		return usageErr("-watch must not be negative")
	}
	if path == "" {
		found := admin.FindSockets()
		switch len(found) {
		case 0:
			return ifaceErr(fmt.Errorf("no admin socket found (%s); is 'mcast recv' running? give -admin SOCKET",
				strings.Join(admin.SocketGlobs(), ", ")))
		case 1:
			path = found[0]
		default:
			return usageErr("several admin sockets found, pick one with -admin: %s", strings.Join(found, " "))
		}
	}
	c := admin.NewClient(path)
	defer c.Close()
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		switch {
		case asJSON:
			var b []byte
			if b, err = c.StatusJSON(rctx); err == nil {
				_, err = e.stdout.Write(b)
			}
		case metrics:
			var b []byte
			if b, err = c.Metrics(rctx); err == nil {
				_, err = e.stdout.Write(b)
			}
		default:
			var st admin.Status
			if st, err = c.Status(rctx); err == nil {
				if watch > 0 && e.tty {
					fmt.Fprint(e.stdout, "\x1b[H\x1b[2J")
				}
				formatStatus(e.stdout, st)
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
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

// formatStatus prints st in the ifmcstat-like text layout.
func formatStatus(w io.Writer, st admin.Status) {
	fmt.Fprintf(w, "%s (pid %d) at %s: %d datagrams, %d bytes received by the program\n",
		st.Program, st.PID, st.Time.Local().Format("15:04:05"), st.App.DatagramsReceived, st.App.BytesReceived)
	for _, ifc := range st.Interfaces {
		fmt.Fprintf(w, "%s: index %d", ifc.Name, ifc.Index)
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
		fmt.Fprintln(w)
		if g.Mode == "exclude" && len(g.Sources) == 0 {
			fmt.Fprintf(w, "\t\t\t(any source)\n")
		}
		for _, s := range g.Sources {
			fmt.Fprintf(w, "\t\t\tsource %s\n", s)
		}
	}
}

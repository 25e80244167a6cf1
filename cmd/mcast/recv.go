package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/internal/admin"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/stack"
)

const recvUsage = `
usage: mcast recv -i IFACE -a ADDR/PREFIX -g GROUP [-s SOURCE]... [-exclude] [-p PORT]
                  [-backend afpacket|tap] [-igmp 1|2|3] [-mld 1|2] [-admin SOCKET]

Runs the stack on IFACE, joins every -g GROUP on UDP port -p and prints one
line per received datagram:

    TIME SOURCE GROUP:PORT LENGTH
    2026-11-25T01:02:03.456789Z 192.0.2.2 232.1.1.1:5001 100

With no -s the joins are any-source (EXCLUDE {}). With -s the joins are
source-specific, INCLUDE {sources}; with -exclude they are EXCLUDE {sources}.
-s applies to every group of its address family. Several -g and -a are
allowed; IPv4 and IPv6 groups may be mixed.

Keep the kernel's own stack off the interface (no kernel IPv4 address, IPv6
disabled), or its replies and reports will mix with the stack's.

The stack's state is served on a unix socket (default /run/mcast-PID.sock;
-admin off disables it); 'mcast stat' reads it. Ctrl-C or SIGTERM leaves
the groups (final reports are sent) and exits 0.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 interface, permission
or admin-socket problem.
`

type recvFlags struct {
	link     linkFlags
	groups   addrList
	sources  addrList
	exclude  bool
	port     uint
	admin    string
	count    uint64
	duration time.Duration
}

func runRecv(ctx context.Context, e *env, args []string) error {
	var f recvFlags
	fs := newFlagSet("recv")
	f.link.register(fs)
	fs.Var(&f.groups, "g", "multicast `GROUP` to join; repeatable (required)")
	fs.Var(&f.sources, "s", "`SOURCE` to include (or exclude with -exclude); repeatable, applies to every group of its family")
	fs.BoolVar(&f.exclude, "exclude", false, "exclude the -s sources (EXCLUDE mode) instead of including them")
	fs.UintVar(&f.port, "p", 5001, "UDP `port` to receive on")
	fs.StringVar(&f.admin, "admin", "", "admin unix `socket` path (default /run/mcast-PID.sock, or $TMPDIR when /run is not writable; \"off\" disables)")
	fs.Uint64Var(&f.count, "count", 0, "exit after `N` datagrams (0: run until interrupted)")
	fs.DurationVar(&f.duration, "duration", 0, "exit after this `time` (0: run until interrupted)")
	if err := parse(e, fs, recvUsage, args); err != nil {
		return err
	}
	plan, err := f.plan()
	if err != nil {
		return err
	}
	if err := f.link.validate(f.groups); err != nil {
		return err
	}
	log := f.link.logger(e.stderr)
	h, err := f.link.open(log)
	if err != nil {
		return err
	}
	r := &receiver{e: e, host: h}
	err = r.run(ctx, &f, plan)
	if cerr := h.close(); cerr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", cerr)
	}
	fmt.Fprintf(e.stderr, "mcast recv: %d datagrams, %d bytes received\n", r.datagrams.Load(), r.bytes.Load())
	return err
}

// joinPlan is the filter to install for one group.
type joinPlan struct {
	group   netip.Addr
	mode    membership.Mode
	sources []netip.Addr
}

func (f *recvFlags) plan() ([]joinPlan, error) {
	if len(f.groups) == 0 {
		return nil, usageErr("at least one -g GROUP is required")
	}
	if f.port == 0 || f.port > 65535 {
		return nil, usageErr("-p %d: want a port in 1..65535", f.port)
	}
	if f.exclude && len(f.sources) == 0 {
		return nil, usageErr("-exclude needs at least one -s SOURCE")
	}
	for _, s := range f.sources {
		if !s.IsValid() || s.IsMulticast() || s.IsUnspecified() {
			return nil, usageErr("-s %s is not a unicast source address", s)
		}
	}
	seen := map[netip.Addr]bool{}
	var plans []joinPlan
	for _, g := range f.groups {
		if !g.IsMulticast() {
			return nil, usageErr("-g %s is not a multicast group", g)
		}
		if seen[g] {
			return nil, usageErr("-g %s given twice", g)
		}
		seen[g] = true
		p := joinPlan{group: g, mode: membership.Exclude}
		for _, s := range f.sources {
			if s.Is4() == g.Is4() {
				p.sources = append(p.sources, s)
			}
		}
		if len(f.sources) > 0 && !f.exclude {
			if len(p.sources) == 0 {
				return nil, usageErr("group %s: no -s source of its family (INCLUDE {} would join nothing)", g)
			}
			p.mode = membership.Include
		}
		plans = append(plans, p)
	}
	return plans, nil
}

type receiver struct {
	e     *env
	host  *host
	outMu sync.Mutex // serializes output lines from the read loops; held only to print one

	datagrams atomic.Uint64
	bytes     atomic.Uint64
}

func (r *receiver) run(ctx context.Context, f *recvFlags, plans []joinPlan) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, f.duration)
		defer c2()
	}
	conns := map[bool]*stack.Conn{} // by Is4
	defer func() {
		// Closing a socket leaves its groups at once; the stack sends
		// the reports from its interface worker.
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, p := range plans {
		c := conns[p.group.Is4()]
		if c == nil {
			netw, any := "udp6", netip.IPv6Unspecified()
			if p.group.Is4() {
				netw, any = "udp4", netip.IPv4Unspecified()
			}
			var err error
			c, err = r.host.st.ListenUDP(netw, netip.AddrPortFrom(any, uint16(f.port)))
			if err != nil {
				return fmt.Errorf("listen %s port %d: %w", netw, f.port, err)
			}
			conns[p.group.Is4()] = c
		}
		if err := join(c, r.host.ifc, p); err != nil {
			return err
		}
	}

	var srv *admin.Server
	if f.admin != "off" {
		path := f.admin
		if path == "" {
			path = admin.DefaultSocketPath(os.Getpid())
		}
		var err error
		srv, err = admin.Listen(path, func() admin.Status {
			st := statusOf("mcast recv", r.host.ifc)
			st.App.DatagramsReceived = r.datagrams.Load()
			st.App.BytesReceived = r.bytes.Load()
			return st
		})
		if err != nil {
			return ifaceErr(err)
		}
		defer srv.Close()
		fmt.Fprintf(r.e.stderr, "mcast recv: admin socket %s\n", path)
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(conns))
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.readLoop(c, f.port, f.count, cancel); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	<-ctx.Done()
	for _, c := range conns {
		c.Close() // unblocks ReadMsg
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func join(c *stack.Conn, ifc *stack.Interface, p joinPlan) error {
	var err error
	switch {
	case p.mode == membership.Include:
		for _, s := range p.sources {
			if err = c.JoinSourceSpecificGroup(ifc, p.group, s); err != nil {
				return fmt.Errorf("join %s source %s: %w", p.group, s, err)
			}
		}
		return nil
	case len(p.sources) == 0:
		err = c.JoinGroup(ifc, p.group)
	default:
		if err = c.JoinGroup(ifc, p.group); err == nil {
			err = c.SetSourceFilter(ifc, p.group, membership.Exclude, p.sources)
		}
	}
	if err != nil {
		return fmt.Errorf("join %s (%s %v): %w", p.group, p.mode, p.sources, err)
	}
	return nil
}

func (r *receiver) readLoop(c *stack.Conn, port uint, limit uint64, done func()) error {
	buf := make([]byte, 65536)
	for {
		n, cm, err := c.ReadMsg(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		now := time.Now()
		r.outMu.Lock()
		fmt.Fprintf(r.e.stdout, "%s %s %s %d\n", now.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
			cm.Src.Addr(), netip.AddrPortFrom(cm.Dst, uint16(port)), n)
		r.outMu.Unlock()
		r.bytes.Add(uint64(n))
		if got := r.datagrams.Add(1); limit > 0 && got >= limit {
			done()
			return nil
		}
	}
}

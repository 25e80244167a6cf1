package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/mcstack/mcstack/stack"
)

const sendUsage = `
usage: mcast send -i IFACE -a ADDR/PREFIX -g GROUP -p PORT [-count N] [-rate PPS]
                  [-ttl N] [-size N] [-backend afpacket|tap] [-igmp 1|2|3] [-mld 1|2]

Runs the stack on IFACE and sends UDP datagrams to every -g GROUP:PORT,
-rate datagrams per second per group, until -count datagrams per group were
sent or until Ctrl-C/SIGTERM. The source address is the interface's -a
address of the group's family. Several -g are allowed, IPv4 and IPv6.

Each payload starts with a 20-byte header: "mcst", a 64-bit sequence number
and the send time in Unix nanoseconds (big endian), padded with zeros to
-size bytes; 'mcast demo' uses the same format to measure latency.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 interface or permission
problem.
`

// Payload header shared by send and the demo.
const (
	payloadMagic  = "mcst"
	payloadHeader = 20
)

func putPayload(b []byte, seq uint64, t time.Time) {
	copy(b, payloadMagic)
	binary.BigEndian.PutUint64(b[4:], seq)
	binary.BigEndian.PutUint64(b[12:], uint64(t.UnixNano()))
}

func parsePayload(b []byte) (seq uint64, t time.Time, ok bool) {
	if len(b) < payloadHeader || string(b[:4]) != payloadMagic {
		return 0, time.Time{}, false
	}
	return binary.BigEndian.Uint64(b[4:]), time.Unix(0, int64(binary.BigEndian.Uint64(b[12:]))), true
}

type sendFlags struct {
	link   linkFlags
	groups addrList
	port   uint
	count  uint64
	rate   float64
	ttl    int
	size   int
	loop   bool
}

func runSend(ctx context.Context, e *env, args []string) error {
	var f sendFlags
	fs := newFlagSet("send")
	f.link.register(fs)
	fs.Var(&f.groups, "g", "multicast `GROUP` to send to; repeatable (required)")
	fs.UintVar(&f.port, "p", 5001, "destination UDP `port`")
	fs.Uint64Var(&f.count, "count", 0, "datagrams to send per group, then exit (0: until interrupted)")
	fs.Float64Var(&f.rate, "rate", 10, "datagrams per second per group")
	fs.IntVar(&f.ttl, "ttl", 1, "IPv4 TTL / IPv6 hop limit of the datagrams (1..255)")
	fs.IntVar(&f.size, "size", 100, fmt.Sprintf("UDP payload `bytes` (%d..65507)", payloadHeader))
	fs.BoolVar(&f.loop, "loopback", false, "also deliver to the stack's own sockets (multicast loopback)")
	if err := parse(e, fs, sendUsage, args); err != nil {
		return err
	}
	if len(f.groups) == 0 {
		return usageErr("at least one -g GROUP is required")
	}
	for _, g := range f.groups {
		if !g.IsMulticast() {
			return usageErr("-g %s is not a multicast group", g)
		}
	}
	if f.port == 0 || f.port > 65535 {
		return usageErr("-p %d: want a port in 1..65535", f.port)
	}
	if !(f.rate > 0) || f.rate > 1e6 {
		return usageErr("-rate %v: want 0 < rate <= 1000000", f.rate)
	}
	if f.ttl < 1 || f.ttl > 255 {
		return usageErr("-ttl %d: want 1..255", f.ttl)
	}
	if f.size < payloadHeader || f.size > 65507 {
		return usageErr("-size %d: want %d..65507", f.size, payloadHeader)
	}
	if err := f.link.validate(f.groups); err != nil {
		return err
	}
	h, err := f.link.open(f.link.logger(e.stderr))
	if err != nil {
		return err
	}
	sent, err := f.send(ctx, h)
	if cerr := h.close(); cerr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", cerr)
	}
	fmt.Fprintf(e.stderr, "mcast send: %d datagrams sent\n", sent)
	return err
}

func (f *sendFlags) send(ctx context.Context, h *host) (uint64, error) {
	conns := map[bool]*stack.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, g := range f.groups {
		if conns[g.Is4()] != nil {
			continue
		}
		netw, any := "udp6", netip.IPv6Unspecified()
		if g.Is4() {
			netw, any = "udp4", netip.IPv4Unspecified()
		}
		c, err := h.st.ListenUDP(netw, netip.AddrPortFrom(any, 0))
		if err != nil {
			return 0, fmt.Errorf("open %s socket: %w", netw, err)
		}
		conns[g.Is4()] = c
		if err := c.SetMulticastInterface(h.ifc); err != nil {
			return 0, fmt.Errorf("set multicast interface: %w", err)
		}
		if err := c.SetMulticastTTL(f.ttl); err != nil {
			return 0, fmt.Errorf("set multicast TTL: %w", err)
		}
		if err := c.SetMulticastLoopback(f.loop); err != nil {
			return 0, fmt.Errorf("set multicast loopback: %w", err)
		}
	}
	buf := make([]byte, f.size)
	interval := time.Duration(float64(time.Second) / f.rate)
	start := time.Now()
	var sent uint64
	timer := time.NewTimer(0)
	defer timer.Stop()
	for seq := uint64(0); f.count == 0 || seq < f.count; seq++ {
		// Pace against the start time so that rounding does not drift.
		select {
		case <-ctx.Done():
			return sent, nil
		case <-timer.C:
		}
		for _, g := range f.groups {
			putPayload(buf, seq, time.Now())
			if _, err := conns[g.Is4()].WriteToAddrPort(buf, netip.AddrPortFrom(g, uint16(f.port))); err != nil {
				return sent, fmt.Errorf("send to %s: %w", g, err)
			}
			sent++
		}
		timer.Reset(time.Until(start.Add(time.Duration(seq+1) * interval)))
	}
	return sent, nil
}

// Package stack is mcstack's host stack: UDP sockets with the RFC 3678
// multicast API, per-interface group membership with merged source filters,
// the receive demultiplexer, and the deferred work that programs link-layer
// filters and drives the IGMP/MLD engines.
//
// # The design law
//
// No control-plane work (join, leave, close, report timers, driver filter
// updates) can block or slow the data path. This package keeps that law with
// three rules:
//
//   - The receive path (the interface's link.Handler) takes no lock that
//     anyone holds while blocking. What it reads is immutable and published
//     through atomic pointers: the (group, port) demultiplexer and the port
//     table (package internal/rcu: lock-free, allocation-free lookups;
//     an update copies only the entry it changes), each socket's filter,
//     the interface's addresses. Datagrams go to sockets through bounded
//     lock-free queues (package internal/mpmc): a full queue drops and
//     counts. A datagram accepted by several sockets is copied once and
//     shared (it is immutable once queued; each reader copies it out).
//     Readers are woken once per batch of frames the link hands over, not
//     once per datagram. A rejected frame allocates nothing and is counted
//     by reason.
//   - Control-plane operations serialize on one mutex, Stack.mu, which is
//     never held across a call on an endpoint, a wire transmission, a wait,
//     a sleep or a log call (TestLockRules checks it). Under it they only
//     compute: the socket filter (membership.SocketFilters), the
//     interface's merged state (membership.Table), the needed MAC set, the
//     pending deltas, and the one demultiplexer entry that changed. Each
//     operation's cost is stated in its documentation; none is more than
//     O(what changed), and closing a socket joined to thousands of groups
//     releases Stack.mu every 64 groups.
//   - Slow work is done by two workers per interface, one mechanism for
//     both (worker): the filter worker programs the driver's multicast
//     filter with the latest needed set; the protocol worker owns the IGMP
//     and MLD engines, hands them coalesced state deltas, received
//     messages and timer ticks, and transmits their reports with no lock
//     held. A worker has no goroutine while idle (a pass runs on a timer's
//     goroutine), so thousands of interfaces cost no goroutines. Every
//     wake-up — a membership change, a received query or report, an engine
//     timer, a link-state change — opens a coalescing window of
//     Config.CoalesceDelay on Config.Clock; and a change is not acted on
//     until it is CoalesceDelay old, so a leave followed within
//     CoalesceDelay by a re-join of the group sends no leave and
//     reprograms nothing, whatever woke the worker in between. A burst of
//     changes becomes one driver update and one set of deltas. Sync cuts
//     the wait short. Driver errors are retried with backoff, logged,
//     counted and reported by Interface.Status and Interface.Sync; a link
//     whose transmit queue stays full (link.ErrWouldBlock) gets its reports
//     retried with backoff, never blocking a worker.
//
// Closing a socket returns once its memberships are released in memory
// (microseconds per group, no I/O): it stops receiving at once; the
// resulting driver update and reports follow on the workers. Removing an
// interface or closing the stack drains that work: the final reports are
// sent and retransmitted [Robustness Variable] times (which takes up to
// (Robustness-1) × Unsolicited Report Interval: 1 s with the defaults), the
// driver filter is cleared, the endpoint closed, and no goroutine is left.
// Stack.Close, Conn.Close and RemoveInterface are barriers: a concurrent or
// repeated call returns only when the work is done.
//
// This goes one step beyond the FreeBSD change that motivated mcstack (the
// README's Design section): there, socket teardown was deferred to a
// task, but each membership still cost one driver update; here a burst of N
// closes costs O(1) driver updates.
//
// # Links that come and go
//
// An endpoint reports its link's state (link.Handler.HandleLinkState).
// When the carrier comes back after being down — also for an interface
// added while its link was down — the engines re-announce every group, as
// the kernel does on NETDEV_UP; while it is down the memberships are kept.
// When the interface disappears, Interface.Done is closed, Interface.Sync
// returns an error wrapping ErrLinkGone, Interface.Status shows it and a
// warning is logged; the program should then remove the interface.
//
// # Coming from golang.org/x/net/ipv4
//
// A *Conn is both the net.PacketConn and the x/net PacketConn: the
// multicast and control-message methods are on the socket itself.
//
//	x/net/ipv4 (and ipv6)                           package stack
//	net.ListenPacket("udp4", "0.0.0.0:5000")        s.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
//	p := ipv4.NewPacketConn(c)                      (not needed: c is the PacketConn)
//	p.JoinGroup(ifi, &net.UDPAddr{IP: g})           c.JoinGroup(ifc, g)
//	p.JoinSourceSpecificGroup(ifi, g, s)            c.JoinSourceSpecificGroup(ifc, g, s)
//	p.ExcludeSourceSpecificGroup(ifi, g, s)         c.ExcludeSourceSpecificGroup(ifc, g, s) (or BlockSource)
//	p.SetControlMessage(ipv4.FlagDst|..., true)     (always on: ReadMsg returns a ControlMessage)
//	p.ReadFrom(b) → n, cm, src                      c.ReadMsg(b) → n, cm (cm.Src, cm.Dst, cm.IfIndex, cm.TTL)
//	p.ReadBatch(ms, 0) (recvmmsg)                   c.ReadBatch(ms) ([]stack.Message: Buf, N, Truncated, ControlMessage)
//	net.InterfaceByIndex(cm.IfIndex)                s.InterfaceByIndex(cm.IfIndex) (a kernel backend's index is the kernel's ifindex, so net.InterfaceByIndex works too)
//	p.SetMulticastInterface(ifi)                    c.SetMulticastInterface(ifc)
//	p.SetMulticastTTL(n) / ipv6 SetMulticastHopLimit c.SetMulticastTTL(n) / c.SetMulticastHopLimit(n)
//	p.SetMulticastLoopback(on)                      c.SetMulticastLoopback(on)
//	p.SetTOS(tos) / ipv6 SetTrafficClass            c.SetTOS(tos) / c.SetTrafficClass(tc)
//	c.(*net.UDPConn).SetReadBuffer(bytes)           c.SetReadBuffer(bytes) (2 KiB per queued datagram)
//	*net.Interface                                  *stack.Interface (ifc may be nil with a single interface)
//	net.IP group and source                         netip.Addr (IPv4-mapped addresses are unmapped everywhere)
//
// ipv4.NewPacketConn(c) with a *Conn compiles (a *Conn is a
// net.PacketConn) but panics at run time ("*stack.Conn is not net.Conn"):
// x/net converts its argument to a net.Conn and drives the kernel socket
// behind it through syscall.Conn, and a *Conn has no kernel socket.
// Use the *Conn's own methods instead. Errors are sentinels for errors.Is
// (ErrClosed is net.ErrClosed; membership misuse wraps membership's
// sentinels such as ErrAlreadyJoined), read deadlines wrap
// os.ErrDeadlineExceeded as in package net.
//
// # Example
//
// Example (example_test.go) is a complete program: three stacks on an
// in-memory LAN (package link/memlan); one joins a source-specific group
// and receives only from that source. ExampleConn_ReadBatch reads in
// batches.
//
// # Scope
//
// Sockets send multicast and broadcast datagrams. Unicast transmission needs
// neighbor resolution (ARP/NDP), which mcstack does not implement: it
// returns ErrNoRoute. Unicast datagrams addressed to the interface are
// received. IP fragments are not reassembled; they are dropped and counted.
package stack

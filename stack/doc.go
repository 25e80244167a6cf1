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
//   - The receive path (Interface's frame handler) takes no mutex. It reads
//     immutable snapshots published through atomic.Pointer: the port table,
//     each socket's per-(interface, group) filter, the interface's
//     addresses. Datagrams are queued to sockets through bounded channels
//     with a non-blocking send: a full queue drops and counts.
//   - Control-plane operations serialize on one mutex, Stack.mu, which is
//     never held across a driver call, a wire transmission or a wait. Under
//     it they only compute: the socket filter (membership.SocketFilters),
//     the interface's merged state (membership.Table), the needed MAC set,
//     and the queue of state deltas.
//   - Slow work is done by two goroutines per interface. The filter worker
//     programs the driver's multicast filter with the latest needed set: a
//     burst of changes made while the driver is busy (or within
//     Config.CoalesceDelay) becomes one reprogramming, and a leave followed
//     at once by a join of the same group reprograms nothing. The protocol
//     worker owns the IGMP and MLD engines: it hands them the coalesced
//     deltas (a leave then a join of one group cancel out, so no leave is
//     sent), runs their timers, and transmits their reports with no lock
//     held. Driver errors are retried with backoff, logged, counted and
//     reported by Interface.Status and Interface.Sync.
//
// Closing a socket returns at once: it unlinks the socket from the receive
// path and releases its memberships in memory (microseconds, no I/O); the
// resulting driver update and reports follow on the workers. Removing an
// interface or closing the stack drains that work: the final reports are
// sent, the driver filter is cleared, and no goroutine is left.
//
// This goes one step beyond the FreeBSD change that motivated mcstack (the
// README's Design section): there, socket teardown was deferred to a
// task, but each membership still cost one driver update; here a burst of N
// closes costs O(1) driver updates.
//
// # Example
//
// Example (example_test.go) is a complete program: three stacks on an
// in-memory LAN (package link/memlan); one joins a source-specific group
// and receives only from that source.
//
// # Scope
//
// Sockets send multicast and broadcast datagrams. Unicast transmission needs
// neighbor resolution (ARP/NDP), which mcstack does not implement: it
// returns ErrNoRoute. Unicast datagrams addressed to the interface are
// received. IP fragments are not reassembled; they are dropped and counted.
package stack

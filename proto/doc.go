// Package proto owns the host side of the group membership protocols: one
// Engine per interface and family, built by NewIGMP (IGMPv3 with IGMPv1/v2
// compatibility) and NewMLD (MLDv2 with MLDv1 compatibility). An engine turns
// the interface's merged membership state (membership.Delta) and the queries
// heard on the link into complete IP packets carrying reports. It is a pure
// state machine: no goroutines, no sleeping, time only from the now
// arguments, randomness only from Config.Rand (or, without one, the
// runtime's generator); the stack drives it from one
// goroutine. Wire formats come from package wire; the socket filters and
// their merge into interface state from package membership.
//
// # Implemented
//
//   - IGMPv3 / MLDv2 state-change reports, RFC 9776 §5.1 and RFC 9777 §6.1:
//     Table 1 records (ALLOW/BLOCK, TO_IN/TO_EX, a new group starting from
//     INCLUDE {}, a leave ending in INCLUDE {}: BLOCK(A) for INCLUDE(A),
//     TO_IN {} for EXCLUDE), an immediate report on every change merged
//     with the pending one, [Robustness Variable] transmissions kept by a
//     Filter Mode Retransmission Counter and per-source Retransmission
//     Counters, ALLOW and BLOCK rebuilt from the current state at each
//     transmission.
//   - Query responses, RFC 9776 §5.2 and RFC 9777 §6.2–6.3: the Interface
//     Timer and per-group timers with the five rules for pending responses,
//     Current-State records, the source intersections of Table 3, random
//     delays bounded by the Max Resp Code; the QRV and QQIC of queries are
//     adopted (RFC 9776 §4.1.6–4.1.7); the S flag does not affect hosts.
//   - Paced General Query responses, RFC 9776 §5.2 and RFC 9777 §6.3
//     (which call one burst of all records at the Interface Timer naive and
//     recommend spreading the Report messages over the Max Resp Time): the
//     first burst of at most ResponseBurst (4) report packets goes out when
//     the Interface Timer fires, and the following groups, in address
//     order, in bursts of at most ResponseBurst packets spread evenly from
//     there to before the end of the query's Max Resp Time, so the response
//     always ends within it (13 MLDv2 packets for a 0.1-s Max Resp Time: 4
//     bursts within the 0.1 s; 10,000 IGMPv3 groups: 55 packets in 14
//     bursts). Each burst reports the state when it is sent; Status counts
//     the rest of the response as one pending response; Reannounce,
//     Shutdown and a compatibility-mode change cancel it.
//   - Bounded query storms: a General Query response starts at most once
//     per ResponsePace (500 ms) and reports every group once, and a group's
//     own query response (Group Timer, IGMPv1/v2/MLDv1 report timer) fires
//     at most once per ResponsePace, whatever the number of queries and
//     their Max Resp Times.
//   - Report packing, RFC 9776 §4.2.16 and RFC 9777 §5.2.16: as many
//     records per packet as Config.MTU allows; an oversized IS_IN, TO_IN,
//     ALLOW or BLOCK record is split, an oversized IS_EX or TO_EX record
//     sent once with the sources that fit.
//   - Compatibility, RFC 9776 §7.2 and RFC 9777 §8.2: Older Version
//     Querier Present timers set by older General Queries, the mode change
//     cancelling all pending reports, and in the older modes the host
//     protocols of RFC 1112 App. I (IGMPv1), RFC 2236 §3 (IGMPv2) and RFC
//     2710 §4 (MLDv1): unsolicited reports repeated [Robustness Variable] - 1
//     times, delayed responses, suppression by other hosts' reports, Leave
//     (Done) to all-routers only by the last reporter. Config.ForceVersion
//     pins the version.
//   - Final reports, Engine.Shutdown: every joined group is left as by an
//     ordinary leave, with the same records and the same [Robustness
//     Variable] transmissions; the stack drains the engine until NextTimer
//     returns false, at most (Robustness - 1) × Unsolicited Report Interval
//     after Shutdown (1 s with the defaults; 6 s with QRV 7).
//   - Link up, Engine.Reannounce: as Linux's ip_mc_up / ipv6_mc_up (which
//     reset the learned querier values and call igmp_group_added /
//     igmp6_group_added for every group), the learned Robustness Variable,
//     Query Interval and Query Response Interval return to the configured
//     values, pending query responses are cancelled and every group is
//     reported as newly joined, with leaves and source changes still being
//     retransmitted started over.
//   - Input checks: TTL / hop limit 1, Router Alert on v2/v3 queries (RFC
//     9776 §9.1; IGMPv1 queries never carried it) and on MLD queries (RFC
//     9777 §6.2) with the MLD value 0 (RFC 2711: another value counts as
//     no Router Alert), link-local MLD sources (RFC 9777 §5.1.14), the IGMP
//     checksum (the stack verifies the ICMPv6 one), message length and
//     fields, and query destinations (RFC 9776 §4.1.12, RFC 9777 §5.1.15:
//     all-systems / all-nodes, the queried group, any group the interface
//     has joined — including never-reported ones such as 224.0.0.251 — or
//     a unicast address); every drop is counted in Counters.
//   - Reporting again every joined group when an MLD interface gets its
//     link-local address after reporting from :: (RFC 9777 §5.2.14).
//   - Status for troubleshooting: the querier last heard (address, version,
//     time, Max Resp Time), and per group its state, pending response time,
//     transmissions left and last-reporter flag.
//
// Groups of 224.0.0.0/24, ff02::1 and IPv6 scopes 0 and 1 are never reported
// (wire.IsReportable).
//
// # Choices and deviations
//
//   - State-change retransmissions of all groups share one interface timer
//     instead of one Retransmission Timer per group: when it fires, every
//     group with retransmission state is reported in one packed report. Each
//     group still gets [Robustness Variable] transmissions, each at most one
//     [Unsolicited Report Interval] after the previous one.
//   - A Filter-Mode-Change record carries the complete state, so a
//     filter-mode change drops the sources' retransmission state instead of
//     repeating it as ALLOW/BLOCK afterwards. Source changes made while the
//     filter-mode counter runs are repeated after it, as RFC 9776 §5.1 says.
//   - The paced General Query response starts at the Interface Timer's
//     random delay rather than at the query (RFC 9776 §5.2 suggests the
//     interval (0, [Max Resp Time])), so a timer drawn late compresses the
//     response: drawn at the end of the Max Resp Time, it is one burst. A
//     split record is never cut by a burst, so one group needing more than
//     ResponseBurst packets is sent whole. A General Query arriving while
//     a response is under way does not start it over from the first group
//     (rule 2 of RFC 9776 §5.2 / RFC 9777 §6.2 cancels the pending response
//     and schedules a new one): the groups already reported are not
//     reported again, and the rest of the response is brought forward to
//     the new delay when that is earlier than its next burst (rule 1
//     otherwise) and ends within the new Max Resp Time too. Starting over
//     would let a storm of queries starve the groups at the end of the
//     address order; the groups already sent were reported moments before
//     the query. A specific query always arms its Group Timer, since the
//     response cannot tell when a burst will reach the group; a burst
//     carrying the group's Current-State record stops it, so rule 1 still
//     saves the additional response when the General Query response comes
//     first.
//   - The storm bound delays a response beyond a query's Max Resp Time
//     only when queries come faster than ResponsePace: a General Query
//     response never starts sooner than 500 ms after the previous one
//     started, and a group's own response never fires sooner than 500 ms
//     after the previous one. A router repeats its Group-Specific Queries
//     every Last Member Query Interval (RFC 9776 §8.8, 1 s by default), and
//     the answer to the first one already keeps the group.
//   - A Group-and-Source-Specific Query records only the queried sources the
//     state at query time would report (B*A in INCLUDE (A), B-A in EXCLUDE
//     (A)), which bounds memory; more than fit in one record turn the
//     response into a group-specific one (a complete Current-State record).
//     Table 3 is applied again to the state when the response is sent.
//   - The Older Version Querier Present Interval is [Robustness Variable] ×
//     [Query Interval] + the Max Response Time of the older query, with the
//     learned or configured values (RFC 9776 §8.12 recommends the default
//     values and words the last term differently).
//   - IGMPv1/v2 and MLDv1 repetitions of an unsolicited report use random
//     delays in (0, Config.V1UnsolicitedReportInterval].
//   - An IGMPv2 Leave / MLDv1 Done is sent only by the last reporter (RFC
//     2236 §3, RFC 2710 §4: the others MAY send nothing; Linux's
//     igmp_group_dropped and igmp6_leave_group send nothing then, and a
//     switch with immediate leave would cut off the member that answered
//     last), at an ordinary leave and at Shutdown alike. Unlike RFC 2236,
//     RFC 2710 and Linux, which send it once, it is repeated [Robustness
//     Variable] - 1 times at random delays in (0,
//     Config.UnsolicitedReportInterval] as an IGMPv3 leave is (RFC 2236
//     §8.1: the protocol is robust to [Robustness Variable] - 1 losses; a
//     lost Leave keeps the traffic flowing until the router's membership
//     times out); another host's report for the group stops the
//     repetitions, a new join replaces them.
//   - In the older modes an INCLUDE state with sources is reported as a
//     join of the whole group, as the older protocols cannot say more.
//   - Another host's IGMPv1/v2 report never suppresses an IGMPv3 response
//     (RFC 9776 §7.2.2: MAY, and SSM-aware hosts MUST NOT).
//   - Reannounce keeps the Older Version Querier Present timers (Linux's
//     ipv6_mc_reset clears the MLDv1 one, ip_mc_reset keeps the IGMP ones):
//     older-version reports are understood by newer routers, newer ones
//     not by older routers. The re-announcement also starts over the
//     BLOCKs, filter-mode changes and leaves that were still being
//     retransmitted when the link came up: they may have been lost too.
//   - Queries sent to a unicast address are accepted without checking that
//     the address is the interface's: the stack hands the engine only
//     unicast messages sent to one of the interface's own addresses.
//     Reports heard from other hosts need no Router Alert.
//
// # Not implemented
//
//   - The multicast router (querier) side: RFC 9776 §6, RFC 9777 §7.
//   - IPv4 source-address selection and MLD source addresses other than the
//     one given by SetSource (the stack chooses them).
//   - Auxiliary data in records (never sent; ignored by the parser).
//   - A separate SSM-only switch for compatibility mode (RFC 9776 §7.2.1
//     RECOMMENDS one); ForceVersion 3 (IGMP) or 2 (MLD) has that effect. An
//     older-version query while SSM groups are joined is logged as an error.
package proto

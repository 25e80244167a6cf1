// Package proto owns the host side of the group membership protocols: one
// Engine per interface and family, built by NewIGMP (IGMPv3 with IGMPv1/v2
// compatibility) and NewMLD (MLDv2 with MLDv1 compatibility). An engine turns
// the interface's merged membership state (membership.Delta) and the queries
// heard on the link into complete IP packets carrying reports. It is a pure
// state machine: no goroutines, no sleeping, time only from the now
// arguments, randomness only from Config.Rand; the stack drives it from one
// goroutine. Wire formats come from package wire; the socket filters and
// their merge into interface state from package membership.
//
// # Implemented
//
//   - IGMPv3 / MLDv2 state-change reports, RFC 9776 §5.1 and RFC 9777 §6.1:
//     Table 1 records (ALLOW/BLOCK, TO_IN/TO_EX, a new group starting from
//     INCLUDE {}), an immediate report on every change merged with the
//     pending one, [Robustness Variable] transmissions kept by a Filter Mode
//     Retransmission Counter and per-source Retransmission Counters, ALLOW
//     and BLOCK rebuilt from the current state at each transmission.
//   - Query responses, RFC 9776 §5.2 and RFC 9777 §6.2–6.3: the Interface
//     Timer and per-group timers with the five rules for pending responses,
//     Current-State records, the source intersections of Table 3, random
//     delays bounded by the Max Resp Code; the QRV and QQIC of queries are
//     adopted (RFC 9776 §4.1.6–4.1.7); the S flag does not affect hosts.
//   - Paced General Query responses, RFC 9776 §5.2 and RFC 9777 §6.3
//     (which call one burst of all records at the Interface Timer naive and
//     recommend spreading the Report messages): when the Interface Timer
//     fires at most ResponseBurst (4) report packets are sent, and the
//     following groups, in address order, ResponsePace (500 ms) after each
//     burst, as FreeBSD paces them. Each burst reports the state when it is
//     sent; Status counts the rest of the response as one pending response;
//     Shutdown and a compatibility-mode change cancel it.
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
//   - Input checks: TTL / hop limit 1, Router Alert on v2/v3 queries (RFC
//     9776 §9.1; IGMPv1 queries never carried it) and on MLD queries (RFC
//     9777 §6.2), link-local MLD sources (RFC 9777 §5.1.14), the IGMP
//     checksum (the stack verifies the ICMPv6 one), message length and
//     fields, and query destinations (RFC 9776 §4.1.12 and §9.1, RFC 9777
//     §5.1.15); every drop is counted in Counters.
//   - Reporting again every joined group when an MLD interface gets its
//     link-local address after reporting from :: (RFC 9777 §5.2.14).
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
//   - The paced General Query response keeps its pace rather than fitting
//     the Max Resp Time: with very many groups it ends after it (10,000
//     IGMPv3 groups: 55 packets in 14 bursts over 6.5 s). A split record
//     is never cut by a burst, so one group needing more than ResponseBurst
//     packets is sent whole. A General Query arriving while the response
//     is under way is covered by it when its next burst is due no later
//     than the new delay (rule 1 of RFC 9776 §5.2 / RFC 9777 §6.2) and
//     restarts it from the first group otherwise (rule 2). A specific
//     query always arms its Group Timer, since the response cannot tell
//     when a burst will reach the group; a burst carrying the group's
//     Current-State record stops it, so rule 1 still saves the additional
//     response when the General Query response comes first.
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
//   - In the older modes an INCLUDE state with sources is reported as a
//     join of the whole group, as the older protocols cannot say more.
//   - Another host's IGMPv1/v2 report never suppresses an IGMPv3 response
//     (RFC 9776 §7.2.2: MAY, and SSM-aware hosts MUST NOT).
//   - Shutdown sends each final record once: TO_IN {} in IGMPv3/MLDv2 (also
//     for INCLUDE states), a Leave or Done for every joined group in IGMPv2 /
//     MLDv1 whether or not this host was the last reporter.
//   - Queries sent to a unicast address are accepted without checking that
//     the address is the interface's (the stack delivered them to it);
//     multicast destinations must be all-systems / all-nodes or the queried
//     group. Reports heard from other hosts need no Router Alert.
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

package proto

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// Defaults (RFC 9776 §8, RFC 9777 §9, RFC 2236 §8.10, RFC 2710 §7.10).
const (
	DefaultMTU                         = 1500
	DefaultRobustness                  = 2
	DefaultQueryInterval               = 125 * time.Second
	DefaultQueryResponseInterval       = 10 * time.Second
	DefaultUnsolicitedReportInterval   = time.Second
	DefaultV1UnsolicitedReportInterval = 10 * time.Second
)

// Pacing of the response to a General Query (RFC 9776 §5.2, RFC 9777 §6.3:
// instead of the naive single burst, implementations are recommended to
// spread the Report messages). When the Interface Timer fires at most
// ResponseBurst report packets are sent; the remaining groups follow, in
// the same address order, ResponsePace after each burst. These are
// FreeBSD's values (IGMP_MAX_RESPONSE_BURST, 4 packets per 500 ms slow
// timeout).
const (
	ResponseBurst = 4
	ResponsePace  = 500 * time.Millisecond
)

// group is the engine's record of one reportable group: the interface
// state last handed in by StateChanged and the protocol state around it.
// A group whose state is INCLUDE {} is kept only while it still has
// state-change retransmissions pending (the leave is being repeated).
type group struct {
	addr  netip.Addr
	state membership.State

	// IGMPv3 / MLDv2 retransmission state (RFC 9776 §5.1, RFC 9777 §6.1):
	// the Filter Mode Retransmission Counter and the Retransmission List of
	// sources with their Source Retransmission Counters.
	fmCount int
	srcRtx  map[netip.Addr]int

	// timerAt is the per-group timer: the Group Timer of a pending
	// IGMPv3/MLDv2 query response, or the IGMPv1/v2/MLDv1 report timer.
	timerAt  time.Time
	timerSeq uint64
	// qSources is the source list recorded for a pending response to a
	// Group-and-Source-Specific Query (sorted); nil means the pending
	// response is to a Group-Specific Query (RFC 9776 §5.2).
	qSources []netip.Addr

	// IGMPv1/v2/MLDv1: repeats counts the unsolicited reports still to be
	// sent after a join (the running timer sends the next one);
	// lastReporter is the RFC 2236 §3 flag "we sent the last report".
	repeats      int
	lastReporter bool
}

func (g *group) changePending() bool { return g.fmCount > 0 || len(g.srcRtx) > 0 }

// engine implements Engine for both families; fam selects IGMP or MLD.
type engine struct {
	fam *family
	cfg Config // defaults filled in
	log *slog.Logger
	rnd *rand.Rand

	src    netip.Addr
	forced level // 0: automatic
	mode   level // Host Compatibility Mode (RFC 9776 §7.2.1, RFC 9777 §8.2.1)

	robustness        int
	queryInterval     time.Duration
	queryRespInterval time.Duration
	// olderUntil[l] is when the Older Version Querier Present timer of
	// level l (1: IGMPv1, 2: IGMPv2 or MLDv1) expires; zero when not running.
	olderUntil [3]time.Time

	groups map[netip.Addr]*group

	rtxAt time.Time // interface state-change retransmission timer (IGMPv3/MLDv2)
	// genAt is when the pending General Query response (IGMPv3/MLDv2) sends
	// its next burst: the Interface Timer, then the pacing timer. genAfter
	// is the last group reported by the response so far; invalid until
	// the first burst, so the next burst starts with the first group.
	// genList caches the groups after genAfter in address order between
	// bursts; nil when it must be rebuilt (a state change may have added
	// a group).
	genAt    time.Time
	genAfter netip.Addr
	genList  []*group

	timers  timerHeap
	nTimers int

	// reannounce: a link-local source appeared (MLD, RFC 9777 §5.2.14);
	// the next Tick reports every joined group again.
	reannounce bool
	lastNow    time.Time
	lastWarn   time.Time

	out  []Packet
	ipID uint16
	shut bool
	cnt  Counters
}

// NewIGMP returns the IPv4 host side of IGMPv3 (RFC 9776 §5) with IGMPv1
// and IGMPv2 compatibility (RFC 9776 §7.2, RFC 2236, RFC 1112).
func NewIGMP(cfg Config) Engine { return newEngine(igmpFamily, cfg) }

// NewMLD returns the IPv6 host side of MLDv2 (RFC 9777 §6) with MLDv1
// compatibility (RFC 9777 §8.2, RFC 2710).
func NewMLD(cfg Config) Engine { return newEngine(mldFamily, cfg) }

func newEngine(f *family, cfg Config) *engine {
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	cfg.MTU = min(max(cfg.MTU, f.minMTU), 0xffff)
	if cfg.Robustness <= 0 {
		// RFC 9776 §8.1: the Robustness Variable MUST NOT be zero.
		cfg.Robustness = DefaultRobustness
	}
	if cfg.QueryInterval <= 0 {
		cfg.QueryInterval = DefaultQueryInterval
	}
	if cfg.QueryResponseInterval <= 0 {
		cfg.QueryResponseInterval = DefaultQueryResponseInterval
	}
	if cfg.UnsolicitedReportInterval <= 0 {
		cfg.UnsolicitedReportInterval = DefaultUnsolicitedReportInterval
	}
	if cfg.V1UnsolicitedReportInterval <= 0 {
		cfg.V1UnsolicitedReportInterval = DefaultV1UnsolicitedReportInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("proto", f.name, "ifc", cfg.Interface)
	rnd := cfg.Rand
	if rnd == nil {
		var seed [32]byte
		_, _ = crand.Read(seed[:]) // crypto/rand.Read never returns an error (Go 1.24+)
		rnd = rand.New(rand.NewChaCha8(seed))
	}
	e := &engine{
		fam: f, cfg: cfg, log: log, rnd: rnd,
		robustness: cfg.Robustness, queryInterval: cfg.QueryInterval, queryRespInterval: cfg.QueryResponseInterval,
		groups: make(map[netip.Addr]*group),
		mode:   levelV3,
	}
	if cfg.ForceVersion != 0 {
		if l, ok := f.levelOf(cfg.ForceVersion); ok {
			e.forced, e.mode = l, l
		} else {
			log.Warn("ignoring invalid ForceVersion; version is automatic", "force_version", cfg.ForceVersion)
		}
	}
	e.src = e.normSource(cfg.Source)
	return e
}

// normSource returns addr if it can be the family's report source and the
// unspecified address otherwise.
func (e *engine) normSource(addr netip.Addr) netip.Addr {
	a, ok := e.fam.normAddr(addr)
	if !ok || a.IsMulticast() {
		return e.fam.unspecified()
	}
	return a
}

// randDelay returns a random delay in (0, d], or 0 when d is not positive.
func (e *engine) randDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(e.rnd.Int64N(int64(d))) + 1
}

// SetSource implements Engine.
func (e *engine) SetSource(addr netip.Addr) {
	if e.shut {
		return
	}
	old := e.src
	e.src = e.normSource(addr)
	// RFC 9777 §5.2.14: once a valid link-local address is available, a
	// node SHOULD generate new reports for all multicast addresses joined
	// on the interface (they may have been sent from ::).
	if e.fam.v6 && old.IsUnspecified() && e.src.IsLinkLocalUnicast() {
		e.reannounce = true
	}
}

// advance expires the Older Version Querier Present timers due at now and
// switches the Host Compatibility Mode accordingly.
func (e *engine) advance(now time.Time) {
	if now.After(e.lastNow) {
		e.lastNow = now
	}
	for l := range e.olderUntil {
		if !e.olderUntil[l].IsZero() && !e.olderUntil[l].After(now) {
			e.olderUntil[l] = time.Time{}
		}
	}
	e.setMode(e.computeMode(now))
}

// computeMode derives the Host Compatibility Mode from the Older Version
// Querier Present timers (RFC 9776 §7.2.1 Table 11, RFC 9777 §8.2.1).
func (e *engine) computeMode(now time.Time) level {
	if e.forced != 0 {
		return e.forced
	}
	for l := levelV1; l < levelV3; l++ {
		if l >= e.fam.minLevel && e.olderUntil[l].After(now) {
			return l
		}
	}
	return levelV3
}

// setMode switches the compatibility mode; RFC 9776 §7.2.1 and RFC 9777
// §8.2.1: whenever a host changes its compatibility mode, it cancels all
// its pending response and retransmission timers.
func (e *engine) setMode(l level) {
	if l == e.mode {
		return
	}
	e.log.Info("compatibility mode changed", "from", e.fam.version(e.mode), "to", e.fam.version(l))
	e.mode = l
	e.cancelAll()
}

// cancelAll cancels every pending report, response and retransmission.
func (e *engine) cancelAll() {
	e.rtxAt, e.genAt, e.genAfter, e.genList = time.Time{}, time.Time{}, netip.Addr{}, nil
	for a, g := range e.groups {
		e.stopTimer(g)
		g.fmCount, g.srcRtx, g.qSources, g.repeats = 0, nil, nil, 0
		if !g.state.IsMember() {
			delete(e.groups, a)
		}
	}
	clear(e.timers)
	e.timers = e.timers[:0]
	e.nTimers = 0
}

// sortedGroups returns the groups matching keep, ordered by address, so that
// random delays are drawn and records emitted in a reproducible order.
func (e *engine) sortedGroups(keep func(*group) bool) []*group {
	var gs []*group
	for _, g := range e.groups {
		if keep(g) {
			gs = append(gs, g)
		}
	}
	sortGroups(gs)
	return gs
}

// sortGroups orders gs by group address.
func sortGroups(gs []*group) {
	slices.SortFunc(gs, func(a, b *group) int { return a.addr.Compare(b.addr) })
}

// sanitize returns s with sources outside the family dropped and the rest
// normalized (IPv4 unmapped, IPv6 without zone), sorted and unique.
func (e *engine) sanitize(s membership.State) membership.State {
	ok := true
	for _, a := range s.Sources {
		if n, fam := e.fam.normAddr(a); !fam || n != a || !a.IsValid() {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var srcs []netip.Addr
	for _, a := range s.Sources {
		if n, fam := e.fam.normAddr(a); fam {
			srcs = append(srcs, n)
		}
	}
	e.log.Debug("dropped sources of the wrong family from a state change", "kept", len(srcs), "given", len(s.Sources))
	return membership.NewState(s.Mode, srcs)
}

// StateChanged implements Engine (RFC 9776 §5.1, RFC 9777 §6.1; in older
// modes RFC 2236 §3, RFC 2710 §4, RFC 1112 App. I).
func (e *engine) StateChanged(now time.Time, deltas []membership.Delta) {
	if e.shut {
		return
	}
	e.advance(now)
	var changed []*group
	for _, d := range deltas {
		ga, ok := e.fam.normAddr(d.Group)
		if !ok || !wire.IsReportable(ga) {
			// Link-local control groups and groups of scope 0/1 are never
			// reported (RFC 9776 §5, RFC 9777 §6); a group of the other
			// family is not ours.
			continue
		}
		g := e.groups[ga]
		if g == nil {
			g = &group{addr: ga}
		}
		nw := e.sanitize(d.New)
		if g.state.Equal(nw) {
			continue
		}
		e.genList = nil // the paced General Query response sees the change
		if e.mode == levelV3 {
			if e.v3Change(g, nw) {
				changed = append(changed, g)
			}
		} else {
			e.v12Change(now, g, nw)
		}
	}
	if len(changed) > 0 {
		sortGroups(changed)
		changed = slices.Compact(changed)
		e.sendChanges(now, changed)
	}
}

// Receive implements Engine. The input checks follow RFC 9776 §4 and §9.1
// (TTL 1; Router Alert on v2/v3 queries; General Queries to 224.0.0.1;
// Group-Specific Queries to the group) and RFC 9777 §5, §5.1.14 and §6.2
// (link-local source, hop limit 1, Router Alert on queries).
func (e *engine) Receive(now time.Time, msg Received) {
	if e.shut {
		return
	}
	e.advance(now)
	if msg.HopLimit != 1 {
		e.cnt.DroppedBadHopLimit++
		e.log.Debug("dropped message with bad hop limit", "src", msg.Src, "hop_limit", msg.HopLimit)
		return
	}
	src, ok := e.fam.normAddr(msg.Src)
	if !ok || src.IsMulticast() || e.fam.v6 && !src.IsLinkLocalUnicast() ||
		!e.fam.v6 && src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		// RFC 9777 §5.1.14: a Query from :: or any other address that is
		// not link-local MUST be silently discarded, with a warning logged.
		e.cnt.DroppedBadSource++
		e.warn(now, "dropped message with invalid source address", "src", msg.Src)
		return
	}
	m, err := e.fam.parse(msg.Payload)
	if err != nil {
		e.countParseError(err)
		e.log.Debug("dropped message", "src", src, "err", err)
		return
	}
	dst, _ := e.fam.normAddr(msg.Dst)
	switch m.kind {
	case kindQuery:
		e.receiveQuery(now, src, dst, msg.RouterAlert, m)
	case kindReport:
		e.receiveReport(src, dst, m)
	case kindV3Report:
		// RFC 9776 §5 / RFC 9777 §6: hosts ignore IGMPv3/MLDv2 reports;
		// RFC 9776 §7.2.2: SSM-aware hosts are never suppressed by them.
		if src != e.src || src.IsUnspecified() {
			e.cnt.ReportsReceived++
		}
	case kindLeave:
		// Leave / Done messages are for routers (RFC 2236 §3, RFC 2710 §4).
	}
}

// warnEvery bounds the warnings about invalid messages, which an attacker
// could otherwise use to flood the log; the rest are logged at debug level.
const warnEvery = time.Minute

func (e *engine) warn(now time.Time, msg string, args ...any) {
	if e.lastWarn.IsZero() || now.Sub(e.lastWarn) >= warnEvery {
		e.lastWarn = now
		e.log.Warn(msg, args...)
		return
	}
	e.log.Debug(msg, args...)
}

// warnError is warn at error level.
func (e *engine) warnError(now time.Time, msg string, args ...any) {
	if e.lastWarn.IsZero() || now.Sub(e.lastWarn) >= warnEvery {
		e.lastWarn = now
		e.log.Error(msg, args...)
		return
	}
	e.log.Debug(msg, args...)
}

// anySSM reports whether a joined group is in the SSM range (RFC 4607).
func (e *engine) anySSM() bool {
	for _, g := range e.groups {
		if g.state.IsMember() && wire.IsSSM(g.addr) {
			return true
		}
	}
	return false
}

func (e *engine) countParseError(err error) {
	switch {
	case errors.Is(err, errBadChecksum):
		e.cnt.DroppedBadChecksum++
	case errors.Is(err, errUnsupported):
		// RFC 9776 §4 and RFC 9777 §5: unrecognized message types MUST be
		// silently ignored.
		e.cnt.DroppedOther++
	default:
		e.cnt.DroppedMalformed++
	}
}

// validQueryDst applies RFC 9776 §4.1.12 / §9.1 and RFC 9777 §5.1.15: General
// Queries are sent to the all-systems (all-nodes) group and specific queries
// to the queried group, but a Query sent to any address assigned to the
// interface MUST be accepted. A unicast destination reached this engine, so
// it is taken as assigned; a multicast destination must be all-systems
// (all-nodes) or, for a specific query, the queried group.
func (e *engine) validQueryDst(dst, group netip.Addr) bool {
	if !dst.IsValid() {
		return false
	}
	if !dst.IsMulticast() {
		return !dst.IsUnspecified()
	}
	return dst == e.fam.allSystems || !group.IsUnspecified() && dst == group
}

func (e *engine) receiveQuery(now time.Time, src, dst netip.Addr, ra bool, m inMsg) {
	// RFC 9776 §9.1: hosts SHOULD ignore v2 or v3 Queries without the Router
	// Alert option (IGMPv1 queries never carried it); RFC 9777 §6.2: an MLD
	// Query without Router Alert is dropped.
	if !ra && m.level != levelV1 && !e.cfg.AcceptWithoutRouterAlert {
		e.cnt.DroppedNoRouterAlert++
		e.log.Debug("dropped query without router alert", "src", src)
		return
	}
	if !e.validQueryDst(dst, m.group) {
		e.cnt.DroppedBadDestination++
		e.log.Debug("dropped query sent to a wrong destination", "src", src, "dst", dst, "group", m.group)
		return
	}
	e.cnt.QueriesReceived++
	general := m.group.IsUnspecified()
	if m.level < levelV3 && (wire.IsSSM(m.group) || general && e.anySSM()) {
		// RFC 9776 §7.2.1: an SSM-aware host SHOULD log an error on an
		// IGMPv1 Query, IGMPv2 General Query or IGMPv2 Group-Specific Query
		// for an SSM address (likewise RFC 9777 §8.2.1 for MLDv1).
		e.warnError(now, "older-version query while source-specific groups are joined; "+
			"set ForceVersion to keep source filtering", "src", src, "version", e.fam.version(m.level), "group", m.group)
	}
	if m.level == levelV3 {
		e.learn(m)
	}
	if general {
		e.queryRespInterval = m.maxResp
	}
	// RFC 9776 §7.2.1: an IGMPv1 Query, or an IGMPv2 General Query, sets the
	// matching Older Version Querier Present timer; an older-version
	// Group-Specific Query MUST NOT change the mode. RFC 9777 §8.2.1 likewise
	// for MLDv1 General Queries.
	if e.forced == 0 && m.level < levelV3 && general {
		ovqpi := time.Duration(e.robustness)*e.queryInterval + m.maxResp
		e.olderUntil[m.level] = now.Add(ovqpi)
		e.log.Debug("older version querier present", "version", e.fam.version(m.level), "src", src, "until", e.olderUntil[m.level])
		e.setMode(e.computeMode(now))
	}
	if e.mode == levelV3 {
		srcs := m.sources
		if m.level < levelV3 {
			srcs = nil
		}
		e.v3Query(now, m.group, srcs, m.maxResp)
	} else {
		// In IGMPv1/v2 and MLDv1 modes a newer query is answered as an
		// older one: its sources are ignored (RFC 2236 §2.5).
		e.v12Query(now, m.group, m.maxResp)
	}
}

// learn adopts the querier's Robustness Variable and Query Interval from
// an IGMPv3/MLDv2 query, or the configured values when the query carries
// zero (RFC 9776 §4.1.6–4.1.7, RFC 9777 §5.1.8–5.1.9).
func (e *engine) learn(m inMsg) {
	if m.qrv != 0 {
		e.robustness = int(m.qrv)
	} else {
		e.robustness = e.cfg.Robustness
	}
	if m.qqi != 0 {
		e.queryInterval = m.qqi
	} else {
		e.queryInterval = e.cfg.QueryInterval
	}
}

// receiveReport handles another host's IGMPv1/v2 or MLDv1 report: in the
// older modes it suppresses our pending report for the group (RFC 2236 §3,
// RFC 2710 §4). In IGMPv3/MLDv2 mode reports are not suppressed (RFC 9776
// §7.2.2 allows it, but SSM-aware hosts MUST NOT).
func (e *engine) receiveReport(src, dst netip.Addr, m inMsg) {
	if !src.IsUnspecified() && src == e.src {
		return // our own report looped back
	}
	if !dst.IsValid() || dst.IsMulticast() && dst != m.group || dst.IsUnspecified() {
		e.cnt.DroppedBadDestination++
		e.log.Debug("dropped report sent to a wrong destination", "src", src, "dst", dst, "group", m.group)
		return
	}
	e.cnt.ReportsReceived++
	if e.mode == levelV3 {
		return
	}
	g := e.groups[m.group]
	if g == nil || g.timerAt.IsZero() {
		return
	}
	e.stopTimer(g)
	g.lastReporter, g.repeats = false, 0
	e.log.Debug("report suppressed", "group", g.addr, "by", src)
}

// Tick implements Engine.
func (e *engine) Tick(now time.Time) {
	if e.shut {
		return
	}
	e.advance(now)
	if e.reannounce {
		e.reannounce = false
		e.reannounceAll(now)
	}
	if e.mode == levelV3 {
		e.v3Tick(now)
	} else {
		e.v12Tick(now)
	}
}

// reannounceAll reports every joined group as if it had just been joined.
func (e *engine) reannounceAll(now time.Time) {
	gs := e.sortedGroups(func(g *group) bool { return g.state.IsMember() })
	if len(gs) == 0 {
		return
	}
	if e.mode != levelV3 {
		for _, g := range gs {
			e.v12Join(now, g)
		}
		return
	}
	for _, g := range gs {
		g.fmCount, g.srcRtx = 0, nil
		if g.state.Mode == membership.Exclude {
			g.fmCount = e.robustness
		} else {
			g.srcRtx = make(map[netip.Addr]int, len(g.state.Sources))
			for _, s := range g.state.Sources {
				g.srcRtx[s] = e.robustness
			}
		}
	}
	e.sendChanges(now, gs)
}

// NextTimer implements Engine.
func (e *engine) NextTimer() (time.Time, bool) {
	if e.shut {
		return time.Time{}, false
	}
	if e.reannounce {
		return e.lastNow, true
	}
	var at time.Time
	found := false
	consider := func(t time.Time) {
		if !t.IsZero() && (!found || t.Before(at)) {
			at, found = t, true
		}
	}
	consider(e.rtxAt)
	consider(e.genAt)
	for _, t := range e.olderUntil {
		consider(t)
	}
	if t, ok := e.peekTimer(); ok {
		consider(t)
	}
	return at, found
}

// TakeOutgoing implements Engine.
func (e *engine) TakeOutgoing() []Packet {
	out := e.out
	e.out = nil
	return out
}

// Shutdown implements Engine.
func (e *engine) Shutdown(now time.Time) {
	if e.shut {
		return
	}
	e.advance(now)
	switch e.mode {
	case levelV3:
		// Every group still joined, or whose leave is still being repeated,
		// gets a final TO_IN {} (RFC 9776 §5.1: leaving is a change to
		// INCLUDE {}).
		gs := e.sortedGroups(func(g *group) bool { return g.state.IsMember() || g.changePending() })
		recs := make([]wire.GroupRecord, len(gs))
		for i, g := range gs {
			recs[i] = wire.GroupRecord{Type: wire.ChangeToInclude, Group: g.addr}
		}
		e.sendRecords(recs)
	case levelV2:
		// RFC 2236 §3 / RFC 2710 §4: a host that was not the last reporter
		// MAY send nothing; at shutdown every joined group is left explicitly.
		for _, g := range e.sortedGroups(func(g *group) bool { return g.state.IsMember() }) {
			e.sendV12(g.addr, true)
		}
	case levelV1:
		// IGMPv1 has no Leave message (RFC 1112 App. I).
	}
	e.cancelAll()
	clear(e.groups)
	e.reannounce = false
	e.shut = true
}

// Status implements Engine.
func (e *engine) Status() Status {
	st := Status{
		Family:                e.fam.name,
		Version:               e.fam.version(e.mode),
		Robustness:            e.robustness,
		QueryInterval:         e.queryInterval,
		QueryResponseInterval: e.queryRespInterval,
		Counters:              e.cnt,
	}
	if e.forced != 0 {
		st.Forced = e.fam.version(e.forced)
	}
	for l := e.fam.minLevel; l < levelV3; l++ {
		if t := e.olderUntil[l]; !t.IsZero() {
			if st.OlderQuerierUntil == nil {
				st.OlderQuerierUntil = make(map[int]time.Time)
			}
			st.OlderQuerierUntil[e.fam.version(l)] = t
		}
	}
	for _, g := range e.groups {
		if g.changePending() || g.repeats > 0 {
			st.PendingStateChanges++
		}
		if !g.timerAt.IsZero() && g.repeats == 0 {
			st.PendingQueryResponses++
		}
	}
	if !e.genAt.IsZero() {
		st.PendingQueryResponses++
	}
	return st
}

// sendRecords packs recs into IGMPv3 / MLDv2 reports and queues them
// (RFC 9776 §4.2.14, RFC 9777 §5.2.14: sent to 224.0.0.22 / ff02::16).
func (e *engine) sendRecords(recs []wire.GroupRecord) {
	if len(recs) == 0 {
		return
	}
	e.sendPackets(e.fam.pack(recs, e.cfg.MTU))
}

// sendPackets queues one IGMPv3 / MLDv2 report per packed record list.
func (e *engine) sendPackets(pkts [][]wire.GroupRecord) {
	for _, part := range pkts {
		size := reportHeaderLen
		for i := range part {
			size += part[i].Len()
		}
		e.queue(e.fam.v3Dst, size, e.fam.v3Report(part), false)
	}
}

// sendV12 queues an IGMPv1/v2 or MLDv1 report for group (to the group,
// RFC 2236 §3, RFC 2710 §4), or with leave an IGMPv2 Leave / MLDv1 Done
// (to all-routers).
func (e *engine) sendV12(group netip.Addr, leave bool) {
	dst := group
	if leave {
		dst = e.fam.allRouters
	}
	e.queue(dst, e.fam.v12Len(), e.fam.v12Message(e.mode, leave, group), leave)
}

func (e *engine) queue(dst netip.Addr, size int, msg func(b []byte, src, dst netip.Addr) ([]byte, error), leave bool) {
	e.ipID++
	data, err := e.fam.packet(e.src, dst, e.ipID, size, msg)
	if err != nil {
		e.cnt.EncodeErrors++
		e.log.Error("cannot encode report; not sent", "dst", dst, "err", fmt.Errorf("proto: %s report to %v: %w", e.fam.name, dst, err))
		return
	}
	e.out = append(e.out, Packet{Dst: dst, Data: data})
	if leave {
		e.cnt.LeavesSent++
	} else {
		e.cnt.ReportsSent++
	}
}

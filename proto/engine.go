package proto

import (
	"context"
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

// Pacing of the response to a General Query (RFC 9776 §5.2, RFC 9777 §6.3
// call one burst of every record at the Interface Timer naive and recommend
// spreading the Report messages over the Max Resp Time).
//
// ResponseBurst is the most report packets one burst of the response
// sends: the first burst goes out when the Interface Timer fires, and the
// rest of the response follows in bursts of at most ResponseBurst packets
// spread evenly between then and the end of the query's Max Resp Time, so
// the whole response ends within it (FreeBSD's IGMP_MAX_RESPONSE_BURST is
// also 4, at a fixed pace instead). A burst carries more packets only when
// one group's split record needs them, or when the Max Resp Time is over.
//
// ResponsePace bounds what a query storm can draw: a General Query
// response never starts (sends its first burst) sooner than ResponsePace
// after the previous one started, and a General Query arriving while a
// response is under way only brings the end of the rest forward. So the
// engine sends at most one complete General Query response per
// ResponsePace, however many queries arrive and whatever their Max Resp
// Time.
const (
	ResponseBurst = 4
	ResponsePace  = 500 * time.Millisecond
)

// group is the engine's record of one reportable group: the interface
// state last handed in by StateChanged and the protocol state around it.
// A group whose state is INCLUDE {} is kept only while its leave is still
// being repeated (IGMPv3/MLDv2 retransmission state, or IGMPv2/MLDv1 Leave
// or Done repetitions).
type group struct {
	addr  netip.Addr
	state membership.State

	// IGMPv3 / MLDv2 retransmission state (RFC 9776 §5.1, RFC 9777 §6.1):
	// the Filter Mode Retransmission Counter and the Retransmission List of
	// sources with their Source Retransmission Counters.
	fmCount int
	srcRtx  map[netip.Addr]int

	// timerAt is the per-group timer: the Group Timer of a pending
	// IGMPv3/MLDv2 query response, or the IGMPv1/v2/MLDv1 report timer
	// (which also times the repetitions of a join or a leave).
	timerAt  time.Time
	timerSeq uint64
	// qSources is the source list recorded for a pending response to a
	// Group-and-Source-Specific Query (sorted); nil means the pending
	// response is to a Group-Specific Query (RFC 9776 §5.2).
	qSources []netip.Addr

	// IGMPv1/v2/MLDv1: repeats counts the unsolicited reports still to be
	// sent after a join, or the Leave (Done) messages still to be sent
	// after a leave (the running timer sends the next one); lastReporter
	// is the RFC 2236 §3 flag "we sent the last report".
	repeats      int
	lastReporter bool

	// respondedAt is when the group's last query response was sent (its
	// Group Timer or IGMPv1/v2/MLDv1 report timer fired); zero: never.
	respondedAt time.Time
}

// notBefore returns at, or ResponsePace after the group's last query
// response if that is later: a storm of queries for a group gets at most
// one response per ResponsePace.
func (g *group) notBefore(at time.Time) time.Time {
	if g.respondedAt.IsZero() {
		return at
	}
	if f := g.respondedAt.Add(ResponsePace); at.Before(f) {
		return f
	}
	return at
}

func (g *group) changePending() bool { return g.fmCount > 0 || len(g.srcRtx) > 0 }

// engine implements Engine for both families; fam selects IGMP or MLD.
type engine struct {
	fam *family
	cfg Config // defaults filled in
	log *slog.Logger
	rnd *rand.Rand // Config.Rand; nil: the runtime's generator

	src    netip.Addr
	forced level // 0: automatic
	mode   level // Host Compatibility Mode (RFC 9776 §7.2.1, RFC 9777 §8.2.1)

	robustness        int
	queryInterval     time.Duration
	queryRespInterval time.Duration
	// olderUntil[l] is when the Older Version Querier Present timer of
	// level l (1: IGMPv1, 2: IGMPv2 or MLDv1) expires; zero when not running.
	olderUntil [3]time.Time
	querier    Querier // the querier last heard

	// groups holds the reportable groups (nil until the first one);
	// local the joined groups that are never reported but still are
	// addresses of the interface a query may be sent to (224.0.0.0/24,
	// ff02::1; nil while there is none).
	groups map[netip.Addr]*group
	local  map[netip.Addr]struct{}

	rtxAt time.Time // interface state-change retransmission timer (IGMPv3/MLDv2)
	// The pending General Query response (IGMPv3/MLDv2), sent in bursts
	// (see v3GeneralBurst). genAt is when the next burst goes out: the
	// Interface Timer, then the pacing timer; zero when no response is
	// pending. genEnd is when the response must be complete: the earliest
	// end of the Max Resp Times of the queries it answers. genAfter is the
	// last group reported so far; invalid before the first burst. genList
	// caches the groups after genAfter in address order between bursts,
	// and genLeft the packets they need; genList is nil when it must be
	// rebuilt (a state change may have added a group). genStarted is when
	// the current or last response sent its first burst.
	genAt, genEnd time.Time
	genAfter      netip.Addr
	genList       []*group
	genLeft       int
	genStarted    time.Time

	timers  timerHeap
	nTimers int

	// reannounce: a link-local source appeared (MLD, RFC 9777 §5.2.14);
	// the next Tick reports every joined group again.
	reannounce bool
	lastNow    time.Time
	lastWarn   time.Time

	out  []Packet
	ipID uint16
	// shut: Shutdown was called; only the final reports' repetitions run.
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
	log = log.With("proto", f.name, "interface", cfg.Interface)
	e := &engine{
		fam: f, cfg: cfg, log: log, rnd: cfg.Rand,
		robustness: cfg.Robustness, queryInterval: cfg.QueryInterval, queryRespInterval: cfg.QueryResponseInterval,
		mode: levelV3,
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
// Without Config.Rand it draws from the runtime's generator (seeded by the
// runtime, no per-engine state).
func (e *engine) randDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if e.rnd == nil {
		return time.Duration(rand.Int64N(int64(d))) + 1
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
	e.cancelGeneral()
	e.rtxAt = time.Time{}
	for a, g := range e.groups {
		e.stopTimer(g)
		g.fmCount, g.srcRtx, g.qSources, g.repeats = 0, nil, nil, 0
		if !g.state.IsMember() {
			delete(e.groups, a)
		}
	}
	e.timers, e.nTimers = nil, 0
}

// cancelGeneral cancels the pending General Query response.
func (e *engine) cancelGeneral() {
	e.genAt, e.genEnd, e.genAfter, e.genList, e.genLeft = time.Time{}, time.Time{}, netip.Addr{}, nil, 0
}

// cancelGroupTimers cancels the pending IGMPv3/MLDv2 Group Timers (in
// these modes the per-group timers only time query responses).
func (e *engine) cancelGroupTimers() {
	for _, g := range e.groups {
		e.stopTimer(g)
		g.qSources = nil
		e.forgetIfIdle(g)
	}
}

// addGroup records g (the map is made on the first group).
func (e *engine) addGroup(g *group) {
	if e.groups == nil {
		e.groups = make(map[netip.Addr]*group)
	}
	e.groups[g.addr] = g
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

func isMember(g *group) bool { return g.state.IsMember() }
func anyGroup(*group) bool   { return true }

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
		if !ok || !ga.IsMulticast() {
			continue // a group of the other family is not ours
		}
		if !wire.IsReportable(ga) {
			// Link-local control groups and groups of scope 0/1 are never
			// reported (RFC 9776 §5, RFC 9777 §6); those that can arrive
			// on the link are still addresses a query may be sent to.
			e.setLocal(ga, d.New.IsMember())
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

// setLocal records whether the never-reported group a is joined. IPv6
// groups of scope 0 or 1 never appear on a link (RFC 4291 §2.7) and are
// not recorded.
func (e *engine) setLocal(a netip.Addr, joined bool) {
	if s := wire.MulticastScope(a); e.fam.v6 && s <= 1 {
		return
	}
	if !joined {
		delete(e.local, a)
		if len(e.local) == 0 {
			e.local = nil
		}
		return
	}
	if e.local == nil {
		e.local = make(map[netip.Addr]struct{}, 1)
	}
	e.local[a] = struct{}{}
}

// Receive implements Engine. The input checks follow RFC 9776 §4 and §9.1
// (TTL 1; Router Alert on v2/v3 queries; query destinations) and RFC 9777
// §5, §5.1.14 and §6.2 (link-local source, hop limit 1, Router Alert on
// queries with the MLD value 0 of RFC 2711).
func (e *engine) Receive(now time.Time, msg Received) {
	if e.shut {
		return
	}
	e.advance(now)
	if msg.HopLimit != 1 {
		e.cnt.DroppedBadHopLimit++
		e.log.Debug("dropped message with bad hop limit", "source", msg.Src, "hop_limit", msg.HopLimit)
		return
	}
	src, ok := e.fam.normAddr(msg.Src)
	if !ok || src.IsMulticast() || e.fam.v6 && !src.IsLinkLocalUnicast() ||
		!e.fam.v6 && src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		// RFC 9777 §5.1.14: a Query from :: or any other address that is
		// not link-local MUST be silently discarded, with a warning logged.
		e.cnt.DroppedBadSource++
		e.warn(now, "dropped message with invalid source address", "source", msg.Src)
		return
	}
	ra := msg.RouterAlert
	if e.fam.v6 && ra && msg.RouterAlertValue != 0 {
		// RFC 2711 §2.1: value 0 means the datagram contains an MLD
		// message; another value is no Router Alert for MLD.
		e.cnt.RouterAlertNotMLD++
		ra = false
	}
	m, err := e.fam.parse(msg.Payload)
	if err != nil {
		e.countParseError(err)
		e.log.Debug("dropped message", "source", src, "err", err)
		return
	}
	dst, _ := e.fam.normAddr(msg.Dst)
	switch m.kind {
	case kindQuery:
		e.receiveQuery(now, src, dst, ra, m)
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
	e.rateLimited(now, slog.LevelWarn, msg, args...)
}

// warnError is warn at error level.
func (e *engine) warnError(now time.Time, msg string, args ...any) {
	e.rateLimited(now, slog.LevelError, msg, args...)
}

func (e *engine) rateLimited(now time.Time, level slog.Level, msg string, args ...any) {
	if e.lastWarn.IsZero() || now.Sub(e.lastWarn) >= warnEvery {
		e.lastWarn = now
		e.log.Log(context.Background(), level, msg, args...)
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

// validQueryDst applies RFC 9776 §4.1.12 and RFC 9777 §5.1.15: General
// Queries are sent to the all-systems (all-nodes) group and specific
// queries to the queried group, but a Query sent to any address assigned
// to the interface MUST be accepted, unicast or multicast. A multicast
// destination is therefore accepted when it is all-systems (all-nodes),
// the queried group of a specific query, or any group the interface has
// joined. A unicast destination is accepted: the stack hands the engine
// only unicast messages sent to one of the interface's own addresses.
func (e *engine) validQueryDst(dst, group netip.Addr) bool {
	if !dst.IsValid() || dst.IsUnspecified() {
		return false
	}
	if !dst.IsMulticast() {
		return true
	}
	return dst == e.fam.allSystems || !group.IsUnspecified() && dst == group || e.joined(dst)
}

// joined reports whether the interface listens to the multicast address a.
func (e *engine) joined(a netip.Addr) bool {
	if g := e.groups[a]; g != nil && g.state.IsMember() {
		return true
	}
	_, ok := e.local[a]
	return ok
}

func (e *engine) receiveQuery(now time.Time, src, dst netip.Addr, ra bool, m inMsg) {
	// RFC 9776 §9.1: hosts SHOULD ignore v2 or v3 Queries without the Router
	// Alert option (IGMPv1 queries never carried it); RFC 9777 §6.2: an MLD
	// Query without Router Alert is dropped.
	if !ra && m.level != levelV1 && !e.cfg.AcceptWithoutRouterAlert {
		e.cnt.DroppedNoRouterAlert++
		e.log.Debug("dropped query without router alert", "source", src)
		return
	}
	if !e.validQueryDst(dst, m.group) {
		e.cnt.DroppedBadDestination++
		e.log.Debug("dropped query sent to a wrong destination", "source", src, "dst", dst, "group", m.group)
		return
	}
	e.cnt.QueriesReceived++
	e.querier = Querier{Addr: src, Version: e.fam.version(m.level), LastQuery: now, MaxResp: m.maxResp}
	general := m.group.IsUnspecified()
	if m.level < levelV3 && (wire.IsSSM(m.group) || general && e.anySSM()) {
		// RFC 9776 §7.2.1: an SSM-aware host SHOULD log an error on an
		// IGMPv1 Query, IGMPv2 General Query or IGMPv2 Group-Specific Query
		// for an SSM address (likewise RFC 9777 §8.2.1 for MLDv1).
		e.warnError(now, "older-version query while source-specific groups are joined; "+
			"set ForceVersion to keep source filtering", "source", src, "version", e.fam.version(m.level), "group", m.group)
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
		e.log.Debug("older version querier present", "version", e.fam.version(m.level), "source", src, "until", e.olderUntil[m.level])
		e.setMode(e.computeMode(now))
	}
	if e.mode == levelV3 {
		srcs := m.sources
		if m.level < levelV3 {
			srcs = nil
		}
		e.v3Query(now, m.group, srcs, e.responseWindow(m.maxResp))
	} else {
		// In IGMPv1/v2 and MLDv1 modes a newer query is answered as an
		// older one: its sources are ignored (RFC 2236 §2.5).
		e.v12Query(now, m.group, e.responseWindow(m.maxResp))
	}
}

// responseWindow is the part of a query's Max Resp Time the engine
// schedules its response in: all of it less Config.ResponseMargin, the
// margin at most half of it.
func (e *engine) responseWindow(maxResp time.Duration) time.Duration {
	if e.cfg.ResponseMargin <= 0 {
		return maxResp
	}
	return maxResp - min(e.cfg.ResponseMargin, maxResp/2)
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
// RFC 2710 §4), and the repetitions of our Leave (Done) for it: the group
// has another member, so a repeated Leave would only start another
// last-member query (or, on a switch with immediate leave, cut that member
// off). In IGMPv3/MLDv2 mode reports are not suppressed (RFC 9776 §7.2.2
// allows it, but SSM-aware hosts MUST NOT).
func (e *engine) receiveReport(src, dst netip.Addr, m inMsg) {
	if !src.IsUnspecified() && src == e.src {
		return // our own report looped back
	}
	if !dst.IsValid() || dst.IsMulticast() && dst != m.group || dst.IsUnspecified() {
		e.cnt.DroppedBadDestination++
		e.log.Debug("dropped report sent to a wrong destination", "source", src, "dst", dst, "group", m.group)
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
	e.forgetIfIdle(g)
	e.log.Debug("report suppressed", "group", g.addr, "by", src)
}

// Tick implements Engine.
func (e *engine) Tick(now time.Time) {
	if e.shut {
		// Only the repetitions of the final reports run (see Shutdown);
		// the mode no longer changes.
		e.tickMode(now)
		return
	}
	e.advance(now)
	if e.reannounce {
		e.reannounce = false
		e.reannounceAll(now)
	}
	e.tickMode(now)
}

func (e *engine) tickMode(now time.Time) {
	if e.mode == levelV3 {
		e.v3Tick(now)
	} else {
		e.v12Tick(now)
	}
}

// Reannounce implements Engine: the link came (back) up, and what was sent
// or pending while it was down is lost. As Linux does on NETDEV_UP
// (ip_mc_up and ipv6_mc_up: the querier's learned values are reset, then
// igmp_group_added / igmp6_group_added report every group as newly
// joined), the learned Robustness Variable, Query Interval and Query
// Response Interval return to the configured values, pending query
// responses are cancelled, and every group is reported again (see
// reannounceAll). The Older Version Querier Present timers keep running:
// reports of the older version are understood by newer routers, not the
// other way round.
func (e *engine) Reannounce(now time.Time) {
	if e.shut {
		return
	}
	e.advance(now)
	e.robustness, e.queryInterval, e.queryRespInterval = e.cfg.Robustness, e.cfg.QueryInterval, e.cfg.QueryResponseInterval
	e.cancelGeneral()
	if e.mode == levelV3 {
		e.cancelGroupTimers()
	}
	e.reannounce = false
	e.reannounceAll(now)
}

// reannounceAll reports every group again as if the router had heard
// nothing of it. A joined group is reported as a new join (RFC 9776 §5.1
// Table 1 from INCLUDE {}): TO_EX(B) for EXCLUDE(B), ALLOW(A) for
// INCLUDE(A), or TO_IN(A) again when a change to INCLUDE was still being
// retransmitted; the sources whose BLOCK or ALLOW was still being
// retransmitted, and the leaves still being retransmitted, are sent again.
// Each of these gets [Robustness Variable] fresh transmissions, the first
// at once. In IGMPv1/v2 and MLDv1 modes a joined group gets the
// unsolicited reports of a join and a group still being left its Leave
// (Done) repetitions again.
func (e *engine) reannounceAll(now time.Time) {
	gs := e.sortedGroups(anyGroup)
	if len(gs) == 0 {
		return
	}
	if e.mode != levelV3 {
		for _, g := range gs {
			switch {
			case g.state.IsMember():
				e.v12Join(now, g)
			case g.repeats > 0:
				e.v12SendLeave(now, g)
			}
		}
		return
	}
	r := e.robustness
	var pending []*group
	for _, g := range gs {
		if g.state.Mode == membership.Exclude {
			g.fmCount, g.srcRtx = r, nil
		} else {
			if g.fmCount > 0 {
				g.fmCount = r
			}
			for s := range g.srcRtx {
				g.srcRtx[s] = r
			}
			if g.fmCount == 0 && len(g.state.Sources) > 0 {
				if g.srcRtx == nil {
					g.srcRtx = make(map[netip.Addr]int, len(g.state.Sources))
				}
				for _, s := range g.state.Sources {
					g.srcRtx[s] = r
				}
			}
		}
		if g.changePending() {
			pending = append(pending, g)
		}
	}
	e.rtxAt = time.Time{} // re-armed from now
	e.sendChanges(now, pending)
}

// NextTimer implements Engine. After Shutdown only the final reports'
// repetitions are timers.
func (e *engine) NextTimer() (time.Time, bool) {
	if e.reannounce && !e.shut {
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
	if !e.shut {
		for _, t := range e.olderUntil {
			consider(t)
		}
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

// Shutdown implements Engine: every joined group is left as by a
// StateChanged to INCLUDE {}, so its final report is the one an ordinary
// leave gets, repeated as every state change is. In IGMPv3/MLDv2 mode that
// is RFC 9776 §5.1 Table 1 (RFC 9777 §6.1): BLOCK(A) for INCLUDE(A),
// TO_IN {} for EXCLUDE(B), sent at once and [Robustness Variable] - 1
// times more at random delays in (0, [Unsolicited Report Interval]]; in
// IGMPv2/MLDv1 mode a Leave (Done) by the last reporter, repeated the same
// way (see v12Leave); in IGMPv1 mode nothing. Leaves already being
// repeated go on. Pending query responses are cancelled.
func (e *engine) Shutdown(now time.Time) {
	if e.shut {
		return
	}
	e.advance(now)
	e.reannounce = false
	e.local = nil
	e.cancelGeneral()
	members := e.sortedGroups(isMember)
	if e.mode == levelV3 {
		e.cancelGroupTimers()
		var changed []*group
		for _, g := range members {
			if e.v3Change(g, membership.State{}) {
				changed = append(changed, g)
			}
		}
		e.sendChanges(now, changed)
	} else {
		for _, g := range members {
			e.v12Change(now, g, membership.State{})
		}
	}
	e.shut = true
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

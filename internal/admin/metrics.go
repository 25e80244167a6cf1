package admin

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MetricsContentType is the Prometheus text exposition format, version 0.0.4.
const MetricsContentType = "text/plain; version=0.0.4; charset=utf-8"

type sample struct {
	labels []string // name, value pairs
	value  float64
}

type family struct {
	name, help, typ string
	samples         []sample
}

type metricSet struct{ fams []*family }

func (m *metricSet) add(name, typ, help string) *family {
	f := &family{name: name, help: help, typ: typ}
	m.fams = append(m.fams, f)
	return f
}

func (f *family) set(v float64, labels ...string) {
	f.samples = append(f.samples, sample{labels: labels, value: v})
}

// A CounterMetric is the metric family one of the stack's interface
// counters (Counters.Other, keyed by the stack's counter name) is
// exported as.
type CounterMetric struct {
	Counter string // the stack's name, e.g. "bad_ip_checksum"
	Name    string // the metric family, e.g. "mcast_rx_bad_ip_checksum_total"
	Help    string
}

// CounterMetrics lists the named families of the stack's further interface
// counters, in exposition order. A counter of Counters.Other not listed
// here is exported in the catch-all family mcast_interface_events_total
// with its name as the "counter" label (none is, for the stack of this
// tree: a test checks every stack counter has its family).
var CounterMetrics = []CounterMetric{
	{"not_for_us", "mcast_rx_not_for_host_total", "Unicast frames or packets received that are not addressed to this host."},
	{"not_ip", "mcast_rx_not_ip_total", "Frames received of EtherTypes other than IPv4 and IPv6."},
	{"link_8023", "mcast_rx_link_8023_total", "IEEE 802.3 frames received (a length instead of an EtherType: STP, LLC)."},
	{"bad_link", "mcast_rx_bad_link_total", "Truncated Ethernet frames received."},
	{"bad_ip_truncated", "mcast_rx_bad_ip_truncated_total", "IPv4/IPv6 packets received shorter than their headers or length fields say."},
	{"bad_ip_checksum", "mcast_rx_bad_ip_checksum_total", "IPv4 packets received with a bad header checksum."},
	{"bad_ip_malformed", "mcast_rx_bad_ip_malformed_total", "IPv4/IPv6 packets received with other invalid or unsupported headers."},
	{"fragments", "mcast_rx_fragments_total", "IP fragments received (not reassembled, dropped)."},
	{"bad_udp_truncated", "mcast_rx_bad_udp_truncated_total", "UDP datagrams received shorter than their header or length field say."},
	{"bad_udp_checksum", "mcast_rx_bad_udp_checksum_total", "UDP datagrams received with a bad checksum."},
	{"bad_udp_malformed", "mcast_rx_bad_udp_malformed_total", "UDP datagrams received with other invalid headers."},
	{"no_socket", "mcast_rx_no_socket_total", "UDP datagrams received for a port no socket is bound to."},
	{"filtered", "mcast_rx_filtered_total", "Multicast datagrams received that no socket's source filter accepts."},
	{"proto_queued", "mcast_rx_protocol_queued_total", "IGMP/MLD messages received and handed to the protocol worker."},
	{"proto_dropped", "mcast_rx_protocol_queue_dropped_total", "IGMP/MLD messages received and dropped because the protocol worker's queue was full."},
	{"bad_icmpv6", "mcast_rx_bad_icmpv6_checksum_total", "ICMPv6 messages received with a bad checksum."},
	{"looped_back", "mcast_tx_looped_back_total", "Multicast datagrams sent and delivered to local sockets as well."},
	{"frames_sent", "mcast_frames_sent_total", "Frames written to the link."},
	{"send_errors", "mcast_tx_errors_total", "Frames the link refused (including reports given up after retries)."},
	{"send_blocked", "mcast_tx_blocked_total", "Transmissions the link could not take at once (would block), retried."},
	{"link_changes", "mcast_link_changes_total", "Link state changes the link reported."},
}

// WriteMetrics writes st in the Prometheus text format. Every metric is
// named mcast_*; counters end in _total; families without a sample are
// left out.
func WriteMetrics(w io.Writer, st Status) error {
	now := st.Time
	if now.IsZero() {
		now = time.Now()
	}
	var m metricSet
	build := m.add("mcast_build_info", "gauge", "Always 1; the labels identify the serving program's build (revision: the VCS revision, empty when not recorded).")
	ifaces := m.add("mcast_interfaces", "gauge", "Interfaces the stack runs on.")
	groups := m.add("mcast_groups", "gauge", "Interface group records (memberships of the interface).")
	sources := m.add("mcast_sources", "gauge", "Sources in the interface group filters, summed over groups.")
	refs := m.add("mcast_socket_memberships", "gauge", "Socket memberships, summed over the interface groups.")
	gSources := m.add("mcast_group_sources", "gauge", "Sources in one interface group record's filter; the mode label is its filter mode (exclude with 0 sources: any source).")
	gRefs := m.add("mcast_group_socket_memberships", "gauge", "Socket memberships holding one interface group record (0 while its leave is still being repeated).")
	gRetrans := m.add("mcast_group_pending_retransmissions", "gauge", "State-change transmissions still to send for one group (report retransmissions or leave repetitions).")
	version := m.add("mcast_protocol_version", "gauge", "IGMP or MLD compatibility mode in force.")
	robust := m.add("mcast_robustness", "gauge", "Robustness Variable in use (learned from the querier or configured).")
	qi := m.add("mcast_query_interval_seconds", "gauge", "Query Interval in use (learned from the querier or configured).")
	qri := m.add("mcast_query_response_interval_seconds", "gauge", "Query Response Interval in use.")
	older := m.add("mcast_older_querier_present_seconds", "gauge", "Seconds left on the Older Version Querier Present timer of an older protocol version; absent when it does not run.")
	qPresent := m.add("mcast_querier_present", "gauge", "1 once a query was heard on the link, else 0.")
	qInfo := m.add("mcast_querier_info", "gauge", "Always 1; the labels are the source address and protocol version of the last query heard.")
	qLast := m.add("mcast_querier_last_query_timestamp_seconds", "gauge", "Unix time of the last query heard.")
	qAge := m.add("mcast_querier_last_query_age_seconds", "gauge", "Seconds since the last query heard, at the time of the scrape.")
	qMaxResp := m.add("mcast_querier_max_response_seconds", "gauge", "Maximum Response Time of the last query heard.")
	pendSC := m.add("mcast_pending_state_changes", "gauge", "Groups with state-change report retransmissions pending.")
	pendQR := m.add("mcast_pending_query_responses", "gauge", "Pending query responses.")
	reportsSent := m.add("mcast_reports_sent_total", "counter", "IGMP/MLD report packets sent.")
	leavesSent := m.add("mcast_leaves_sent_total", "counter", "IGMPv2 leave / MLDv1 done messages sent.")
	queries := m.add("mcast_queries_received_total", "counter", "IGMP/MLD queries received.")
	reportsRcvd := m.add("mcast_reports_received_total", "counter", "Other hosts' IGMP/MLD reports received.")
	protoDrop := m.add("mcast_protocol_dropped_total", "counter", "IGMP/MLD messages dropped, by reason.")
	drvCalls := m.add("mcast_driver_calls_total", "counter", "Multicast filter programming calls to the driver.")
	drvReqs := m.add("mcast_driver_requests_total", "counter", "Multicast filter changes requested (requests minus calls were coalesced).")
	drvErrs := m.add("mcast_driver_errors_total", "counter", "Failed multicast filter programming calls.")
	drvEntries := m.add("mcast_driver_filter_entries", "gauge", "Addresses in the driver's exact multicast filter.")
	drvAll := m.add("mcast_driver_all_multicast", "gauge", "1 when the driver filter fell back to all-multicast.")
	drvPend := m.add("mcast_driver_update_pending", "gauge", "1 while the programmed filter differs from the needed one.")
	frames := m.add("mcast_frames_received_total", "counter", "Frames received from the link.")
	dgRcvd := m.add("mcast_datagrams_received_total", "counter", "UDP datagrams delivered to sockets.")
	dgDrop := m.add("mcast_datagrams_dropped_total", "counter", "UDP datagrams dropped because a socket receive queue was full.")
	named := make(map[string]*family, len(CounterMetrics))
	for _, c := range CounterMetrics {
		named[c.Counter] = m.add(c.Name, "counter", c.Help)
	}
	other := m.add("mcast_interface_events_total", "counter", "Interface counters kept by the stack that have no metric of their own, by name.")
	appRcvd := m.add("mcast_app_datagrams_received_total", "counter", "Datagrams the program read from its sockets.")
	appBytes := m.add("mcast_app_bytes_received_total", "counter", "Payload bytes the program read from its sockets.")
	appSent := m.add("mcast_app_datagrams_sent_total", "counter", "Datagrams the program sent.")

	bv, gv := st.Build.Version, st.Build.GoVersion
	if bv == "" {
		bv = "(devel)"
	}
	if gv == "" {
		gv = "unknown"
	}
	build.set(1, "version", bv, "revision", st.Build.Revision, "goversion", gv)
	ifaces.set(float64(len(st.Interfaces)))
	for _, ifc := range st.Interfaces {
		in := ifc.Name
		for _, fam := range ifc.Families {
			var ns, nr int
			for _, g := range fam.Groups {
				ns += len(g.Sources)
				nr += g.Refs
				gSources.set(float64(len(g.Sources)), "interface", in, "family", fam.Family, "group", g.Group, "mode", g.Mode)
				gRefs.set(float64(g.Refs), "interface", in, "family", fam.Family, "group", g.Group)
				gRetrans.set(float64(g.Retransmissions), "interface", in, "family", fam.Family, "group", g.Group)
			}
			groups.set(float64(len(fam.Groups)), "interface", in, "family", fam.Family)
			sources.set(float64(ns), "interface", in, "family", fam.Family)
			refs.set(float64(nr), "interface", in, "family", fam.Family)
			p := fam.Protocol
			pl := []string{"interface", in, "protocol", p.Name}
			version.set(float64(p.Version), pl...)
			robust.set(float64(p.Robustness), pl...)
			qi.set(p.QueryIntervalSec, pl...)
			qri.set(p.QueryResponseIntervalSec, pl...)
			vs := make([]string, 0, len(p.OlderQuerierUntil))
			for v := range p.OlderQuerierUntil {
				vs = append(vs, v)
			}
			sort.Strings(vs)
			for _, v := range vs {
				left := p.OlderQuerierUntil[v].Sub(now).Seconds()
				older.set(max(left, 0), "interface", in, "protocol", p.Name, "version", v)
			}
			if q := p.Querier; q != nil {
				qPresent.set(1, pl...)
				qInfo.set(1, "interface", in, "protocol", p.Name, "address", q.Addr, "version", strconv.Itoa(q.Version))
				qLast.set(float64(q.LastQuery.UnixNano())/1e9, pl...)
				qAge.set(max(now.Sub(q.LastQuery).Seconds(), 0), pl...)
				qMaxResp.set(q.MaxRespSec, pl...)
			} else {
				qPresent.set(0, pl...)
			}
			pendSC.set(float64(p.PendingStateChanges), pl...)
			pendQR.set(float64(p.PendingQueryResponses), pl...)
			c := p.Counters
			reportsSent.set(float64(c.ReportsSent), pl...)
			leavesSent.set(float64(c.LeavesSent), pl...)
			queries.set(float64(c.QueriesReceived), pl...)
			reportsRcvd.set(float64(c.ReportsReceived), pl...)
			for _, d := range []struct {
				reason string
				v      uint64
			}{
				{"no_router_alert", c.DroppedNoRouterAlert},
				{"bad_hop_limit", c.DroppedBadHopLimit},
				{"bad_source", c.DroppedBadSource},
				{"bad_checksum", c.DroppedBadChecksum},
				{"malformed", c.DroppedMalformed},
				{"other", c.DroppedOther},
			} {
				protoDrop.set(float64(d.v), "interface", in, "protocol", p.Name, "reason", d.reason)
			}
		}
		drvCalls.set(float64(ifc.Driver.Calls), "interface", in)
		drvReqs.set(float64(ifc.Driver.Requests), "interface", in)
		drvErrs.set(float64(ifc.Driver.Errors), "interface", in)
		drvEntries.set(float64(len(ifc.Driver.Exact)), "interface", in)
		drvAll.set(b2f(ifc.Driver.AllMulticast), "interface", in)
		drvPend.set(b2f(ifc.Driver.Pending), "interface", in)
		frames.set(float64(ifc.Counters.FramesReceived), "interface", in)
		dgRcvd.set(float64(ifc.Counters.DatagramsReceived), "interface", in)
		dgDrop.set(float64(ifc.Counters.DatagramsDropped), "interface", in)
		for _, c := range CounterMetrics {
			if v, ok := ifc.Counters.Other[c.Counter]; ok {
				named[c.Counter].set(float64(v), "interface", in)
			}
		}
		var unnamed []string
		for k := range ifc.Counters.Other {
			if named[k] == nil {
				unnamed = append(unnamed, k)
			}
		}
		sort.Strings(unnamed)
		for _, k := range unnamed {
			other.set(float64(ifc.Counters.Other[k]), "interface", in, "counter", k)
		}
	}
	appRcvd.set(float64(st.App.DatagramsReceived))
	appBytes.set(float64(st.App.BytesReceived))
	appSent.set(float64(st.App.DatagramsSent))

	bw := bufio.NewWriter(w)
	for _, f := range m.fams {
		if len(f.samples) == 0 {
			continue
		}
		bw.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		bw.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		for _, s := range f.samples {
			bw.WriteString(f.name)
			if len(s.labels) > 0 {
				bw.WriteByte('{')
				for i := 0; i+1 < len(s.labels); i += 2 {
					if i > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(s.labels[i] + `="` + escapeLabel(s.labels[i+1]) + `"`)
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(strconv.FormatFloat(s.value, 'g', -1, 64))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// escapeLabel escapes a label value; invalid UTF-8 (the format wants
// UTF-8) is replaced by U+FFFD.
func escapeLabel(s string) string { return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

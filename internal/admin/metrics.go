package admin

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"
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

// WriteMetrics writes st in the Prometheus text format. Every metric is
// named mcast_*; counters end in _total.
func WriteMetrics(w io.Writer, st Status) error {
	var m metricSet
	ifaces := m.add("mcast_interfaces", "gauge", "Interfaces the stack runs on.")
	groups := m.add("mcast_groups", "gauge", "Interface group records (memberships of the interface).")
	sources := m.add("mcast_sources", "gauge", "Sources in the interface group filters, summed over groups.")
	refs := m.add("mcast_socket_memberships", "gauge", "Socket memberships, summed over the interface groups.")
	version := m.add("mcast_protocol_version", "gauge", "IGMP or MLD compatibility mode in force.")
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
	other := m.add("mcast_interface_events_total", "counter", "Further interface counters kept by the stack, by name.")
	appRcvd := m.add("mcast_app_datagrams_received_total", "counter", "Datagrams the program read from its sockets.")
	appBytes := m.add("mcast_app_bytes_received_total", "counter", "Payload bytes the program read from its sockets.")
	appSent := m.add("mcast_app_datagrams_sent_total", "counter", "Datagrams the program sent.")

	ifaces.set(float64(len(st.Interfaces)))
	for _, ifc := range st.Interfaces {
		in := ifc.Name
		for _, fam := range ifc.Families {
			var ns, nr int
			for _, g := range fam.Groups {
				ns += len(g.Sources)
				nr += g.Refs
			}
			groups.set(float64(len(fam.Groups)), "interface", in, "family", fam.Family)
			sources.set(float64(ns), "interface", in, "family", fam.Family)
			refs.set(float64(nr), "interface", in, "family", fam.Family)
			p := fam.Protocol
			pl := []string{"interface", in, "protocol", p.Name}
			version.set(float64(p.Version), pl...)
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
		names := make([]string, 0, len(ifc.Counters.Other))
		for k := range ifc.Counters.Other {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			other.set(float64(ifc.Counters.Other[k]), "interface", in, "counter", k)
		}
	}
	appRcvd.set(float64(st.App.DatagramsReceived))
	appBytes.set(float64(st.App.BytesReceived))
	appSent.set(float64(st.App.DatagramsSent))

	bw := bufio.NewWriter(w)
	for _, f := range m.fams {
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

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

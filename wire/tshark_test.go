package wire

import (
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writePcap writes a classic pcap file (magic a1b2c3d4, version 2.4,
// snaplen 65535, linktype 1 = Ethernet) holding frames.
func writePcap(path string, frames [][]byte) error {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(b[4:], 2)
	binary.LittleEndian.PutUint16(b[6:], 4)
	binary.LittleEndian.PutUint32(b[16:], 65535)
	binary.LittleEndian.PutUint32(b[20:], 1)
	for i, f := range frames {
		var r [16]byte
		binary.LittleEndian.PutUint32(r[0:], uint32(1700000000+i))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(f)))
		b = append(append(b, r[:]...), f...)
	}
	return os.WriteFile(path, b, 0o644)
}

type tsharkFrame struct {
	name  string
	frame []byte
	// want maps a tshark field name to the exact value tshark prints.
	want map[string]string
}

func tsharkFrames(t *testing.T) []tsharkFrame {
	igmp := func(m IGMPMessage, dst netip.Addr) []byte {
		return frame4(t, ProtoIGMP, dst, true, mustIGMP(t, m))
	}
	mld := func(m MLDMessage, src, dst netip.Addr) []byte {
		return frame6(t, ProtoICMPv6, src, dst, true, mustMLD(t, m, src, dst))
	}
	rep4, _ := ParseIGMP(igmpGoldens()[8].wire)
	rep6, _ := ParseMLD(mldGoldens()[5].wire)
	u4, _ := AppendUDP(nil, host4, group4, 1234, 5000, []byte("hello"))
	u6, _ := AppendUDP(nil, host6, group6, 1234, 5000, []byte("hello"))
	vlan := AppendEthernetVLAN(nil, MAC{1, 0, 0x5e, 0, 0, 0x16}, hostMAC, 0x2064, EtherTypeIPv4)
	vlan, _ = AppendIPv4(vlan, IPv4{TTL: 1, Protocol: ProtoIGMP, Src: host4, Dst: IGMPv3Routers, RouterAlert: true},
		mustIGMP(t, IGMPv3Report{Records: []GroupRecord{{Type: ChangeToExclude, Group: group4}}}))
	return []tsharkFrame{
		{"igmp v1 query", igmp(IGMPv12{Type: IGMPTypeQuery, Group: unspec4}, IPv4AllSystems),
			map[string]string{"igmp.type": "0x11", "igmp.version": "1"}},
		{"igmp v1 report", igmp(IGMPv12{Type: IGMPTypeV1Report, Group: group4}, group4),
			map[string]string{"igmp.type": "0x12", "igmp.version": "1", "igmp.maddr": "239.1.2.3"}},
		{"igmp v2 query", igmp(IGMPv12{Type: IGMPTypeQuery, MaxRespTime: 100, Group: group4}, group4),
			map[string]string{"igmp.type": "0x11", "igmp.version": "2", "igmp.maddr": "239.1.2.3"}},
		{"igmp v2 report", igmp(IGMPv12{Type: IGMPTypeV2Report, Group: group4}, group4),
			map[string]string{"igmp.type": "0x16", "igmp.version": "2", "igmp.maddr": "239.1.2.3"}},
		{"igmp v2 leave", igmp(IGMPv12{Type: IGMPTypeV2Leave, Group: group4}, IPv4AllRouters),
			map[string]string{"igmp.type": "0x17", "igmp.version": "2", "igmp.maddr": "239.1.2.3"}},
		{"igmp v3 query", igmp(IGMPv3Query{MaxRespCode: 100, Group: group4, SuppressRouterSide: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{srcA4, srcB4}}, group4),
			map[string]string{"igmp.type": "0x11", "igmp.version": "3", "igmp.maddr": "239.1.2.3", "igmp.s": "1",
				"igmp.qrv": "2", "igmp.qqic": "125", "igmp.num_src": "2", "igmp.saddr": "192.0.2.100,192.0.2.101"}},
		{"igmp v3 report", igmp(rep4, IGMPv3Routers),
			map[string]string{"igmp.type": "0x22", "igmp.version": "3", "igmp.num_grp_recs": "6",
				"igmp.record_type": "1,2,3,4,5,6", "igmp.aux_data_len": "0,0,0,1,0,2",
				"igmp.maddr": "239.1.2.3,239.1.2.4,239.1.2.5,239.1.2.6,232.1.1.1,232.1.1.1",
				"igmp.saddr": "192.0.2.100,192.0.2.100,192.0.2.101,192.0.2.101,192.0.2.100"}},
		{"mld v1 query", mld(MLDv1{Type: MLDTypeQuery, MaxRespDelay: 10000, Group: unspec6}, router6, IPv6AllNodes),
			map[string]string{"icmpv6.type": "130", "icmpv6.mld.maximum_response_delay": "10000", "icmpv6.mld.multicast_address": "::"}},
		{"mld v1 report", mld(MLDv1{Type: MLDTypeV1Report, Group: group6}, host6LL, group6),
			map[string]string{"icmpv6.type": "131", "icmpv6.mld.multicast_address": "ff0e::1:3"}},
		{"mld v1 done", mld(MLDv1{Type: MLDTypeV1Done, Group: group6}, host6LL, IPv6AllRouters),
			map[string]string{"icmpv6.type": "132", "icmpv6.mld.multicast_address": "ff0e::1:3"}},
		{"mld v2 query", mld(MLDv2Query{MaxRespCode: 10000, Group: group6, SuppressRouterSide: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{srcA6}}, router6, group6),
			map[string]string{"icmpv6.type": "130", "icmpv6.mld.multicast_address": "ff0e::1:3", "icmpv6.mld.flag.s": "1",
				"icmpv6.mld.flag.qrv": "2", "icmpv6.mld.qqi": "125", "icmpv6.mld.nb_sources": "1", "icmpv6.mld.source_address": "2001:db8::64"}},
		{"mld v2 report", mld(rep6, host6LL, MLDv2Routers),
			map[string]string{"icmpv6.type": "143", "icmpv6.mldr.nb_mcast_records": "6",
				"icmpv6.mldr.mar.record_type": "1,2,3,4,5,6", "icmpv6.mldr.mar.aux_data_len": "0,0,0,1,0,2",
				"icmpv6.mldr.mar.multicast_address": "ff0e::1:3,ff0e::1:4,ff0e::1:5,ff0e::1:6,ff3e::8000:1,ff3e::8000:1",
				"icmpv6.mldr.mar.source_address":    "2001:db8::64,2001:db8::64,2001:db8::65,2001:db8::65,2001:db8::64"}},
		{"udp v4", frame4(t, ProtoUDP, group4, false, u4),
			map[string]string{"udp.srcport": "1234", "udp.dstport": "5000", "udp.length": "13"}},
		{"udp v6", frame6(t, ProtoUDP, host6, group6, false, u6),
			map[string]string{"udp.srcport": "1234", "udp.dstport": "5000", "udp.length": "13"}},
		{"vlan igmp", vlan, map[string]string{"vlan.id": "100", "vlan.priority": "1", "igmp.type": "0x22", "igmp.record_type": "4"}},
	}
}

// The checksum-status and Router Alert fields every frame is checked against.
var tsharkCommon = []string{"ip.checksum.status", "igmp.checksum.status", "icmpv6.checksum.status", "udp.checksum.status",
	"ip.opt.type", "ipv6.opt.type", "ip.ttl", "ipv6.hlim"}

func TestTshark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tshark test runs as root only (CI installs tshark as root)")
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not on PATH; install with: apt-get install -y --no-install-recommends tshark")
	}
	frames := tsharkFrames(t)
	path := filepath.Join(t.TempDir(), "wire.pcap")
	var raw [][]byte
	for _, f := range frames {
		raw = append(raw, f.frame)
	}
	if err := writePcap(path, raw); err != nil {
		t.Fatal(err)
	}
	fieldSet := map[string]bool{}
	var fields []string
	add := func(f string) {
		if !fieldSet[f] {
			fieldSet[f] = true
			fields = append(fields, f)
		}
	}
	add("frame.number")
	add("_ws.expert.message")
	add("_ws.malformed")
	for _, f := range tsharkCommon {
		add(f)
	}
	for _, f := range frames {
		for k := range f.want {
			add(k)
		}
	}
	args := []string{"-r", path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=/t", "-E", "aggregator=,", "-E", "occurrence=a"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	out, err := cmd.Output()
	if err != nil {
		// An unknown preference or field name fails the run: report it.
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("tshark: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark printed %d lines for %d frames:\n%s", len(lines), len(frames), out)
	}
	for i, line := range lines {
		f := frames[i]
		vals := strings.Split(line, "\t")
		got := map[string]string{}
		for j, name := range fields {
			if j < len(vals) {
				got[name] = vals[j]
			}
		}
		if got["_ws.malformed"] != "" || got["_ws.expert.message"] != "" {
			t.Errorf("%s: tshark expert info %q malformed %q", f.name, got["_ws.expert.message"], got["_ws.malformed"])
		}
		for _, c := range []string{"ip.checksum.status", "igmp.checksum.status", "icmpv6.checksum.status", "udp.checksum.status"} {
			// 1 = Good; empty when the protocol is absent.
			if v := got[c]; v != "" && v != "1" {
				t.Errorf("%s: %s = %q, want 1 (good)", f.name, c, v)
			}
		}
		switch {
		case strings.HasPrefix(f.name, "igmp") || f.name == "vlan igmp":
			if got["ip.checksum.status"] != "1" || got["igmp.checksum.status"] != "1" {
				t.Errorf("%s: checksums not verified by tshark: %v", f.name, got)
			}
			if got["ip.opt.type"] != "148" || got["ip.ttl"] != "1" {
				t.Errorf("%s: Router Alert/TTL: opt %q ttl %q", f.name, got["ip.opt.type"], got["ip.ttl"])
			}
		case strings.HasPrefix(f.name, "mld"):
			if got["icmpv6.checksum.status"] != "1" || got["ipv6.hlim"] != "1" {
				t.Errorf("%s: ICMPv6 checksum/hop limit: %v", f.name, got)
			}
			if got["ipv6.opt.type"] != "0x05,0x01" {
				t.Errorf("%s: Hop-by-Hop options %q, want Router Alert then PadN", f.name, got["ipv6.opt.type"])
			}
		case strings.HasPrefix(f.name, "udp"):
			if got["udp.checksum.status"] != "1" {
				t.Errorf("%s: UDP checksum status %q", f.name, got["udp.checksum.status"])
			}
		}
		for k, w := range f.want {
			if got[k] != w {
				t.Errorf("%s: %s = %q, want %q", f.name, k, got[k], w)
			}
		}
	}
}

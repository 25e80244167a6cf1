package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// modelDevice is the device under test of the memlan backend: a querier
// and a sender upstream of an IGMP/MLD snooping switch, all in one. It
// learns each host's filter from the reports it hears (as a router does,
// per reporting host), forwards an (S,G) datagram to the port when some
// host's learned filter accepts S — at once after the report that made it
// so, and stops at once after the report that ended it (no last-member
// query) — and sends General Queries. With flood set it forwards every
// datagram, as a switch without snooping does. The measurements then
// show what a perfect snooping switch looks like (join and leave
// latencies of about one packet gap) or one that floods.
type modelDevice struct {
	lan     *memlan.LAN
	mac     wire.MAC
	groups  []netip.Addr
	sources []netip.Addr
	port    uint16
	pps     float64
	size    int
	flood   bool
	qi      time.Duration
	q4      *querier // learns IGMP; also builds the IGMPv3 query
	// mu guards fwd and learned6; held for map updates only.
	mu       sync.Mutex
	fwd      map[sgKey]int                                  // hosts whose learned filter accepts S in G
	learned6 map[netip.Addr]map[netip.Addr]membership.State // MLD: group -> host -> state
}

var (
	modelMAC   = wire.MAC{0x02, 0x00, 0x5e, 0xd0, 0x0d, 0x01}
	modelAddr4 = netip.MustParseAddr("192.0.2.254")
	modelAddr6 = netip.MustParseAddr("fe80::5e:d00d:1")
)

func newModelDevice(lan *memlan.LAN, groups, sources []netip.Addr, port uint16, pps float64, size int, flood bool, qi time.Duration) *modelDevice {
	d := &modelDevice{
		lan: lan, mac: modelMAC, groups: groups, sources: sources, port: port,
		pps: pps, size: size, flood: flood, qi: qi,
		q4:       newQuerier(modelMAC, modelAddr4),
		fwd:      map[sgKey]int{},
		learned6: map[netip.Addr]map[netip.Addr]membership.State{},
	}
	lan.Capture(func(from string, frame []byte) {
		if from != memlan.InjectName {
			d.observe(frame)
		}
	})
	return d
}

// accepts lists the sources of the universe a filter accepts.
func (d *modelDevice) accepts(st membership.State) []netip.Addr {
	var out []netip.Addr
	for _, s := range d.sources {
		if st.Accepts(s) {
			out = append(out, s)
		}
	}
	return out
}

func (d *modelDevice) adjust(group netip.Addr, old, new membership.State) {
	for _, s := range d.accepts(old) {
		k := sgKey{s, group}
		if d.fwd[k]--; d.fwd[k] <= 0 {
			delete(d.fwd, k)
		}
	}
	for _, s := range d.accepts(new) {
		d.fwd[sgKey{s, group}]++
	}
}

// observe learns from a report a host put on the LAN.
func (d *modelDevice) observe(frame []byte) {
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		return
	}
	switch eth.EtherType {
	case wire.EtherTypeIPv4:
		ip, err := wire.ParseIPv4(eth.Payload)
		if err != nil || ip.Protocol != wire.ProtoIGMP {
			return
		}
		recs := igmpRecords(ip.Payload)
		if len(recs) == 0 {
			return
		}
		d.mu.Lock()
		d.q4.mu.Lock()
		for _, r := range recs {
			old := d.q4.learned[r.Group][ip.Src]
			d.q4.apply(ip.Src, r)
			d.adjust(r.Group, old, d.q4.learned[r.Group][ip.Src])
		}
		d.q4.mu.Unlock()
		d.mu.Unlock()
	case wire.EtherTypeIPv6:
		ip, err := wire.ParseIPv6(eth.Payload)
		if err != nil || ip.NextHeader != wire.ProtoICMPv6 {
			return
		}
		msg, err := wire.ParseMLD(ip.Payload)
		if err != nil {
			return
		}
		var recs []wire.GroupRecord
		switch m := msg.(type) {
		case wire.MLDv2Report:
			recs = m.Records
		case wire.MLDv1:
			switch m.Type {
			case wire.MLDTypeV1Report:
				recs = []wire.GroupRecord{{Type: wire.ModeIsExclude, Group: m.Group}}
			case wire.MLDTypeV1Done:
				recs = []wire.GroupRecord{{Type: wire.ChangeToInclude, Group: m.Group}}
			}
		}
		if len(recs) == 0 {
			return
		}
		d.mu.Lock()
		// The querier's learning logic, applied to MLD's own table.
		q := &querier{learned: d.learned6}
		for _, r := range recs {
			old := d.learned6[r.Group][ip.Src]
			q.apply(ip.Src, r)
			d.adjust(r.Group, old, d.learned6[r.Group][ip.Src])
		}
		d.mu.Unlock()
	}
}

// igmpRecords converts any IGMP report into v3 records (v1/v2 reports are
// EXCLUDE {}, a v2 leave TO_IN {}: RFC 9776 §7.3.2).
func igmpRecords(b []byte) []wire.GroupRecord {
	msg, err := wire.ParseIGMP(b)
	if err != nil {
		return nil
	}
	switch m := msg.(type) {
	case wire.IGMPv3Report:
		return m.Records
	case wire.IGMPv12:
		switch m.Type {
		case wire.IGMPTypeV1Report, wire.IGMPTypeV2Report:
			return []wire.GroupRecord{{Type: wire.ModeIsExclude, Group: m.Group}}
		case wire.IGMPTypeV2Leave:
			return []wire.GroupRecord{{Type: wire.ChangeToInclude, Group: m.Group}}
		}
	}
	return nil
}

// learnedMemberships counts the (host, group) memberships the device holds.
func (d *modelDevice) learnedMemberships() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, hosts := range d.learned6 {
		n += len(hosts)
	}
	d.q4.mu.Lock()
	for _, hosts := range d.q4.learned {
		n += len(hosts)
	}
	d.q4.mu.Unlock()
	return n
}

// run sends General Queries every qi and, pps times a second, one datagram
// of every (S,G) the device forwards, until ctx ends.
func (d *modelDevice) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.queryLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		d.sendLoop(ctx)
	}()
	wg.Wait()
}

func (d *modelDevice) queryLoop(ctx context.Context) {
	send := func() {
		for _, f := range d.queries() {
			d.lan.Inject(f)
		}
	}
	send()
	t := time.NewTicker(d.qi)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			send()
		}
	}
}

// queries builds an IGMPv3 and an MLDv2 General Query (Max Resp 1 s).
func (d *modelDevice) queries() [][]byte {
	var out [][]byte
	qqic := uint8(min(d.qi/time.Second, 255))
	if f, err := d.q4.generalQuery(10, max(qqic, 1)); err == nil {
		out = append(out, f)
	}
	mld, err := wire.MLDv2Query{MaxRespCode: 1000, Group: netip.IPv6Unspecified(), QRV: 2, QQIC: max(qqic, 1)}.Append(nil, modelAddr6, wire.IPv6AllNodes)
	if err == nil {
		dst, _ := wire.MulticastMAC(wire.IPv6AllNodes)
		f := wire.AppendEthernet(nil, dst, d.mac, wire.EtherTypeIPv6)
		if f, err = wire.AppendIPv6(f, wire.IPv6{HopLimit: 1, NextHeader: wire.ProtoICMPv6, Src: modelAddr6, Dst: wire.IPv6AllNodes, RouterAlert: true}, mld); err == nil {
			out = append(out, f)
		}
	}
	return out
}

func (d *modelDevice) sendLoop(ctx context.Context) {
	frames := make([][]byte, 0, len(d.groups)*len(d.sources))
	keys := make([]sgKey, 0, cap(frames))
	payload := make([]byte, d.size)
	for _, g := range d.groups {
		for _, s := range d.sources {
			f, err := udpFrame(d.mac, s, g, d.port, payload)
			if err != nil {
				continue
			}
			frames = append(frames, f)
			keys = append(keys, sgKey{s, g})
		}
	}
	interval := time.Duration(float64(time.Second) / d.pps)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		fwd := make([]bool, len(keys))
		for i, k := range keys {
			fwd[i] = d.flood || d.fwd[k] > 0
		}
		d.mu.Unlock()
		for i, f := range frames {
			if fwd[i] {
				d.lan.Inject(f)
			}
		}
	}
}

// udpFrame builds a UDP datagram from src to group:port.
func udpFrame(srcMAC wire.MAC, src, group netip.Addr, port uint16, payload []byte) ([]byte, error) {
	dst, ok := wire.MulticastMAC(group)
	if !ok {
		return nil, fmt.Errorf("udp frame: %v is not a multicast group", group)
	}
	u, err := wire.AppendUDP(nil, src, group, 40000, port, payload)
	if err != nil {
		return nil, fmt.Errorf("udp frame: %w", err)
	}
	if group.Is4() {
		f := wire.AppendEthernet(nil, dst, srcMAC, wire.EtherTypeIPv4)
		return wire.AppendIPv4(f, wire.IPv4{TTL: 8, Protocol: wire.ProtoUDP, Src: src, Dst: group}, u)
	}
	f := wire.AppendEthernet(nil, dst, srcMAC, wire.EtherTypeIPv6)
	return wire.AppendIPv6(f, wire.IPv6{HopLimit: 8, NextHeader: wire.ProtoUDP, Src: src, Dst: group}, u)
}

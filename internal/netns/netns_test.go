//go:build linux

package netns

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range []string{"mcs", "", "averyveryverylongprefix"} {
		for i := 0; i < 50; i++ {
			n := UniqueName(p)
			if len(n) > MaxIfNameLen {
				t.Fatalf("UniqueName(%q) = %q: longer than %d", p, n, MaxIfNameLen)
			}
			if len(n) < 4 {
				t.Fatalf("UniqueName(%q) = %q: too short", p, n)
			}
			if seen[n] {
				t.Fatalf("UniqueName(%q) repeated %q", p, n)
			}
			seen[n] = true
		}
	}
	if n := UniqueName("mcs"); !strings.HasPrefix(n, "mcs") {
		t.Fatalf("UniqueName(mcs) = %q", n)
	}
}

const mdbFixture = `[{"mdb":[
 {"index":2,"dev":"br0","port":"pa","grp":"ff3e::1","state":"temp","filter_mode":"include","protocol":"kernel","flags":[],
  "source_list":[{"address":"2001:db8::3","timer":"  3.10"}],"timer":"  0.00"},
 {"index":2,"dev":"br0","port":"pa","grp":"232.1.1.2","src":"192.0.2.3","state":"temp","filter_mode":"include","protocol":"kernel","flags":["added_by_star_ex"],"timer":"  2.50"},
 {"index":2,"dev":"br0","port":"pb","grp":"232.1.1.1","state":"temp","filter_mode":"include","protocol":"kernel","flags":[],
  "source_list":[{"address":"192.0.2.3","timer":" 24.41"},{"address":"192.0.2.4","timer":" 24.41"}],"timer":"  0.00"},
 {"index":2,"dev":"br0","port":"pb","grp":"239.1.1.1","state":"temp","filter_mode":"exclude","protocol":"kernel","flags":[],"timer":" 25.00"}
],"router":{"br0":[{"port":"pb","timer":" 12.0","type":"temp"}]}}]`

func TestParseMDB(t *testing.T) {
	es, err := ParseMDB([]byte(mdbFixture))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 {
		t.Fatalf("got %d entries, want 4: %+v", len(es), es)
	}
	pb := FilterMDB(es, func(e MDBEntry) bool { return e.Port == "pb" })
	if len(pb) != 2 {
		t.Fatalf("port pb: %d entries, want 2", len(pb))
	}
	e := pb[0]
	if e.Grp != "232.1.1.1" || e.FilterMode != "include" || !e.HasSource("192.0.2.4") || e.HasSource("192.0.2.9") {
		t.Fatalf("unexpected entry %+v", e)
	}
	if got := strings.Join(e.Sources(), ","); got != "192.0.2.3,192.0.2.4" {
		t.Fatalf("Sources = %s", got)
	}
	if g, err := e.Group(); err != nil || !g.Is4() || !g.IsMulticast() {
		t.Fatalf("Group = %v, %v", g, err)
	}
	if es[1].Src != "192.0.2.3" || len(es[1].Flags) != 1 {
		t.Fatalf("S,G entry %+v", es[1])
	}
	if pb[1].FilterMode != "exclude" || len(pb[1].SourceList) != 0 {
		t.Fatalf("exclude entry %+v", pb[1])
	}
	if es, err := ParseMDB([]byte("  \n")); err != nil || es != nil {
		t.Fatalf("empty: %v %v", es, err)
	}
	if _, err := ParseMDB([]byte("{")); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

// TestVethAcrossNamespaces builds A <-veth-> bridge in B <-veth-> C and
// sends UDP from A to C (no ping binary is assumed).
func TestVethAcrossNamespaces(t *testing.T) {
	RequireRoot(t)
	a, b, c := New(t, "mcsa"), New(t, "mcsb"), New(t, "mcsc")
	for _, ns := range []*NS{a, b, c} {
		if err := ns.Quiet(); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := a.ReadSysctl("net.ipv6.conf.default.disable_ipv6"); err != nil || v != "1" {
		t.Fatalf("sysctl in namespace = %q, %v", v, err)
	}
	br := UniqueName("mcsbr")
	if err := b.AddBridge(br, BridgeOptions{Snooping: true, Querier: true, IGMPVersion: 3, MLDVersion: 2, FastTimers: true}); err != nil {
		t.Fatal(err)
	}
	out := b.MustRun(t, "ip", "-d", "link", "show", br)
	if !strings.Contains(out, "mcast_querier 1") || !strings.Contains(out, "mcast_query_interval 500") {
		t.Fatalf("bridge options not applied:\n%s", out)
	}
	va, pa := UniqueName("mcsva"), UniqueName("mcspa")
	vc, pc := UniqueName("mcsvc"), UniqueName("mcspc")
	if err := AddVeth(a, va, b, pa); err != nil {
		t.Fatal(err)
	}
	if err := AddVeth(c, vc, b, pc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pa, pc} {
		if err := b.SetMaster(p, br); err != nil {
			t.Fatal(err)
		}
		if err := b.LinkUp(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.AddAddr(va, "192.0.2.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddAddr(vc, "192.0.2.2/24"); err != nil {
		t.Fatal(err)
	}
	if err := a.LinkUp(va); err != nil {
		t.Fatal(err)
	}
	if err := c.LinkUp(vc); err != nil {
		t.Fatal(err)
	}

	// The socket is created inside C by Do and keeps living there.
	var conn *net.UDPConn
	if err := c.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := a.Do(func() error {
		s, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9999})
		if err != nil {
			return err
		}
		defer s.Close()
		// Repeat: the first datagram may wait for ARP.
		for i := 0; i < 5; i++ {
			if _, err := s.Write([]byte("hello")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no datagram across the bridge: %v", err)
	}
	if string(buf[:n]) != "hello" || !from.IP.Equal(net.IPv4(192, 0, 2, 1)) {
		t.Fatalf("got %q from %v", buf[:n], from)
	}

	// Do really switches namespaces and restores the original one.
	if err := a.Do(func() error {
		if _, err := net.InterfaceByName(va); err != nil {
			return err
		}
		if _, err := net.InterfaceByName(vc); err == nil {
			return errors.New("saw C's interface from A")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(va); err == nil {
		t.Fatal("namespace interface visible in the host namespace")
	}
	if err := a.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic not reported: %v", err)
	}

	// A static mdb entry shows up in the parsed mdb.
	b.MustRun(t, "bridge", "mdb", "add", "dev", br, "port", pa, "grp", "232.1.1.1", "permanent")
	es, err := b.MDBPort(pa)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		if e.Grp == "232.1.1.1" && e.Port == pa && e.State == "permanent" {
			found = true
		}
	}
	if !found {
		t.Fatalf("static group missing from mdb of %s: %+v", pa, es)
	}
}

func TestWithoutCapability(t *testing.T) {
	RequireRoot(t)
	err := WithoutCapability(unix.CAP_NET_RAW, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	if !errors.Is(err, unix.EPERM) {
		t.Fatalf("AF_PACKET socket without CAP_NET_RAW: %v, want EPERM", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatalf("capability not restored: %v", err)
	}
	unix.Close(fd)
}

func TestRunErrors(t *testing.T) {
	RequireRoot(t)
	ns := New(t, "mcsr")
	if _, err := ns.Run("ip", "link", "show", "nonexistent0"); !errors.Is(err, ErrCommand) {
		t.Fatalf("err = %v, want ErrCommand", err)
	}
	if _, err := os.Stat("/run/netns/" + ns.Name); err != nil {
		t.Fatalf("namespace file: %v", err)
	}
}

// TestThreadedNAPI turns TSO off on one end of a veth and GRO on on the
// other, makes the GRO end's NAPI threaded and checks its kernel thread.
func TestThreadedNAPI(t *testing.T) {
	RequireRoot(t)
	a, b := New(t, "mcsna"), New(t, "mcsnb")
	va, vb := UniqueName("mcsnva"), UniqueName("mcsnvb")
	if err := AddVeth(a, va, b, vb); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { return a.LinkUp(va) }, func() error { return b.LinkUp(vb) },
		func() error { return a.SetTSO(va, false) }, func() error { return b.SetGRO(vb, true) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetGRO("nosuchdev0", true); err == nil {
		t.Error("SetGRO on a missing device succeeded")
	}
	pids, err := b.SetThreadedNAPI(vb)
	if errors.Is(err, ErrNoThreadedNAPI) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(comm), "napi/"+vb+"-") {
			t.Errorf("thread %d is %q, want napi/%s-ID", pid, strings.TrimSpace(string(comm)), vb)
		}
	}
	if got, err := NAPIThreads(va); err != nil || len(got) != 0 {
		t.Errorf("NAPIThreads(%s) (NAPI not threaded) = %v, %v; want none", va, got, err)
	}
	if _, err := b.SetThreadedNAPI("../x"); err == nil {
		t.Error("SetThreadedNAPI accepted a path as interface name")
	}
}

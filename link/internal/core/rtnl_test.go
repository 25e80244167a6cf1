//go:build linux

package core

import (
	"encoding/binary"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/link"
)

// nlLink builds one rtnetlink link message.
func nlLink(typ uint16, seq uint32, family uint8, index int32, flags uint32, attrs int) []byte {
	l := unix.NLMSG_HDRLEN + unix.SizeofIfInfomsg + attrs
	b := make([]byte, (l+3)&^3)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(l))
	ne.PutUint16(b[4:], typ)
	ne.PutUint32(b[8:], seq)
	body := b[unix.NLMSG_HDRLEN:]
	body[0] = family
	ne.PutUint32(body[4:], uint32(index))
	ne.PutUint32(body[8:], flags)
	return b
}

func nlErr(seq uint32, errno unix.Errno) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+4+unix.NLMSG_HDRLEN)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_ERROR)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[unix.NLMSG_HDRLEN:], uint32(-int32(errno)))
	return b
}

func TestParseLinkMessages(t *testing.T) {
	var buf []byte
	buf = append(buf, nlLink(unix.RTM_NEWLINK, 1, unix.AF_UNSPEC, 7, unix.IFF_UP|unix.IFF_RUNNING, 13)...)
	buf = append(buf, nlLink(unix.RTM_DELLINK, 0, unix.AF_BRIDGE, 7, unix.IFF_UP, 0)...)
	buf = append(buf, nlErr(3, unix.ENODEV)...)
	buf = append(buf, nlLink(unix.RTM_DELLINK, 0, unix.AF_UNSPEC, 7, 0, 5)...)
	var links []linkMsg
	var errs []nlError
	if err := parseLinkMessages(buf, func(m linkMsg) { links = append(links, m) }, func(e nlError) { errs = append(errs, e) }); err != nil {
		t.Fatal(err)
	}
	if len(links) != 3 || len(errs) != 1 || errs[0] != (nlError{seq: 3, errno: unix.ENODEV}) {
		t.Fatalf("links %+v errs %+v", links, errs)
	}
	var states []link.LinkState
	for _, m := range links {
		if st, ok := stateOf(m); ok {
			states = append(states, st)
		}
	}
	// The AF_BRIDGE RTM_DELLINK (a port leaving a bridge) is not the
	// interface going away.
	if len(states) != 2 || !states[0].Up || states[0].Gone || !states[1].Gone {
		t.Fatalf("states %+v", states)
	}
	if st, _ := stateOf(linkMsg{typ: unix.RTM_NEWLINK, flags: unix.IFF_UP}); st.Up {
		t.Fatal("IFF_UP without IFF_RUNNING (no carrier) counted as up")
	}
	if err := parseLinkMessages(buf[:len(buf)-8], func(linkMsg) {}, func(nlError) {}); err == nil {
		t.Fatal("truncated message accepted")
	}
}

// FuzzParseLinkMessages: any buffer parses without panicking, and every
// message reported lies within it.
func FuzzParseLinkMessages(f *testing.F) {
	f.Add(nlLink(unix.RTM_NEWLINK, 1, 0, 2, unix.IFF_UP, 20))
	f.Add(append(nlErr(1, unix.ENODEV), nlLink(unix.RTM_DELLINK, 0, 0, 2, 0, 0)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_ = parseLinkMessages(b, func(linkMsg) { n++ }, func(nlError) { n++ })
		if n > len(b)/unix.NLMSG_HDRLEN {
			t.Fatalf("%d messages from %d bytes", n, len(b))
		}
	})
}

// TestMonitorVeth: the core reports a veth's state changes as the kernel
// makes them: carrier lost when the peer goes down and back when it comes
// up, admin down and up of the interface itself, no Gone when it joins and
// leaves a bridge, and Gone when it is deleted.
func TestMonitorVeth(t *testing.T) {
	netns.RequireRoot(t)
	a, b := netns.New(t, "mona"), netns.New(t, "monb")
	va, vb := netns.UniqueName("mva"), netns.UniqueName("mvb")
	if err := netns.AddVeth(a, va, b, vb); err != nil {
		t.Fatal(err)
	}
	if err := a.LinkUp(va); err != nil {
		t.Fatal(err)
	}
	d := newFakeDev(t)
	var c *Core
	if err := a.Do(func() error {
		ifi, err := net.InterfaceByName(va)
		if err != nil {
			return err
		}
		rc, err := d.f.SyscallConn()
		if err != nil {
			return err
		}
		c, err = New(Config{Backend: "fake", Name: va, Index: ifi.Index, Conn: rc}, d)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := newRecorder()
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	// The peer is down: no carrier.
	r.waitFor(t, "initial state", func() bool { return len(r.states) == 1 })
	expect := func(n int, up bool) {
		t.Helper()
		r.waitFor(t, "state change", func() bool { return len(r.states) >= n })
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.states) != n || r.states[n-1].Up != up || r.states[n-1].Gone {
			t.Fatalf("states %+v, want %d with the last up=%v", r.states, n, up)
		}
	}
	expect(1, false)
	b.MustRun(t, "ip", "link", "set", vb, "up")
	expect(2, true)
	b.MustRun(t, "ip", "link", "set", vb, "down")
	expect(3, false)
	b.MustRun(t, "ip", "link", "set", vb, "up")
	expect(4, true)
	a.MustRun(t, "ip", "link", "set", va, "down")
	expect(5, false)
	a.MustRun(t, "ip", "link", "set", va, "up")
	expect(6, true)
	br := netns.UniqueName("mbr")
	if err := a.AddBridge(br, netns.BridgeOptions{}); err != nil {
		t.Fatal(err)
	}
	a.MustRun(t, "ip", "link", "set", va, "master", br)
	a.MustRun(t, "ip", "link", "set", va, "nomaster")
	a.MustRun(t, "ip", "link", "del", va)
	r.waitFor(t, "Gone", func() bool { return len(r.states) > 0 && r.states[len(r.states)-1].Gone })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.states[:len(r.states)-1] {
		if st.Gone {
			t.Fatalf("Gone before the interface was deleted: %+v", r.states)
		}
	}
}

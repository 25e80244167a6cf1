package stack

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
)

// allowedErrs are the errors random membership operations may return.
var allowedErrs = []error{
	membership.ErrAlreadyJoined, membership.ErrNotJoined, membership.ErrSourceExists,
	membership.ErrSourceNotFound, membership.ErrModeMismatch, net.ErrClosed,
}

// naiveMerge is RFC 9776 §3.2's merge of member socket states.
func naiveMerge(sts []membership.State) membership.State {
	var excl [][]netip.Addr
	var incl []netip.Addr
	for _, st := range sts {
		if st.Mode == membership.Exclude {
			excl = append(excl, st.Sources)
		} else {
			incl = append(incl, st.Sources...)
		}
	}
	var out []netip.Addr
	mode := membership.Include
	if len(excl) > 0 {
		mode = membership.Exclude
		for _, a := range excl[0] {
			keep := !slices.Contains(incl, a)
			for _, e := range excl[1:] {
				keep = keep && slices.Contains(e, a)
			}
			if keep {
				out = append(out, a)
			}
		}
	} else {
		out = incl
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return membership.State{Mode: mode, Sources: slices.Compact(out)}
}

// Many goroutines join, leave, block, close, deliver and send at once;
// afterwards the interface state matches the sockets' filters, and closing
// everything leaves no group, only the always-joined MACs in the driver,
// and no goroutine.
func TestConcurrentOperations(t *testing.T) {
	check := goroutineBaseline(t)
	cfg := Config{QueueLen: 64}
	rec := newRecorder(&cfg)
	s := New(cfg)
	var ifcs [2]*Interface
	var eps [2]*testEndpoint
	for i, a := range [][]netip.Prefix{{hostAddr, host6}, {host2Addr, host2v6}} {
		eps[i] = newTestEndpoint([]string{"test0", "test1"}[i], byte(i+1))
		eps[i].setDelay(time.Millisecond)
		ifc, err := s.AddInterface(eps[i], InterfaceConfig{Addrs: a})
		must(t, err)
		ifcs[i] = ifc
	}

	run := 1500 * time.Millisecond
	if testing.Short() {
		run = 300 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var final []*Conn // sockets left open, checked below
	var readers sync.WaitGroup

	member := func(seed uint64) {
		r := rand.New(rand.NewPCG(seed, 1))
		is4 := seed%2 == 0
		groups, srcs := mGroups6, mSrcs6
		network, laddr := "udp6", netip.MustParseAddrPort("[::]:7000")
		if is4 {
			groups, srcs = mGroups4, mSrcs4
			network, laddr = "udp4", netip.MustParseAddrPort("0.0.0.0:7000")
		}
		open := func() *Conn {
			c, err := s.ListenUDP(network, laddr)
			if err != nil {
				t.Error(err)
				return nil
			}
			// A reader per socket, blocked in ReadMsg most of the time;
			// Close must wake it.
			readers.Go(func() {
				buf := make([]byte, 1500)
				for {
					_, _, err := c.ReadMsg(buf)
					switch {
					case errors.Is(err, net.ErrClosed):
						return
					case errors.Is(err, os.ErrDeadlineExceeded):
						time.Sleep(200 * time.Microsecond)
					case err != nil:
						t.Error(err)
						return
					}
				}
			})
			return c
		}
		c := open()
		for ctx.Err() == nil && c != nil {
			ifc := ifcs[r.IntN(2)]
			g := groups[r.IntN(len(groups))]
			src := srcs[r.IntN(len(srcs))]
			var err error
			switch r.IntN(12) {
			case 0:
				err = c.JoinGroup(ifc, g)
			case 1:
				err = c.LeaveGroup(ifc, g)
			case 2, 3:
				err = c.JoinSourceSpecificGroup(ifc, g, src)
			case 4:
				err = c.LeaveSourceSpecificGroup(ifc, g, src)
			case 5:
				err = c.BlockSource(ifc, g, src)
			case 6:
				err = c.UnblockSource(ifc, g, src)
			case 7:
				err = c.SetSourceFilter(ifc, g, membership.Mode(r.IntN(2)), srcs[:r.IntN(len(srcs)+1)])
				if errors.Is(err, membership.ErrNotJoined) {
					err = nil // INCLUDE {} on an unjoined group
				}
			case 8:
				c.SetReadDeadline(time.Now().Add(time.Duration(r.IntN(2000)) * time.Microsecond))
			case 9:
				_, _, err = c.SourceFilter(ifc, g)
				if errors.Is(err, membership.ErrNotJoined) {
					err = nil
				}
			case 10:
				if r.IntN(8) == 0 {
					must2(t, c.Close())
					c = open()
				}
			case 11:
				time.Sleep(100 * time.Microsecond)
			}
			if err != nil && !slices.ContainsFunc(allowedErrs, func(e error) bool { return errors.Is(err, e) }) {
				t.Errorf("unexpected error: %v", err)
			}
		}
		mu.Lock()
		final = append(final, c)
		mu.Unlock()
	}
	for i := range 6 {
		wg.Go(func() { member(uint64(i)) })
	}
	// Deliverers: random multicast frames on both interfaces.
	for i := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 2))
			var frames [][]byte
			for _, g := range mGroups4 {
				for _, src := range append(slices.Clone(mSrcs4), mOther4) {
					frames = append(frames, udpFrame(t, src, g, 1234, 7000, []byte("c")))
				}
			}
			for _, g := range mGroups6 {
				for _, src := range append(slices.Clone(mSrcs6), mOther6) {
					frames = append(frames, udpFrame(t, src, g, 1234, 7000, []byte("c")))
				}
			}
			for ctx.Err() == nil {
				eps[i].inject(frames[r.IntN(len(frames))])
			}
		})
	}
	// A sender with loopback, on each interface in turn.
	wg.Go(func() {
		c4 := mustListen(t, s, "udp4", "0.0.0.0:0")
		defer c4.Close()
		for i := 0; ctx.Err() == nil; i++ {
			if err := c4.SetMulticastInterface(ifcs[i%2]); err != nil {
				t.Error(err)
				return
			}
			if _, err := c4.WriteToAddrPort([]byte("s"), netip.AddrPortFrom(mGroups4[i%3], 7000)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	// Observers.
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, ifc := range ifcs {
				ifc.Status()
				sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := ifc.Sync(sctx); err != nil {
					t.Error(err)
				}
				scancel()
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		s.Close()
		readers.Wait()
		return
	}

	// Quiescent: each interface's records are the merge of the open
	// sockets' filters.
	for x, ifc := range ifcs {
		var want []membership.GroupInfo
		for _, fam := range [][]netip.Addr{mGroups4, mGroups6} {
			var part []membership.GroupInfo
			for _, g := range fam {
				var sts []membership.State
				for _, c := range final {
					if mode, srcs, err := c.SourceFilter(ifc, g); err == nil {
						sts = append(sts, membership.State{Mode: mode, Sources: srcs})
					}
				}
				if len(sts) > 0 {
					part = append(part, membership.GroupInfo{Group: g, State: naiveMerge(sts), Refs: len(sts)})
				}
			}
			slices.SortFunc(part, func(a, b membership.GroupInfo) int { return a.Group.Compare(b.Group) })
			want = append(want, part...)
		}
		if got := ifc.Status().Groups; !sameGroups(got, want) {
			t.Fatalf("%s groups %v, want %v", ifc.Name(), got, want)
		}
		syncIfc(t, ifc)
		var member []netip.Addr
		for _, gi := range want {
			member = append(member, gi.Group)
		}
		if got := eps[x].lastFilter(); !slices.Equal(got, macSet(member...)) {
			t.Fatalf("%s filter %v, want %v", ifc.Name(), got, macSet(member...))
		}
	}

	for _, c := range final {
		must(t, c.Close())
	}
	readers.Wait() // Close woke them all
	for x, ifc := range ifcs {
		syncIfc(t, ifc)
		if g := ifc.Status().Groups; len(g) != 0 {
			t.Fatalf("%s groups after closing all: %v", ifc.Name(), g)
		}
		if got := eps[x].lastFilter(); !slices.Equal(got, alwaysMACs) {
			t.Fatalf("%s filter after closing all %v, want %v", ifc.Name(), got, alwaysMACs)
		}
		for _, fam := range []string{"igmp", "mld"} {
			ds, _ := rec.engine(ifc.Name(), fam).snapshot()
			f := newFolder()
			if err := f.fold(ds); err != nil || len(f.state) != 0 {
				t.Fatalf("%s %s: %d deltas fold to %v (%v)", ifc.Name(), fam, len(ds), f.state, err)
			}
		}
	}
	must(t, s.Close())
	check()
}

// must2 is must for use off the test goroutine.
func must2(t *testing.T, err error) {
	if err != nil {
		t.Error(err)
	}
}

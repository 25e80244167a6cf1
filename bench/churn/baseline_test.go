package churn

// Baselines (a) "sync" and (b) "seed": a deliberately small model of the
// FreeBSD 8 structures the seed touches, kept only to compare mcstack
// against. Locks map one to one:
//
//	demux.mu   (sync.RWMutex) = pcbinfo lock (INP_INFO): receive read-locks
//	                            it for the socket lookup; bind and close
//	                            write-lock it.
//	sock.mu    (sync.RWMutex) = the per-socket INP lock guarding its
//	                            memberships (inp_moptions).
//	ifnet.mu   (sync.Mutex)   = IN_MULTI_LOCK: interface group refcounts;
//	                            the driver call for a first join or last
//	                            leave runs while it is held (in_getmulti /
//	                            inm_release -> if_addmulti / if_delmulti ->
//	                            driver ioctl), one call per membership.
//
// Receive never takes ifnet.mu (FreeBSD 8 ip_input passes multicast up
// without an in_multi lookup; udp_input filters per socket).

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// ifnet is the interface-level group layer shared by both baselines.
type ifnet struct {
	ep   *slowEndpoint
	mu   sync.Mutex // IN_MULTI_LOCK
	refs map[netip.Addr]int
}

// program pushes the whole desired set to the driver. Called with mu held.
func (n *ifnet) program() {
	macs := make([]wire.MAC, 0, len(n.refs))
	for g := range n.refs {
		m, _ := wire.MulticastMAC(g)
		macs = append(macs, m)
	}
	n.ep.SetMulticastFilter(macs)
}

func (n *ifnet) joinLocked(g netip.Addr) {
	n.refs[g]++
	if n.refs[g] == 1 {
		n.program()
	}
}

func (n *ifnet) leaveLocked(g netip.Addr) {
	n.refs[g]--
	if n.refs[g] == 0 {
		delete(n.refs, g)
		n.program()
	}
}

type baseline struct {
	seed bool // false: design (a) sync; true: design (b) the seed's task
	ifn  ifnet

	mu    sync.RWMutex // pcbinfo
	ports map[uint16][]*bsock

	gc     [][]netip.Addr // imo_gc_list, guarded by ifn.mu as in the patch
	gcWake chan struct{}  // taskqueue_enqueue
	gcDone chan struct{}
}

type bsock struct {
	sys    *baseline
	port   uint16
	mu     sync.RWMutex // INP lock
	groups []netip.Addr
	q      chan []byte
	closed chan struct{}
	once   sync.Once
}

const sockQueue = 1024 // datagrams queued per socket before drops

func newBaseline(ep *slowEndpoint, seed bool) *baseline {
	s := &baseline{seed: seed, ports: map[uint16][]*bsock{}}
	s.ifn = ifnet{ep: ep, refs: map[netip.Addr]int{}}
	ep.Attach(link.FrameFunc(s.receive))
	if seed {
		s.gcWake = make(chan struct{}, 1)
		s.gcDone = make(chan struct{})
		go s.gcTask()
	}
	return s
}

func (s *baseline) handler() link.Handler { return s.ifn.ep.handler }

func (s *baseline) shutdown() {
	if s.seed {
		close(s.gcWake)
		<-s.gcDone
	}
}

// receive is ether_input -> ip_input -> udp_input, reduced to what matters.
func (s *baseline) receive(frame []byte) {
	if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 || ip[9] != 17 || fold(onesSum(0, ip[:ihl])) != 0xffff {
		return
	}
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	if !dst.IsMulticast() {
		return
	}
	udp := ip[ihl:]
	port := binary.BigEndian.Uint16(udp[2:4])
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return
	}
	payload := udp[8:ulen]

	s.mu.RLock() // INP_INFO_RLOCK
	for _, so := range s.ports[port] {
		so.mu.RLock() // INP_RLOCK; imo_multi_filter
		member := slices.Contains(so.groups, dst)
		so.mu.RUnlock()
		if !member {
			continue
		}
		p := append([]byte(nil), payload...)
		select {
		case so.q <- p:
		default: // socket buffer full: drop
		}
	}
	s.mu.RUnlock()
}

// listen is socket+bind (pcbinfo write lock, brief) then one
// IP_ADD_MEMBERSHIP per group (INP lock + IN_MULTI_LOCK across the driver).
func (s *baseline) listen(port uint16, groups []netip.Addr) (sock, error) {
	so := &bsock{sys: s, port: port, q: make(chan []byte, sockQueue), closed: make(chan struct{})}
	s.mu.Lock()
	s.ports[port] = append(s.ports[port], so)
	s.mu.Unlock()
	for _, g := range groups {
		so.mu.Lock()
		s.ifn.mu.Lock()
		s.ifn.joinLocked(g)
		s.ifn.mu.Unlock()
		so.groups = append(so.groups, g)
		so.mu.Unlock()
	}
	return so, nil
}

func (so *bsock) read(buf []byte) (int, error) {
	select {
	case p := <-so.q:
		return copy(buf, p), nil
	case <-so.closed:
		return 0, errSockClosed
	}
}

// close is udp_detach: under the pcbinfo write lock, in_pcbdetach
// (inp_freemoptions) and in_pcbfree (unlink).
func (so *bsock) close() error {
	so.once.Do(func() {
		s := so.sys
		s.mu.Lock() // INP_INFO_WLOCK
		so.mu.Lock()
		groups := so.groups
		so.groups = nil // inp->inp_moptions = NULL
		so.mu.Unlock()
		if s.seed {
			// The patch's inp_freemoptions: queue under IN_MULTI_LOCK and
			// enqueue the task. Taking IN_MULTI_LOCK here waits for any
			// driver call in progress, with the pcbinfo lock held.
			s.ifn.mu.Lock()
			s.gc = append(s.gc, groups)
			s.ifn.mu.Unlock()
			select {
			case s.gcWake <- struct{}{}:
			default:
			}
		} else {
			// Before the patch: every leave, and its driver call, right
			// here under the pcbinfo write lock.
			for _, g := range groups {
				s.ifn.mu.Lock() // in_leavegroup
				s.ifn.leaveLocked(g)
				s.ifn.mu.Unlock()
			}
		}
		l := s.ports[so.port] // in_pcbremlists
		if i := slices.Index(l, so); i >= 0 {
			s.ports[so.port] = slices.Delete(slices.Clone(l), i, i+1)
		}
		s.mu.Unlock()
		close(so.closed)
	})
	return nil
}

// gcTask is the patch's inp_gcmoptions: drain the list, dropping
// IN_MULTI_LOCK around each socket's teardown, whose in_leavegroup calls
// take it again for each membership (one driver call per group).
func (s *baseline) gcTask() {
	defer close(s.gcDone)
	for range s.gcWake {
		s.ifn.mu.Lock()
		for len(s.gc) > 0 {
			groups := s.gc[0]
			s.gc = s.gc[1:]
			s.ifn.mu.Unlock()
			for _, g := range groups { // inp_freemoptions_internal
				s.ifn.mu.Lock()
				s.ifn.leaveLocked(g)
				s.ifn.mu.Unlock()
			}
			s.ifn.mu.Lock()
		}
		s.ifn.mu.Unlock()
	}
}

package stack

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/clock"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/wire"
)

// protoRxQueue bounds the IGMP/MLD messages waiting for the protocol
// worker; a query flood beyond it is dropped and counted, never queued
// without bound and never slowing the receive path.
const protoRxQueue = 128

// rxMsg is an IGMP/MLD message copied off the receive path.
type rxMsg struct {
	msg proto.Received
	buf *[]byte
}

var rxBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1500); return &b }}

// protoWorker owns the interface's IGMP and MLD engines: it is the only
// goroutine that calls them. It feeds them coalesced state deltas, received
// messages and timer ticks, and transmits what they queue with no lock
// held.
type protoWorker struct {
	ifc       *Interface
	igmp, mld proto.Engine
	clock     clock.Clock

	kickc  chan struct{} // state deltas pending; capacity 1
	tickc  chan struct{} // an engine timer is due; capacity 1
	rx     chan rxMsg
	syncc  chan chan error
	stopc  chan struct{}
	done   chan struct{}
	frame  []byte // transmit buffer, used only by the worker goroutine
	timer  clock.Timer
	armed  time.Time
	status atomic.Pointer[engineStatus]
}

type engineStatus struct{ igmp, mld proto.Status }

func newProtoWorker(ifc *Interface) *protoWorker {
	cfg := &ifc.stack.cfg
	c4 := cfg.IGMP
	c4.Interface, c4.MTU, c4.Logger = ifc.name, ifc.mtu, ifc.log
	c4.Source = ifc.src4
	if !c4.Source.IsValid() {
		c4.Source = netip.IPv4Unspecified()
	}
	c6 := cfg.MLD
	c6.Interface, c6.MTU, c6.Logger = ifc.name, ifc.mtu, ifc.log
	c6.Source = ifc.src6LL
	w := &protoWorker{
		ifc:   ifc,
		igmp:  cfg.NewIGMP(c4),
		mld:   cfg.NewMLD(c6),
		clock: cfg.Clock,
		kickc: make(chan struct{}, 1),
		tickc: make(chan struct{}, 1),
		rx:    make(chan rxMsg, protoRxQueue),
		syncc: make(chan chan error),
		stopc: make(chan struct{}),
		done:  make(chan struct{}),
	}
	w.publish()
	return w
}

func (w *protoWorker) kick() {
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

// receive copies an IGMP/MLD message for the worker. Receive path: it
// never blocks.
func (w *protoWorker) receive(src, dst netip.Addr, hops uint8, ra bool, payload []byte) {
	bp := rxBufPool.Get().(*[]byte)
	*bp = append((*bp)[:0], payload...)
	m := rxMsg{msg: proto.Received{Src: src, Dst: dst, HopLimit: hops, RouterAlert: ra, Payload: *bp}, buf: bp}
	select {
	case w.rx <- m:
		w.ifc.counters.inc(cProtoQueued)
	default:
		rxBufPool.Put(bp)
		w.ifc.counters.inc(cProtoDropped)
	}
}

func (w *protoWorker) run() {
	defer close(w.done)
	delay := w.ifc.stack.cfg.CoalesceDelay
	for {
		var waiters []chan error
		select {
		case <-w.kickc:
			if delay > 0 {
				time.Sleep(delay)
			}
		case <-w.tickc:
		case m := <-w.rx:
			w.handle(m)
		case ch := <-w.syncc:
			waiters = append(waiters, ch)
		case <-w.stopc:
			w.finish()
			return
		}
		drainKick(w.kickc) // answered by this step (see filterWorker.run)
		w.step()
		for _, ch := range waiters {
			ch <- nil
		}
	}
}

func (w *protoWorker) handle(m rxMsg) {
	now := w.clock.Now()
	if m.msg.Src.Is4() {
		w.igmp.Receive(now, m.msg)
	} else {
		w.mld.Receive(now, m.msg)
	}
	rxBufPool.Put(m.buf)
}

// step hands the engines the coalesced deltas, runs their due timers,
// transmits and re-arms the timer.
func (w *protoWorker) step() {
	now := w.clock.Now()
	s := w.ifc.stack
	var v4, v6 []membership.Delta
	s.mu.Lock()
	// Once the interface is being removed, its pending deltas are the
	// removal's own releases: finish drops them and Shutdown reports.
	if !w.ifc.removed.Load() {
		v4, v6 = w.ifc.takeDeltasLocked()
	}
	s.mu.Unlock()
	if len(v4) > 0 {
		w.igmp.StateChanged(now, v4)
	}
	if len(v6) > 0 {
		w.mld.StateChanged(now, v6)
	}
	w.igmp.Tick(now)
	w.mld.Tick(now)
	w.transmitAll()
	w.rearm(now)
	w.publish()
}

func (w *protoWorker) transmitAll() {
	for _, e := range [...]proto.Engine{w.igmp, w.mld} {
		for _, p := range e.TakeOutgoing() {
			w.transmit(p)
		}
	}
}

func (w *protoWorker) transmit(p proto.Packet) {
	ifc := w.ifc
	mac, ok := wire.MulticastMAC(p.Dst)
	if !ok {
		ifc.log.Warn("engine emitted a packet to a non-multicast destination; dropped", "dst", p.Dst)
		ifc.counters.inc(cSendErrors)
		return
	}
	et := uint16(wire.EtherTypeIPv6)
	if p.Dst.Is4() {
		et = wire.EtherTypeIPv4
	}
	w.frame = wire.AppendEthernet(w.frame[:0], mac, ifc.mac, et)
	w.frame = append(w.frame, p.Data...)
	if err := ifc.ep.WriteFrame(w.frame); err != nil {
		ifc.counters.inc(cSendErrors)
		ifc.log.Debug("report not sent", "dst", p.Dst, "err", err)
		return
	}
	ifc.counters.inc(cFramesSent)
}

func (w *protoWorker) rearm(now time.Time) {
	next, ok := earliest(w.igmp, w.mld)
	if ok && next.Equal(w.armed) && w.timer != nil {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.armed = time.Time{}
	if !ok {
		return
	}
	w.armed = next
	w.timer = w.clock.AfterFunc(max(next.Sub(now), 0), func() {
		select {
		case w.tickc <- struct{}{}:
		default:
		}
	})
}

func earliest(es ...proto.Engine) (time.Time, bool) {
	var at time.Time
	found := false
	for _, e := range es {
		if t, ok := e.NextTimer(); ok && (!found || t.Before(at)) {
			at, found = t, true
		}
	}
	return at, found
}

func (w *protoWorker) publish() {
	w.status.Store(&engineStatus{igmp: w.igmp.Status(), mld: w.mld.Status()})
}

// finish runs when the interface is removed. The pending deltas are only
// the release of every membership by the removal (and changes made just
// before it); they are dropped, not handed to the engines, so that each
// engine's Shutdown sends the final reports for every group it still has
// joined: one TO_IN {} record per group in IGMPv3/MLDv2, a Leave/Done in
// IGMPv2/MLDv1 even if another host sent the last report. Groups the
// engines never heard of (joined and released within the pending window)
// need no report.
func (w *protoWorker) finish() {
	s := w.ifc.stack
	s.mu.Lock()
	w.ifc.takeDeltasLocked()
	s.mu.Unlock()
	now := w.clock.Now()
	w.igmp.Shutdown(now)
	w.mld.Shutdown(now)
	w.transmitAll()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.publish()
}

// sync waits for a pass that starts after the call.
func (w *protoWorker) sync(ctx context.Context) error { return awaitPass(ctx, w.syncc, w.done) }

func (w *protoWorker) stopAndWait() {
	close(w.stopc)
	<-w.done
}

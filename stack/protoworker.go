package stack

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/internal/mpmc"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/proto"
	"github.com/mcstack/mcstack/wire"
)

// protoInbox bounds the IGMP/MLD messages waiting for the protocol worker;
// a flood beyond it is dropped and counted, never queued without bound and
// never slowing the receive path.
const protoInbox = 64

// rxMsg is an IGMP/MLD message copied off the receive path.
type rxMsg struct {
	msg proto.Received
	buf []byte
}

var rxMsgPool = sync.Pool{New: func() any { return &rxMsg{buf: make([]byte, 0, 1500)} }}

// protoWorker owns the interface's IGMP and MLD engines: only its passes
// (run one at a time by its worker) call them. A pass feeds them the
// received messages, the coalesced state deltas that are ready and their
// due timers, and transmits what they queue, with no lock held.
type protoWorker struct {
	ifc       *Interface
	w         *worker
	igmp, mld proto.Engine

	// inbox holds received messages (pushed by the receive path); created
	// on the first message, so an interface that never hears a query costs
	// no queue.
	inbox atomic.Pointer[mpmc.Queue[rxMsg]]
	// reannounce is set by a link coming back up.
	reannounce atomic.Bool
	// status is the engines' status at the last pass that was asked for
	// it (Interface.Status) and at the end of the drain; nil before (an
	// idle host keeps no copy).
	status atomic.Pointer[engineStatus]

	// Owned by the passes.
	frame      []byte         // transmit buffer
	txq        []proto.Packet // packets the link could not take yet (ErrWouldBlock)
	txAt       time.Time      // when to retry txq
	txBackoff  time.Duration
	shut       bool      // the engines were shut down
	drainUntil time.Time // the drain gives up on retransmissions at this time
}

type engineStatus struct{ igmp, mld proto.Status }

// txRetryFirst and txRetryMax bound the retries of a transmission the link
// refused with ErrWouldBlock; txQueueMax bounds the packets kept for them.
const (
	txRetryFirst = 5 * time.Millisecond
	txRetryMax   = 500 * time.Millisecond
	txQueueMax   = 256
)

// newProtoWorker builds the engines. It takes no lock (the engine
// constructors run outside Stack.mu).
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
	pw := &protoWorker{ifc: ifc, igmp: cfg.NewIGMP(c4), mld: cfg.NewMLD(c6), txBackoff: txRetryFirst}
	pw.w = newWorker(cfg.Clock, cfg.CoalesceDelay, pw.pass)
	return pw
}

// receive copies an IGMP/MLD message for the worker. Receive path: it
// never blocks.
func (pw *protoWorker) receive(src, dst netip.Addr, hops uint8, ra bool, raValue uint16, payload []byte) {
	q := pw.inbox.Load()
	if q == nil {
		q = mpmc.New[rxMsg](protoInbox)
		if !pw.inbox.CompareAndSwap(nil, q) {
			q = pw.inbox.Load()
		}
	}
	m := rxMsgPool.Get().(*rxMsg)
	m.buf = append(m.buf[:0], payload...)
	m.msg = proto.Received{Src: src, Dst: dst, HopLimit: hops, RouterAlert: ra, RouterAlertValue: raValue, Payload: m.buf}
	if !q.Push(m) {
		rxMsgPool.Put(m)
		pw.ifc.counters.inc(cProtoDropped)
		return
	}
	pw.ifc.counters.inc(cProtoQueued)
	pw.w.wake()
}

// pass runs the engines once (see worker).
func (pw *protoWorker) pass(now time.Time, f passFlags) (time.Time, error) {
	ifc := pw.ifc
	if f.stopping && !pw.shut {
		pw.shutdown(now)
	}
	if q := pw.inbox.Load(); q != nil {
		for m := q.Pop(); m != nil; m = q.Pop() {
			if !pw.shut {
				if m.msg.Src.Is4() {
					pw.igmp.Receive(now, m.msg)
				} else {
					pw.mld.Receive(now, m.msg)
				}
			}
			m.msg = proto.Received{}
			rxMsgPool.Put(m)
		}
	}
	var dnext time.Time
	if !pw.shut {
		if pw.reannounce.Swap(false) {
			pw.igmp.Reannounce(now)
			pw.mld.Reannounce(now)
		}
		var v4, v6 []membership.Delta
		s := ifc.stack
		s.mu.Lock()
		v4, v6, dnext = ifc.takeDeltasLocked(now, f.force)
		s.mu.Unlock()
		if len(v4) > 0 {
			pw.igmp.StateChanged(now, v4)
		}
		if len(v6) > 0 {
			pw.mld.StateChanged(now, v6)
		}
	}
	pw.igmp.Tick(now)
	pw.mld.Tick(now)
	pw.transmitAll(now)
	if f.status || f.stopping {
		pw.publish()
	}

	enext, pending := earliest(pw.igmp, pw.mld)
	if f.stopping {
		switch {
		case ifc.linkGone():
			// Nothing more can reach the wire.
			return time.Time{}, nil
		case !pending && len(pw.txq) == 0:
			return time.Time{}, nil
		case !now.Before(pw.drainUntil):
			ifc.log.Warn("interface drain: final reports still pending at the time limit; giving up",
				"igmp_pending", pw.igmp.Status().PendingStateChanges, "mld_pending", pw.mld.Status().PendingStateChanges,
				"unsent", len(pw.txq))
			return time.Time{}, nil
		}
		// Final retransmissions are not worth a coalescing window.
		return minTime(minTime(enext, pw.txAt), pw.drainUntil), nil
	}
	next := dnext
	if pending {
		// An engine timer is a wake-up like any other: it gets the
		// coalescing window, so timers falling close together (and the
		// changes made meanwhile) share one pass.
		next = minTime(next, enext.Add(ifc.stack.cfg.CoalesceDelay))
	}
	return minTime(next, pw.txAt), nil
}

// shutdown starts the end of the engines: the pending deltas are only the
// removal's own releases of every membership (and changes made just
// before it); they are dropped, not handed to the engines, so that each
// engine's Shutdown reports the departure from every group it has heard
// of, with its retransmissions. Groups the engines never heard of (joined
// and released within a coalescing window) need no report.
func (pw *protoWorker) shutdown(now time.Time) {
	s := pw.ifc.stack
	s.mu.Lock()
	pw.ifc.takeDeltasLocked(now, true)
	s.mu.Unlock()
	pw.igmp.Shutdown(now)
	pw.mld.Shutdown(now)
	pw.shut = true
	pw.drainUntil = now.Add(drainLimit(s.cfg, pw.igmp.Status(), pw.mld.Status()))
}

// drainLimit bounds how long a drain waits for the engines' final
// retransmissions: the engines send [Robustness Variable] - 1 repetitions,
// each at most one Unsolicited Report Interval after the previous (also
// the IGMPv2/MLDv1 Leave/Done: proto.Engine.Shutdown); the limit allows
// one interval more, for a link that refused a transmission for a while.
func drainLimit(cfg Config, sts ...proto.Status) time.Duration {
	orDefault := func(d time.Duration) time.Duration {
		if d <= 0 {
			return proto.DefaultUnsolicitedReportInterval
		}
		return d
	}
	uri := max(orDefault(cfg.IGMP.UnsolicitedReportInterval), orDefault(cfg.MLD.UnsolicitedReportInterval))
	rv := proto.DefaultRobustness
	for _, st := range sts {
		rv = max(rv, st.Robustness)
	}
	return time.Duration(rv)*uri + 100*time.Millisecond
}

// transmitAll sends what the engines queued, after what the link refused
// earlier. A packet the link cannot take now (ErrWouldBlock) is kept, with
// the rest, and retried with backoff; beyond txQueueMax the oldest are
// dropped and counted. Other errors are counted and the packet dropped.
func (pw *protoWorker) transmitAll(now time.Time) {
	if len(pw.txq) > 0 && now.Before(pw.txAt) {
		for _, e := range [...]proto.Engine{pw.igmp, pw.mld} {
			pw.txq = append(pw.txq, e.TakeOutgoing()...)
		}
		pw.trimTxq()
		return
	}
	q := pw.txq
	pw.txq = nil
	for _, e := range [...]proto.Engine{pw.igmp, pw.mld} {
		q = append(q, e.TakeOutgoing()...)
	}
	for i, p := range q {
		if err := pw.transmit(p); errors.Is(err, link.ErrWouldBlock) {
			pw.txq = append(pw.txq[:0], q[i:]...)
			pw.trimTxq()
			pw.txAt = now.Add(pw.txBackoff)
			pw.txBackoff = min(2*pw.txBackoff, txRetryMax)
			pw.ifc.counters.inc(cSendBlocked)
			return
		}
	}
	pw.txAt, pw.txBackoff = time.Time{}, txRetryFirst
}

func (pw *protoWorker) trimTxq() {
	if n := len(pw.txq) - txQueueMax; n > 0 {
		pw.ifc.counters.add(cSendErrors, uint64(n))
		pw.ifc.log.Warn("link transmit queue full for long; dropping reports", "dropped", n)
		pw.txq = append(pw.txq[:0], pw.txq[n:]...)
	}
}

func (pw *protoWorker) transmit(p proto.Packet) error {
	ifc := pw.ifc
	mac, ok := wire.MulticastMAC(p.Dst)
	if !ok {
		ifc.log.Warn("engine emitted a packet to a non-multicast destination; dropped", "dst", p.Dst)
		ifc.counters.inc(cSendErrors)
		return nil
	}
	et := uint16(wire.EtherTypeIPv6)
	if p.Dst.Is4() {
		et = wire.EtherTypeIPv4
	}
	pw.frame = wire.AppendEthernet(pw.frame[:0], mac, ifc.mac, et)
	pw.frame = append(pw.frame, p.Data...)
	err := ifc.ep.WriteFrame(pw.frame)
	switch {
	case err == nil:
		ifc.counters.inc(cFramesSent)
	case errors.Is(err, link.ErrWouldBlock):
	default:
		ifc.counters.inc(cSendErrors)
		ifc.log.Debug("report not sent", "dst", p.Dst, "err", err)
	}
	return err
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

func (pw *protoWorker) publish() {
	pw.status.Store(&engineStatus{igmp: pw.igmp.Status(), mld: pw.mld.Status()})
}

package stack

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With a driver taking 50 ms per filter update and sockets opening and
// closing all the time (each changing the filter), datagrams to a steady
// socket keep flowing: none is lost, and none waits for a driver update.
func TestSlowDriverDoesNotStallDelivery(t *testing.T) {
	const driverDelay = 50 * time.Millisecond
	s, ifc, ep := newTestStack(t, Config{})
	steadyGroup := netip.MustParseAddr("232.9.9.9")
	steady := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, steady.JoinSourceSpecificGroup(ifc, steadyGroup, peer4))
	syncIfc(t, ifc)
	ep.setDelay(driverDelay)
	calls0 := ep.filterCalls()

	const run = 1200 * time.Millisecond
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// Churn: every close and every join changes the needed filter.
	var churned atomic.Int64
	wg.Go(func() {
		var prev *Conn
		for i := 0; ; i++ {
			select {
			case <-stop:
				if prev != nil {
					prev.Close()
				}
				return
			default:
			}
			c, err := s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(6000+i%1000)))
			if err != nil {
				t.Error(err)
				return
			}
			if err := c.JoinGroup(ifc, netip.AddrFrom4([4]byte{239, 3, byte(i >> 8), byte(i)})); err != nil {
				t.Error(err)
				return
			}
			if prev != nil {
				prev.Close()
			}
			prev = c
			churned.Add(1)
			time.Sleep(time.Millisecond)
		}
	})

	// Sender: one datagram per millisecond to the steady socket, noting
	// which were sent while the filter worker was inside the driver, and
	// how long the receive path took (it queues synchronously).
	type sent struct {
		at       time.Time
		took     time.Duration
		inUpdate bool
	}
	var sends []sent
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			frame := udpFrame(t, peer4, steadyGroup, 4000, 5000, fmt.Appendf(nil, "%d", seq))
			inUpdate := ep.inUpdate.Load()
			at := time.Now()
			ep.inject(frame)
			sends = append(sends, sent{at, time.Since(at), inUpdate})
		}
	}()

	// Receiver.
	arrivals := map[int]time.Time{}
	var order []int
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 64)
		for {
			steady.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _, err := steady.ReadMsg(buf)
			if err != nil {
				return // deadline after the sender stopped
			}
			var seq int
			fmt.Sscan(string(buf[:n]), &seq)
			arrivals[seq] = time.Now()
			order = append(order, seq)
		}
	}()

	time.Sleep(run)
	close(stop)
	<-senderDone
	wg.Wait()
	<-recvDone

	if len(sends) < 50 {
		t.Fatalf("only %d datagrams sent in %v", len(sends), run)
	}
	duringUpdate, lost := 0, 0
	var maxLatency, maxTook time.Duration
	limit := driverDelay / 2
	tookOver := 0
	for seq, snd := range sends {
		at, ok := arrivals[seq]
		if !ok {
			lost++
			continue
		}
		if snd.inUpdate {
			duringUpdate++
		}
		maxLatency = max(maxLatency, at.Sub(snd.at))
		maxTook = max(maxTook, snd.took)
		if snd.took >= limit {
			tookOver++
		}
	}
	if lost > 0 || steady.Dropped() > 0 {
		t.Fatalf("%d of %d datagrams lost (%d dropped by the queue)", lost, len(sends), steady.Dropped())
	}
	// The gaps between deliveries beyond the gaps between sends: what the
	// stack added, not what a loaded machine did to the sender.
	var maxExcess time.Duration
	over := 0
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		excess := arrivals[b].Sub(arrivals[a]) - sends[b].at.Sub(sends[a].at)
		maxExcess = max(maxExcess, excess)
		if excess >= limit {
			over++
		}
	}
	calls := ep.filterCalls() - calls0
	t.Logf("%d datagrams, %d sent during a driver update; %d sockets churned, %d driver calls; receive path max %v; max latency %v; max gap beyond the send gap %v",
		len(sends), duringUpdate, churned.Load(), calls, maxTook, maxLatency, maxExcess)
	if calls < 5 || duringUpdate < len(sends)/4 {
		t.Fatalf("the driver was not kept busy: %d calls, %d of %d datagrams sent during an update", calls, duringUpdate, len(sends))
	}
	// A receive path waiting for the driver would take ~50 ms for a
	// datagram in every update; a loaded machine may deschedule the
	// sender or the receiver once.
	if tookOver > 1 {
		t.Fatalf("the receive path took %v or more %d times (max %v)", limit, tookOver, maxTook)
	}
	if over > 1 {
		t.Fatalf("%d delivery gaps %v or more beyond the send gaps (max %v)", over, limit, maxExcess)
	}
	syncIfc(t, ifc)
	if g := ifc.Status().Groups; len(g) != 1 || g[0].Group != steadyGroup {
		t.Fatalf("groups after churn: %v", g)
	}
}

package stack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// errWorkerStopped is returned by Sync after the interface was removed.
var errWorkerStopped = fmt.Errorf("interface removed: %w", ErrUnknownInterface)

// filterWorker programs the endpoint's multicast filter. It always programs
// the latest needed set, so a burst of changes, or changes made while a
// slow driver is busy, costs one driver call; a change that comes back to
// the programmed set costs none.
type filterWorker struct {
	ifc   *Interface
	kickc chan struct{} // capacity 1: a pending kick absorbs later ones
	syncc chan chan error
	stopc chan struct{}
	done  chan struct{}

	requests atomic.Uint64

	// mu guards the fields below. Held only to copy them: never across the
	// driver call. The receive path never takes it.
	mu         sync.Mutex
	programmed []wire.MAC
	valid      bool // programmed reflects a successful call
	allMulti   bool
	calls      uint64
	errors     uint64
	lastErr    string
	pending    bool
}

func newFilterWorker(ifc *Interface) *filterWorker {
	return &filterWorker{
		ifc:   ifc,
		kickc: make(chan struct{}, 1),
		syncc: make(chan chan error),
		stopc: make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// kick tells the worker the needed set may have changed. It never blocks.
func (w *filterWorker) kick() {
	w.requests.Add(1)
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

func (w *filterWorker) run() {
	defer close(w.done)
	cfg := &w.ifc.stack.cfg
	backoff := cfg.FilterRetry
	var retry *time.Timer
	var retryC <-chan time.Time
	for {
		var waiters []chan error
		select {
		case <-w.kickc:
			if cfg.CoalesceDelay > 0 {
				time.Sleep(cfg.CoalesceDelay)
			}
		case ch := <-w.syncc:
			waiters = append(waiters, ch)
		case <-retryC:
		case <-w.stopc:
			if retry != nil {
				retry.Stop()
			}
			return
		}
		// The pass reads the latest state, so a kick that arrived before it
		// starts is answered by it; dropping it here keeps a stale kick
		// from opening a coalescing window in the middle of a later burst.
		drainKick(w.kickc)
		err := w.pass()
		if err != nil {
			if retry != nil {
				retry.Stop()
			}
			retry = time.NewTimer(backoff)
			retryC = retry.C
			backoff = min(2*backoff, time.Second)
		} else {
			retryC = nil
			backoff = cfg.FilterRetry
		}
		for _, ch := range waiters {
			ch <- err
		}
	}
}

// pass programs the needed set if it differs from the programmed one.
func (w *filterWorker) pass() error {
	s := w.ifc.stack
	s.mu.Lock()
	var needed []wire.MAC
	if !w.ifc.removed.Load() {
		needed = w.ifc.neededMACsLocked()
	}
	s.mu.Unlock()
	sortMACs(needed)
	return w.program(needed)
}

func (w *filterWorker) program(needed []wire.MAC) error {
	w.mu.Lock()
	same := w.valid && slices.Equal(w.programmed, needed)
	w.pending = !same
	w.mu.Unlock()
	if same {
		return nil
	}
	st, err := w.ifc.ep.SetMulticastFilter(needed)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if err != nil {
		w.errors++
		w.lastErr = err.Error()
		w.valid = false
		w.ifc.log.Warn("multicast filter update failed; will retry", "macs", len(needed), "err", err)
		return err
	}
	w.programmed, w.valid, w.allMulti, w.lastErr, w.pending = needed, true, st.AllMulticast, "", false
	w.ifc.log.Debug("multicast filter programmed", "macs", len(needed), "all_multicast", st.AllMulticast)
	return nil
}

// sync waits for a pass that starts after the call.
func (w *filterWorker) sync(ctx context.Context) error { return awaitPass(ctx, w.syncc, w.done) }

// awaitPass asks a worker (through its sync channel) to report the end of
// its next pass, and waits for that report, the worker's exit or ctx.
func awaitPass(ctx context.Context, syncc chan<- chan error, done <-chan struct{}) error {
	ch := make(chan error, 1)
	select {
	case syncc <- ch:
	case <-done:
		return errWorkerStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopAndWait stops the worker, then clears the driver filter (the
// interface is leaving the stack), retrying a failed update a few times.
func (w *filterWorker) stopAndWait() error {
	close(w.stopc)
	<-w.done
	var err error
	delay := w.ifc.stack.cfg.FilterRetry
	for range 3 {
		if err = w.program(nil); err == nil || errors.Is(err, link.ErrClosed) {
			return nil
		}
		time.Sleep(delay)
		delay *= 2
	}
	return err
}

func (w *filterWorker) status() DriverStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return DriverStatus{
		Exact:        slices.Clone(w.programmed),
		AllMulticast: w.allMulti,
		Requests:     w.requests.Load(),
		Calls:        w.calls,
		Errors:       w.errors,
		LastError:    w.lastErr,
		Pending:      w.pending,
	}
}

// drainKick empties a capacity-1 kick channel without blocking.
func drainKick(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

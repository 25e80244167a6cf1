package stack

import (
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

// filterWorker programs the endpoint's multicast filter (its pass runs on a
// worker). It always programs the latest needed set, so a burst of changes,
// or changes made while a slow driver is busy, costs one driver call; a
// change that comes back to the programmed set within CoalesceDelay costs
// none.
type filterWorker struct {
	ifc *Interface
	w   *worker

	requests atomic.Uint64

	// Owned by the passes (which the worker runs one at a time).
	backoff  time.Duration // delay before retrying a failed update
	attempts int           // failed attempts to clear the filter while stopping
	finalErr error         // the error the drain reports (set by the last pass)

	// mu guards the fields below. It is held only to read or write them:
	// never across the driver call or a log call (a slow log handler must
	// not block Status). The receive path never takes it.
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
	fw := &filterWorker{ifc: ifc, backoff: ifc.stack.cfg.FilterRetry}
	fw.w = newWorker(ifc.stack.cfg.Clock, ifc.stack.cfg.CoalesceDelay, fw.pass)
	return fw
}

// kick tells the worker the needed set may have changed. It never blocks.
func (fw *filterWorker) kick() {
	fw.requests.Add(1)
	fw.w.wake()
}

// drainAttempts is how many times the drain tries to clear the filter.
const drainAttempts = 3

// pass programs the needed set if it differs from the programmed one;
// while stopping, it clears the filter (the interface is leaving the
// stack), a bounded number of times on failure.
func (fw *filterWorker) pass(now time.Time, f passFlags) (time.Time, error) {
	ifc := fw.ifc
	if ifc.linkGone() {
		// The driver is gone with the interface: nothing to program.
		return time.Time{}, nil
	}
	var needed []wire.MAC
	var next time.Time
	if !f.stopping {
		s := ifc.stack
		s.mu.Lock()
		if !ifc.removed.Load() {
			needed, next = ifc.neededMACsLocked(now, f.force)
		}
		s.mu.Unlock()
		sortMACs(needed)
	}
	err := fw.program(needed)
	if f.stopping {
		fw.finalErr = nil
		if err == nil || errors.Is(err, link.ErrClosed) || errors.Is(err, link.ErrGone) {
			return time.Time{}, nil
		}
		if fw.attempts++; fw.attempts >= drainAttempts {
			fw.finalErr = err
			return time.Time{}, err
		}
		return now.Add(fw.backoff << (fw.attempts - 1)), err
	}
	if err != nil {
		next = minTime(next, now.Add(fw.backoff))
		fw.backoff = min(2*fw.backoff, time.Second)
	} else {
		fw.backoff = ifc.stack.cfg.FilterRetry
	}
	return next, err
}

// program makes one driver call when needed differs from what is
// programmed, and records the outcome.
func (fw *filterWorker) program(needed []wire.MAC) error {
	fw.mu.Lock()
	same := fw.valid && slices.Equal(fw.programmed, needed)
	fw.pending = !same
	fw.mu.Unlock()
	if same {
		return nil
	}
	st, err := fw.ifc.ep.SetMulticastFilter(needed)
	fw.mu.Lock()
	fw.calls++
	if err != nil {
		fw.errors++
		fw.lastErr = err.Error()
		fw.valid = false
	} else {
		fw.programmed, fw.valid, fw.allMulti, fw.lastErr, fw.pending = needed, true, st.AllMulticast, "", false
	}
	fw.mu.Unlock()
	if err != nil {
		fw.ifc.log.Warn("multicast filter update failed; will retry", "macs", len(needed), "err", err)
		return err
	}
	fw.ifc.log.Debug("multicast filter programmed", "macs", len(needed), "all_multicast", st.AllMulticast)
	return nil
}

func (fw *filterWorker) status() DriverStatus {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return DriverStatus{
		Exact:        slices.Clone(fw.programmed),
		AllMulticast: fw.allMulti,
		Requests:     fw.requests.Load(),
		Calls:        fw.calls,
		Errors:       fw.errors,
		LastError:    fw.lastErr,
		Pending:      fw.pending,
	}
}

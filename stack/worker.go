package stack

import (
	"context"
	"sync"
	"time"

	"github.com/mcstack/mcstack/clock"
)

// worker runs one kind of an interface's deferred work — programming the
// driver's multicast filter, or driving the IGMP and MLD engines — as a
// series of passes. It is the one scheduling mechanism behind both
// (filterWorker and protoWorker supply only their pass):
//
//   - At most one pass runs at a time. A pass runs on the goroutine of the
//     timer that started it (or a goroutine started for Sync or stop);
//     between passes the worker has no goroutine, so an idle interface
//     costs none, which lets thousands of emulated hosts share a process.
//   - Every wake-up (a membership change, a received query or report, a
//     link-state change) opens a coalescing window of Config.CoalesceDelay
//     measured on Config.Clock; wake-ups inside the window, or during a
//     pass, are absorbed: the window's end runs one pass for all of them.
//     The pass itself returns when it next wants to run (an engine timer,
//     a retry, a change still too young to act on), and the worker arms
//     its one timer for the earliest of those times.
//   - Sync and stop cut any window short: they run a pass at once, with
//     force set (the pass then acts on everything pending, however young).
//     A Sync returns the error of the first pass that starts after it.
//   - Once stopping, the worker keeps running passes at the times they ask
//     for until a pass asks for none; then it is done.
type worker struct {
	clock clock.Clock
	delay time.Duration
	pass  func(now time.Time, f passFlags) (next time.Time, err error)

	// mu guards the fields below. It is held only for a few instructions
	// by wake, sync, stop, the timer callback and between passes; never
	// across a pass, a driver call, a transmission or a wait. It may be
	// taken with Stack.mu held (wake is called by control operations), so
	// a pass must not hold it while taking Stack.mu.
	mu       sync.Mutex
	started  bool // start was called: passes may run
	running  bool // a pass is running (or about to)
	rerun    bool // a wake-up arrived during the pass
	woken    bool // a wake-up arrived before start
	stopping bool
	stopped  bool
	timer    clock.Timer
	armedAt  time.Time // when timer fires; zero when not armed
	gen      uint64    // identifies the current timer, so a stale one does nothing
	waiters  []waiter  // Sync and Status calls waiting for the next pass
	done     chan struct{}
}

// passFlags tells a pass why it runs.
type passFlags struct {
	// force: a Sync (or stop) is waiting; act on everything pending now,
	// without waiting for changes to age.
	force bool
	// stopping: the interface is being removed; finish the work and return
	// a zero next time when done.
	stopping bool
	// status: a caller waits for a fresh status snapshot.
	status bool
}

// waiter is a caller waiting for the end of the next pass.
type waiter struct {
	ch    chan error
	force bool // Sync (true) or a status request (false)
}

func newWorker(c clock.Clock, delay time.Duration, pass func(time.Time, passFlags) (time.Time, error)) *worker {
	return &worker{clock: c, delay: delay, pass: pass, done: make(chan struct{})}
}

// start allows passes to run; a wake-up that came earlier is served now.
func (w *worker) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = true
	switch {
	case w.stopping || len(w.waiters) > 0:
		w.runNowLocked()
	case w.woken:
		w.armLocked(w.clock.Now().Add(w.delay))
	}
}

// wake asks for a pass at the end of a coalescing window. It never blocks
// (it may be called with Stack.mu held, and by the receive path for
// IGMP/MLD messages).
func (w *worker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
	case !w.started:
		w.woken = true
	case w.running:
		w.rerun = true
	default:
		w.armLocked(w.clock.Now().Add(w.delay))
	}
}

// armLocked makes the timer fire at at, unless it already fires earlier.
func (w *worker) armLocked(at time.Time) {
	if w.timer != nil && !w.armedAt.After(at) {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.gen++
	gen := w.gen
	w.armedAt = at
	w.timer = w.clock.AfterFunc(max(at.Sub(w.clock.Now()), 0), func() { w.fire(gen) })
}

func (w *worker) disarmLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.armedAt = time.Time{}
	w.gen++
}

// fire is the timer callback: it runs the pass on the timer's goroutine.
func (w *worker) fire(gen uint64) {
	w.mu.Lock()
	if gen != w.gen || w.stopped {
		w.mu.Unlock()
		return
	}
	w.timer, w.armedAt = nil, time.Time{}
	if w.running {
		w.rerun = true
		w.mu.Unlock()
		return
	}
	w.running = true
	w.mu.Unlock()
	w.run()
}

// runNowLocked starts a pass at once on a new goroutine, unless one is
// running (that one's end then starts the next).
func (w *worker) runNowLocked() {
	if w.running {
		w.rerun = true
		return
	}
	w.disarmLocked()
	w.running = true
	go w.run()
}

// run runs passes while some are due at once, then arms the timer for the
// next one. Called with w.running set.
func (w *worker) run() {
	for {
		w.mu.Lock()
		waiters := w.waiters
		w.waiters = nil
		f := passFlags{stopping: w.stopping, force: w.stopping}
		for _, wt := range waiters {
			f.force = f.force || wt.force
			f.status = f.status || !wt.force
		}
		w.rerun = false
		w.mu.Unlock()

		now := w.clock.Now()
		next, err := w.pass(now, f)
		for _, wt := range waiters {
			wt.ch <- err
		}

		w.mu.Lock()
		if f.stopping && next.IsZero() {
			w.stopped, w.running = true, false
			w.disarmLocked()
			waiters := w.waiters
			w.waiters = nil
			close(w.done)
			w.mu.Unlock()
			for _, wt := range waiters {
				wt.ch <- errWorkerStopped
			}
			return
		}
		if len(w.waiters) > 0 || (w.stopping && !f.stopping) {
			w.mu.Unlock()
			continue
		}
		w.running = false
		if w.rerun {
			w.rerun = false
			w.armLocked(w.clock.Now().Add(w.delay))
		}
		if !next.IsZero() {
			w.armLocked(next)
		}
		w.mu.Unlock()
		return
	}
}

// request registers a waiter for the next pass and returns its channel,
// starting that pass at once. A forced pass (Sync) acts on every pending
// change; an unforced one (a status snapshot) does only what is due, so
// asking for status does not defeat coalescing.
func (w *worker) request(force bool) (chan error, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return nil, false
	}
	ch := make(chan error, 1)
	w.waiters = append(w.waiters, waiter{ch: ch, force: force})
	if w.started {
		w.runNowLocked()
	}
	return ch, true
}

// sync waits for a pass that starts after the call and returns its error.
// It cuts a coalescing window short.
func (w *worker) sync(ctx context.Context) error { return w.await(ctx, true) }

// refresh waits for a pass that starts after the call without forcing
// young changes out (used for status snapshots).
func (w *worker) refresh(ctx context.Context) error { return w.await(ctx, false) }

func (w *worker) await(ctx context.Context, force bool) error {
	ch, ok := w.request(force)
	if !ok {
		return errWorkerStopped
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop makes the worker finish its work (passes with stopping set, until
// one returns no next time) and waits until it has. Concurrent and repeated
// calls all wait for the same end. A worker that was never started is done
// at once, without a pass.
func (w *worker) stop() {
	w.mu.Lock()
	switch {
	case w.stopped || w.stopping:
	case !w.started:
		w.stopping, w.stopped = true, true
		close(w.done)
	default:
		w.stopping = true
		w.runNowLocked()
	}
	w.mu.Unlock()
	<-w.done
}

//go:build linux

package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// fakeDev is a backend over one end of a datagram socketpair: what the
// test writes on the other end is what the endpoint reads.
type fakeDev struct {
	Reader
	f    *os.File
	peer int
	// writeErrs are returned by the next Write calls, in order.
	mu        sync.Mutex // guards writeErrs; held for a few instructions
	writeErrs []error
	writes    atomic.Int64
	readErr   atomic.Pointer[error] // returned by the next ReadFrame
}

func newFakeDev(t *testing.T) *fakeDev {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDev{f: os.NewFile(uintptr(fds[0]), "fake"), peer: fds[1]}
	t.Cleanup(func() { unix.Close(d.peer) })
	d.Reader = NewFrameBatcher(d, 2048)
	return d
}

func (d *fakeDev) ReadFrame(buf []byte, b *Batch) (int, error) {
	if p := d.readErr.Swap(nil); p != nil {
		return 0, *p
	}
	rc, _ := d.f.SyscallConn()
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) { n, rerr = unix.Read(int(fd), buf) }); err != nil {
		return 0, err
	}
	if rerr == unix.EAGAIN {
		return 0, ErrAgain
	}
	if rerr != nil {
		return 0, ReadError("read", rerr)
	}
	// Test frames with an odd sequence number come with a flag, so that
	// tests see flags follow their frames.
	var fl link.FrameFlags
	if n >= 18 && binary.BigEndian.Uint32(buf[14:])%2 == 1 {
		fl = link.FrameChecksumValid
	}
	if !b.Offer(buf[:n], fl) {
		return 0, nil
	}
	return n, nil
}

func (d *fakeDev) Write(frame []byte) error {
	d.writes.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.writeErrs) > 0 {
		err := d.writeErrs[0]
		if len(d.writeErrs) > 1 || err != unix.EAGAIN {
			d.writeErrs = d.writeErrs[1:]
		}
		return err
	}
	return nil
}

func (d *fakeDev) Close() error { return d.f.Close() }

func (d *fakeDev) send(t *testing.T, frame []byte) {
	t.Helper()
	if _, err := unix.Write(d.peer, frame); err != nil {
		t.Fatal(err)
	}
}

func newCore(t *testing.T, d *fakeDev, cfg Config) *Core {
	t.Helper()
	rc, err := d.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backend, cfg.Name, cfg.Conn = "fake", "f0", rc
	c, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recorder is a handler that checks it is never called concurrently and
// records what it got.
type recorder struct {
	busy    atomic.Bool
	overlap atomic.Bool
	mu      sync.Mutex // guards the fields below; held for a few instructions
	frames  []uint32   // sequence numbers of test frames
	flags   []link.FrameFlags
	batches []int
	states  []link.LinkState
	events  chan struct{}
}

func newRecorder() *recorder { return &recorder{events: make(chan struct{}, 1<<16)} }

func (r *recorder) enter() {
	if r.busy.Swap(true) {
		r.overlap.Store(true)
	}
}

func (r *recorder) HandleFrames(frames [][]byte, flags []link.FrameFlags) {
	r.enter()
	defer r.busy.Store(false)
	r.mu.Lock()
	r.batches = append(r.batches, len(frames))
	if len(flags) != len(frames) {
		panic(fmt.Sprintf("%d flags for %d frames", len(flags), len(frames)))
	}
	for i, f := range frames {
		r.frames = append(r.frames, binary.BigEndian.Uint32(f[14:]))
		r.flags = append(r.flags, flags[i])
	}
	r.mu.Unlock()
	r.events <- struct{}{}
}

func (r *recorder) HandleLinkState(st link.LinkState) {
	r.enter()
	defer r.busy.Store(false)
	r.mu.Lock()
	r.states = append(r.states, st)
	r.mu.Unlock()
	r.events <- struct{}{}
}

// waitFor polls cond until it holds or 5 s pass.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.events:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func testFrame(dst wire.MAC, seq uint32) []byte {
	f := make([]byte, 60)
	copy(f, dst[:])
	copy(f[6:], []byte{2, 0, 0, 0, 0, 9})
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	binary.BigEndian.PutUint32(f[14:], seq)
	return f
}

var (
	unicast = wire.MAC{2, 0, 0, 0, 0, 1}
	groupA  = wire.MAC{0x01, 0x00, 0x5e, 0, 0, 1}
	groupB  = wire.MAC{0x01, 0x00, 0x5e, 0, 0, 2}
)

// TestBatchesInOrder: frames queued while nobody reads come in batches of
// more than one frame, at most MaxBatch, in order, after the initial link
// state; the handler is never called concurrently.
func TestBatchesInOrder(t *testing.T) {
	d := newFakeDev(t)
	// A datagram socketpair queues at most net.unix.max_dgram_qlen
	// datagrams by default; raise the receive buffer and send in rounds.
	c := newCore(t, d, Config{})
	r := newRecorder()
	const n = 600
	for i := range 8 {
		d.send(t, testFrame(unicast, uint32(i)))
	}
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	if err := c.Attach(r); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Fatalf("second Attach: %v", err)
	}
	for i := 8; i < n; i++ {
		for {
			_, err := unix.Write(d.peer, testFrame(unicast, uint32(i)))
			if err == unix.EAGAIN {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	r.waitFor(t, "all frames", func() bool { return len(r.frames) == n })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 || !r.states[0].Up {
		t.Fatalf("first link state %v, want up", r.states)
	}
	for i, s := range r.frames {
		if s != uint32(i) {
			t.Fatalf("frame %d has sequence %d", i, s)
		}
		if want := link.FrameFlags(i % 2); r.flags[i] != want {
			t.Fatalf("frame %d has flags %v, want %v", i, r.flags[i], want)
		}
	}
	multi := false
	for _, b := range r.batches {
		if b > link.MaxBatch || b == 0 {
			t.Fatalf("batch of %d frames", b)
		}
		multi = multi || b > 1
	}
	if !multi {
		t.Fatalf("every batch held one frame (%d batches)", len(r.batches))
	}
	if r.overlap.Load() {
		t.Fatal("handler called concurrently")
	}
	st := c.Stats()
	if st.RxFrames != n || st.RxBatches != uint64(len(r.batches)) {
		t.Fatalf("stats %+v, want %d frames in %d batches", st, n, len(r.batches))
	}
}

// TestSoftwareFilter: multicast frames pass only when in the filter (or
// beyond capacity), unicast and broadcast always; short frames are
// counted as invalid.
func TestSoftwareFilter(t *testing.T) {
	d := newFakeDev(t)
	c := newCore(t, d, Config{FilterCapacity: 1, ErrNotMulticast: errors.New("not multicast")})
	r := newRecorder()
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	if st, err := c.SetMulticastFilter([]wire.MAC{groupA, groupA}); err != nil || st != (link.FilterStatus{Exact: 1}) {
		t.Fatalf("SetMulticastFilter = %+v, %v", st, err)
	}
	if _, err := c.SetMulticastFilter([]wire.MAC{unicast}); err == nil || !strings.Contains(err.Error(), "not multicast") {
		t.Fatalf("unicast in filter: %v", err)
	}
	d.send(t, testFrame(groupB, 1))
	d.send(t, []byte{1, 2, 3})
	d.send(t, testFrame(groupA, 2))
	d.send(t, testFrame(wire.BroadcastMAC, 3))
	r.waitFor(t, "frames", func() bool { return len(r.frames) == 2 })
	if st, _ := c.SetMulticastFilter([]wire.MAC{groupA, groupB}); !st.AllMulticast {
		t.Fatalf("beyond capacity: %+v", st)
	}
	d.send(t, testFrame(groupB, 4))
	r.waitFor(t, "frames", func() bool { return len(r.frames) == 3 })
	r.mu.Lock()
	got := r.frames
	r.mu.Unlock()
	if got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("frames %v, want [2 3 4]", got)
	}
	if st := c.Stats(); st.RxFiltered != 1 || st.RxInvalid != 1 {
		t.Fatalf("stats %+v, want 1 filtered, 1 invalid", st)
	}
}

// TestWriteWouldBlock: a queue that stays full makes WriteFrame give up
// after the write timeout with ErrWouldBlock; one that drains in time
// counts a wait; Close cuts a wait short.
func TestWriteWouldBlock(t *testing.T) {
	d := newFakeDev(t)
	const timeout = 30 * time.Millisecond
	c := newCore(t, d, Config{WriteTimeout: timeout})
	frame := testFrame(unicast, 0)

	d.writeErrs = []error{unix.EAGAIN, unix.ENOBUFS, unix.EAGAIN, nil}
	if err := c.WriteFrame(frame); err != nil {
		t.Fatalf("write that waits: %v", err)
	}
	d.writeErrs = []error{unix.EAGAIN}
	start := time.Now()
	err := c.WriteFrame(frame)
	took := time.Since(start)
	if !errors.Is(err, link.ErrWouldBlock) {
		t.Fatalf("write into a full queue: %v, want ErrWouldBlock", err)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Fatalf("gave up after %v, want about %v", took, timeout)
	}
	if st := c.Stats(); st.TxFrames != 1 || st.TxWaits != 1 || st.TxWouldBlock != 1 || st.TxErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	d.writeErrs = []error{unix.EPERM}
	if err := c.WriteFrame(frame); !errors.Is(err, unix.EPERM) {
		t.Fatalf("other error: %v", err)
	}
	if err := c.WriteFrame(frame[:10]); err == nil {
		t.Fatal("short frame accepted")
	}

	// Close while a writer waits: it returns ErrClosed at once.
	c2 := newCore(t, d, Config{WriteTimeout: time.Hour})
	d.writeErrs = []error{unix.EAGAIN}
	errc := make(chan error, 1)
	go func() { errc <- c2.WriteFrame(frame) }()
	for d.writes.Load() < 8 {
		time.Sleep(time.Millisecond)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, link.ErrClosed) {
			t.Fatalf("waiting writer after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting write")
	}
}

func readerCount() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "core.(*Core).run(")
}

// TestCloseUnblocksParkedReader: Close returns promptly while the reader
// is parked in poll with nothing to read, and the reader is gone after.
func TestCloseUnblocksParkedReader(t *testing.T) {
	time.Sleep(10 * time.Millisecond) // readers of earlier tests finish exiting
	before := readerCount()
	d := newFakeDev(t)
	c := newCore(t, d, Config{})
	r := newRecorder()
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "initial state", func() bool { return len(r.states) == 1 })
	time.Sleep(20 * time.Millisecond) // let it park in poll
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %v", took)
	}
	// The reader closes its done channel on its way out: give it a
	// moment to be gone from the goroutine list.
	for deadline := time.Now().Add(time.Second); readerCount() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d readers running after Close, %d before", readerCount(), before)
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Close(); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.WriteFrame(testFrame(unicast, 0)); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := c.Attach(r); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Attach after Close: %v", err)
	}
}

// TestStatesInOrder: changes posted by the monitor reach the handler in
// order, serialized with frames; Gone is final: the reader stops and
// writes fail with ErrGone.
func TestStatesInOrder(t *testing.T) {
	before := readerCount()
	d := newFakeDev(t)
	c := newCore(t, d, Config{})
	r := newRecorder()
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			_, _ = unix.Write(d.peer, testFrame(unicast, uint32(i)))
		}
	}()
	want := []link.LinkState{{Up: true}}
	for i := range 10 {
		st := link.LinkState{Up: i%2 == 1}
		want = append(want, st)
		c.postState(st)
	}
	<-done
	gone := link.LinkState{Gone: true, Err: errors.New("deleted")}
	c.postState(gone)
	want = append(want, gone)
	r.waitFor(t, "Gone", func() bool { return len(r.states) == len(want) })
	deadline := time.Now().Add(5 * time.Second)
	for readerCount() != before {
		if time.Now().After(deadline) {
			t.Fatal("reader still running after Gone")
		}
		time.Sleep(time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, st := range r.states {
		if st.Up != want[i].Up || st.Gone != want[i].Gone {
			t.Fatalf("states %v, want %v", r.states, want)
		}
	}
	if r.overlap.Load() {
		t.Fatal("handler called concurrently")
	}
	if err := c.WriteFrame(testFrame(unicast, 0)); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Gone: %v", err)
	}
}

// TestGoneFromReadError: a read that says the device is gone ends
// delivery with a Gone state carrying the error.
func TestGoneFromReadError(t *testing.T) {
	d := newFakeDev(t)
	c := newCore(t, d, Config{})
	r := newRecorder()
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "initial state", func() bool { return len(r.states) == 1 })
	gone := ReadError("read", unix.EBADFD)
	d.readErr.Store(&gone)
	d.send(t, testFrame(unicast, 1))
	r.waitFor(t, "Gone", func() bool { return len(r.states) == 2 })
	r.mu.Lock()
	st := r.states[1]
	r.mu.Unlock()
	if !st.Gone || !errors.Is(st.Err, unix.EBADFD) || !errors.Is(st.Err, link.ErrGone) {
		t.Fatalf("state %+v", st)
	}
	if err := c.WriteFrame(testFrame(unicast, 0)); !errors.Is(err, link.ErrGone) {
		t.Fatalf("write after Gone: %v", err)
	}
}

// TestTransientReadErrorsBackOff: a read error is counted and logged, and
// reading goes on.
func TestTransientReadErrorsBackOff(t *testing.T) {
	d := newFakeDev(t)
	c := newCore(t, d, Config{})
	r := newRecorder()
	if err := c.Attach(r); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "initial state", func() bool { return len(r.states) == 1 })
	e := error(unix.EIO)
	d.readErr.Store(&e)
	d.send(t, testFrame(unicast, 1))
	r.waitFor(t, "frame after the error", func() bool { return len(r.frames) == 1 })
	if st := c.Stats(); st.RxErrors != 1 {
		t.Fatalf("stats %+v, want 1 error", st)
	}
}

// TestReadBatchDoesNotAllocate: the reader's steady state (read a batch,
// filter it, hand it over) allocates nothing.
func TestReadBatchDoesNotAllocate(t *testing.T) {
	d := newFakeDev(t)
	c := newCore(t, d, Config{})
	if _, err := c.SetMulticastFilter([]wire.MAC{groupA}); err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{testFrame(groupA, 1), testFrame(groupB, 2), testFrame(unicast, 3)}
	b := &c.batch
	n := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			_, _ = unix.Write(d.peer, f)
		}
		b.reset(c.filter.Load())
		if err := c.be.ReadBatch(b, false); err != nil || b.Len() != 2 {
			panic("read failed")
		}
		c.be.Done()
	})
	if n != 0 {
		t.Fatalf("%v allocations per batch, want 0", n)
	}
}

// capture is a slog.Handler that keeps records.
type capture struct {
	mu      sync.Mutex // guards records; held for a few instructions
	records []slog.Record
	attrs   []slog.Attr
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.AddAttrs(c.attrs...)
	c.records = append(c.records, r)
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &sharedCapture{c, as}
}
func (c *capture) WithGroup(string) slog.Handler { return c }

type sharedCapture struct {
	*capture
	as []slog.Attr
}

func (s *sharedCapture) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(s.as...)
	return s.capture.Handle(ctx, r)
}

// TestLogging: records carry "interface" (and "err"); a nil Logger logs
// nowhere, not even to slog.Default.
func TestLogging(t *testing.T) {
	def := &capture{}
	old := slog.Default()
	slog.SetDefault(slog.New(def))
	defer slog.SetDefault(old)

	mine := &capture{}
	for _, l := range []*slog.Logger{nil, slog.New(mine)} {
		d := newFakeDev(t)
		c := newCore(t, d, Config{Logger: l})
		r := newRecorder()
		if err := c.Attach(r); err != nil {
			t.Fatal(err)
		}
		e := error(unix.EIO)
		d.readErr.Store(&e)
		d.send(t, testFrame(unicast, 1))
		r.waitFor(t, "frame", func() bool { return len(r.frames) == 1 })
	}
	def.mu.Lock()
	if n := len(def.records); n != 0 {
		t.Fatalf("a nil Logger wrote %d records to slog.Default", n)
	}
	def.mu.Unlock()
	mine.mu.Lock()
	defer mine.mu.Unlock()
	found := false
	for _, rec := range mine.records {
		keys := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool { keys[a.Key] = a.Value.String(); return true })
		if keys["interface"] != "f0" {
			t.Fatalf("record %q without interface=f0: %v", rec.Message, keys)
		}
		if rec.Message == "read failed" && keys["err"] != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no read failure logged with err: %d records", len(mine.records))
	}
}

//go:build linux

package core

import (
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// Batch collects the frames of one read for the handler. Backends add
// frames with Offer, which applies the software multicast filter.
type Batch struct {
	frames   [][]byte
	flags    []link.FrameFlags // flags[i] describes frames[i]
	filter   *link.ExactFilter // the filter in effect for this batch
	filtered uint64
	invalid  uint64
}

// reset empties the batch for the next read, with the filter f.
func (b *Batch) reset(f *link.ExactFilter) {
	b.frames = b.frames[:0]
	b.flags = b.flags[:0]
	b.filter = f
	b.filtered, b.invalid = 0, 0
}

// Offer adds frame, described by flags, to the batch if it is at least an
// Ethernet header long and its destination passes the multicast filter,
// and reports whether it did. The frame must stay valid until the Reader's
// Done; a backend that prepares frames further (checksum completion) does
// so after Offer accepted them, in place.
func (b *Batch) Offer(frame []byte, flags link.FrameFlags) bool {
	if len(frame) < wire.EthernetHeaderLen {
		b.invalid++
		return false
	}
	if !b.filter.Accepts(wire.MAC(frame[:6])) {
		b.filtered++
		return false
	}
	b.frames = append(b.frames, frame)
	b.flags = append(b.flags, flags)
	return true
}

// AddFlags adds f to the flags of the frame Offer accepted last (a
// backend that completed the frame's checksum after offering it).
func (b *Batch) AddFlags(f link.FrameFlags) { b.flags[len(b.flags)-1] |= f }

// Invalid counts a frame the backend dropped as unusable before offering
// it (e.g. not IP on a TUN device).
func (b *Batch) Invalid() { b.invalid++ }

// Full reports whether the batch holds link.MaxBatch frames.
func (b *Batch) Full() bool { return len(b.frames) >= link.MaxBatch }

// Len returns the number of frames in the batch.
func (b *Batch) Len() int { return len(b.frames) }

// FrameReader is a backend that reads one frame per system call
// (recvmsg, read on a TUN/TAP descriptor). NewFrameBatcher turns it into a
// Reader that reads until the descriptor is empty or the batch is full.
type FrameReader interface {
	// ReadFrame reads one frame into buf without blocking and offers it
	// to b. It returns how many bytes at the start of buf the frame it
	// offered occupies (0 when it offered nothing, so the space is
	// reused), ErrAgain when nothing was available, or an error (wrapping
	// link.ErrGone when the device is gone).
	ReadFrame(buf []byte, b *Batch) (used int, err error)
}

// frameBatcher reads frames one by one into an arena, so that a batch's
// frames do not overwrite each other before the handler has seen them.
type frameBatcher struct {
	r        FrameReader
	arena    []byte
	maxFrame int
	pending  error // an error met after some frames were read
}

// NewFrameBatcher returns a Reader that calls r.ReadFrame until it reports
// ErrAgain, the batch is full, or less than maxFrame bytes of its arena are
// left. maxFrame is the largest frame r can read (its buffer size).
func NewFrameBatcher(r FrameReader, maxFrame int) Reader {
	return &frameBatcher{
		r:        r,
		arena:    make([]byte, maxFrame+link.MaxBatch*2048),
		maxFrame: maxFrame,
	}
}

func (f *frameBatcher) ReadBatch(b *Batch, _ bool) error {
	if err := f.pending; err != nil {
		f.pending = nil
		return err
	}
	off, read := 0, false
	for !b.Full() && len(f.arena)-off >= f.maxFrame {
		used, err := f.r.ReadFrame(f.arena[off:off+f.maxFrame:off+f.maxFrame], b)
		if err != nil {
			if !read {
				return err
			}
			if err != ErrAgain {
				f.pending = err
			}
			return nil
		}
		read = true
		// Keep the next frame 8-byte aligned.
		off += (used + 7) &^ 7
	}
	return nil
}

func (f *frameBatcher) Done() {}

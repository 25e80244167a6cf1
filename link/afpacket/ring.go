//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/tpacket"
	"github.com/mcstack/mcstack/link/internal/core"
)

// ringReader is the TPACKET_V3 path: a core.Reader that walks the block at
// the ring's cursor in place and hands it back to the kernel once the
// handler has seen all its frames. A block holding more than
// link.MaxBatch frames is delivered in several batches. It is used by the
// reader goroutine only.
type ringReader struct {
	ring *tpacket.Ring
	rc   syscall.RawConn
	it   tpacket.Iter
	// inBlock: it walks the block at the cursor; walked: it reached the
	// block's end, so Done releases the block.
	inBlock, walked bool
	// pending is an error met after frames were offered (a malformed
	// block), returned by the next ReadBatch.
	pending error
	// soErr and soErrFn read SO_ERROR without allocating.
	soErr   int
	soErrE  error
	soErrFn func(fd uintptr)
}

func newRingReader(ring *tpacket.Ring, rc syscall.RawConn) *ringReader {
	r := &ringReader{ring: ring, rc: rc}
	r.soErrFn = func(fd uintptr) {
		r.soErr, r.soErrE = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	}
	return r
}

// ReadBatch implements core.Reader.
func (r *ringReader) ReadBatch(b *core.Batch, pollErr bool) error {
	if err := r.pending; err != nil {
		r.pending = nil
		return err
	}
	for {
		if !r.inBlock {
			blk, ok := r.ring.Current()
			if !ok {
				if pollErr {
					return r.socketError()
				}
				return core.ErrAgain
			}
			r.it.Reset(blk)
			r.inBlock = true
		}
		for !b.Full() {
			f, ok := r.it.Next()
			if !ok {
				r.walked = true
				break
			}
			offer(b, f.Data, f.Status, f.Truncated())
		}
		if err := r.it.Err(); err != nil {
			err = fmt.Errorf("ring block: %w", err)
			if b.Len() > 0 {
				r.pending = err
				return nil
			}
			r.Done()
			return err
		}
		if b.Len() > 0 || !r.walked {
			return nil
		}
		// Every frame of the block was filtered out: next block.
		r.Done()
	}
}

// Done implements core.Reader: a fully walked block goes back to the
// kernel.
func (r *ringReader) Done() {
	if r.walked {
		r.ring.Release()
		r.inBlock, r.walked = false, false
	}
}

// socketError reads (and so clears) the socket's pending error after
// poll(2) reported POLLERR: ENETDOWN when the interface went down, ENODEV
// when it was unregistered.
func (r *ringReader) socketError() error {
	if err := r.rc.Control(r.soErrFn); err != nil {
		return err
	}
	if r.soErrE != nil {
		return fmt.Errorf("getsockopt(SO_ERROR): %w", r.soErrE)
	}
	if r.soErr == 0 {
		return errors.New("poll reported an error condition, SO_ERROR is 0")
	}
	return core.ReadError("ring", unix.Errno(r.soErr))
}

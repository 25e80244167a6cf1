//go:build linux

// Package tpacket is a TPACKET_V3 receive ring for an AF_PACKET socket
// (Documentation/networking/packet_mmap.rst in the Linux tree): the
// geometry, the setsockopt and mmap calls that set the ring up, block
// ownership, and a walker over the frames of a block.
//
// The kernel fills the ring block by block. Each block starts with a
// struct tpacket_block_desc whose block_status the kernel sets to
// TP_STATUS_USER when it hands the block over: the block is full, or
// Config.RetireTimeout passed since it was opened with at least one frame
// in it. User space then owns the block, walks its struct tpacket3_hdr
// frames and hands it back by writing TP_STATUS_KERNEL. Blocks are used in
// ring order, so a reader only ever looks at one block: the one at its
// cursor (Ring.Current), released in order (Ring.Release).
//
// Nothing here makes a system call per frame or allocates per frame or
// block: the walker reads the mapped memory in place and hands out slices
// of it. The package only maps and walks; opening and binding the socket,
// and waiting for a block with poll(2), are the caller's (link/afpacket,
// and the benchmarks' bare ring reader).
package tpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring geometry defaults, applied to zero fields of Config.
const (
	// DefaultBlockSize is 256 KiB: about 1,350 frames of a 64-byte UDP
	// payload (192 bytes of ring each), or 220 full-size 1,500-byte
	// frames; the largest frame the ring takes whole is a block minus its
	// headers, so GRO-merged frames of up to 64 KiB fit.
	DefaultBlockSize = 256 << 10
	// DefaultBlockCount is 32 blocks: an 8 MiB ring, the receive buffer
	// size benchmarks give kernel sockets, about 70 ms of a 600k frames/s
	// burst of small frames before the kernel drops.
	DefaultBlockCount = 32
	// DefaultFrameSize is 2048. TPACKET_V3 packs frames of any size into
	// a block; the frame size only enters the kernel's frame count check
	// (tp_frame_nr = tp_block_nr × tp_block_size / tp_frame_size).
	DefaultFrameSize = 2048
	// DefaultRetireTimeout is 1 ms, the smallest tp_retire_blk_tov. A
	// block with at least one frame is handed to user space when it is
	// full or when this much time passed since the kernel opened it, so
	// at low rates the timeout is the latency the ring adds; at high
	// rates blocks fill first and it does not matter (measured: about
	// 0.85 ms added at 200 frames/s; see link/afpacket). Zero in the
	// request would let the kernel derive a timeout of several ms from
	// the link speed, so Config never sends it.
	DefaultRetireTimeout = time.Millisecond
)

// Sizes of the kernel structures the walker reads (linux/if_packet.h).
const (
	// BlockHeaderLen is sizeof(struct tpacket_block_desc) with the
	// tpacket_hdr_v1 header: version, offset_to_priv, block_status,
	// num_pkts, offset_to_first_pkt, blk_len, seq_num and two timestamps.
	BlockHeaderLen = 48
	// FrameHeaderLen is sizeof(struct tpacket3_hdr).
	FrameHeaderLen = int(unsafe.Sizeof(unix.Tpacket3Hdr{}))
)

// Offsets in struct tpacket_block_desc (version 1 header).
const (
	offBlockVersion = 0
	offBlockStatus  = 8
	offNumPkts      = 12
	offFirstPkt     = 16
	offBlkLen       = 20
	offSeqNum       = 24
)

// Offsets in struct tpacket3_hdr.
const (
	offNextOffset = 0
	offSec        = 4
	offNsec       = 8
	offSnaplen    = 12
	offLen        = 16
	offStatus     = 20
	offMac        = 24
	offVLANTCI    = 32 // hv1.tp_vlan_tci (__u32)
	offVLANTPID   = 36 // hv1.tp_vlan_tpid
)

// ErrConfig reports ring geometry the kernel would refuse.
var ErrConfig = errors.New("tpacket: bad ring geometry")

// Config is the geometry of a ring. The zero value means the defaults.
type Config struct {
	// BlockSize is the size of one block in bytes: a multiple of the
	// page size. Zero means DefaultBlockSize.
	BlockSize int
	// BlockCount is the number of blocks. Zero means DefaultBlockCount.
	BlockCount int
	// FrameSize is tp_frame_size: a multiple of 16 of at least 68 bytes
	// (TPACKET3_HDRLEN) that divides BlockSize. Zero means
	// DefaultFrameSize. It does not limit the size of received frames.
	FrameSize int
	// RetireTimeout is tp_retire_blk_tov, in whole milliseconds (a
	// fraction is rounded up). Zero means DefaultRetireTimeout.
	RetireTimeout time.Duration
}

// WithDefaults returns c with its zero fields set to the defaults, or an
// error wrapping ErrConfig when the geometry is invalid.
func (c Config) WithDefaults() (Config, error) {
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.BlockCount == 0 {
		c.BlockCount = DefaultBlockCount
	}
	if c.FrameSize == 0 {
		c.FrameSize = DefaultFrameSize
	}
	if c.RetireTimeout == 0 {
		c.RetireTimeout = DefaultRetireTimeout
	}
	page := os.Getpagesize()
	switch {
	case c.BlockSize < 0 || c.BlockSize%page != 0:
		return c, fmt.Errorf("%w: block size %d is not a positive multiple of the page size %d", ErrConfig, c.BlockSize, page)
	case c.BlockSize > 1<<30:
		return c, fmt.Errorf("%w: block size %d is larger than 1 GiB", ErrConfig, c.BlockSize)
	case c.BlockCount < 0 || c.BlockCount > 1<<16:
		return c, fmt.Errorf("%w: block count %d outside 1..65536", ErrConfig, c.BlockCount)
	case c.FrameSize < 68 || c.FrameSize%unix.TPACKET_ALIGNMENT != 0 || c.FrameSize > c.BlockSize:
		return c, fmt.Errorf("%w: frame size %d: want a multiple of 16, at least 68 and at most the block size", ErrConfig, c.FrameSize)
	case c.BlockSize%c.FrameSize != 0:
		return c, fmt.Errorf("%w: frame size %d does not divide the block size %d", ErrConfig, c.FrameSize, c.BlockSize)
	case c.RetireTimeout < 0 || c.RetireTimeout > time.Minute:
		return c, fmt.Errorf("%w: retire timeout %v outside (0, 1m]", ErrConfig, c.RetireTimeout)
	case uint64(c.BlockSize)*uint64(c.BlockCount) > 1<<34:
		return c, fmt.Errorf("%w: ring of %d × %d bytes is larger than 16 GiB", ErrConfig, c.BlockCount, c.BlockSize)
	}
	return c, nil
}

// retireMillis is tp_retire_blk_tov: the timeout in milliseconds, rounded up.
func (c Config) retireMillis() uint32 {
	return uint32((c.RetireTimeout + time.Millisecond - 1) / time.Millisecond)
}

// Ring is a mapped TPACKET_V3 receive ring. Its cursor methods (Current,
// Release) are for one reader goroutine; Close must not run concurrently
// with them.
type Ring struct {
	cfg    Config
	mem    []byte
	blocks int
	cur    int
}

// Setup switches the AF_PACKET socket fd to TPACKET_V3 and maps a receive
// ring of geometry cfg (defaults applied). The socket must not have a ring
// yet. Frames the socket queued before the ring existed stay in its
// ordinary receive queue; the caller may drain them with recvfrom.
func Setup(fd int, cfg Config) (*Ring, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("tpacket: setsockopt(PACKET_VERSION, TPACKET_V3): %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.BlockSize),
		Block_nr:       uint32(cfg.BlockCount),
		Frame_size:     uint32(cfg.FrameSize),
		Frame_nr:       uint32(cfg.BlockSize / cfg.FrameSize * cfg.BlockCount),
		Retire_blk_tov: cfg.retireMillis(),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("tpacket: setsockopt(PACKET_RX_RING, %d × %d bytes): %w", cfg.BlockCount, cfg.BlockSize, err)
	}
	size := cfg.BlockSize * cfg.BlockCount
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED|unix.MAP_POPULATE)
	if err != nil {
		// MAP_LOCKED needs RLIMIT_MEMLOCK room; the ring works without.
		mem, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	if err != nil {
		// The ring stays attached to the socket; closing it frees it.
		return nil, fmt.Errorf("tpacket: mmap of %d bytes: %w", size, err)
	}
	return &Ring{cfg: cfg, mem: mem, blocks: cfg.BlockCount}, nil
}

// Config returns the ring's geometry.
func (r *Ring) Config() Config { return r.cfg }

// Close unmaps the ring. The ring itself belongs to the socket and goes
// away when the socket is closed. No slice obtained from the ring may be
// used afterwards.
func (r *Ring) Close() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	if err != nil {
		return fmt.Errorf("tpacket: munmap: %w", err)
	}
	return nil
}

// block returns block i of the ring.
func (r *Ring) block(i int) Block {
	bs := r.cfg.BlockSize
	return Block(r.mem[i*bs : (i+1)*bs : (i+1)*bs])
}

// Current returns the block at the cursor and whether user space owns it
// (the kernel handed it over). When ok is false the reader waits (poll(2)
// on the socket reports POLLIN once the kernel hands a block over) and
// asks again.
func (r *Ring) Current() (b Block, ok bool) {
	b = r.block(r.cur)
	return b, b.Ready()
}

// Release hands the block at the cursor back to the kernel and moves the
// cursor to the next block. Slices into the released block must no longer
// be used: the kernel overwrites it.
func (r *Ring) Release() {
	r.block(r.cur).release()
	r.cur++
	if r.cur == r.blocks {
		r.cur = 0
	}
}

// Block is one block of a ring, or (in tests) any byte slice laid out like
// one. Its first BlockHeaderLen bytes are the block descriptor.
type Block []byte

// status returns a pointer to block_status, nil when b is too short or
// misaligned for it.
func (b Block) status() *uint32 {
	if len(b) < BlockHeaderLen {
		return nil
	}
	p := unsafe.Pointer(&b[offBlockStatus])
	if uintptr(p)%4 != 0 {
		return nil
	}
	return (*uint32)(p)
}

// Ready reports whether user space owns the block (block_status has
// TP_STATUS_USER). It is an atomic load: the kernel writes the status after
// the block's contents, so everything the walker reads afterwards is
// complete.
func (b Block) Ready() bool {
	p := b.status()
	return p != nil && atomic.LoadUint32(p)&unix.TP_STATUS_USER != 0
}

// TimedOut reports whether the kernel handed the block over because the
// retire timeout expired rather than because it was full
// (TP_STATUS_BLK_TMO).
func (b Block) TimedOut() bool {
	p := b.status()
	return p != nil && atomic.LoadUint32(p)&unix.TP_STATUS_BLK_TMO != 0
}

// release hands the block back (block_status = TP_STATUS_KERNEL) with an
// atomic store, after which the kernel may refill it.
func (b Block) release() {
	if p := b.status(); p != nil {
		atomic.StoreUint32(p, unix.TP_STATUS_KERNEL)
	}
}

// NumFrames is num_pkts: the number of frames the kernel put in the block.
func (b Block) NumFrames() int {
	if len(b) < BlockHeaderLen {
		return 0
	}
	return int(binary.NativeEndian.Uint32(b[offNumPkts:]))
}

// Seq is the block's sequence number (seq_num), which grows by one for
// each block the kernel hands over.
func (b Block) Seq() uint64 {
	if len(b) < BlockHeaderLen {
		return 0
	}
	return binary.NativeEndian.Uint64(b[offSeqNum:])
}

// Frame is one received frame in a block.
type Frame struct {
	// Data is the frame from its Ethernet header on, tp_snaplen bytes,
	// aliasing the ring: valid until the block is released, writable in
	// place.
	Data []byte
	// Len is the frame's length on the wire (tp_len); Len > len(Data)
	// means the frame was truncated to fit the block.
	Len int
	// Status is tp_status: TP_STATUS_CSUMNOTREADY (a CHECKSUM_PARTIAL
	// frame whose transport checksum holds only the pseudo-header sum),
	// TP_STATUS_CSUM_VALID, TP_STATUS_VLAN_VALID, ...
	Status uint32
	// VLANTCI and VLANTPID are the tag the kernel stripped from the
	// frame, meaningful when Status has TP_STATUS_VLAN_VALID (and
	// TP_STATUS_VLAN_TPID_VALID for the TPID).
	VLANTCI  uint16
	VLANTPID uint16
	// Sec and Nsec are the kernel's receive timestamp.
	Sec, Nsec uint32
}

// Truncated reports whether the frame was cut short (tp_snaplen < tp_len).
func (f *Frame) Truncated() bool { return f.Len > len(f.Data) }

// ErrMalformed is reported by Iter.Err when a block's headers point
// outside the block. The kernel never writes such a block; a ring that
// does is not a TPACKET_V3 ring.
var ErrMalformed = errors.New("tpacket: malformed block")

// Iter walks the frames of a block. Reset it with a block, then call Next
// until it returns false. It does not allocate.
type Iter struct {
	b    []byte
	end  int // blk_len, bounded by len(b)
	off  int // offset of the next frame header; 0 = done
	left int // frames still to walk
	err  error
}

// Frames returns an iterator over the block's frames.
func (b Block) Frames() Iter {
	var it Iter
	it.Reset(b)
	return it
}

// Reset starts walking block b.
func (it *Iter) Reset(b Block) {
	*it = Iter{b: b}
	if len(b) < BlockHeaderLen {
		it.err = fmt.Errorf("%w: %d bytes, shorter than the block header", ErrMalformed, len(b))
		return
	}
	if v := binary.NativeEndian.Uint32(b[offBlockVersion:]); v != unix.TPACKET_V3 {
		// The kernel stamps each block with the socket's version.
		it.err = fmt.Errorf("%w: block descriptor version %d", ErrMalformed, v)
		return
	}
	n := binary.NativeEndian.Uint32(b[offNumPkts:])
	first := binary.NativeEndian.Uint32(b[offFirstPkt:])
	blkLen := binary.NativeEndian.Uint32(b[offBlkLen:])
	if uint64(blkLen) > uint64(len(b)) {
		it.err = fmt.Errorf("%w: blk_len %d beyond the block of %d bytes", ErrMalformed, blkLen, len(b))
		return
	}
	it.end = int(blkLen)
	if n == 0 {
		return
	}
	if first < BlockHeaderLen || uint64(first)+uint64(FrameHeaderLen) > uint64(it.end) {
		it.err = fmt.Errorf("%w: first frame at %d in a block of %d bytes", ErrMalformed, first, it.end)
		return
	}
	it.off, it.left = int(first), int(min(n, uint32(len(b)/FrameHeaderLen)))
}

// Next returns the next frame, or false at the end of the block or at the
// first malformed header (then Err says why).
func (it *Iter) Next() (Frame, bool) {
	if it.left == 0 || it.err != nil {
		return Frame{}, false
	}
	off := it.off
	if off+FrameHeaderLen > it.end {
		it.err = fmt.Errorf("%w: frame header at %d beyond blk_len %d", ErrMalformed, off, it.end)
		return Frame{}, false
	}
	h := it.b[off : off+FrameHeaderLen]
	mac := int(binary.NativeEndian.Uint16(h[offMac:]))
	snap := int(binary.NativeEndian.Uint32(h[offSnaplen:]))
	if mac < FrameHeaderLen || off+mac+snap > it.end || snap < 0 {
		it.err = fmt.Errorf("%w: frame at %d: data at +%d, %d bytes, beyond blk_len %d", ErrMalformed, off, mac, snap, it.end)
		return Frame{}, false
	}
	f := Frame{
		Data:     it.b[off+mac : off+mac+snap : off+mac+snap],
		Len:      int(binary.NativeEndian.Uint32(h[offLen:])),
		Status:   binary.NativeEndian.Uint32(h[offStatus:]),
		VLANTCI:  uint16(binary.NativeEndian.Uint32(h[offVLANTCI:])),
		VLANTPID: binary.NativeEndian.Uint16(h[offVLANTPID:]),
		Sec:      binary.NativeEndian.Uint32(h[offSec:]),
		Nsec:     binary.NativeEndian.Uint32(h[offNsec:]),
	}
	it.left--
	if it.left > 0 {
		next := int(binary.NativeEndian.Uint32(h[offNextOffset:]))
		// Frames follow each other: the next header starts after this
		// frame's data (tp_next_offset covers header, gap and data).
		if next < mac+snap || off+next+FrameHeaderLen > it.end {
			it.err = fmt.Errorf("%w: frame at %d: next offset %d", ErrMalformed, off, next)
			it.left = 0
			return f, true
		}
		it.off = off + next
	}
	return f, true
}

// Err returns why the walk stopped early, or nil.
func (it *Iter) Err() error { return it.err }

// Stats reads and resets the socket's PACKET_STATISTICS for a TPACKET_V3
// socket: frames received (including dropped ones), frames dropped because
// the ring was full, and how often the kernel froze the queue for that.
func Stats(fd int) (received, dropped, freezes uint64, err error) {
	st, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("tpacket: getsockopt(PACKET_STATISTICS): %w", err)
	}
	return uint64(st.Packets), uint64(st.Drops), uint64(st.Freeze_q_cnt), nil
}

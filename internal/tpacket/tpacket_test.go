//go:build linux

package tpacket

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testFrame is one frame to lay out in a synthetic block.
type testFrame struct {
	data    []byte
	wireLen int // 0: len(data)
	status  uint32
	vlan    uint16
}

// macOff is where the kernel puts frame data after a tpacket3_hdr: netoff
// = TPACKET_ALIGN(TPACKET3_HDRLEN + 16), minus the 14-byte MAC header.
const macOff = 96 - 14

// buildBlock lays frames out as the kernel does in a block of size bytes
// owned by user space, and returns it 8-byte aligned.
func buildBlock(t testing.TB, size int, frames []testFrame) Block {
	t.Helper()
	words := make([]uint64, size/8)
	b := unsafeBytes(words)
	ne := binary.NativeEndian
	ne.PutUint32(b[offBlockVersion:], unix.TPACKET_V3)
	ne.PutUint32(b[offBlockStatus:], unix.TP_STATUS_USER)
	ne.PutUint32(b[offNumPkts:], uint32(len(frames)))
	ne.PutUint32(b[offFirstPkt:], BlockHeaderLen)
	off := BlockHeaderLen
	var prev int = -1
	for _, f := range frames {
		if prev >= 0 {
			ne.PutUint32(b[prev+offNextOffset:], uint32(off-prev))
		}
		h := b[off:]
		ne.PutUint32(h[offSnaplen:], uint32(len(f.data)))
		wl := f.wireLen
		if wl == 0 {
			wl = len(f.data)
		}
		ne.PutUint32(h[offLen:], uint32(wl))
		ne.PutUint32(h[offStatus:], f.status)
		ne.PutUint16(h[offMac:], macOff)
		ne.PutUint32(h[offVLANTCI:], uint32(f.vlan))
		copy(h[macOff:], f.data)
		prev = off
		off += (macOff + len(f.data) + 15) &^ 15
	}
	ne.PutUint32(b[offBlkLen:], uint32(off))
	return Block(b)
}

func TestWalkBlock(t *testing.T) {
	frames := []testFrame{
		{data: bytes.Repeat([]byte{1}, 60)},
		{data: bytes.Repeat([]byte{2}, 1514), status: unix.TP_STATUS_CSUMNOTREADY},
		{data: bytes.Repeat([]byte{3}, 100), wireLen: 9000, status: unix.TP_STATUS_VLAN_VALID, vlan: 0x2010},
	}
	blk := buildBlock(t, 8192, frames)
	if !blk.Ready() || blk.NumFrames() != 3 {
		t.Fatalf("Ready %v, NumFrames %d", blk.Ready(), blk.NumFrames())
	}
	it := blk.Frames()
	for i, want := range frames {
		f, ok := it.Next()
		if !ok {
			t.Fatalf("frame %d: walk ended early: %v", i, it.Err())
		}
		if !bytes.Equal(f.Data, want.data) || f.Status != want.status || f.VLANTCI != want.vlan {
			t.Fatalf("frame %d: got %d bytes status %#x vlan %#x", i, len(f.Data), f.Status, f.VLANTCI)
		}
		if f.Truncated() != (want.wireLen != 0) {
			t.Fatalf("frame %d: Truncated %v", i, f.Truncated())
		}
	}
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatalf("walk past the end: ok %v err %v", ok, it.Err())
	}
	blk.release()
	if blk.Ready() {
		t.Fatal("released block still owned by user space")
	}
}

func TestWalkMalformed(t *testing.T) {
	good := buildBlock(t, 4096, []testFrame{{data: make([]byte, 60)}, {data: make([]byte, 60)}})
	ne := binary.NativeEndian
	for name, mutate := range map[string]func(b Block){
		"blk_len beyond block":  func(b Block) { ne.PutUint32(b[offBlkLen:], 5000) },
		"first frame in header": func(b Block) { ne.PutUint32(b[offFirstPkt:], 8) },
		"snaplen beyond block":  func(b Block) { ne.PutUint32(b[BlockHeaderLen+offSnaplen:], 4000) },
		"mac inside header":     func(b Block) { ne.PutUint16(b[BlockHeaderLen+offMac:], 4) },
		"next offset zero":      func(b Block) { ne.PutUint32(b[BlockHeaderLen+offNextOffset:], 0) },
		"next offset past end":  func(b Block) { ne.PutUint32(b[BlockHeaderLen+offNextOffset:], 4090) },
		"bad version":           func(b Block) { ne.PutUint32(b[offBlockVersion:], 77) },
	} {
		b := Block(bytes.Clone(good))
		b = alignedCopy(b)
		mutate(b)
		it := b.Frames()
		n := 0
		for {
			f, ok := it.Next()
			if !ok {
				break
			}
			n++
			checkInside(t, b, f.Data)
		}
		if !errors.Is(it.Err(), ErrMalformed) {
			t.Errorf("%s: walked %d frames, err %v, want ErrMalformed", name, n, it.Err())
		}
	}
	if it := Block(make([]byte, 10)).Frames(); !errors.Is(it.Err(), ErrMalformed) {
		t.Errorf("short block: %v", it.Err())
	}
}

// checkInside fails unless data lies within b.
func checkInside(t testing.TB, b Block, data []byte) {
	t.Helper()
	if len(data) == 0 {
		return
	}
	start := uintptrOf(b)
	p := uintptrOf(data)
	if p < start+BlockHeaderLen || p+uintptr(len(data)) > start+uintptr(len(b)) {
		t.Fatalf("frame data [%#x,+%d) outside the block [%#x,+%d)", p, len(data), start, len(b))
	}
}

func TestWalkDoesNotAllocate(t *testing.T) {
	blk := buildBlock(t, 1<<16, []testFrame{{data: make([]byte, 60)}, {data: make([]byte, 1500)}, {data: make([]byte, 200)}})
	var it Iter
	n := testing.AllocsPerRun(100, func() {
		it.Reset(blk)
		for {
			if _, ok := it.Next(); !ok {
				break
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per block walk, want 0", n)
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	c, err := Config{}.WithDefaults()
	if err != nil || c.BlockSize != DefaultBlockSize || c.BlockCount != DefaultBlockCount ||
		c.FrameSize != DefaultFrameSize || c.RetireTimeout != DefaultRetireTimeout {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if c.retireMillis() != 1 {
		t.Fatalf("retireMillis = %d", c.retireMillis())
	}
	if m := (Config{RetireTimeout: 1500 * time.Microsecond}).retireMillis(); m != 2 {
		t.Fatalf("1.5 ms rounds to %d ms, want 2", m)
	}
	for _, bad := range []Config{
		{BlockSize: 1000},
		{BlockSize: -4096},
		{BlockCount: -1},
		{FrameSize: 100},
		{FrameSize: 32},
		{BlockSize: 4096, FrameSize: 8192},
		{BlockSize: 3 * 4096, FrameSize: 8192},
		{RetireTimeout: -time.Millisecond},
	} {
		if _, err := bad.WithDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", bad, err)
		}
	}
}

// FuzzWalkBlock: walking any bytes as a block never panics, never hands
// out data outside the block or overlapping the block header, never more
// frames than num_pkts, in increasing order.
func FuzzWalkBlock(f *testing.F) {
	f.Add([]byte(buildBlock(f, 4096, []testFrame{{data: make([]byte, 60)}, {data: make([]byte, 300)}})))
	f.Add([]byte(buildBlock(f, 4096, nil)))
	f.Add(make([]byte, BlockHeaderLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := alignedCopy(Block(data))
		it := b.Frames()
		n := 0
		last := uintptr(0)
		for {
			fr, ok := it.Next()
			if !ok {
				break
			}
			n++
			checkInside(t, b, fr.Data)
			if len(fr.Data) > 0 {
				p := uintptrOf(fr.Data)
				if p <= last {
					t.Fatalf("frame %d at %#x not after the previous one at %#x", n, p, last)
				}
				last = p
			}
		}
		if n > b.NumFrames() {
			t.Fatalf("walked %d frames, num_pkts %d", n, b.NumFrames())
		}
	})
}

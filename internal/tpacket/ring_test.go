//go:build linux

package tpacket_test

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/netns"
	"github.com/mcstack/mcstack/internal/tpacket"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// rawSocket opens an AF_PACKET socket bound to ifname in ns.
func rawSocket(t *testing.T, ns *netns.NS, ifname string) int {
	t.Helper()
	fd := -1
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestRingReceives: a real ring on a veth receives what the other end
// sends, in one block handed over by the retire timeout, and a bare reader
// as the benchmarks write it (poll, walk, release) sees every frame.
func TestRingReceives(t *testing.T) {
	netns.RequireRoot(t)
	a, b := netns.New(t, "tpa"), netns.New(t, "tpb")
	va, vb := netns.UniqueName("tpva"), netns.UniqueName("tpvb")
	for _, ns := range []*netns.NS{a, b} {
		if err := ns.Quiet(); err != nil {
			t.Fatal(err)
		}
	}
	if err := netns.AddVeth(a, va, b, vb); err != nil {
		t.Fatal(err)
	}
	if err := a.LinkUp(va); err != nil {
		t.Fatal(err)
	}
	if err := b.LinkUp(vb); err != nil {
		t.Fatal(err)
	}
	rx := rawSocket(t, b, vb)
	ring, err := tpacket.Setup(rx, tpacket.Config{BlockSize: 1 << 16, BlockCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	if _, ok := ring.Current(); ok {
		t.Fatal("a block is ready before anything was sent")
	}
	tx := rawSocket(t, a, va)
	const n = 50
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
	for i := range n {
		binary.BigEndian.PutUint32(frame[14:], uint32(i))
		if _, err := unix.Write(tx, frame); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	var it tpacket.Iter
	for got < n && time.Now().Before(deadline) {
		blk, ok := ring.Current()
		if !ok {
			fds := []unix.PollFd{{Fd: int32(rx), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
				t.Fatal(err)
			}
			continue
		}
		it.Reset(blk)
		for {
			f, ok := it.Next()
			if !ok {
				break
			}
			if len(f.Data) < 18 || binary.BigEndian.Uint16(f.Data[12:]) != 0x88b5 {
				continue
			}
			if seq := binary.BigEndian.Uint32(f.Data[14:]); int(seq) != got {
				t.Fatalf("frame %d has sequence number %d", got, seq)
			}
			got++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		ring.Release()
	}
	if got != n {
		t.Fatalf("received %d of %d frames", got, n)
	}
	rcvd, drops, _, err := tpacket.Stats(rx)
	if err != nil || drops != 0 || rcvd < n {
		t.Fatalf("stats: received %d dropped %d, %v", rcvd, drops, err)
	}
}

// Package reallink is mcstack's real-link benchmark against the Linux
// kernel (in its _test.go files): two network namespaces joined by a veth
// pair, trafgen (Debian netsniff-ng, one worker) flooding UDP to one
// multicast group from one end, and on the other end, alternating in
// rounds, the kernel's own UDP sockets (recvmmsg), mcstack on the
// AF_PACKET recvmsg backend, mcstack on the TPACKET_V3 ring backend, and a
// bare TPACKET_V3 reader that only counts frames (the ring backend's
// floor), with 1, 4 and 16 sockets joined to the group. By default
// (-reallink.napi) the receiving veth's kernel receive work runs in its
// threaded NAPI kernel thread, bound to the receiver's CPU, so that the
// whole receive side shares one core while trafgen has another. It needs
// root and trafgen and skips otherwise. BENCHMARKS.md §1 has the set-up, the command and the results.
package reallink

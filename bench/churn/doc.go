// Package churn measures what the 2011 FreeBSD change "Deferring
// inp_freemoptions() to an asynchronous task" was about: does a driver that
// takes a long time to reprogram its multicast MAC filter stall packet
// reception while other sockets join groups and close?
//
// The benchmarks (in the _test.go files) inject paced multicast UDP into
// one interface while a churn loop opens sockets, joins distinct groups and
// closes them, with a driver that sleeps D per filter update. They compare
// three teardown designs under the same injector, the same slow driver
// endpoint and the same latency recorder:
//
//   - sync: the model before the seed. Socket close takes the demux write
//     lock (FreeBSD's pcbinfo lock) and leaves every group, calling the
//     driver once per membership, while holding it.
//   - seed: the 2011 change. Close unlinks the socket under the demux
//     write lock and queues its memberships for a task; the task leaves
//     them one by one, one driver call per membership, under the multicast
//     lock (IN_MULTI_LOCK) only. Close still takes that multicast lock to
//     queue, so it can wait behind a running driver call while it holds
//     the demux write lock, exactly as in the patch.
//   - mcstack: the real stack package (lock-free receive snapshot,
//     coalesced per-interface filter worker).
//
// BenchmarkSameGoroutine runs the same three designs with the frame handed
// over and read back on one goroutine: their per-packet cost without a
// wake-up or a second core.
//
// The sync and seed designs exist only as benchmark baselines; nothing
// outside this package uses them. See BENCHMARKS.md.
package churn

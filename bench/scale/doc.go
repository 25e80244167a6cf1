// Package scale holds mcstack's control-plane scale benchmarks (in its
// _test.go files): join/leave throughput and heap per membership with
// 10,000 groups x 100 sources on one interface, the per-packet cost of an
// EXCLUDE source filter with 1, 100 and 1,000 sources, and the IGMPv3
// response to a General Query for 10,000 groups against the MTU-packing
// minimum. See BENCHMARKS.md.
package scale

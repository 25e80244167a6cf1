// Package emulate holds the benchmarks of `mcast emulate`'s building
// blocks (in its _test.go files): many full stacks on one link/mux, in
// memory. Heap and goroutines per idle host with and without the mux, the
// time for 10,000 hosts to answer one General Query within its Max Resp
// Time, the join ramp's joins/s, and 1,000 hosts x 10 groups x 10 sources.
// BENCHMARKS.md §7 has the commands and the measured numbers.
package emulate

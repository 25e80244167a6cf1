//go:build race

package stack

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation tests are skipped.
const raceEnabled = true

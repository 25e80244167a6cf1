// Package buildcheck holds tests of the repository's build and CI scripts
// (scripts/, Makefile); it has no code of its own.
package buildcheck

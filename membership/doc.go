// Package membership owns source-filter state: each socket's filter per
// (interface, group) with the RFC 3678 operations and their error rules, and
// each interface's reference-counted group records whose filter is the merge
// of its sockets' filters (RFC 9776 §3.2, RFC 9777 §4.2). It is pure data
// with no locks and no goroutines; the stack serialises access and publishes
// snapshots for the receive path.
package membership

// Use per socket operation, in the transaction order of design-lessons.md:
//
//	old, new, err := filters.Propose(key, op) // validates; changes nothing
//	d, changed, err := table.Apply(key.Group, old, new) // interface merge
//	// ... queue the state-change report for d if changed ...
//	filters.Commit(key, new)
//
// If anything after Apply fails, roll back with table.Revert(key.Group,
// new, old), which never fails. A leave (new INCLUDE {}) never fails in
// either step.

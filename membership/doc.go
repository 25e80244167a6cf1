// Package membership owns source-filter state: each socket's filter per
// (interface, group) with the RFC 3678 operations and their error rules, and
// each interface's reference-counted group records whose filter is the merge
// of its sockets' filters (RFC 9776 §3.2, RFC 9777 §4.2). It is pure data
// with no locks and no goroutines; the stack serialises access and publishes
// snapshots for the receive path.
package membership

// Package wire owns the on-the-wire formats mcstack speaks: Ethernet II,
// IPv4 and IPv6 (with Router Alert), UDP, ICMPv6, IGMPv1/v2/v3 and
// MLDv1/v2, plus multicast address helpers.
//
// For each format there is a zero-copy view over a byte slice and, where a
// message has structure worth naming, a parsed representation with Parse and
// Emit. Emit appends to a caller's buffer and does not allocate when the
// buffer has room. Every parser returns a typed error (see *ParseError) for
// truncated, inconsistent or malformed input and never reads out of bounds.
package wire

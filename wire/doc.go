// Package wire owns the on-the-wire formats mcstack speaks: Ethernet II,
// IPv4 and IPv6 (with Router Alert), UDP, ICMPv6, IGMPv1/v2/v3 and
// MLDv1/v2, plus multicast address helpers.
//
// For each format there is a zero-copy view over a byte slice and, where a
// message has structure worth naming, a parsed representation with Parse and
// Emit. Emit appends to a caller's buffer and does not allocate when the
// buffer has room. Every parser returns a typed error (see *ParseError) for
// truncated, inconsistent or malformed input and never reads out of bounds.
//
// Conventions:
//   - Parsed Payload and Options fields alias the input buffer; IGMP/MLD
//     source lists and record slices are freshly allocated (bounded by the
//     message length), record AuxData aliases the input.
//   - Parse errors are *ParseError wrapping ErrTruncated, ErrChecksum,
//     ErrMalformed or ErrUnsupported; emit errors are *EncodeError wrapping
//     ErrCannotEncode, and the buffer is returned unextended.
//   - Whatever a parser accepts, the matching Append emits, and parsing the
//     result gives the same representation (the fuzz targets check this).
//   - IGMP checksums cover the IGMP message only (RFC 9776 §4.1.2); ICMPv6
//     (MLD) and UDP checksums include the pseudo-header (RFC 8200 §8.1), so
//     ParseMLD leaves verification to VerifyICMPv6.
//   - The IPv6 extension-header walk stops at a Fragment header and reports
//     NextHeader 44 (see IPv6); there is no reassembly.
package wire

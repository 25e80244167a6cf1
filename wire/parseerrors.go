package wire

// The parse errors, one preallocated value per (layer, field, reason), so
// that rejecting a frame does not allocate: the receive path sees
// malformed and foreign frames at line rate. They must not be modified.
var (
	peEthernetHeaderTruncated            error = &ParseError{Layer: "ethernet", Field: "header", Err: ErrTruncated, Reason: "shorter than 14 bytes"}
	peEthernet8021QTagTruncated          error = &ParseError{Layer: "ethernet", Field: "802.1Q tag", Err: ErrTruncated, Reason: "shorter than 18 bytes"}
	peEthernetEthertypeUnsupported       error = &ParseError{Layer: "ethernet", Field: "ethertype", Err: ErrUnsupported, Reason: "802.3 length field, not an EtherType"}
	peIcmpv6HeaderTruncated              error = &ParseError{Layer: "icmpv6", Field: "header", Err: ErrTruncated, Reason: "shorter than 4 bytes"}
	peIcmpv6AddressMalformed             error = &ParseError{Layer: "icmpv6", Field: "address", Err: ErrMalformed, Reason: "pseudo-header addresses are not IPv6"}
	peIcmpv6ChecksumChecksum             error = &ParseError{Layer: "icmpv6", Field: "checksum", Err: ErrChecksum, Reason: ""}
	peIgmpHeaderTruncated                error = &ParseError{Layer: "igmp", Field: "header", Err: ErrTruncated, Reason: "shorter than 8 bytes"}
	peIgmpTypeUnsupported                error = &ParseError{Layer: "igmp", Field: "type", Err: ErrUnsupported, Reason: "unknown IGMP message type"}
	peIgmpLengthMalformed                error = &ParseError{Layer: "igmp", Field: "length", Err: ErrMalformed, Reason: "query of 9-11 bytes (RFC 9776 §7.1)"}
	peIgmpChecksumChecksum               error = &ParseError{Layer: "igmp", Field: "checksum", Err: ErrChecksum, Reason: ""}
	peIgmpGroupAddressMalformed          error = &ParseError{Layer: "igmp", Field: "group address", Err: ErrMalformed, Reason: "group is not a multicast address"}
	peIgmpGroupAddressMalformed2         error = &ParseError{Layer: "igmp", Field: "group address", Err: ErrMalformed, Reason: "query group is neither 0.0.0.0 nor multicast"}
	peIgmpNumberOfSourcesTruncated       error = &ParseError{Layer: "igmp", Field: "number of sources", Err: ErrTruncated, Reason: "source count exceeds message length"}
	peIpv4OptionLengthMalformed          error = &ParseError{Layer: "ipv4", Field: "option length", Err: ErrMalformed, Reason: "option type without length octet"}
	peIpv4OptionLengthMalformed2         error = &ParseError{Layer: "ipv4", Field: "option length", Err: ErrMalformed, Reason: "option length out of range"}
	peIpv4RouterAlertMalformed           error = &ParseError{Layer: "ipv4", Field: "router alert", Err: ErrMalformed, Reason: "router alert option length is not 4 (RFC 2113)"}
	peIpv4HeaderTruncated                error = &ParseError{Layer: "ipv4", Field: "header", Err: ErrTruncated, Reason: "shorter than 20 bytes"}
	peIpv4VersionMalformed               error = &ParseError{Layer: "ipv4", Field: "version", Err: ErrMalformed, Reason: "version is not 4"}
	peIpv4IHLMalformed                   error = &ParseError{Layer: "ipv4", Field: "IHL", Err: ErrMalformed, Reason: "IHL below 5"}
	peIpv4OptionsTruncated               error = &ParseError{Layer: "ipv4", Field: "options", Err: ErrTruncated, Reason: "shorter than IHL"}
	peIpv4TotalLengthMalformed           error = &ParseError{Layer: "ipv4", Field: "total length", Err: ErrMalformed, Reason: "total length below header length"}
	peIpv4TotalLengthTruncated           error = &ParseError{Layer: "ipv4", Field: "total length", Err: ErrTruncated, Reason: "total length beyond end of packet"}
	peIpv4HeaderChecksumChecksum         error = &ParseError{Layer: "ipv4", Field: "header checksum", Err: ErrChecksum, Reason: ""}
	peIpv6OptionLengthMalformed          error = &ParseError{Layer: "ipv6", Field: "option length", Err: ErrMalformed, Reason: "option type without length octet"}
	peIpv6OptionLengthMalformed2         error = &ParseError{Layer: "ipv6", Field: "option length", Err: ErrMalformed, Reason: "option data beyond end of header"}
	peIpv6RouterAlertMalformed           error = &ParseError{Layer: "ipv6", Field: "router alert", Err: ErrMalformed, Reason: "router alert option length is not 2 (RFC 2711)"}
	peIpv6RouterAlertMalformed2          error = &ParseError{Layer: "ipv6", Field: "router alert", Err: ErrMalformed, Reason: "duplicate router alert option"}
	peIpv6OptionTypeUnsupported          error = &ParseError{Layer: "ipv6", Field: "option type", Err: ErrUnsupported, Reason: "unrecognized option that requires discarding the packet"}
	peIpv6HeaderTruncated                error = &ParseError{Layer: "ipv6", Field: "header", Err: ErrTruncated, Reason: "shorter than 40 bytes"}
	peIpv6VersionMalformed               error = &ParseError{Layer: "ipv6", Field: "version", Err: ErrMalformed, Reason: "version is not 6"}
	peIpv6PayloadLengthTruncated         error = &ParseError{Layer: "ipv6", Field: "payload length", Err: ErrTruncated, Reason: "payload length beyond end of packet"}
	peIpv6HopByHopMalformed              error = &ParseError{Layer: "ipv6", Field: "hop-by-hop", Err: ErrMalformed, Reason: "hop-by-hop header is not first (RFC 8200 §4.1)"}
	peIpv6ExtensionHeaderTruncated       error = &ParseError{Layer: "ipv6", Field: "extension header", Err: ErrTruncated, Reason: "extension header beyond payload length"}
	peIpv6ExtensionHeaderLengthTruncated error = &ParseError{Layer: "ipv6", Field: "extension header length", Err: ErrTruncated, Reason: "extension header beyond payload length"}
	peIpv6FragmentTruncated              error = &ParseError{Layer: "ipv6", Field: "fragment", Err: ErrTruncated, Reason: "fragment header beyond payload length"}
	peMldHeaderTruncated                 error = &ParseError{Layer: "mld", Field: "header", Err: ErrTruncated, Reason: "shorter than 4 bytes"}
	peMldHeaderTruncated2                error = &ParseError{Layer: "mld", Field: "header", Err: ErrTruncated, Reason: "report shorter than 8 bytes"}
	peMldTypeUnsupported                 error = &ParseError{Layer: "mld", Field: "type", Err: ErrUnsupported, Reason: "not an MLD message type"}
	peMldHeaderTruncated3                error = &ParseError{Layer: "mld", Field: "header", Err: ErrTruncated, Reason: "shorter than 24 bytes"}
	peMldLengthMalformed                 error = &ParseError{Layer: "mld", Field: "length", Err: ErrMalformed, Reason: "query of 25-27 bytes (RFC 9777 §8.1)"}
	peMldMulticastAddressMalformed       error = &ParseError{Layer: "mld", Field: "multicast address", Err: ErrMalformed, Reason: "group is not a multicast address"}
	peMldMulticastAddressMalformed2      error = &ParseError{Layer: "mld", Field: "multicast address", Err: ErrMalformed, Reason: "query group is neither :: nor multicast"}
	peMldNumberOfSourcesTruncated        error = &ParseError{Layer: "mld", Field: "number of sources", Err: ErrTruncated, Reason: "source count exceeds message length"}
	peUdpPseudoHeaderMalformed           error = &ParseError{Layer: "udp", Field: "pseudo-header", Err: ErrMalformed, Reason: "source and destination are not of one address family"}
	peUdpHeaderTruncated                 error = &ParseError{Layer: "udp", Field: "header", Err: ErrTruncated, Reason: "shorter than 8 bytes"}
	peUdpLengthMalformed                 error = &ParseError{Layer: "udp", Field: "length", Err: ErrMalformed, Reason: "length below 8"}
	peUdpLengthTruncated                 error = &ParseError{Layer: "udp", Field: "length", Err: ErrTruncated, Reason: "length beyond end of packet"}
	peUdpChecksumChecksum                error = &ParseError{Layer: "udp", Field: "checksum", Err: ErrChecksum, Reason: "zero checksum over IPv6"}
	peUdpChecksumChecksum2               error = &ParseError{Layer: "udp", Field: "checksum", Err: ErrChecksum, Reason: ""}
)

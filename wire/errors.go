package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every *ParseError wraps exactly one of the first four;
// every error returned by an Append/Emit function wraps ErrCannotEncode.
var (
	// ErrTruncated: the input ends before a field or a length says it should.
	ErrTruncated = errors.New("truncated")
	// ErrChecksum: a checksum does not verify.
	ErrChecksum = errors.New("bad checksum")
	// ErrMalformed: fields are present but inconsistent or invalid.
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported: well-formed input this package does not handle
	// (unknown message type, an option that requires discarding, ...).
	ErrUnsupported = errors.New("unsupported")
	// ErrCannotEncode: the value cannot be represented on the wire.
	ErrCannotEncode = errors.New("cannot encode")
)

// ParseError describes why a parser rejected its input.
type ParseError struct {
	Layer  string // "ethernet", "ipv4", "ipv6", "udp", "icmpv6", "igmp", "mld"
	Field  string // the field that failed, e.g. "total length"
	Reason string // human-readable detail
	Err    error  // one of ErrTruncated, ErrChecksum, ErrMalformed, ErrUnsupported
}

func (e *ParseError) Error() string {
	s := "wire: " + e.Layer
	if e.Field != "" {
		s += " " + e.Field
	}
	s += ": "
	if e.Err != nil {
		s += e.Err.Error()
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

func perr(layer, field string, err error, reason string) error {
	return &ParseError{Layer: layer, Field: field, Reason: reason, Err: err}
}

// EncodeError describes why an Append function refused its input. It wraps
// ErrCannotEncode.
type EncodeError struct {
	Layer  string
	Reason string
}

func (e *EncodeError) Error() string {
	return "wire: " + e.Layer + ": " + ErrCannotEncode.Error() + ": " + e.Reason
}

func (e *EncodeError) Unwrap() error { return ErrCannotEncode }

func eerr(layer, format string, args ...any) error {
	return &EncodeError{Layer: layer, Reason: fmt.Sprintf(format, args...)}
}

// Package crosscheck checks package wire's emitters against an independent
// decoder, gopacket's layers package. It is a separate module so that
// gopacket (and what it pulls in) stays out of mcstack's own module graph:
// users of mcstack never download it. make test runs it (make crosscheck).
//
// The package has only tests.
package crosscheck

// Command mcast runs the mcstack multicast host stack from the command line.
//
//	mcast demo     an in-memory LAN with a querier, senders, SSM/ASM receivers
//	               and socket churn behind a slow NIC filter (no root needed)
//	mcast recv     join groups on a real interface; a receiver monitor (loss,
//	               reordering, rate, latency per source and group)
//	mcast send     send datagrams to groups on a real interface
//	mcast emulate  thousands of full multicast hosts on one interface, to
//	               load-test the switch or router upstream
//	mcast stat     show the state of a running `mcast recv` (admin socket)
//
// Exit codes, for scripts:
//
//	0  success
//	1  runtime error
//	2  usage error (bad command, flag or argument)
//	3  interface, permission or admin-socket problem (cannot open the link,
//	   no CAP_NET_RAW/CAP_NET_ADMIN, interface down, socket not reachable)
//	4  check failed: the demo saw a source-filter violation (a datagram
//	   delivered that the socket's filter excludes), lost a datagram of an
//	   allowed source, or its querier learned a membership other than the
//	   hosts' filters (or kept one after the hosts left)
//
// SIGINT and SIGTERM stop a command cleanly: recv and send close their
// stack, which sends the final IGMP/MLD reports (leaving every group)
// before the process exits with 0; the demo stops early and prints its
// summary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK        = 0
	exitRuntime   = 1
	exitUsage     = 2
	exitInterface = 3
	exitCheck     = 4
)

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, a...)}
}

func ifaceErr(err error) error { return &exitError{exitInterface, err} }

// errHelp is returned when -h was given: usage was printed, exit 0.
var errHelp = errors.New("help requested")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

var commands = []command{
	{"demo", "in-memory LAN demo: querier, SSM/ASM receivers, socket churn, slow NIC filter", runDemo},
	{"recv", "join groups on an interface; per-datagram lines and loss/rate/latency per source and group", runRecv},
	{"send", "send datagrams to multicast groups on an interface", runSend},
	{"emulate", "emulate many multicast hosts on one interface and measure the device upstream", runEmulate},
	{"stat", "show groups, filters, protocol and driver state of a running `mcast recv`", runStat},
}

// env is what a command may touch: its output streams and whether stdout
// is a terminal.
type env struct {
	stdout, stderr io.Writer
	tty            bool
	// trailer is a last line a command leaves for stderr (recv's totals),
	// printed after its error message, if any.
	trailer string
}

const mainUsage = `usage: mcast COMMAND [flags]

mcast runs the mcstack user-space multicast host stack.

Commands:
%s
Run 'mcast COMMAND -h' for the flags of a command; 'mcast --version'
prints the version.

Exit codes: 0 ok, 1 runtime error, 2 usage error,
3 interface/permission/admin-socket problem, 4 check failed (demo).
Flags may be written -flag or --flag.
`

func printMainUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, b.String())
}

// run executes the command line args (without the program name) and
// returns the exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printMainUsage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printMainUsage(e.stdout)
		return exitOK
	case "-version", "--version", "version":
		printVersion(e.stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		return report(e, c.name, err)
	}
	fmt.Fprintf(e.stderr, "mcast: unknown command %q\n", args[0])
	printMainUsage(e.stderr)
	return exitUsage
}

func report(e *env, name string, err error) int {
	defer func() {
		if e.trailer != "" {
			fmt.Fprintln(e.stderr, e.trailer)
		}
	}()
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	code := exitRuntime
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(e.stderr, "mcast %s: %v\n", name, err)
	if code == exitUsage {
		fmt.Fprintf(e.stderr, "Run 'mcast %s -h' for usage.\n", name)
	}
	return code
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stdout)}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// newFlagSet returns a flag set that reports errors instead of printing
// them; parse prints the usage on -h.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("mcast "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args into fs. On -h it prints usage (the synopsis text and
// the flag defaults) to stdout and returns errHelp; other errors are usage
// errors.
func parse(e *env, fs *flag.FlagSet, usage string, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(e.stdout, fs, usage)
		return errHelp
	}
	if err != nil {
		return &exitError{exitUsage, err}
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, strings.TrimLeft(usage, "\n"))
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

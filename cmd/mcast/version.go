package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildVersion describes the binary: the module version ("(devel)" for a
// build from a checkout) and, when the build recorded it, the VCS
// revision and whether the tree was modified.
func buildVersion() (version, revision string, modified bool) {
	version = "(devel)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, "", false
	}
	if v := bi.Main.Version; v != "" {
		version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return version, revision, modified
}

func printVersion(w io.Writer) {
	v, rev, mod := buildVersion()
	fmt.Fprintf(w, "mcast %s", v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(w, " (%s", rev)
		if mod {
			fmt.Fprint(w, ", modified")
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, " %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

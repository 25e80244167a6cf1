#!/usr/bin/env bash
# fuzz.sh BUDGET PKG... — runs every Fuzz* target in each package for BUDGET,
# a -fuzztime value: a count such as 20000x (make test: deterministic in
# length whatever the machine's load) or a duration such as 60s (make fuzz).
#
# A target fails the run only on a real finding: a failing input (written
# under testdata/fuzz/) or any other test failure. Go 1.26's fuzz
# coordinator can end a run at a -fuzztime deadline with "context deadline
# exceeded" and no input (golang/go#75804, fixed in Go 1.27); count budgets
# have no deadline, and if that message still comes without a failing
# input the target is run once more before the script gives up.
set -euo pipefail
budget=$1; shift
log=$(mktemp "${TMPDIR:-/tmp}/mcstack-fuzz.XXXXXX")
trap 'rm -f "$log"' EXIT

# spurious: the log shows the coordinator race and no failing input.
spurious() {
  grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"
}

for pkg in "$@"; do
  for f in $(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $f ($budget)"
    for attempt in 1 2; do
      if go test -run='^$' -fuzz="^${f}\$" -fuzztime="$budget" "$pkg" >"$log" 2>&1; then
        break
      fi
      if [ "$attempt" = 1 ] && spurious; then
        echo "fuzz $pkg $f: coordinator deadline race (golang/go#75804), no failing input; running again"
        continue
      fi
      cat "$log"
      exit 1
    done
  done
done

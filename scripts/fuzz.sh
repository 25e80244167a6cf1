#!/usr/bin/env bash
# fuzz.sh TIME PKG... — runs every Fuzz* target in each package for TIME.
# A target's output is shown only when it fails.
set -euo pipefail
t=$1; shift
log=$(mktemp "${TMPDIR:-/tmp}/mcstack-fuzz.XXXXXX")
trap 'rm -f "$log"' EXIT
for pkg in "$@"; do
  for f in $(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $f ($t)"
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg" >"$log" 2>&1 || { cat "$log"; exit 1; }
  done
done

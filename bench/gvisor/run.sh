#!/usr/bin/env bash
# Runs the multicast receive benchmarks of this module (gVisor netstack, the
# floor and mcstack) and prints a side-by-side table of
# median pkts/s, allocs per packet and pkts/s ratios relative to gVisor and
# to the floor.
#
#   bash bench/gvisor/run.sh                 # -count 5, Go's default benchtime
#   COUNT=2 BENCHTIME=20000x bash bench/gvisor/run.sh   # quick look
#   BENCH='GVisor|Floor' bash bench/gvisor/run.sh
#   OUT=/tmp/gv.txt bash bench/gvisor/run.sh # keep the raw go test output
#
# The raw output is benchstat-compatible: e.g. split it by implementation
# and run `benchstat gvisor.txt mcstack.txt` after renaming the benchmarks.
set -euo pipefail
cd "$(dirname "$0")"
GO=${GO:-go}
COUNT=${COUNT:-5}
BENCH=${BENCH:-.}
OUT=${OUT:-$(mktemp -t gvisor-bench.XXXXXX)}
args=(-run '^$' -bench "$BENCH" -benchmem -count "$COUNT" -timeout 30m)
[ -n "${BENCHTIME:-}" ] && args+=(-benchtime "$BENCHTIME")

echo "== go test ${args[*]} ./...  (raw output: $OUT)"
set +e
$GO test "${args[@]}" ./... 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
set -e
echo
echo "== pkts/s (median of $COUNT), allocs per injected packet, ratios"
$GO run ./cmd/ratio "$OUT"
exit "$rc"

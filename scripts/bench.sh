#!/usr/bin/env bash
# Runs every mcstack benchmark (see BENCHMARKS.md), saves the raw output
# under bench/out/ (gitignored), draws bench/churn-latency.png and prints
# the result tables.
#
#   scripts/bench.sh                 everything (make bench); about 20 min on 2 cores (as root)
#   scripts/bench.sh plot CSV PNG    only redraw the churn plot (and print its table)
#
# Environment: GO (default go); BENCHTIME (default: go test's 1s) for the
# micro-benchmarks of membership, wire, stack and bench/scale; COUNT
# (default 5) for bench/gvisor; CHURN_ARGS (default "-churn.runs=5") for the
# fixed-duration churn sub-benchmarks, e.g.
# CHURN_ARGS="-churn.runs=5 -churn.duration=5s -churn.pps=50000";
# REALLINK_ARGS (default "-reallink.rounds=5 -reallink.window=2s") for the
# real-link benchmark against the kernel, run twice: with the receiving
# veth's kernel work in its threaded NAPI thread on the receiver's CPU (the
# default set-up) and with it in the sending CPU's softirq
# (-reallink.napi=false) (root and trafgen; it skips otherwise; about 9
# minutes for both).
#
# The plot is drawn by bench/cmd/churnreport, a Go program using only the
# standard library (image/png, a built-in bitmap font): no gnuplot needed.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=bench/out
PNG=bench/churn-latency.png

# plot CSV PNG: the churn table (Markdown) on stdout and in $OUT/churn-table.md,
# the latency plot in PNG.
plot() {
  mkdir -p "$OUT"
  $GO run ./bench/cmd/churnreport -csv "$1" -png "$2" | tee "$OUT/churn-table.md"
  return "${PIPESTATUS[0]}"
}

if [ "${1:-}" = plot ]; then
  plot "${2:?csv}" "${3:?png}"
  exit
fi

mkdir -p "$OUT"
status=0
start=$(date +%s)
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cores: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "go: $($GO version)"
  echo "kernel: $(uname -sr)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

bt=()
[ -n "${BENCHTIME:-}" ] && bt=(-benchtime "$BENCHTIME")

# run NAME CMD...: tee output to bench/out/NAME.txt, remember failures.
run() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "load after $name: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
  if [ "$rc" -ne 0 ]; then
    echo "bench.sh: $name FAILED (exit $rc)" | tee -a "$OUT/$name.txt"
    status=1
  fi
}

export MCSTACK_CHURN_CSV="$PWD/$OUT/churn.csv"
rm -f "$MCSTACK_CHURN_CSV"
# shellcheck disable=SC2086
# BenchmarkChurn's sub-benchmarks are one fixed-duration run each: -benchtime=1x.
run churn $GO test -run '^$' -bench '^BenchmarkChurn$' -benchtime=1x -benchmem -timeout 10m ./bench/churn -args ${CHURN_ARGS:--churn.runs=5}
run churn-burst $GO test -run '^$' -bench '^BenchmarkCloseBurst$' -benchmem -timeout 10m "${bt[@]}" ./bench/churn
run churn-same $GO test -run '^$' -bench '^BenchmarkSameGoroutine$' -benchmem -count 5 -timeout 10m "${bt[@]}" ./bench/churn
unset MCSTACK_CHURN_CSV
# BenchmarkMemberships is one fixed workload (10,000 groups x 100 sources): -benchtime=1x.
run scale-memberships $GO test -run '^$' -bench '^BenchmarkMemberships$' -benchtime=1x -benchmem -timeout 10m ./bench/scale
# -v so that a skipped benchmark (the IGMP engine still a placeholder) says why.
run scale-igmp $GO test -v -run '^$' -bench '^BenchmarkIGMPGeneralQuery$' -benchmem -timeout 10m "${bt[@]}" ./bench/scale
run scale $GO test -run '^$' -bench '^Benchmark(StateAccepts|FilterReceive)$' -benchmem -timeout 10m "${bt[@]}" ./bench/scale
# Close cost vs G and a concurrent join's latency during a 4,096-group close.
run scale-close $GO test -run '^$' -bench '^Benchmark(CloseGroups|JoinDuringClose)$' -benchtime 20x -timeout 10m ./bench/scale

# Real link vs the kernel: namespaces, a veth pair and trafgen (root only;
# -v so that a skip says why). The Markdown table goes to reallink-table.md.
# shellcheck disable=SC2086
run reallink $GO test -v -run '^$' -bench '^BenchmarkRealLink$' -benchtime 1x -timeout 30m ./bench/reallink -args ${REALLINK_ARGS:--reallink.rounds=5 -reallink.window=2s}
# shellcheck disable=SC2086
run reallink-backlog $GO test -v -run '^$' -bench '^BenchmarkRealLink$' -benchtime 1x -timeout 30m ./bench/reallink -args -reallink.napi=false ${REALLINK_ARGS:--reallink.rounds=5 -reallink.window=2s}
for f in reallink reallink-backlog; do
  awk '/^== reallink/ { p = 1 } p { print } p && /^\|/ { t = 1 } t && /^$/ { exit }' "$OUT/$f.txt" >"$OUT/$f-table.md"
done

# AF_PACKET receive modes side by side (root only): trafgen flood, the ring
# vs recvmsg (frames/s, share of offered, CPU per frame), and the latency a
# ring block's retire timeout adds at a low rate.
run afpacket-modes $GO test -v -run '^$' -bench 'ReceiveModes|RetireLatency' -benchtime 1x -timeout 10m ./link/afpacket

# mcast emulate: idle host cost on the mux, 10,000 hosts answering one
# General Query, the join ramp, 1,000 hosts x 10 groups x 10 sources; and the
# mux's delivery cost per frame vs the number of hosts.
run emulate $GO test -run '^$' -bench . -benchtime=1x -timeout 10m ./bench/emulate
run mux $GO test -run '^$' -bench Deliver -benchtime=20000x -timeout 10m ./link/mux

for pkg in membership wire stack; do
  if ls "$pkg"/*_test.go >/dev/null 2>&1 && grep -q '^func Benchmark' "$pkg"/*_test.go; then
    run "$pkg" $GO test -run '^$' -bench . -benchmem -timeout 10m "${bt[@]}" "./$pkg"
  else
    echo "== $pkg: no benchmarks yet" | tee "$OUT/$pkg.txt"
  fi
done

# bench/gvisor is a separate module (gVisor pinned there, not in ours):
# gVisor, mcstack and the floor side by side, -count COUNT, ratio table.
echo "== gvisor: bench/gvisor/run.sh (COUNT=${COUNT:-5})"
COUNT=${COUNT:-5} OUT="$PWD/$OUT/gvisor.txt" GO=$GO bash bench/gvisor/run.sh 2>&1 | tee "$OUT/gvisor-run.txt"
rc=${PIPESTATUS[0]}
echo "load after gvisor: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
sed -n '/^== pkts\/s/,$p' "$OUT/gvisor-run.txt" >"$OUT/gvisor-ratio.txt"
[ "$rc" -eq 0 ] || { echo "bench.sh: gvisor FAILED (exit $rc)"; status=1; }

echo
echo "================ summary ================"
if [ -s "$OUT/churn.csv" ]; then
  echo "== churn latency (bench/out/churn-table.md)"
  plot "$OUT/churn.csv" "$PNG" || status=1
else
  echo "bench.sh: no churn CSV, no plot" >&2
  status=1
fi
echo
echo "== driver calls per burst of N closes (D = 1 ms)"
grep -h '^BenchmarkCloseBurst/' "$OUT/churn-burst.txt" | sed 's/-[0-9]*[[:space:]]/ /' |
  awk '{ m=""; for (i=3; i<=NF; i+=2) m = m sprintf("  %s %s", $i, $(i+1)); print $1 m }'
echo
echo "== one frame in and read back on one goroutine, per design (ns/op: median of 5)"
grep -h '^BenchmarkSameGoroutine/' "$OUT/churn-same.txt" | sed 's/-[0-9]*[[:space:]]/ /' |
  awk '{ print $1, $3 }' | sort -k1,1 -k2,2n |
  awk '{ v[$1] = v[$1] " " $2; n[$1]++ } END { for (k in v) { split(substr(v[k], 2), a, " "); print k, a[int((n[k] + 1) / 2)] " ns/op" } }' | sort
echo
echo "== control-plane scale"
for f in scale-memberships scale-igmp scale scale-close membership stack; do
  grep -h -E '^(Benchmark|--- SKIP|--- FAIL|    .*NOT MEASURED)' "$OUT/$f.txt" 2>/dev/null
done | sed 's/-[0-9]*[[:space:]]/ /' |
  awk '/^Benchmark/ { if (NF < 4) next; m=""; for (i=3; i<=NF; i+=2) m = m sprintf("  %s %s", $i, $(i+1)); print $1 m; next } { print }'
echo
for f in reallink reallink-backlog; do
  echo "== real link vs the kernel (bench/out/$f-table.md)"
  if [ -s "$OUT/$f-table.md" ]; then
    cat "$OUT/$f-table.md"
  else
    grep -h -E '^(--- SKIP|--- FAIL|    .*skipping)' "$OUT/$f.txt" 2>/dev/null || echo "(no table)"
  fi
done
echo
echo "== AF_PACKET receive modes, mcast emulate, mux"
for f in afpacket-modes emulate mux; do
  grep -h -E '^(Benchmark|--- SKIP|--- FAIL)' "$OUT/$f.txt" 2>/dev/null
done | sed 's/-[0-9]*[[:space:]]/ /' |
  awk '/^Benchmark/ { if (NF < 4) next; m=""; for (i=3; i<=NF; i+=2) m = m sprintf("  %s %s", $i, $(i+1)); print $1 m; next } { print }'
echo
echo "== receive throughput vs gVisor and the floor (bench/out/gvisor-ratio.txt)"
cat "$OUT/gvisor-ratio.txt"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "bench.sh: done in $(($(date +%s) - start)) s, raw output in $OUT/ (status $status)"
exit $status

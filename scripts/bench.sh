#!/usr/bin/env bash
# Builds the benchmarks (RelWithDebInfo, in build-bench/) and runs them all,
# printing each one's table and JSON line (docs/benchmarks.md).
#
#   scripts/bench.sh                 # all of them
#   scripts/bench.sh cold_sync ...   # some: cold_sync cache_ingest history_page cache_open
#                                    #       presence_burst e2e_ratchet
#
# e2e_ratchet measures libolm's Olm session alongside Parley's ratchet when
# libolm is installed (Debian: apt-get install libolm-dev); otherwise Parley's
# only, with a note. The tests (scripts/test.sh, CI) do not need libolm.
#
# The JSON lines are also collected in build-bench/bench-results.jsonl.
# Scratch data goes under $PARLEY_BENCH_DIR (default: the system temp
# directory) and is removed afterwards. Figures vary with what else the machine
# is running: the load average is printed first.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${PARLEY_BENCH_BUILD:-build-bench}"
all=(cold_sync cache_ingest history_page cache_open presence_burst e2e_ratchet)
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${all[@]}")

declare -A target=(
  [cold_sync]=parley-bench-cold-sync
  [cache_ingest]=parley-bench-cache-ingest
  [history_page]=parley-bench-history-page
  [cache_open]=parley-bench-cache-open
  [presence_burst]=parley-bench-presence-burst
  [e2e_ratchet]=parley-bench-e2e
)
targets=()
for b in "${selected[@]}"; do
  [ -n "${target[$b]:-}" ] || { echo "unknown benchmark: $b (one of: ${all[*]})" >&2; exit 2; }
  targets+=("${target[$b]}")
done

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BUILD_BENCH=ON \
  -DPARLEY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ " ${selected[*]} " == *" e2e_ratchet "* ]] &&
  ! dpkg-query -W -f='${Status}' libolm-dev 2>/dev/null | grep -q "install ok installed"; then
  echo "note: libolm-dev is not installed: e2e_ratchet measures Parley only" \
    "(apt-get install libolm-dev, then run again for the libolm baseline)"
fi

results="$build/bench-results.jsonl"
log="$build/bench-stderr.log"
: >"$results"
: >"$log"
for b in "${selected[@]}"; do
  # The table goes to the terminal, the JSON line (starting with {"bench")
  # to the results file too; stderr (server logs) to the log.
  if ! "$build/bin/${target[$b]}" 2>>"$log" | tee "$build/$b.out"; then
    echo "$b failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  grep '^{"bench"' "$build/$b.out" >>"$results"
done
echo
echo "JSON lines: $results"

#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (the `fuzz` preset: clang with
# ASan + UBSan, in build-fuzz/) and runs each for a bounded time. A crash is
# saved under BUILD/crashes/ and printed (base64 too, for CI logs); the script
# goes on with the other targets and exits 1 at the end. docs/fuzzing.md says
# how to run for hours and how to turn a crash into a regression test.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 30; TARGET is a name such as hub or
# client_frame (default: every tests/fuzz/*_fuzz.cpp). Environment:
#   PARLEY_FUZZ_BUILD  build directory (default build-fuzz)
#   PARLEY_FUZZ_JOBS   fuzzing processes per target (libFuzzer -fork; default 1)
#   PARLEY_FUZZ_PARALLEL  targets run at the same time (default: CPUs / JOBS)
#   PARLEY_FUZZ_ARGS   more libFuzzer flags, e.g. "-max_len=65536"
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

seconds="${1:-30}"
[ $# -gt 0 ] && shift
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac
build="${PARLEY_FUZZ_BUILD:-build-fuzz}"
jobs="${PARLEY_FUZZ_JOBS:-1}"
extra=()
read -r -a extra <<<"${PARLEY_FUZZ_ARGS:-}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzz.cpp; do
    f="${f##*/}"
    targets+=("${f%_fuzz.cpp}")
  done
fi
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/${t}_fuzz.cpp" ] || { echo "fuzz: no target \"$t\" (tests/fuzz/${t}_fuzz.cpp)" >&2; exit 2; }
done

scripts/deps.sh
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (scripts/deps.sh installs it)" >&2; exit 1; }

echo "fuzz: building ${#targets[@]} targets in $build"
cmake --preset fuzz -B "$build" >/dev/null
mkdir -p "$build/crashes" "$build/logs"
if ! cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >"$build/logs/build.log" 2>&1; then
  tail -n 40 "$build/logs/build.log" >&2
  echo "fuzz: the build failed ($build/logs/build.log)" >&2
  exit 1
fi
grep -E "warning:" "$build/logs/build.log" >&2 || true
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp}"

# fuzz_one TARGET: runs one target; its summary goes to BUILD/logs/TARGET.out
# (printed in order once all are done) and its status to TARGET.status.
fuzz_one() {
  local t=$1 work="$build/corpus/$t"  # grows run after run; the seeds stay as committed
  local log="$build/logs/$t.log" out="$build/logs/$t.out" start=$SECONDS runs cov crash
  mkdir -p "$work"
  local dirs=("$work" "tests/fuzz/corpus/$t")
  [ -d "tests/fuzz/regressions/$t" ] && dirs+=("tests/fuzz/regressions/$t")
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$build/crashes/$t-" -dict=tests/fuzz/protocol.dict)
  [ "$jobs" -gt 1 ] && args+=(-fork="$jobs")
  rm -f "$build/crashes/$t-"*
  if "$build/bin/fuzz_$t" "${args[@]}" "${extra[@]}" "${dirs[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9][0-9]*\):* .*/\1/p' "$log" | tail -n 1)  # -fork
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "fuzz: $t: ${runs:-?} runs in $((SECONDS - start)) s, ${cov:-cov: ?}, corpus $(find "$work" -type f | wc -l) files" >"$out"
    echo 0 >"$build/logs/$t.status"
    return
  fi
  {
    echo "fuzz: $t FAILED after $((SECONDS - start)) s; the report ($log):"
    grep -v -E '^(#[0-9]+|INFO:|MS:|\s*NEW_FUNC)' "$log" | tail -n 60
    for crash in "$build/crashes/$t-"*; do
      [ -f "$crash" ] || continue
      echo "fuzz: input saved as $crash ($(wc -c <"$crash") bytes)"
      if [ "$(wc -c <"$crash")" -le 8192 ]; then
        echo "fuzz: base64 of the input:"
        base64 -w 76 "$crash"
      fi
      echo "fuzz: reproduce with $build/bin/fuzz_$t $crash; once fixed, keep it:"
      echo "  mkdir -p tests/fuzz/regressions/$t && cp $crash tests/fuzz/regressions/$t/"
    done
  } >"$out"
  echo 1 >"$build/logs/$t.status"
}

# Targets run side by side, as many as there are CPUs for their processes.
cpus="$(nproc)"
parallel="${PARLEY_FUZZ_PARALLEL:-$(((cpus / jobs) > 0 ? cpus / jobs : 1))}"
echo "fuzz: running ${#targets[@]} targets for ${seconds} s each, $parallel at a time"
running=0
for t in "${targets[@]}"; do
  rm -f "$build/logs/$t.status" "$build/logs/$t.out"
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait || true

failed=()
for t in "${targets[@]}"; do
  if [ "$(cat "$build/logs/$t.status" 2>/dev/null)" = 0 ]; then
    cat "$build/logs/$t.out"
  else
    failed+=("$t")
    cat "$build/logs/$t.out" >&2 2>/dev/null || echo "fuzz: $t did not finish" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets, ${seconds} s each"

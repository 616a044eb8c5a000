#!/usr/bin/env bash
# Installs what is missing, builds with the default preset and runs every test
# through ctest (arguments go to that ctest). Then the hardening stages
# (docs/fuzzing.md), which CI runs and PARLEY_QUICK=1 skips:
#   asan   the whole suite under ASan + UBSan (preset asan, build-asan/)
#   tsan   the tests that run threads under TSan (preset tsan, build-tsan/)
#   fuzz   every fuzz target for PARLEY_FUZZ_SECONDS (default 20) seconds
#          (scripts/fuzz.sh, build-fuzz/)
# Sanitizer reports of every process a test starts (parley-server and
# parley-cli in the e2e tests) are collected too: any report fails the run.
# PARLEY_PRUNE_BUILDS=1 (set by .ci/run) deletes each hardening stage's build
# directory once the stage is over, so that the run fits a small disk.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

stage_start=$SECONDS
stage() {
  echo "== test.sh: $1 (at ${SECONDS} s)"
  stage_start=$SECONDS
}
stage_done() {
  echo "== test.sh: $1 done in $((SECONDS - stage_start)) s"
}

scripts/deps.sh
echo "== test.sh: $(df -h --output=avail . | tail -1 | tr -d ' ') free on the disk of $root"

stage "default build and tests"
scripts/build.sh default
ctest --test-dir build --output-on-failure -j2 "$@"
stage_done default

if [ "${PARLEY_QUICK:-0}" = 1 ]; then
  echo "== test.sh: PARLEY_QUICK=1: sanitizer and fuzz stages skipped"
  exit 0
fi

# Sanitizer runtimes write their reports under this directory (one file per
# process), so that reports from child processes are not lost.
reports="$(mktemp -d "${TMPDIR:-/tmp}/parley-sanitizers.XXXXXX")"
trap 'rm -rf "$reports"' EXIT

# check_reports NAME: prints every sanitizer report written during the stage
# and fails if there was one.
check_reports() {
  local found=0 f
  for f in "$reports"/*; do
    [ -f "$f" ] || continue
    if grep -q -E "ERROR: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$f"; then
      echo "--- $1: sanitizer report ${f##*/}" >&2
      cat "$f" >&2
      found=1
    fi
  done
  rm -f "$reports"/*
  if [ "$found" -ne 0 ]; then
    echo "== test.sh: $1: sanitizer reports above" >&2
    return 1
  fi
}

# run_ctest NAME DIR [CTEST ARGS...]: runs ctest, then checks the reports.
run_ctest() {
  local name=$1 dir=$2 status=0
  shift 2
  ctest --test-dir "$dir" --output-on-failure -j2 "$@" || status=1
  check_reports "$name" || status=1
  return "$status"
}

# (The stages run as `if` conditions, where set -e does not apply: every step
# says what a failure does.)
asan_stage() {
  scripts/build.sh asan || return 1
  ASAN_OPTIONS="log_path=$reports/asan:print_suppressions=0:detect_stack_use_after_return=1" \
  LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1" \
    run_ctest asan build-asan
}

# Every test that runs threads of ours: the client (engine, listener and an
# in-process server), the server, the cache (its background check), and the
# processes of the e2e and fault tests.
tsan_tests=(client_tests server_tests store_tests e2e_tests fault_injection_tests)
tsan_stage() {
  cmake --preset tsan >/dev/null || return 1
  cmake --build --preset tsan --target "${tsan_tests[@]}" || return 1
  TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$root/tests/tsan.supp:second_deadlock_stack=1:halt_on_error=0" \
    run_ctest tsan build-tsan -R "^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
}

fuzz_stage() {
  scripts/fuzz.sh "${PARLEY_FUZZ_SECONDS:-20}"
}

# Each stage runs even if one before it failed, so that one CI run shows all.
failed=()
for name in asan tsan fuzz; do
  case $name in
    asan) stage "asan: ASan + UBSan, the whole suite" ;;
    tsan) stage "tsan: ${tsan_tests[*]}" ;;
    fuzz) stage "fuzz: every target for ${PARLEY_FUZZ_SECONDS:-20} s" ;;
  esac
  if "${name}_stage"; then
    stage_done "$name"
  else
    echo "== test.sh: $name FAILED after $((SECONDS - stage_start)) s" >&2
    failed+=("$name")
  fi
  if [ "${PARLEY_PRUNE_BUILDS:-0}" = 1 ]; then
    rm -rf "build-$name"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "== test.sh: failed stages: ${failed[*]} (total ${SECONDS} s)" >&2
  exit 1
fi
echo "== test.sh: all stages passed in ${SECONDS} s"

#!/usr/bin/env bash
# Soak: the fault-injection test (tests/fault, docs/reliability.md) for longer,
# with more clients, more messages and more kills. Not run in CI.
#
#   scripts/soak.sh [--minutes M] [--clients N] [--channels C] [--interval-ms I]
#                   [--rounds R] [--seed S] [--build-dir DIR] [--no-build]
#
# Each round runs fault_injection_tests once, with a new seed (S, S+1, ...),
# sized so that the clients send for about M minutes. The run is bounded: each
# round has a hard limit of M minutes plus 5, after which its whole process
# group is killed. Stops at the first failing round and keeps that round's
# data directories and log (paths printed). Exit 0 when every round passed.
#
# Environment variables of the test (PARLEY_FAULT_*, see tests/fault/fault_test.cpp)
# given to this script are passed on, and override the values computed here.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=5
clients=8
channels=4
interval_ms=20
rounds=1
seed=$(( $(date +%s) % 1000000 ))
build_dir=build
build=1

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --channels) channels="$2"; shift 2 ;;
    --interval-ms) interval_ms="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    *) echo "soak.sh: unknown argument \"$1\"" >&2; usage ;;
  esac
done
for v in minutes clients channels interval_ms rounds seed; do
  if ! [[ "${!v}" =~ ^[0-9]+$ ]]; then echo "soak.sh: --${v//_/-} must be a number" >&2; exit 2; fi
done
if [ "$minutes" -lt 1 ] || [ "$interval_ms" -lt 1 ] || [ "$rounds" -lt 1 ]; then
  echo "soak.sh: --minutes, --interval-ms and --rounds must be at least 1" >&2; exit 2
fi

if [ "$build" = 1 ]; then
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$build_dir" -j2 --target fault_injection_tests parley-server parley-fault-client
fi
test_bin="$build_dir/bin/fault_injection_tests"
[ -x "$test_bin" ] || { echo "soak.sh: no $test_bin (build it, or give --build-dir)" >&2; exit 1; }

messages=$(( minutes * 60 * 1000 / interval_ms ))
limit_s=$(( minutes * 60 + 300 ))  # hard limit of a round
scenario_s=$(( minutes * 60 + 240 ))  # the test's own bound, below the hard limit

group=""
cleanup() {
  if [ -n "$group" ]; then kill -KILL -- "-$group" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

for round in $(seq 1 "$rounds"); do
  s=$(( seed + round - 1 ))
  log=$(mktemp /tmp/parley-soak-XXXXXX.log)
  echo "soak round $round/$rounds: seed $s, $clients clients in $channels channels," \
       "$messages messages each, every ${interval_ms} ms; log $log"
  # Its own process group (setsid), so that the server and the clients go
  # with it whatever happens.
  env PARLEY_FAULT_MESSAGES="${PARLEY_FAULT_MESSAGES:-$messages}" \
      PARLEY_FAULT_CLIENTS="${PARLEY_FAULT_CLIENTS:-$clients}" \
      PARLEY_FAULT_CHANNELS="${PARLEY_FAULT_CHANNELS:-$channels}" \
      PARLEY_FAULT_INTERVAL_MS="${PARLEY_FAULT_INTERVAL_MS:-$interval_ms}" \
      PARLEY_FAULT_SECONDS="${PARLEY_FAULT_SECONDS:-$scenario_s}" \
      PARLEY_FAULT_SEED="${PARLEY_FAULT_SEED:-$s}" \
      PARLEY_FAULT_SERVER_KILL_MS="${PARLEY_FAULT_SERVER_KILL_MS:-5000}" \
      PARLEY_FAULT_CLIENT_KILL_MS="${PARLEY_FAULT_CLIENT_KILL_MS:-2500}" \
      PARLEY_FAULT_CUT_MIN_MS="${PARLEY_FAULT_CUT_MIN_MS:-50}" \
      PARLEY_FAULT_CUT_MAX_MS="${PARLEY_FAULT_CUT_MAX_MS:-1500}" \
      PARLEY_FAULT_KEEP=1 \
      setsid "$test_bin" >"$log" 2>&1 &
  group=$!
  rc=""
  for _ in $(seq 1 "$limit_s"); do
    if ! kill -0 "$group" 2>/dev/null; then break; fi
    sleep 1
  done
  if kill -0 "$group" 2>/dev/null; then
    echo "soak round $round: still running after ${limit_s} s: killed" >&2
    cleanup
    wait "$group" 2>/dev/null || true
    rc=124
  else
    set +e
    wait "$group"
    rc=$?
    set -e
  fi
  kill -KILL -- "-$group" 2>/dev/null || true  # anything it left behind
  group=""
  grep -E '^(fault injection|  )' "$log" || true
  data=$(grep -o '/tmp/parley-fault-[A-Za-z0-9]*' "$log" | head -1 || true)
  if [ "$rc" != 0 ]; then
    echo "soak round $round FAILED (exit $rc): log $log${data:+, data $data}" >&2
    exit 1
  fi
  if [ -n "$data" ]; then rm -rf "$data"; fi
  rm -f "$log"
done
echo "soak: $rounds round(s) passed"

#!/usr/bin/env bash
# bench-smoke (ctest): parley-bench's scenarios with tiny counts against a
# real parley-server on 127.0.0.1, checking that every subscriber got every
# message once and in order, and that the document editors converged. Takes a
# few seconds.
#
#   bench/loadgen/smoke.sh PARLEY_BENCH PARLEY_SERVER
set -euo pipefail
bench="$1"
server="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-smoke-XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$server" keygen --out "$work/server.key" 2>/dev/null
"$server" --listen 127.0.0.1:0 --data "$work/data" --key "$work/server.key" --rate-limit off \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 50); do
  grep -q '^listening on' "$work/server.out" && break
  sleep 0.1
done
port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/server.out")"
[ -n "$port" ] || { echo "parley-server did not start"; cat "$work/server.log"; exit 1; }

common=(--url "ws://127.0.0.1:$port/" --key "$work/server.key" --server-pid "$server_pid"
        --timeout 10)
"$bench" fanout "${common[@]}" --subscribers 5 --messages 300 --batch 7 | tee "$work/out"
"$bench" latency "${common[@]}" --latency-subscribers 3 --rate 200 --seconds 1 | tee -a "$work/out"
"$bench" capacity "${common[@]}" --connections 50 --sources 2 --idle-seconds 1 |
  tee -a "$work/out"
"$bench" docs "${common[@]}" --clients 4 --seconds 1 | tee -a "$work/out"

# Each command exits non-zero on a failed check; the JSON lines say so too.
[ "$(grep -c '"in_order":1' "$work/out")" -eq 2 ] || { echo "FAIL: in-order check"; exit 1; }
grep -q '"still_open":50,' "$work/out" || { echo "FAIL: idle connections"; exit 1; }
grep -q '"converged":1,' "$work/out" || { echo "FAIL: document replicas"; exit 1; }
echo "bench-smoke: ok"

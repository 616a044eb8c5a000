#!/usr/bin/env bash
# Side by side: parley-server, NATS and mosquitto driven by the same load
# generator (build/bin/parley-bench, bench/loadgen/), scenario by scenario:
# fan-out throughput, end-to-end latency, idle connection capacity
# (docs/benchmarks.md, section 7).
#
#   bench/compare.sh [--rounds 3] [--connections 10000] [--messages 20000] [--seconds 10]
#
# Needs root: it installs Debian's mosquitto and nats-server when they are
# missing (apt-get), and runs the servers and the generator in a network
# namespace of their own whose only interface is loopback (`ip netns`):
# mosquitto 2.0's WebSocket listener ignores its bind address and listens on
# every interface, and inside the namespace every interface is loopback.
# parley-server and NATS bind 127.0.0.1 too. Everything started is stopped by
# PID on exit, and the namespace is deleted.
#
# Uses the programs of $PARLEY_BUILD_DIR (default: build/, scripts/build.sh
# default), building parley-bench and parley-server there if needed. Each
# round starts the three servers afresh and runs every scenario against
# parley, nats, mosquitto in that order (A B C A B C ...). The output: each
# run's table and JSON line, then medians with min-max and the ratios, and as
# the last line one JSON object of the medians:
#   {"fanout_per_s":{...},"p99_ms":{...},"kb_per_conn":{...}}
# Exit status: 0 when every run completed its checks, 1 otherwise, 2 on usage.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${PARLEY_BUILD_DIR:-$root/build}"
rounds=3
connections=10000
messages=20000
seconds=10
inside=0
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --messages) messages="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --inside) inside=1; shift ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for n in "$rounds" "$connections" "$messages" "$seconds"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: not a positive count: $n" >&2; exit 2; }
done

if [ "$inside" -eq 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "compare.sh: run as root (apt-get, ip netns)" >&2; exit 2; }
  missing=()
  command -v mosquitto >/dev/null || missing+=(mosquitto)
  command -v nats-server >/dev/null || missing+=(nats-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
      >/dev/null
  fi
  if [ ! -d "$build" ]; then
    echo "compare.sh: no build in $build (scripts/build.sh default)" >&2
    exit 2
  fi
  cmake --build "$build" -j2 --target parley-bench parley-server >/dev/null
  ns="parley-bench-$$"
  ip netns add "$ns"
  trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
  ip netns exec "$ns" ip link set lo up
  status=0
  PARLEY_BUILD_DIR="$build" ip netns exec "$ns" "$0" --inside "${args[@]}" || status=$?
  exit "$status"
fi

# --- inside the namespace -------------------------------------------------
bin="$build/bin"
work="$(mktemp -d "${TMPDIR:-/tmp}/parley-compare-XXXXXX")"
pids=()
cleanup() {
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT

# Servers and generator each hold one descriptor per connection.
ulimit -Hn $((connections * 2 + 4096)) 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)"

# Waits (at most 10 s) until something listens on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 100); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "compare.sh: nothing listens on port $1" >&2
  return 1
}

"$bin/parley-server" keygen --out "$work/server.key" 2>/dev/null

# The namespace is new, so fixed ports are free for NATS and mosquitto.
cat >"$work/nats.conf" <<EOF
listen: "127.0.0.1:14222"
websocket {
  listen: "127.0.0.1:18080"
  no_tls: true
}
EOF
# mosquitto 2.0 built with Debian's libwebsockets (no external poll support)
# refuses to start with only a WebSocket listener: the plain MQTT one is there
# for that reason and is not used.
cat >"$work/mosquitto.conf" <<EOF
listener 11883 127.0.0.1
listener 18083 127.0.0.1
protocol websockets
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
EOF

# Starts the three servers afresh (round $1), so that each round's memory
# figures start from servers that have not held connections before.
start_servers() {
  # parley-server: a fresh data directory, port 0, no rate limit (the default,
  # 30 sends per 10 s per user, is for people, not for a publisher).
  rm -rf "$work/parley" "$work/parley.out"
  "$bin/parley-server" --listen 127.0.0.1:0 --data "$work/parley" --key "$work/server.key" \
    --rate-limit off >"$work/parley.out" 2>>"$work/parley.log" &
  parley_pid=$!
  pids+=("$parley_pid")
  nats-server -c "$work/nats.conf" >>"$work/nats.log" 2>&1 &
  nats_pid=$!
  pids+=("$nats_pid")
  mosquitto -c "$work/mosquitto.conf" >>"$work/mosquitto.log" 2>&1 &
  mosquitto_pid=$!
  pids+=("$mosquitto_pid")
  for _ in $(seq 100); do
    grep -q '^listening on' "$work/parley.out" && break
    sleep 0.1
  done
  parley_port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/parley.out")"
  [ -n "$parley_port" ] || { echo "compare.sh: parley-server did not start" >&2; exit 1; }
  wait_port 18080
  wait_port 18083
  echo "round $1: parley-server $parley_pid on :$parley_port, nats-server $nats_pid," \
    "mosquitto $mosquitto_pid"
}

# Stops them by PID and waits for them; their PIDs leave the cleanup list
# (a PID the system may give to another process must not be killed later).
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

echo "$(nats-server --version); $(mosquitto -h 2>/dev/null | head -1 || true)"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds"

results="$work/results.jsonl"
: >"$results"
failed=0
run() {  # round target scenario -- generator arguments
  local round="$1" target="$2" scenario="$3"
  shift 4
  local out="$work/run.out" status=0
  timeout 300 "$bin/parley-bench" "$scenario" --label "$target" "$@" >"$out" 2>&1 || status=$?
  cat "$out"
  [ "$status" -eq 0 ] || { failed=1; echo "compare.sh: $target $scenario failed ($status)"; }
  grep '^{"bench"' "$out" | sed "s/^{/{\"round\":$round,/" >>"$results" || true
}
for round in $(seq "$rounds"); do
  start_servers "$round"
  for target in parley nats mosquitto; do
    case "$target" in
      parley) conn=(--proto parley --url "ws://127.0.0.1:$parley_port/" --key "$work/server.key"
                    --server-pid "$parley_pid") ;;
      nats) conn=(--proto nats --url ws://127.0.0.1:18080/ --server-pid "$nats_pid") ;;
      mosquitto) conn=(--proto mqtt --url ws://127.0.0.1:18083/ --server-pid "$mosquitto_pid") ;;
    esac
    echo
    echo "##### round $round: $target"
    # Capacity first: the server's RSS before it is that of a fresh server.
    run "$round" "$target" capacity -- "${conn[@]}" --connections "$connections"
    sleep 3  # let the server finish closing the idle connections
    run "$round" "$target" fanout -- "${conn[@]}" --messages "$messages"
    run "$round" "$target" latency -- "${conn[@]}" --seconds "$seconds"
  done
  stop_servers
done

echo
/usr/bin/env python3 - "$results" <<'EOF'
"""Medians (min-max) of each figure per target, the ratios, and the JSON summary."""
import json
import statistics
import sys

runs = [json.loads(line) for line in open(sys.argv[1])]
targets = ["parley", "nats", "mosquitto"]
figures = [  # (bench, field, label, decimals)
    ("loadgen-fanout", "deliveries_per_s", "fan-out deliveries/s", 0),
    ("loadgen-fanout", "generator_cpu_pct", "  generator CPU %", 0),
    ("loadgen-fanout", "server_cpu_pct", "  server CPU %", 0),
    ("loadgen-latency", "p50_ms", "latency p50 ms", 3),
    ("loadgen-latency", "p99_ms", "latency p99 ms", 3),
    ("loadgen-latency", "p999_ms", "latency p99.9 ms", 3),
    ("loadgen-latency", "max_ms", "latency max ms", 3),
    ("loadgen-capacity", "kb_per_conn", "KB per idle connection", 2),
    ("loadgen-capacity", "connect_per_s", "connects/s", 0),
    ("loadgen-capacity", "idle_server_cpu_pct", "server CPU % while idle", 2),
]


def values(bench, field, target):
    return [r[field] for r in runs if r["bench"] == bench and r["target"] == target
            and field in r and r[field] >= 0]


def median(bench, field, target):
    v = values(bench, field, target)
    return statistics.median(v) if v else None


def cell(bench, field, target, decimals):
    v = values(bench, field, target)
    if not v:
        return "-"
    return f"{statistics.median(v):,.{decimals}f} ({min(v):,.{decimals}f}-{max(v):,.{decimals}f})"


def ratio(bench, field, other):
    a, b = median(bench, field, "parley"), median(bench, field, other)
    return f"{a / b:.2f}" if a is not None and b else "-"


print("medians (min-max) of", max([r["round"] for r in runs] or [0]), "rounds")
header = f"{'figure':<26}" + "".join(f"{t:>30}" for t in targets)
print(header + f"{'parley/nats':>13}{'parley/mosq':>13}")
for bench, field, label, decimals in figures:
    line = f"{label:<26}" + "".join(f"{cell(bench, field, t, decimals):>30}" for t in targets)
    print(line + f"{ratio(bench, field, 'nats'):>13}{ratio(bench, field, 'mosquitto'):>13}")
bad = [f"{r['target']} {r['bench']} round {r['round']}" for r in runs
       if r.get("in_order", 1) != 1 or r.get("failed", 0) > 0]
if bad:
    print("checks failed:", ", ".join(bad))


def summary(bench, field, decimals):
    out = {}
    for t in targets:
        m = median(bench, field, t)
        out[t] = round(m, decimals) if m is not None else None
    return out


print(json.dumps({
    "fanout_per_s": summary("loadgen-fanout", "deliveries_per_s", 0),
    "p99_ms": summary("loadgen-latency", "p99_ms", 3),
    "kb_per_conn": summary("loadgen-capacity", "kb_per_conn", 2),
}, separators=(",", ":")))
EOF
exit "$failed"

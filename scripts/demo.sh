#!/usr/bin/env bash
# The two-user demo. Builds Parley, starts parley-server on 127.0.0.1 with a
# fresh data directory, mints tokens for alice and bob, runs them as two
# parley-cli --batch clients through a short conversation in #general, a
# private group, presence and an end-to-end encrypted DM exchange with safety
# numbers (alice on two devices: her laptop reads the whole conversation),
# prints the transcript, stops the server and exits 0. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh default

bin="$PWD/build/bin"
work="$(mktemp -d "${TMPDIR:-/tmp}/parley-demo.XXXXXX")"
server_pid=""
alice_pid=""
bob_pid=""
laptop_pid=""

cleanup() {
  set +e
  exec 3>&- 4>&- 5>&- 2>/dev/null
  for pid in "$alice_pid" "$bob_pid" "$laptop_pid" "$server_pid"; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "$alice_pid" "$bob_pid" "$laptop_pid" "$server_pid"; do
    [ -n "$pid" ] && wait_exit "$pid" 10
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "demo: $*" >&2
  for f in server.log alice.out bob.out; do
    if [ -s "$work/$f" ]; then
      echo "--- $f" >&2
      tail -n 20 "$work/$f" >&2
    fi
  done
  exit 1
}

# wait_exit PID SECONDS: waits for PID to end and sets exit_status to its
# status, or to "timeout" after killing it. (Not in $(...): only this shell
# can wait for its children.)
exit_status=""
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      exit_status=timeout
      return
    fi
    sleep 0.1
  done
  exit_status=0
  wait "$pid" 2>/dev/null || exit_status=$?
}

# wait_lines FILE PATTERN N: waits (up to 20 s) until N lines of FILE contain
# the fixed string PATTERN.
wait_lines() {
  local file=$1 pattern=$2 want=$3 deadline=$((SECONDS + 20)) have
  while :; do
    have=$(grep -c -F -- "$pattern" "$file" 2>/dev/null || true)
    [ "${have:-0}" -ge "$want" ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && die "timed out waiting for $want x '$pattern' in $(basename "$file")"
    sleep 0.05
  done
}

# ---- server -----------------------------------------------------------------
"$bin/parley-server" keygen --out "$work/server.key" >"$work/keygen.log" 2>&1 ||
  die "keygen failed: $(cat "$work/keygen.log")"
alice_token="$("$bin/parley-server" mint-token --key "$work/server.key" --user alice)"
bob_token="$("$bin/parley-server" mint-token --key "$work/server.key" --user bob)"

"$bin/parley-server" --listen 127.0.0.1:0 --data "$work/server" --key "$work/server.key" \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
wait_lines "$work/server.out" "listening on 127.0.0.1:" 1
port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$work/server.out" | head -n 1)"
[ -n "$port" ] || die "cannot read the server's port"
url="ws://127.0.0.1:$port"
echo "demo: parley-server listening on $url, with a fresh data directory"

# ---- clients ----------------------------------------------------------------
# Each client reads its commands from a FIFO, so the script can wait for one
# client's output before giving the other its next command.
mkfifo "$work/alice.in" "$work/bob.in"
PARLEY_TOKEN="$alice_token" "$bin/parley-cli" --batch --server "$url" --data "$work/alice" \
  <"$work/alice.in" >"$work/alice.out" 2>"$work/alice.log" &
alice_pid=$!
exec 3>"$work/alice.in"
PARLEY_TOKEN="$bob_token" "$bin/parley-cli" --batch --server "$url" --data "$work/bob" \
  <"$work/bob.in" >"$work/bob.out" 2>"$work/bob.log" &
bob_pid=$!
exec 4>"$work/bob.in"

echo "/create general" >&3
wait_lines "$work/alice.out" '"command":"create"' 1
echo "/join general" >&4
wait_lines "$work/bob.out" '"command":"join"' 1

# Who says what, in order; each line waits until the other side has it.
conversation=(
  "alice|Hello bob, welcome to #general!"
  "bob|Hi alice! Glad to be here."
  "alice|Did you get the release notes?"
  "bob|Yes - reading them now. Looks good."
  "alice|Great. Ship it on Friday?"
  "bob|Friday it is."
)
alice_said=0
bob_said=0
for entry in "${conversation[@]}"; do
  who="${entry%%|*}"
  text="${entry#*|}"
  if [ "$who" = alice ]; then
    echo "/send general $text" >&3
    alice_said=$((alice_said + 1))
    wait_lines "$work/alice.out" '"event":"sent"' "$alice_said"
    wait_lines "$work/bob.out" '"sender":"alice"' "$alice_said"
  else
    echo "/send general $text" >&4
    bob_said=$((bob_said + 1))
    wait_lines "$work/bob.out" '"event":"sent"' "$bob_said"
    wait_lines "$work/alice.out" '"sender":"bob"' "$bob_said"
  fi
done

echo "/history general 20" >&4
wait_lines "$work/bob.out" '"command":"history"' 1

# A private group: alice creates it, invites bob, makes him a moderator and
# sets the topic; bob posts there. Each step waits for the other side's line.
echo "/create plans private" >&3
wait_lines "$work/alice.out" '"command":"create","channel":"plans"' 1
echo "/invite plans bob" >&3
wait_lines "$work/bob.out" '"action":"invite"' 1
echo "/role plans bob moderator" >&3
wait_lines "$work/bob.out" '"action":"role"' 1
echo "/topic plans Friday release" >&3
wait_lines "$work/alice.out" '"command":"topic"' 1
echo "/send plans Moderator reporting in." >&4
wait_lines "$work/alice.out" '"text":"Moderator reporting in."' 1
echo "/members plans" >&4
wait_lines "$work/bob.out" '"command":"members"' 1

# Presence: bob steps away with a status text; alice, who shares #general
# with him, sees it without asking, then asks.
echo "/status away Reading the release notes" >&4
wait_lines "$work/alice.out" '"user":"bob","status":"away"' 1
echo "/presence bob" >&3
wait_lines "$work/alice.out" '"command":"presence"' 1

# Alice opens Parley on her laptop too: a second device with its own keys.
# Every DM is encrypted for each device of both users, so the laptop reads the
# whole conversation, what alice sent from her phone included.
mkfifo "$work/laptop.in"
PARLEY_TOKEN="$alice_token" "$bin/parley-cli" --batch --server "$url" \
  --data "$work/alice-laptop" --device-id alice-laptop \
  <"$work/laptop.in" >"$work/laptop.out" 2>"$work/laptop.log" &
laptop_pid=$!
exec 5>"$work/laptop.in"
echo "/devices" >&5
wait_lines "$work/laptop.out" '"command":"devices"' 1

# End-to-end encrypted direct messages: alice writes to "@bob", bob answers
# "@alice"; the server stores and relays only ciphertext. Then both print
# their safety number (the same on both sides) and alice marks bob verified.
dms=(
  "alice|Psst: the release password is orange-submarine-42."
  "bob|Got it. Only our own devices can read this."
  "alice|That is the point of end-to-end encryption."
)
alice_dms=0
bob_dms=0
for entry in "${dms[@]}"; do
  who="${entry%%|*}"
  text="${entry#*|}"
  if [ "$who" = alice ]; then
    echo "/dm bob $text" >&3
    alice_dms=$((alice_dms + 1))
    wait_lines "$work/alice.out" '"event":"sent","channel":"@bob"' "$alice_dms"
    wait_lines "$work/bob.out" '"event":"message","channel":"@alice"' "$alice_dms"
  else
    echo "/dm alice $text" >&4
    bob_dms=$((bob_dms + 1))
    wait_lines "$work/bob.out" '"event":"sent","channel":"@alice"' "$bob_dms"
    wait_lines "$work/alice.out" '"event":"message","channel":"@bob"' "$bob_dms"
  fi
done
wait_lines "$work/laptop.out" '"event":"message","channel":"@bob"' "${#dms[@]}"
echo "/devices" >&3
wait_lines "$work/alice.out" '"command":"devices"' 1
echo "/safety bob" >&3
wait_lines "$work/alice.out" '"command":"safety"' 1
echo "/safety alice" >&4
wait_lines "$work/bob.out" '"command":"safety"' 1
echo "/verify bob" >&3
wait_lines "$work/alice.out" '"command":"verify"' 1

echo "/quit" >&3
echo "/quit" >&4
echo "/quit" >&5
exec 3>&- 4>&- 5>&-
wait_exit "$alice_pid" 40
alice_status=$exit_status
alice_pid=""
wait_exit "$bob_pid" 40
bob_status=$exit_status
bob_pid=""
wait_exit "$laptop_pid" 40
laptop_status=$exit_status
laptop_pid=""
[ "$laptop_status" = 0 ] || die "alice's laptop parley-cli exited with $laptop_status"
[ "$alice_status" = 0 ] || die "alice's parley-cli exited with $alice_status"
[ "$bob_status" = 0 ] || die "bob's parley-cli exited with $bob_status"

# ---- transcript -------------------------------------------------------------
python3 - "$work/alice.out" "$work/bob.out" "$work/laptop.out" <<'PY'
import collections
import json
import sys

def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

alice, bob, laptop = read(sys.argv[1]), read(sys.argv[2]), read(sys.argv[3])

# /history prints its messages, then its result line with the count.
end = max(i for i, l in enumerate(bob)
          if l["event"] == "result" and l["command"] == "history")
history = bob[end - bob[end]["count"]:end]

print()
print("Conversation in #general, as bob's /history shows it:")
print()
for m in history:
    print(f"  {m['ts'][11:19]}  #{m['seq']:<3} {m['sender']:>5}> {m['text']}")
print()
for name, lines in (("alice", alice), ("bob", bob)):
    kinds = collections.Counter(l["event"] for l in lines)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{name}'s parley-cli printed {len(lines)} JSON lines: {summary}")
print()
away = [l for l in alice if l["event"] == "presence" and l["user"] == "bob"
        and l["status"] == "away"]
print(f"Presence: alice saw bob {away[-1]['status']}, status text \"{away[-1]['text']}\"")
print()
print("The private group 'plans': what bob's parley-cli printed, then alice's view of bob's post:")
for l in bob:
    if l.get("channel") != "plans":
        continue
    if l["event"] == "member":
        what = l["action"] + (" -> " + l["role"] if "role" in l else "")
        print(f"  member  {l['user']}: {what}" + (f" (by {l['by']})" if "by" in l else ""))
    elif l["event"] in ("meta", "channel_member") or (
            l["event"] == "result" and l["command"] == "members"):
        print("  " + json.dumps(l, ensure_ascii=False, separators=(",", ":")))
for l in alice:
    if l.get("channel") == "plans" and l["event"] == "message":
        print("  " + json.dumps(l, ensure_ascii=False, separators=(",", ":")))
print()
print("Encrypted direct messages, as bob's parley-cli printed them (\"e2e\":true):")
for l in bob:
    if l["event"] == "message" and l["channel"] == "@alice":
        print("  " + json.dumps(l, ensure_ascii=False, separators=(",", ":")))
for l in alice:
    if l["event"] == "message" and l["channel"] == "@bob":
        print(f"  alice got: {l['sender']}> {l['text']}")
print("The same conversation on alice's second device (her laptop):")
for l in laptop:
    if l["event"] == "message" and l["channel"] == "@bob":
        print(f"  laptop got: {l['sender']}> {l['text']}")
print("  alice's /devices:", ", ".join(
    f"{l['device']}{' (this one)' if l['current'] else ''}"
    for l in alice if l["event"] == "device"))
numbers = {}
for name, lines in (("alice", alice), ("bob", bob)):
    line = [l for l in lines if l["event"] == "safety"][-1]
    numbers[name] = line["number"]
    print(f"  {name}'s /safety {line['user']}: {line['number']}")
if numbers["alice"] != numbers["bob"]:
    sys.exit("demo: the safety numbers differ")
print("  the same number on both sides; alice marked bob verified:",
      json.dumps([l for l in alice if l["event"] == "result" and l["command"] == "verify"][-1],
                 separators=(",", ":")))
print()
print("Example lines (alice):")
for l in [l for l in alice if l["event"] in ("pending", "sent")][:2]:
    print("  " + json.dumps(l, ensure_ascii=False, separators=(",", ":")))
PY

# ---- shutdown ---------------------------------------------------------------
kill -TERM "$server_pid"
wait_exit "$server_pid" 15
server_status=$exit_status
server_pid=""
[ "$server_status" = 0 ] || die "parley-server exited with $server_status after SIGTERM"
echo
echo "demo: server stopped cleanly; done"

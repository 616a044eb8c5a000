#!/usr/bin/env bash
# Side by side on the same editing traces, in one run: Parley's CRDT engine
# (parley-bench-crdt, bench/crdt_bench.cpp), Yjs and diamond-types-node under
# Node (bench/crdt_compare.mjs). Prints each table, then the ratios
# (how many times faster or smaller Parley is) and, last, one JSON line.
#
#   bench/crdt_compare.sh [--runs 3]
#
# Installs yjs and diamond-types-node with npm into bench/.node/ (git-ignored)
# when they are missing; needs Node 18 or later. Uses parley-bench-crdt of
# $PARLEY_BUILD_DIR (default: build/), building it there if needed.
# $PARLEY_TRACES_DIR overrides the trace folder (default:
# ../shared/data/editing-traces next to the checkout).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${PARLEY_BUILD_DIR:-$root/build}"
traces="${PARLEY_TRACES_DIR:-$root/../shared/data/editing-traces}"
runs=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done

node_dir="$root/bench/.node"
if [[ ! -d "$node_dir/node_modules/yjs" || ! -d "$node_dir/node_modules/diamond-types-node" ]]; then
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent \
    yjs@13.6 diamond-types-node@1.0.2 >&2
fi

bench="$build/bin/parley-bench-crdt"
if [[ ! -x "$bench" ]]; then
  [[ -f "$build/build.ninja" ]] ||
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
  cmake --build "$build" -j 2 --target parley-bench-crdt >&2
fi

echo "== parley (${bench#"$root/"}) =="
parley_out="$("$bench" --runs "$runs" --traces "$traces")"
echo "$parley_out"
echo
echo "== yjs $(node -p "require('$node_dir/node_modules/yjs/package.json').version")," \
  "diamond-types-node $(node -p \
  "require('$node_dir/node_modules/diamond-types-node/package.json').version")," \
  "node $(node --version) =="
node_out="$(node "$root/bench/crdt_compare.mjs" "$traces" "$runs")"
echo "$node_out"

# Ratios: the other engine's figure over Parley's (> 1: Parley is faster or smaller).
PARLEY_JSON="$(grep '^{"bench"' <<<"$parley_out")" NODE_JSON="$(grep '^{"bench"' <<<"$node_out")" \
node --input-type=module -e '
const p = JSON.parse(process.env.PARLEY_JSON);
const n = JSON.parse(process.env.NODE_JSON);
const rows = [];
for (const t of ["automerge_paper", "seph_blog1"]) {
  for (const e of ["yjs", "diamond_types"]) {
    rows.push([`${t} replay`, e, n[`${e}_${t}_replay_ms`], p[`${t}_replay_ms`], "ms"]);
    rows.push([`${t} encoded size`, e, n[`${e}_${t}_bytes`] / 1000,
               p[`${t}_snapshot_bytes`] / 1000, "KB"]);
    rows.push([`${t} gzip -9 size`, e, n[`${e}_${t}_gzip_bytes`] / 1000,
               p[`${t}_snapshot_gzip_bytes`] / 1000, "KB"]);
    rows.push([`${t} load`, e, n[`${e}_${t}_load_ms`], p[`${t}_load_ms`], "ms"]);
  }
}
for (const t of ["clownschool", "friendsforever"]) {
  for (const e of ["yjs", "diamond_types"]) {
    rows.push([`concurrent/${t} merge`, e, n[`${e}_${t}_merge_ms`], p[`${t}_merge_ms`], "ms"]);
  }
}
console.log("\n== ratios (other / parley) ==");
const out = {bench: "crdt-compare"};
for (const [what, e, other, parley, unit] of rows) {
  const ratio = other / parley;
  console.log(`  ${what.padEnd(30)} ${e.padEnd(14)} ${other.toFixed(1).padStart(9)} ${unit}` +
              ` vs ${parley.toFixed(1).padStart(8)} ${unit}  x${ratio.toFixed(2)}`);
  out[`${what.replace(/[ \/-]+/g, "_")}_${e}_ratio`] = Number(ratio.toFixed(3));
}
const goals = [
  ["automerge-paper >= 20x faster than yjs", out.automerge_paper_replay_yjs_ratio >= 20],
  ["automerge-paper >= 2x faster than diamond-types",
   out.automerge_paper_replay_diamond_types_ratio >= 2],
];
for (const [g, met] of goals) console.log(`  goal ${g}: ${met ? "met" : "MISSED"}`);
console.log(JSON.stringify(out));
'

// Replays the editing traces through Yjs and diamond-types-node, as
// bench/crdt_bench.cpp replays them through Parley's engine: the sequential
// traces as local edits (time, encoded size, load time from the encoding) and
// the concurrent ones with a replica per agent, forked and
// merged as their `parents` say. Run by bench/crdt_compare.sh, which installs
// the two packages into bench/.node/.
//
//   node bench/crdt_compare.mjs TRACES_DIR [runs]
//
// Prints a table and, last, one JSON line. The traces have no characters
// outside the BMP, so Yjs's UTF-16 positions equal their code point positions
// (checked).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '.node', 'x.js'));
const Y = require('yjs');
const DT = require('diamond-types-node');

const dir = process.argv[2];
const runs = Number(process.argv[3] ?? 3);

const load = (name) => JSON.parse(gunzipSync(readFileSync(join(dir, `${name}.json.gz`))));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const timeRuns = (fn) => {
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(ms);
};
const check = (got, want, what) => {
  if (got !== want) throw new Error(`${what}: text differs from endContent`);
};
const astral = (s) => /[\u{10000}-\u{10FFFF}]/u.test(s);

const engines = {
  yjs: {
    replay(trace) {
      const doc = new Y.Doc();
      const text = doc.getText('text');
      for (const txn of trace.txns) {
        doc.transact(() => {
          for (const [pos, del, ins] of txn.patches) {
            if (del > 0) text.delete(pos, del);
            if (ins !== '') text.insert(pos, ins);
          }
        });
      }
      return doc;
    },
    text: (doc) => doc.getText('text').toString(),
    encode: (doc) => Y.encodeStateAsUpdate(doc),
    decode(bytes) {
      const doc = new Y.Doc();
      Y.applyUpdate(doc, bytes);
      return doc;
    },
    // Concurrent replay: per transaction, the update since the state before it.
    // Client ids in agent order, as Parley's agent ids: friendsforever has a few
    // concurrent insertions at one place, and its endContent orders them so.
    replica(agent) {
      const doc = new Y.Doc();
      doc.clientID = agent + 1;
      return doc;
    },
    before: (doc) => Y.encodeStateVector(doc),
    edit(doc, patches) {
      const text = doc.getText('text');
      doc.transact(() => {
        for (const [pos, del, ins] of patches) {
          if (del > 0) text.delete(pos, del);
          if (ins !== '') text.insert(pos, ins);
        }
      });
    },
    since: (doc, sv) => Y.encodeStateAsUpdate(doc, sv),
    merge: (doc, update) => Y.applyUpdate(doc, update),
  },
  'diamond-types': {
    replay(trace) {
      const doc = new DT.Doc('a');
      for (const txn of trace.txns) {
        for (const [pos, del, ins] of txn.patches) {
          if (del > 0) doc.del(pos, del);
          if (ins !== '') doc.ins(pos, ins);
        }
      }
      return doc;
    },
    text: (doc) => doc.get(),
    encode: (doc) => doc.toBytes(),
    decode: (bytes) => DT.Doc.fromBytes(bytes, 'b'),
    replica: (agent) => new DT.Doc(`agent${agent}`),
    before: (doc) => doc.getLocalVersion(),
    edit(doc, patches) {
      for (const [pos, del, ins] of patches) {
        if (del > 0) doc.del(pos, del);
        if (ins !== '') doc.ins(pos, ins);
      }
    },
    since: (doc, version) => doc.getPatchSince(version),
    merge: (doc, bytes) => doc.mergeBytes(bytes),
  },
};

function sequential(engine, name, trace) {
  let doc;
  const replay = timeRuns(() => {
    if (doc?.free) doc.free();
    doc = engine.replay(trace);
  });
  check(engine.text(doc), trace.endContent, name);
  const bytes = engine.encode(doc);
  let loaded;
  const load = timeRuns(() => {
    if (loaded?.free) loaded.free();
    loaded = engine.decode(bytes);
  });
  check(engine.text(loaded), trace.endContent, `${name} loaded`);
  if (doc.free) doc.free();
  if (loaded.free) loaded.free();
  return { replay, load, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

function concurrent(engineName, engine, name, trace) {
  const agents = 1 + Math.max(...trace.txns.map((t) => t.agent));
  return timeRuns(() => {
    const replicas = [];
    const seen = [];
    for (let a = 0; a < agents; a++) {
      replicas.push(engine.replica(a));
      seen.push(new Uint8Array(trace.txns.length));
    }
    const updates = new Array(trace.txns.length);
    trace.txns.forEach((txn, t) => {
      const doc = replicas[txn.agent];
      const has = seen[txn.agent];
      const stack = [...txn.parents];
      const missing = [];
      while (stack.length > 0) {
        const p = stack.pop();
        if (has[p]) continue;
        has[p] = 1;
        missing.push(p);
        stack.push(...trace.txns[p].parents);
      }
      missing.sort((a, b) => a - b);
      for (const p of missing) engine.merge(doc, updates[p]);
      const before = engine.before(doc);
      engine.edit(doc, txn.patches);
      updates[t] = engine.since(doc, before);
      has[t] = 1;
    });
    replicas.forEach((doc, r) => {
      updates.forEach((u, t) => {
        if (!seen[r][t]) engine.merge(doc, u);
      });
      check(engine.text(doc), trace.endContent, `${engineName} ${name} replica ${r}`);
      if (doc.free) doc.free();
    });
  });
}

const result = {};
for (const name of ['automerge-paper', 'seph-blog1']) {
  const trace = load(name);
  if (trace.txns.some((t) => t.patches.some((p) => astral(p[2])))) {
    throw new Error(`${name} has characters outside the BMP: positions would differ`);
  }
  for (const [engineName, engine] of Object.entries(engines)) {
    const r = sequential(engine, name, trace);
    const key = `${engineName}_${name}`.replace(/-/g, '_');
    result[`${key}_replay_ms`] = r.replay;
    result[`${key}_load_ms`] = r.load;
    result[`${key}_bytes`] = r.bytes;
    result[`${key}_gzip_bytes`] = r.gzip;
    console.log(
      `  ${engineName.padEnd(14)} ${name.padEnd(16)} replay ${r.replay.toFixed(1).padStart(8)} ms` +
        `  encoded ${(r.bytes / 1000).toFixed(1).padStart(7)} KB` +
        ` (gzip -9 ${(r.gzip / 1000).toFixed(1).padStart(6)} KB)` +
        `  load ${r.load.toFixed(2).padStart(8)} ms`,
    );
  }
}
for (const name of ['clownschool', 'friendsforever']) {
  const trace = load(`concurrent/${name}`);
  for (const [engineName, engine] of Object.entries(engines)) {
    const ms = concurrent(engineName, engine, name, trace);
    result[`${engineName.replace(/-/g, '_')}_${name}_merge_ms`] = ms;
    console.log(`  ${engineName.padEnd(14)} concurrent/${name.padEnd(15)} replay and merge ` +
      `${ms.toFixed(1).padStart(8)} ms`);
  }
}
console.log(JSON.stringify({ bench: 'crdt-node', ...result }));

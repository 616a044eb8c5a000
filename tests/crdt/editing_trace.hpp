// Loads the editing traces of ../shared/data/editing-traces (gzipped JSON,
// format in its README.md) and replays them into crdt::Document: sequential
// traces as local edits, concurrent ones with a replica per agent, forked and
// merged as each transaction's `parents` say. Shared by tests/crdt and
// bench/crdt_bench.cpp.
//
// Single-threaded helpers: use from one thread at a time.
#pragma once

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "crdt/document.hpp"

namespace parley::crdt::test {

struct TracePatch {
  size_t pos;
  size_t del;
  std::string ins;
};

struct TraceTxn {
  int agent = 0;
  std::vector<size_t> parents;
  std::vector<TracePatch> patches;
};

struct Trace {
  std::string end_content;
  std::vector<TraceTxn> txns;
  int agents = 1;
};

// $PARLEY_TRACES_DIR, else the shared data folder next to the checkout.
inline std::filesystem::path traces_dir() {
  if (const char* dir = std::getenv("PARLEY_TRACES_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return PARLEY_EDITING_TRACES_DIR;
}

// Reads name (e.g. "automerge-paper" or "concurrent/clownschool") through
// `gzip -dc`. Returns false with *error set when it cannot.
inline bool load_trace(const std::string& name, Trace* trace, std::string* error) {
  std::filesystem::path path = traces_dir() / (name + ".json.gz");
  if (!std::filesystem::exists(path)) {
    *error = "no trace " + path.string();
    return false;
  }
  std::string cmd = "gzip -dc '" + path.string() + "'";
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *error = "cannot run " + cmd;
    return false;
  }
  std::string json;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) json.append(buf, n);
  if (pclose(pipe) != 0) {
    *error = cmd + " failed";
    return false;
  }
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("txns") ||
      !doc.HasMember("endContent")) {
    *error = path.string() + ": not a trace";
    return false;
  }
  trace->end_content = doc["endContent"].GetString();
  for (const auto& t : doc["txns"].GetArray()) {
    TraceTxn txn;
    if (t.HasMember("agent")) txn.agent = t["agent"].GetInt();
    if (t.HasMember("parents")) {
      for (const auto& p : t["parents"].GetArray()) txn.parents.push_back(p.GetUint64());
    }
    for (const auto& p : t["patches"].GetArray()) {
      txn.patches.push_back(TracePatch{p[0].GetUint64(), p[1].GetUint64(), p[2].GetString()});
    }
    trace->agents = std::max(trace->agents, txn.agent + 1);
    trace->txns.push_back(std::move(txn));
  }
  return true;
}

// Replays every patch as a local edit of doc. Returns the first error.
inline Status replay_local(const Trace& trace, Document& doc) {
  for (const TraceTxn& txn : trace.txns) {
    for (const TracePatch& p : txn.patches) {
      if (p.del > 0) {
        if (Status st = doc.remove(p.pos, p.del); !st) return st;
      }
      if (!p.ins.empty()) {
        if (Status st = doc.insert(p.pos, p.ins); !st) return st;
      }
    }
  }
  return Status();
}

// A replica per agent (agent id = trace agent + 1). Each transaction is typed
// on its agent's replica after that replica has merged exactly the updates of
// the transaction's ancestors; the update it produces is kept. At the end
// every replica merges everything. Returns the replicas.
inline Result<std::vector<Document>> replay_concurrent(const Trace& trace) {
  std::vector<Document> replicas;
  for (int a = 0; a < trace.agents; ++a) replicas.emplace_back(AgentId(a) + 1);
  const size_t n = trace.txns.size();
  std::vector<std::string> updates(n);
  std::vector<std::vector<bool>> has(replicas.size(), std::vector<bool>(n));
  std::vector<size_t> stack;
  std::vector<size_t> missing;
  for (size_t t = 0; t < n; ++t) {
    const TraceTxn& txn = trace.txns[t];
    Document& doc = replicas[static_cast<size_t>(txn.agent)];
    std::vector<bool>& seen = has[static_cast<size_t>(txn.agent)];
    stack.assign(txn.parents.begin(), txn.parents.end());
    missing.clear();
    while (!stack.empty()) {
      size_t p = stack.back();
      stack.pop_back();
      if (p >= t) return Status(StatusCode::corrupt, "trace: parent after its child");
      if (seen[p]) continue;
      seen[p] = true;
      missing.push_back(p);
      stack.insert(stack.end(), trace.txns[p].parents.begin(), trace.txns[p].parents.end());
    }
    std::sort(missing.begin(), missing.end());
    for (size_t p : missing) {
      if (Status st = doc.apply_update(updates[p]); !st) return st;
    }
    for (const TracePatch& p : txn.patches) {
      if (p.del > 0) {
        if (Status st = doc.remove(p.pos, p.del); !st) return st;
      }
      if (!p.ins.empty()) {
        if (Status st = doc.insert(p.pos, p.ins); !st) return st;
      }
    }
    updates[t] = doc.take_update();
    seen[t] = true;
  }
  for (size_t r = 0; r < replicas.size(); ++r) {
    for (size_t t = 0; t < n; ++t) {
      if (has[r][t]) continue;
      if (Status st = replicas[r].apply_update(updates[t]); !st) return st;
    }
  }
  return replicas;
}

}  // namespace parley::crdt::test

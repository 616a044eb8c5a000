// The text CRDT engine (src/crdt/, issue 14) on real editing traces
// (../shared/data/editing-traces): automerge-paper and seph-blog1 replayed as
// local edits (time, snapshot size, load time from the snapshot, memory), and
// the concurrent traces replayed with a replica per agent, forked and merged
// as their `parents` say (full merge time). bench/crdt_compare.sh runs the same
// traces through Yjs and diamond-types under Node and prints the ratios.
//
//   parley-bench-crdt [--runs 5] [--traces DIR]
//
// Trace parsing (gzip -dc + rapidjson) is outside the timings. Times are the
// median of --runs runs (min in the JSON line too).
#include <algorithm>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "crdt/document.hpp"
#include "editing_trace.hpp"

namespace {

using namespace parley;
using bench::Clock;
using bench::ms_since;

struct Timing {
  double median = 0;
  double min = 0;
};

template <typename Fn>
Timing time_runs(int runs, Fn&& fn) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    fn();
    ms.push_back(ms_since(start));
  }
  return Timing{bench::median(ms), *std::min_element(ms.begin(), ms.end())};
}

// Size of bytes after `gzip -9`: what a compressing transport or store would
// keep (diamond-types compresses its text block with LZ4 itself).
size_t gzip_size(const std::string& bytes) {
  bench::ScratchDir dir("crdt");
  std::string path = dir.str("snapshot");
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) return 0;
  std::fclose(f);
  std::FILE* pipe = popen(("gzip -9 -c '" + path + "' | wc -c").c_str(), "r");
  if (pipe == nullptr) return 0;
  unsigned long n = 0;
  if (std::fscanf(pipe, "%lu", &n) != 1) n = 0;
  pclose(pipe);
  return n;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "parley-bench-crdt: %s\n", what.c_str());
  std::exit(1);
}

crdt::test::Trace load(const std::string& name) {
  crdt::test::Trace trace;
  std::string error;
  if (!crdt::test::load_trace(name, &trace, &error)) die(error);
  return trace;
}

void sequential(bench::Report& report, const std::string& name, int runs, bool goals) {
  crdt::test::Trace trace = load(name);
  size_t patches = 0;
  for (const auto& txn : trace.txns) patches += txn.patches.size();
  std::string snapshot;
  crdt::Document::Stats stats;
  Timing replay = time_runs(runs, [&] {
    crdt::Document doc(1);
    if (Status st = crdt::test::replay_local(trace, doc); !st) die(name + ": " + st.message());
    if (snapshot.empty()) {
      if (doc.text() != trace.end_content) die(name + ": text differs from endContent");
      snapshot = doc.encode_snapshot();
      stats = doc.stats();
    }
  });
  size_t update_bytes = 0;
  Timing load_time = time_runs(runs, [&] {
    auto doc = crdt::Document::load_snapshot(snapshot, 2);
    if (!doc) die(name + ": " + doc.status().message());
    if (update_bytes == 0) {
      if (doc->text() != trace.end_content) die(name + ": loaded text differs");
      update_bytes = doc->encode_update({}).size();
    }
  });
  Timing snap_time{};
  {
    crdt::Document doc(1);
    (void)crdt::test::replay_local(trace, doc);
    snap_time = time_runs(runs, [&] { snapshot = doc.encode_snapshot(); });
  }

  report.note(fmt::format("{}: {} patches, final text {} code points, {} runs in the sequence",
                          name, patches, stats.visible_chars, stats.runs));
  if (goals) {
    report.at_most(name + " replay", replay.median, "ms", 75);
    report.at_most(name + " load from snapshot", load_time.median, "ms", 10, 2);
  } else {
    report.info(name + " replay", replay.median, "ms");
    report.info(name + " load from snapshot", load_time.median, "ms", 2);
  }
  size_t gzipped = gzip_size(snapshot);
  report.info(name + " snapshot size", static_cast<double>(snapshot.size()) / 1000.0, "KB");
  report.info(name + " snapshot size, gzip -9", static_cast<double>(gzipped) / 1000.0, "KB");
  report.info(name + " encode snapshot", snap_time.median, "ms", 2);
  report.info(name + " full update size", static_cast<double>(update_bytes) / 1000.0, "KB");
  report.info(name + " memory", static_cast<double>(stats.memory_bytes) / 1e6, "MB", 2);
  std::string key = name;
  std::replace(key.begin(), key.end(), '-', '_');
  report.field(key + "_replay_ms", replay.median);
  report.field(key + "_replay_min_ms", replay.min);
  report.field(key + "_load_ms", load_time.median);
  report.field(key + "_snapshot_bytes", static_cast<double>(snapshot.size()));
  report.field(key + "_snapshot_gzip_bytes", static_cast<double>(gzipped));
  report.field(key + "_update_bytes", static_cast<double>(update_bytes));
  report.field(key + "_memory_bytes", static_cast<double>(stats.memory_bytes));
}

void concurrent(bench::Report& report, const std::string& name, int runs) {
  crdt::test::Trace trace = load("concurrent/" + name);
  Timing merge = time_runs(runs, [&] {
    auto replicas = crdt::test::replay_concurrent(trace);
    if (!replicas) die(name + ": " + replicas.status().message());
    for (const auto& doc : *replicas) {
      if (doc.text() != trace.end_content) die(name + ": a replica differs from endContent");
    }
  });
  report.note(fmt::format("concurrent/{}: {} transactions by {} agents", name, trace.txns.size(),
                          trace.agents));
  report.info("concurrent/" + name + " replay and merge", merge.median, "ms");
  report.field(name + "_merge_ms", merge.median);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv);
  int runs = static_cast<int>(std::max(1L, args.num("runs", 5)));
  std::string dir = args.str("traces");
  if (!dir.empty()) setenv("PARLEY_TRACES_DIR", dir.c_str(), 1);

  bench::Report report("crdt");
  sequential(report, "automerge-paper", runs, true);
  sequential(report, "seph-blog1", runs, false);
  concurrent(report, "clownschool", runs);
  concurrent(report, "friendsforever", runs);
  report.info("peak RSS", static_cast<double>(bench::status_kb("VmHWM")) / 1000.0, "MB");
  report.print();
  return 0;
}

// History page latency: one page of 50 messages from a cache holding
// 1,000,000 messages (10 channels of 100,000), as an app scrolling back asks
// for it.
//
// Timed on their own:
//   - store::Cache::latest_messages(channel, before, 50) at a random channel
//     and a random `before` (anywhere in the channel), and at before = 0 (the
//     newest page, what a chat view opens on);
//   - Client::load_history(channel, {before, 50}) answered from the cache: a
//     Client on the same directory, not connected (auto_connect off), timed
//     from the call to its HistoryLoaded event (thread hand-off included);
//   - the floor: the cache's SELECT by plain SQLite on the same file.
//
//   parley-bench-history-page [--messages 1000000] [--channels 10] [--queries 10000]
#include <sqlite3.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "cache_fill.hpp"
#include "parley/client.hpp"
#include "protocol/token.hpp"
#include "store/cache.hpp"

using namespace parley;
using namespace parley::bench;

namespace {

constexpr double kGoalP99Ms = 0.2;
constexpr std::uint32_t kPage = 50;

struct Query {
  std::string channel;
  std::uint64_t before = 0;
};

std::vector<Query> random_queries(int n, int channels, std::uint64_t per_channel, bool newest,
                                  Corpus& rng) {
  std::vector<Query> out;
  for (int i = 0; i < n; ++i) {
    Query q;
    q.channel = channel_name(static_cast<int>(rng.next() % static_cast<std::uint64_t>(channels)));
    // Seqs of messages are 2..per_channel+1; a full page lies below `before`.
    q.before = newest ? 0 : kPage + 2 + rng.next() % (per_channel - kPage);
    out.push_back(std::move(q));
  }
  return out;
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0;
  double cpu_p99 = 0;  // of the thread's CPU time per query (no time lost to other processes)
};

Latency summarize(std::vector<double> ns) {
  Latency l;
  l.p50 = percentile(ns, 50) / 1e6;
  l.p99 = percentile(ns, 99) / 1e6;
  l.max = ns.back() / 1e6;  // sorted by percentile()
  return l;
}

Latency time_cache(store::Cache& cache, const std::vector<Query>& queries) {
  std::vector<double> ns, cpu;
  ns.reserve(queries.size());
  cpu.reserve(queries.size());
  for (const auto& q : queries) {
    double c0 = thread_cpu_ns();
    auto t0 = Clock::now();
    auto page = cache.latest_messages(q.channel, q.before, kPage);
    auto t1 = Clock::now();
    cpu.push_back(thread_cpu_ns() - c0);
    if (!page || page->size() != kPage) {
      std::fprintf(stderr, "latest_messages(%s, %llu): wrong answer\n", q.channel.c_str(),
                   static_cast<unsigned long long>(q.before));
      std::exit(1);
    }
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  Latency l = summarize(std::move(ns));
  l.cpu_p99 = percentile(cpu, 99) / 1e6;
  return l;
}

Latency time_client(const std::string& dir, const std::vector<Query>& queries) {
  ClientOptions options;
  options.server_url = "ws://127.0.0.1:9";  // never contacted: auto_connect is off
  options.token = token::mint(token::generate_key(), "alice", 3600, 1700000000);
  options.data_dir = dir;
  options.auto_connect = false;
  auto client = Client::open(options);
  if (!client) {
    std::fprintf(stderr, "Client::open: %s\n", client.status().to_string().c_str());
    std::exit(1);
  }
  std::vector<double> ns;
  ns.reserve(queries.size());
  for (const auto& q : queries) {
    auto t0 = Clock::now();
    RequestId id = (*client)->load_history(q.channel, HistoryQuery{q.before, kPage});
    for (;;) {
      auto ev = (*client)->next_event(std::chrono::seconds(10));
      if (!ev) {
        std::fprintf(stderr, "load_history: no answer within 10 s\n");
        std::exit(1);
      }
      auto* done = std::get_if<HistoryLoaded>(&*ev);
      if (done == nullptr || done->request != id) continue;
      ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
      if (!done->status.ok() || !done->complete || done->messages.size() != kPage) {
        std::fprintf(stderr, "load_history(%s, %llu): %s, %zu messages, complete %d\n",
                     q.channel.c_str(), static_cast<unsigned long long>(q.before),
                     done->status.to_string().c_str(), done->messages.size(), done->complete);
        std::exit(1);
      }
      break;
    }
  }
  return summarize(std::move(ns));
}

// The cache's query (src/store/cache.cpp, kLatestMessages).
constexpr const char* kCacheQuery =
    "SELECT channel, seq, kind, sender, client_id, text, ts FROM messages "
    "WHERE channel = ?1 AND kind = 'message' AND seq < ?2 ORDER BY seq DESC LIMIT ?3";

Latency time_sqlite_floor(const std::string& path, const char* sql,
                          const std::vector<Query>& queries) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "open %s: %s\n", path.c_str(), sqlite3_errmsg(db));
    std::exit(1);
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
    std::exit(1);
  }
  std::vector<double> ns;
  ns.reserve(queries.size());
  for (const auto& q : queries) {
    auto t0 = Clock::now();
    sqlite3_bind_text(st, 1, q.channel.data(), static_cast<int>(q.channel.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, q.before == 0 ? INT64_MAX : static_cast<sqlite3_int64>(q.before));
    sqlite3_bind_int(st, 3, kPage);
    std::vector<Message> rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
      Message m;
      m.channel = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      m.seq = static_cast<std::uint64_t>(sqlite3_column_int64(st, 1));
      m.sender = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      m.id = reinterpret_cast<const char*>(sqlite3_column_text(st, 4));
      m.text = reinterpret_cast<const char*>(sqlite3_column_text(st, 5));
      m.ts_ms = sqlite3_column_int64(st, 6);
      rows.push_back(std::move(m));
    }
    sqlite3_reset(st);
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
    if (rows.size() != kPage) {
      std::fprintf(stderr, "floor query returned %zu rows\n", rows.size());
      std::exit(1);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return summarize(std::move(ns));
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  long messages = args.num("messages", 1000000);
  int channels = static_cast<int>(args.num("channels", 10));
  int queries = static_cast<int>(args.num("queries", 10000));
  if (channels < 1 || messages / channels < 2 * kPage || queries < 100) {
    std::fprintf(stderr,
                 "usage: parley-bench-history-page [--messages N] [--channels C] [--queries Q]\n");
    return 2;
  }
  auto per_channel = static_cast<std::uint64_t>(messages / channels);
  ScratchDir dir("history", args.flag("keep"));
  Corpus corpus;
  auto fill_start = Clock::now();
  {
    auto cache = store::Cache::open(dir.str(), "alice");
    if (!cache) {
      std::fprintf(stderr, "open: %s\n", cache.status().to_string().c_str());
      return 1;
    }
    fill_cache(**cache, channels, per_channel, corpus);
  }
  double fill_ms = ms_since(fill_start);

  auto cache = store::Cache::open(dir.str(), "alice");
  if (!cache) {
    std::fprintf(stderr, "open: %s\n", cache.status().to_string().c_str());
    return 1;
  }
  Corpus rng(7);
  auto anywhere = random_queries(queries, channels, per_channel, false, rng);
  auto newest = random_queries(queries, channels, per_channel, true, rng);
  // One untimed pass warms SQLite's page cache as an app's earlier reads would.
  time_cache(**cache, anywhere);
  Latency cache_any = time_cache(**cache, anywhere);
  Latency cache_new = time_cache(**cache, newest);
  Latency floor_any = time_sqlite_floor(dir.str("parley.db"), kCacheQuery, anywhere);
  cache->reset();  // one connection writes at a time; the client opens its own
  int client_queries = std::min(queries, 2000);
  auto client_set = std::vector<Query>(anywhere.begin(), anywhere.begin() + client_queries);
  Latency client_any = time_client(dir.str(), client_set);

  std::uintmax_t file_bytes = std::filesystem::file_size(dir.path() / "parley.db");
  Report report("history_page");
  report.note(fmt::format(
      "{} messages cached in {} channels ({:.0f} MB file, filled in {:.1f} s); "
      "pages of {}; {} queries each ({} through Client)",
      per_channel * static_cast<std::uint64_t>(channels), channels,
      static_cast<double>(file_bytes) / 1e6, fill_ms / 1000, kPage, queries, client_queries));
  report.at_most("Cache::latest_messages, random before: p99", cache_any.p99, "ms", kGoalP99Ms, 3);
  report.info("Cache::latest_messages, random before: p50", cache_any.p50, "ms", 3);
  report.info("Cache::latest_messages, random before: max", cache_any.max, "ms", 3);
  report.info("Cache::latest_messages, random before: p99 of CPU time", cache_any.cpu_p99, "ms", 3);
  report.at_most("Cache::latest_messages, newest page: p99", cache_new.p99, "ms", kGoalP99Ms, 3);
  report.info("Cache::latest_messages, newest page: p50", cache_new.p50, "ms", 3);
  report.info("Cache::latest_messages, newest page: p99 of CPU time", cache_new.cpu_p99, "ms", 3);
  report.at_most("Client::load_history from cache: p99", client_any.p99, "ms", kGoalP99Ms, 3);
  report.info("Client::load_history from cache: p50", client_any.p50, "ms", 3);
  report.info("floor: plain SQLite, the cache's query: p99", floor_any.p99, "ms", 3);
  report.info("floor: plain SQLite, the cache's query: p50", floor_any.p50, "ms", 3);
  report.field("messages", static_cast<double>(per_channel * static_cast<std::uint64_t>(channels)));
  report.field("page", kPage);
  report.field("cache_p50_ms", cache_any.p50);
  report.field("cache_p99_ms", cache_any.p99);
  report.field("cache_cpu_p99_ms", cache_any.cpu_p99);
  report.field("cache_newest_cpu_p99_ms", cache_new.cpu_p99);
  report.field("cache_newest_p50_ms", cache_new.p50);
  report.field("cache_newest_p99_ms", cache_new.p99);
  report.field("client_p50_ms", client_any.p50);
  report.field("client_p99_ms", client_any.p99);
  report.field("sqlite_floor_p50_ms", floor_any.p50);
  report.field("sqlite_floor_p99_ms", floor_any.p99);
  report.field("goal_p99_ms", kGoalP99Ms);
  report.field("met", cache_any.p99 <= kGoalP99Ms && cache_new.p99 <= kGoalP99Ms ? "yes" : "no");
  report.field("client_met", client_any.p99 <= kGoalP99Ms ? "yes" : "no");
  report.print();
  return 0;
}

// Cache ingest rate: how many messages per second the client turns from
// history frames into rows of its cache.
//
// The frames are what parley-server sends for `history` (a `history` reply of
// 500 events, encoded by the same codec), built up front from the corpus.
// Timed, per frame: wire::decode_server_frame, conversion to parley::Message
// (as the sync engine does), store::Cache::store_events into a fresh cache
// (one transaction per frame; the cache's own settings for parley.db: WAL,
// synchronous=NORMAL).
// Also reported on their own: decoding only, storing only, and the floor that
// SQLite itself sets: the same rows inserted by plain SQL into a bare table
// with the cache's key and index, in the same transactions and settings.
//
//   parley-bench-cache-ingest [--messages 200000] [--channels 10] [--runs 3]
#include <sqlite3.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "protocol/codec.hpp"
#include "store/cache.hpp"

using namespace parley;
using namespace parley::bench;

namespace {

constexpr double kGoal = 200000;  // messages/s

Message to_message(const wire::ChannelEvent& e) {
  Message m;
  m.channel = e.channel;
  m.seq = e.seq;
  m.kind = e.kind == "message"  ? EventKind::message
           : e.kind == "create" ? EventKind::create
           : e.kind == "join"   ? EventKind::join
                                : EventKind::leave;
  m.sender = e.sender;
  m.id = e.id.value_or("");
  m.text = e.text.value_or("");
  m.ts_ms = e.ts;
  return m;
}

// History replies of kPage events each, for `channels` channels in turn.
std::vector<std::string> make_frames(long messages, int channels, std::size_t* bytes) {
  constexpr long kPage = 500;
  Corpus corpus;
  std::vector<std::string> frames;
  long per_channel = messages / channels;
  std::uint64_t rid = 100;
  *bytes = 0;
  for (int c = 0; c < channels; ++c) {
    std::string channel = channel_name(c);
    for (long first = 0; first < per_channel; first += kPage) {
      wire::HistoryPage page;
      page.rid = rid++;
      page.channel = channel;
      page.last_seq = static_cast<std::uint64_t>(per_channel) + 1;
      for (long i = first; i < std::min(per_channel, first + kPage); ++i) {
        Message m = corpus.message(channel, static_cast<std::uint64_t>(i) + 2);
        wire::ChannelEvent e;  // fields by name: the struct grows with the protocol
        e.channel = m.channel;
        e.seq = m.seq;
        e.kind = "message";
        e.sender = m.sender;
        e.ts = m.ts_ms;
        e.id = m.id;
        e.text = m.text;
        page.events.push_back(std::move(e));
      }
      frames.push_back(wire::encode(wire::ServerMessage{page}));
      *bytes += frames.back().size();
    }
  }
  return frames;
}

std::vector<Message> decode_page(const std::string& frame) {
  std::vector<Message> out;
  for (auto& item : wire::decode_server_frame(frame)) {
    auto* message = std::get_if<wire::ServerMessage>(&item);
    auto* page = message != nullptr ? std::get_if<wire::HistoryPage>(message) : nullptr;
    if (page == nullptr) {
      std::fprintf(stderr, "a frame did not decode as a history page\n");
      std::exit(1);
    }
    out.reserve(page->events.size());
    for (const auto& e : page->events) out.push_back(to_message(e));
  }
  return out;
}

struct Timing {
  double total_ms = 0;
  double store_cpu_ms = 0;  // of store_ms, on the CPU (the rest: waiting for the disk)
  double decode_ms = 0;
  double store_ms = 0;
  long stored = 0;
};

Timing run_ingest(const std::vector<std::string>& frames) {
  ScratchDir dir("ingest");
  auto cache = store::Cache::open(dir.str(), "alice");
  if (!cache) {
    std::fprintf(stderr, "open: %s\n", cache.status().to_string().c_str());
    std::exit(1);
  }
  Timing t;
  auto start = Clock::now();
  for (const auto& frame : frames) {
    auto t0 = Clock::now();
    std::vector<Message> events = decode_page(frame);
    auto t1 = Clock::now();
    double cpu0 = thread_cpu_ns();
    auto added = (*cache)->store_events(events);
    t.store_cpu_ms += (thread_cpu_ns() - cpu0) / 1e6;
    if (!added) {
      std::fprintf(stderr, "store_events: %s\n", added.status().to_string().c_str());
      std::exit(1);
    }
    t.stored += *added;
    t.decode_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
    t.store_ms += ms_since(t1);
  }
  t.total_ms = ms_since(start);
  return t;
}

double run_decode_only(const std::vector<std::string>& frames, long* count) {
  auto start = Clock::now();
  *count = 0;
  for (const auto& frame : frames) *count += static_cast<long>(decode_page(frame).size());
  return ms_since(start);
}

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

// The floor: the same rows by plain SQL into a table with the cache's primary
// key and index, one transaction per page, in WAL mode; synchronous NORMAL
// as parley.db (fsync only at checkpoints), or FULL (fsync at every commit)
// to show what that would cost.
double run_sqlite_floor(const std::vector<std::vector<Message>>& pages, const char* synchronous) {
  ScratchDir dir("ingest-floor");
  sqlite3* db = nullptr;
  check(sqlite3_open((dir.path() / "floor.db").c_str(), &db), db, "open");
  std::string pragmas = fmt::format("PRAGMA journal_mode=WAL; PRAGMA synchronous={};", synchronous);
  check(sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, nullptr), db, "pragmas");
  check(sqlite3_exec(db,
                     "CREATE TABLE messages(channel TEXT NOT NULL, seq INTEGER NOT NULL,"
                     " kind TEXT NOT NULL, sender TEXT NOT NULL, client_id TEXT NOT NULL,"
                     " text TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY(channel, seq))"
                     " WITHOUT ROWID;"
                     "CREATE INDEX messages_by_kind ON messages(channel, kind, seq);",
                     nullptr, nullptr, nullptr),
        db, "schema");
  sqlite3_stmt* insert = nullptr;
  check(sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO messages VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &insert, nullptr),
        db, "prepare");
  auto start = Clock::now();
  for (const auto& page : pages) {
    check(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), db, "begin");
    for (const Message& m : page) {
      sqlite3_bind_text(insert, 1, m.channel.data(), static_cast<int>(m.channel.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(insert, 2, static_cast<sqlite3_int64>(m.seq));
      sqlite3_bind_text(insert, 3, "message", 7, SQLITE_STATIC);
      sqlite3_bind_text(insert, 4, m.sender.data(), static_cast<int>(m.sender.size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(insert, 5, m.id.data(), static_cast<int>(m.id.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 6, m.text.data(), static_cast<int>(m.text.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert, 7, m.ts_ms);
      check(sqlite3_step(insert), db, "insert");
      sqlite3_reset(insert);
    }
    check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  }
  double ms = ms_since(start);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  long messages = args.num("messages", 200000);
  int channels = static_cast<int>(args.num("channels", 10));
  int runs = static_cast<int>(args.num("runs", 3));
  if (messages < channels || channels < 1 || runs < 1 || messages > 10000000) {
    std::fprintf(stderr,
                 "usage: parley-bench-cache-ingest [--messages N] [--channels C] [--runs R]\n");
    return 2;
  }
  std::size_t bytes = 0;
  auto frames = make_frames(messages, channels, &bytes);
  long count = 0;

  std::vector<double> total_rate, decode_rate, store_rate, decode_only_rate, floor_rate,
      floor_normal_rate, cpu_share, store_cpu_rate;
  std::vector<std::vector<Message>> pages;
  for (const auto& f : frames) pages.push_back(decode_page(f));
  for (int r = 0; r < runs; ++r) {
    Timing t = run_ingest(frames);
    if (t.stored != messages / channels * channels) {
      std::fprintf(stderr, "stored %ld messages, expected %ld\n", t.stored,
                   messages / channels * channels);
      return 1;
    }
    count = t.stored;
    total_rate.push_back(static_cast<double>(t.stored) / (t.total_ms / 1000));
    decode_rate.push_back(static_cast<double>(t.stored) / (t.decode_ms / 1000));
    store_rate.push_back(static_cast<double>(t.stored) / (t.store_ms / 1000));
    cpu_share.push_back(100 * t.store_cpu_ms / t.store_ms);
    store_cpu_rate.push_back(static_cast<double>(t.stored) / (t.store_cpu_ms / 1000));
    long decoded = 0;
    double ms = run_decode_only(frames, &decoded);
    decode_only_rate.push_back(static_cast<double>(decoded) / (ms / 1000));
    floor_rate.push_back(static_cast<double>(count) / (run_sqlite_floor(pages, "FULL") / 1000));
    floor_normal_rate.push_back(static_cast<double>(count) /
                                (run_sqlite_floor(pages, "NORMAL") / 1000));
  }

  Report report("cache_ingest");
  report.note(
      fmt::format("{} messages in {} channels, {} history frames of up to 500 events "
                  "({:.0f} bytes/message as JSON); median of {} runs, each into a new cache",
                  count, channels, frames.size(),
                  static_cast<double>(bytes) / static_cast<double>(count), runs));
  report.at_least("ingest: decode + store_events", median(total_rate), "msg/s", kGoal);
  report.info("  of which decode (decode_server_frame + to Message)", median(decode_rate), "msg/s",
              0);
  report.info("  of which store (Cache::store_events)", median(store_rate), "msg/s", 0);
  report.info("  store time on the CPU (the rest waits for the disk)", median(cpu_share), "%", 0);
  report.info("  store by its CPU time alone (as if the disk never waited)", median(store_cpu_rate),
              "msg/s", 0);
  report.info("decode only, separate pass", median(decode_only_rate), "msg/s", 0);
  report.info("plain SQLite INSERT, same key+index+txns, synchronous=FULL", median(floor_rate),
              "msg/s", 0);
  report.info("plain SQLite INSERT, same key+index+txns, synchronous=NORMAL",
              median(floor_normal_rate), "msg/s", 0);
  report.field("messages", static_cast<double>(count));
  report.field("frames", static_cast<double>(frames.size()));
  report.field("bytes_per_message", static_cast<double>(bytes) / static_cast<double>(count));
  report.field("ingest_msgs_per_s", median(total_rate));
  report.field("decode_msgs_per_s", median(decode_rate));
  report.field("store_msgs_per_s", median(store_rate));
  report.field("store_cpu_percent", median(cpu_share));
  report.field("store_cpu_only_msgs_per_s", median(store_cpu_rate));
  report.field("decode_only_msgs_per_s", median(decode_only_rate));
  report.field("sqlite_floor_msgs_per_s", median(floor_rate));
  report.field("sqlite_normal_msgs_per_s", median(floor_normal_rate));
  report.field("goal_msgs_per_s", kGoal);
  report.field("met", median(total_rate) >= kGoal ? "yes" : "no");
  report.print();
  return 0;
}

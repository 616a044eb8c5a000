// Opening a cache that holds 1,000,000 messages (10 channels of 100,000):
// store::Cache::open, as Client::open runs it on every app start.
//
// Timed: Cache::open with its default options, warm (the files in the OS page
// cache, as on a quick restart) and cold (their pages dropped from the page
// cache with posix_fadvise(DONTNEED) first, as after a reboot or memory
// pressure); with the defaults the full page check (PRAGMA quick_check) runs
// on a helper thread after open returns, so the time until it reports is
// shown too; and open with background_check off (the full check inside open).
// The floor is what SQLite needs to open the same file and read its schema.
//
//   parley-bench-cache-open [--messages 1000000] [--channels 10] [--runs 5]
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "cache_fill.hpp"
#include "store/cache.hpp"

using namespace parley;
using namespace parley::bench;

namespace {

constexpr double kGoalMs = 50;

// Drops the file's clean pages from the OS page cache (no root needed).
void drop_from_page_cache(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;  // e.g. no -wal file
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct OpenTiming {
  double open_ms = 0;
  double checked_ms = 0;  // until the background check reported (open_ms without one)
};

OpenTiming time_open(const std::string& dir, bool background_check) {
  std::mutex mu;
  std::condition_variable cv;
  bool checked = false;  // guarded by mu
  Clock::time_point checked_at;
  store::Cache::Options options;
  options.background_check = background_check;
  options.on_check_done = [&] {
    std::lock_guard<std::mutex> lock(mu);
    checked = true;
    checked_at = Clock::now();
    cv.notify_all();
  };
  auto t0 = Clock::now();
  auto cache = store::Cache::open(dir, "alice", options);
  OpenTiming t;
  t.open_ms = ms_since(t0);
  if (!cache) {
    std::fprintf(stderr, "open: %s\n", cache.status().to_string().c_str());
    std::exit(1);
  }
  t.checked_ms = t.open_ms;
  if (background_check) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return checked; })) {
      std::fprintf(stderr, "the background check did not report within 60 s\n");
      std::exit(1);
    }
    t.checked_ms = std::chrono::duration<double, std::milli>(checked_at - t0).count();
  }
  if (Status s = (*cache)->corruption(); !s.ok()) {
    std::fprintf(stderr, "the check found: %s\n", s.to_string().c_str());
    std::exit(1);
  }
  return t;
}

double time_sqlite_floor(const std::string& path) {
  auto t0 = Clock::now();
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; SELECT count(*) FROM sqlite_schema;", nullptr, nullptr,
               nullptr);
  double ms = ms_since(t0);
  sqlite3_close(db);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  long messages = args.num("messages", 1000000);
  int channels = static_cast<int>(args.num("channels", 10));
  int runs = static_cast<int>(args.num("runs", 5));
  if (channels < 1 || messages < channels || runs < 1) {
    std::fprintf(stderr,
                 "usage: parley-bench-cache-open [--messages N] [--channels C] [--runs R]\n");
    return 2;
  }
  auto per_channel = static_cast<std::uint64_t>(messages / channels);
  ScratchDir dir("open", args.flag("keep"));
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
  auto db_path = dir.path() / "parley.db";
  auto file_bytes = std::filesystem::file_size(db_path);

  time_open(dir.str(), true);  // untimed: the first open after the fill
  std::vector<double> warm, warm_checked, cold, cold_checked, full, floor_warm;
  for (int r = 0; r < runs; ++r) {
    OpenTiming t = time_open(dir.str(), true);
    warm.push_back(t.open_ms);
    warm_checked.push_back(t.checked_ms);
  }
  for (int r = 0; r < runs; ++r) {
    for (const char* file : {"parley.db", "parley.db-wal", "outbox.db", "outbox.db-wal"}) {
      drop_from_page_cache(dir.path() / file);
    }
    OpenTiming t = time_open(dir.str(), true);
    cold.push_back(t.open_ms);
    cold_checked.push_back(t.checked_ms);
  }
  for (int r = 0; r < runs; ++r) full.push_back(time_open(dir.str(), false).open_ms);
  for (int r = 0; r < runs; ++r) floor_warm.push_back(time_sqlite_floor(db_path.string()));

  Report report("cache_open");
  report.note(
      fmt::format("Cache::open of a cache holding {} messages in {} channels "
                  "({:.0f} MB file, filled in {:.1f} s); median of {} opens",
                  per_channel * static_cast<std::uint64_t>(channels), channels,
                  static_cast<double>(file_bytes) / 1e6, fill_ms / 1000, runs));
  report.at_most("Cache::open, warm page cache", median(warm), "ms", kGoalMs, 1);
  report.at_most("Cache::open, cold (fadvise DONTNEED)", median(cold), "ms", kGoalMs, 1);
  report.info("  until the background page check reported, warm", median(warm_checked), "ms", 1);
  report.info("  until the background page check reported, cold", median(cold_checked), "ms", 1);
  report.info("Cache::open with background_check off (full check in open), warm", median(full),
              "ms", 1);
  report.info("floor: sqlite3_open + schema read, warm", median(floor_warm), "ms", 2);
  report.field("messages", static_cast<double>(per_channel * static_cast<std::uint64_t>(channels)));
  report.field("file_mb", static_cast<double>(file_bytes) / 1e6);
  report.field("open_warm_ms", median(warm));
  report.field("open_cold_ms", median(cold));
  report.field("checked_warm_ms", median(warm_checked));
  report.field("checked_cold_ms", median(cold_checked));
  report.field("open_full_check_ms", median(full));
  report.field("sqlite_floor_ms", median(floor_warm));
  report.field("goal_ms", kGoalMs);
  report.field("met", median(warm) <= kGoalMs && median(cold) <= kGoalMs ? "yes" : "no");
  report.print();
  return 0;
}

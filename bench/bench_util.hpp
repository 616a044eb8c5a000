// Shared pieces of the benchmark programs: a scratch directory, a
// deterministic corpus of realistic chat messages, timing, percentiles, the
// process's peak RSS, and the two outputs every program prints (a table for
// people, one JSON line for scripts).
//
// Single-threaded helpers: use from one thread at a time.
#pragma once

#include <fmt/format.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "parley/types.hpp"

namespace parley::bench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// CPU time of the calling thread (user + system), in ns: unlike wall time it
// leaves out the time other processes had the CPU.
inline double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// The 1-minute load average: how busy the machine was (figures vary with it).
inline double load_average() {
  double load = 0;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  return load;
}

// A fresh directory under $PARLEY_BENCH_DIR (default: the system temp
// directory), removed at the end unless keep is set.
class ScratchDir {
 public:
  explicit ScratchDir(const char* name, bool keep = false) : keep_(keep) {
    const char* base = std::getenv("PARLEY_BENCH_DIR");
    std::filesystem::path root = base != nullptr && *base != '\0'
                                     ? std::filesystem::path(base)
                                     : std::filesystem::temp_directory_path();
    std::filesystem::create_directories(root);
    std::string pattern = (root / fmt::format("parley-bench-{}-XXXXXX", name)).string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::fprintf(stderr, "cannot create a scratch directory under %s\n", root.c_str());
      std::exit(2);
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (keep_) {
      std::fprintf(stderr, "kept %s\n", path_.c_str());
    } else {
      std::filesystem::remove_all(path_, ec);
    }
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str(const char* sub = nullptr) const {
    return sub == nullptr ? path_.string() : (path_ / sub).string();
  }

 private:
  std::filesystem::path path_;
  bool keep_;
};

// Realistic chat traffic, the same on every run: texts of 1-30 words (about 70
// bytes on average, one in ten with non-ASCII UTF-8), 32-hex-digit ids, eight
// senders, timestamps a few seconds apart.
class Corpus {
 public:
  explicit Corpus(std::uint64_t seed = 20240601) : rng_(seed) {}

  std::string text() {
    static constexpr std::array<std::string_view, 64> kWords = {
        "the",     "meeting", "is",      "moved",  "to",      "three",  "pm",       "can",
        "you",     "review",  "my",      "pull",   "request", "today",  "thanks",   "for",
        "lunch",   "sounds",  "good",    "see",    "later",   "build",  "broke",    "again",
        "on",      "main",    "after",   "merge",  "I",       "think",  "we",       "should",
        "ship",    "it",      "friday",  "deploy", "went",    "fine",   "ping",     "me",
        "when",    "ready",   "ok",      "cool",   "sure",    "what",   "about",    "the",
        "release", "notes",   "coffee?", "brb",    "lgtm",    "nice",   "work",     "team",
        "please",  "check",   "logs",    "and",    "latency", "graphs", "tomorrow", "morning"};
    static constexpr std::array<std::string_view, 4> kExtras = {"🙂", "café", "naïve", "👍"};
    int words = 1 + static_cast<int>(next() % 30);
    std::string out;
    for (int i = 0; i < words; ++i) {
      if (i > 0) out += ' ';
      out += kWords[next() % kWords.size()];
    }
    if (next() % 10 == 0) {
      out += ' ';
      out += kExtras[next() % kExtras.size()];
    }
    return out;
  }

  std::string id() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(32, '0');
    std::uint64_t a = next();
    std::uint64_t b = next();
    for (int i = 0; i < 16; ++i) {
      out[static_cast<std::size_t>(i)] = kHex[(a >> (i * 4)) & 15];
      out[static_cast<std::size_t>(16 + i)] = kHex[(b >> (i * 4)) & 15];
    }
    return out;
  }

  const std::string& sender() { return members()[next() % members().size()]; }
  // Everyone who posts; alice, the first, creates the channels.
  static const std::vector<std::string>& members() {
    static const std::vector<std::string> kUsers = {"alice", "bob",   "carol", "dave",
                                                    "erin",  "frank", "grace", "heidi"};
    return kUsers;
  }

  std::int64_t ts() {
    ts_ += 1000 + static_cast<std::int64_t>(next() % 4000);
    return ts_;
  }

  // A text message of `channel` at `seq`.
  Message message(const std::string& channel, std::uint64_t seq) {
    Message m;
    m.channel = channel;
    m.seq = seq;
    m.kind = EventKind::message;
    m.sender = sender();
    m.id = id();
    m.text = text();
    m.ts_ms = ts();
    return m;
  }

  std::uint64_t next() { return rng_(); }

 private:
  std::mt19937_64 rng_;
  std::int64_t ts_ = 1717200000000;  // 2024-06-01
};

inline std::string channel_name(int i) { return fmt::format("channel-{:02}", i); }

// Nearest-rank percentile of `values` (sorted in place), p in [0, 100].
inline double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size()) + 0.5);
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

inline double median(std::vector<double> values) { return percentile(values, 50); }

// A field of /proc/self/status in kB (VmHWM: peak RSS, VmRSS: current), 0 if absent.
inline long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return 0;
}

// One line of the table: what, the figure, its unit, and the goal when there is one.
struct Row {
  std::string what;
  double value = 0;
  std::string unit;
  std::string goal;  // e.g. "<= 2000"; empty: informational
  int met = -1;      // 1 met, 0 missed, -1 no goal
  int decimals = 1;
};

// What a program reports: a title, table rows and the JSON fields.
class Report {
 public:
  explicit Report(std::string bench) : bench_(std::move(bench)), load_start_(load_average()) {}

  void note(std::string line) { notes_.push_back(std::move(line)); }
  void row(Row r) { rows_.push_back(std::move(r)); }
  // Goals: at most / at least `goal`.
  void at_most(std::string what, double value, std::string unit, double goal, int decimals = 1) {
    rows_.push_back(Row{std::move(what), value, std::move(unit), fmt::format("<= {:g}", goal),
                        value <= goal ? 1 : 0, decimals});
  }
  void at_least(std::string what, double value, std::string unit, double goal, int decimals = 0) {
    rows_.push_back(Row{std::move(what), value, std::move(unit), fmt::format(">= {:g}", goal),
                        value >= goal ? 1 : 0, decimals});
  }
  void info(std::string what, double value, std::string unit, int decimals = 1) {
    rows_.push_back(Row{std::move(what), value, std::move(unit), "", -1, decimals});
  }
  void field(std::string key, double value) { fields_.emplace_back(std::move(key), value); }
  void field(std::string key, std::string value) {
    fields_.emplace_back(std::move(key), std::move(value));
  }

  // The table on stdout, then the JSON line (prefixed with nothing, on its own line).
  void print() const {
    double load_end = load_average();
    std::printf("\n== %s ==\n", bench_.c_str());
    for (const auto& n : notes_) std::printf("  %s\n", n.c_str());
    std::size_t width = 6;
    for (const auto& r : rows_) width = std::max(width, r.what.size());
    std::printf("  %-*s %16s %-8s %-12s %s\n", static_cast<int>(width), "figure", "value", "unit",
                "goal", "status");
    for (const auto& r : rows_) {
      std::printf("  %-*s %16s %-8s %-12s %s\n", static_cast<int>(width), r.what.c_str(),
                  fmt::format("{:.{}f}", r.value, r.decimals).c_str(), r.unit.c_str(),
                  r.goal.c_str(),
                  r.met == 1   ? "met"
                  : r.met == 0 ? "MISSED"
                               : "");
    }
    std::printf("  (load average %.2f at the start, %.2f at the end, on %u cores)\n", load_start_,
                load_end, std::thread::hardware_concurrency());
    std::string json = fmt::format("{{\"bench\":\"{}\"", bench_);
    for (const auto& [key, value] : fields_) {
      if (const auto* d = std::get_if<double>(&value)) {
        json += fmt::format(",\"{}\":{}", key, *d);
      } else {
        json += fmt::format(",\"{}\":\"{}\"", key, std::get<std::string>(value));
      }
    }
    json += fmt::format(",\"load_average\":{:.2f}}}", std::max(load_start_, load_end));
    std::printf("%s\n", json.c_str());
    std::fflush(stdout);
  }

 private:
  std::string bench_;
  double load_start_ = 0;
  std::vector<std::string> notes_;
  std::vector<Row> rows_;
  std::vector<std::pair<std::string, std::variant<double, std::string>>> fields_;
};

// Tiny argument reader: --name value pairs and --flag switches.
class Args {
 public:
  Args(int argc, char** argv) : args_(argv + 1, argv + argc) {}
  long num(const char* name, long fallback) const {
    auto v = value(name);
    return v.empty() ? fallback : std::strtol(v.c_str(), nullptr, 10);
  }
  std::string str(const char* name, std::string fallback = {}) const {
    auto v = value(name);
    return v.empty() ? fallback : v;
  }
  bool flag(const char* name) const {
    return std::find(args_.begin(), args_.end(), std::string("--") + name) != args_.end();
  }

 private:
  std::string value(const char* name) const {
    std::string key = std::string("--") + name;
    for (std::size_t i = 0; i + 1 < args_.size(); ++i) {
      if (args_[i] == key) return args_[i + 1];
    }
    return {};
  }
  std::vector<std::string> args_;
};

}  // namespace parley::bench

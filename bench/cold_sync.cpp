// Cold sync: a server holding 100,000 messages in 10 channels, and a client
// starting from an empty cache over a loopback WebSocket.
//
// The server is parley::server::Server in this process, on 127.0.0.1 with an
// ephemeral port. Its data is written beforehand straight through
// ServerStore (DATA/server.db): the same rows that sends would leave, without
// 100,000 round trips; every channel has a `create` and 7 `join`s, then its
// share of the messages from the benchmark corpus.
//
// The client is parley-bench-sync-client, a separate process (so that its
// peak RSS, VmHWM, is the client's alone). Each run starts it on a new empty
// data directory and reports two times from Client::open:
//   - ready: the SDK's sync is done (a channel new to a device gets its
//     newest page, the live cursor starts at last_seq);
//   - all cached: every message of every channel is in the local cache,
//     history paged with load_history to the beginning of each channel.
//
//   parley-bench-cold-sync [--messages 100000] [--channels 10] [--runs 3] [--data DIR]
//                          [--timeout-s 120] [--client-prefix "CMD ARGS"] [--no-what-if]
//
// --data DIR keeps the server's data in DIR and reuses it when present, so
// that the sync can be rerun (or profiled) without writing it again.
//
// --client-prefix "CMD ARGS" runs the client under CMD (a profiler: e.g.
// "valgrind --tool=callgrind --callgrind-out-file=/tmp/sync.cg", with a larger
// --timeout-s).
//
// Then, unless --no-what-if, the same runs again with fsync made a no-op in
// the client (LD_PRELOAD of parley-bench-no-fsync.so): the difference is the
// time the sync spends waiting for the disk.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "protocol/token.hpp"
#include "server.hpp"
#include "store.hpp"

extern char** environ;

using namespace parley;
using namespace parley::bench;

namespace {

constexpr double kGoalMs = 2000;
constexpr double kGoalRssMb = 30;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "cold_sync: %s\n", why.c_str());
  std::exit(1);
}

void populate(const std::string& db_path, int channels, long messages) {
  auto store = server::ServerStore::open(db_path);
  if (!store) die("ServerStore::open: " + store.status().to_string());
  Corpus corpus;
  const auto& users = Corpus::members();
  for (const auto& u : users) (*store)->touch_user(u, corpus.ts());
  for (int c = 0; c < channels; ++c) {
    std::string channel = channel_name(c);
    if (auto e = (*store)->create_channel(channel, users[0], corpus.ts()); !e) {
      die("create_channel: " + e.status().to_string());
    }
    for (std::size_t u = 1; u < users.size(); ++u) {
      if (auto e = (*store)->join(channel, users[u], corpus.ts()); !e) {
        die("join: " + e.status().to_string());
      }
    }
  }
  for (long i = 0; i < messages; ++i) {
    std::string channel = channel_name(static_cast<int>(i % channels));
    std::string sender = corpus.sender();
    auto e = (*store)->append_message(channel, sender, corpus.id(), corpus.text(), corpus.ts());
    if (!e) die("append_message: " + e.status().to_string());
  }
}

std::string self_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) die("cannot find /proc/self/exe");
  return exe.parent_path().string();
}

// Runs the sync client to completion and returns its JSON line.
// `prefix`: words run before the client (a profiler, e.g. valgrind); empty:
// none. `preload`: a library for LD_PRELOAD in the client (empty: none).
std::string run_client(const std::string& url, const std::string& dir, const std::string& token,
                       int timeout_s, const std::vector<std::string>& prefix,
                       const std::string& preload = {}) {
  std::string exe = self_dir() + "/parley-bench-sync-client";
  std::string timeout = std::to_string(timeout_s);
  std::vector<std::string> argv_s = prefix;
  for (std::string a : {exe, std::string("--url"), url, std::string("--dir"), dir,
                        std::string("--timeout-s"), timeout}) {
    argv_s.push_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "PARLEY_BENCH_TOKEN=", 19) == 0) continue;
    if (!preload.empty() && std::strncmp(*e, "LD_PRELOAD=", 11) == 0) continue;
    env_s.emplace_back(*e);
  }
  env_s.push_back("PARLEY_BENCH_TOKEN=" + token);
  if (!preload.empty()) env_s.push_back("LD_PRELOAD=" + preload);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2];
  if (pipe(out) != 0) die("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv_s[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) die("cannot start " + argv_s[0] + ": " + std::strerror(rc));

  std::string output;
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s + 10);
  char buf[4096];
  for (;;) {
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    output.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    die("sync client failed: " + (output.empty() ? std::string("no output") : output));
  }
  return output;
}

// A number field of a flat JSON object (the client's own line).
double number(const std::string& json, const char* key) {
  std::string k = std::string("\"") + key + "\":";
  auto at = json.find(k);
  if (at == std::string::npos) die(std::string("client output lacks ") + key + ": " + json);
  return std::strtod(json.c_str() + at + k.size(), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  long messages = args.num("messages", 100000);
  int channels = static_cast<int>(args.num("channels", 10));
  int runs = static_cast<int>(args.num("runs", 3));
  int timeout_s = static_cast<int>(args.num("timeout-s", 120));
  std::vector<std::string> prefix;  // --client-prefix "valgrind --tool=callgrind ..."
  {
    std::string words = args.str("client-prefix");
    std::size_t at = 0;
    while (at < words.size()) {
      std::size_t end = words.find(' ', at);
      if (end == std::string::npos) end = words.size();
      if (end > at) prefix.push_back(words.substr(at, end - at));
      at = end + 1;
    }
  }
  if (channels < 1 || messages < channels || runs < 1 || messages > 10000000) {
    std::fprintf(stderr,
                 "usage: parley-bench-cold-sync [--messages N] [--channels C] [--runs R]\n");
    return 2;
  }
  // --data DIR: keep the server's data there and reuse it on later runs
  // (for profiling the sync alone); otherwise a scratch directory.
  std::string data = args.str("data");
  ScratchDir scratch("cold-sync", args.flag("keep"));
  std::filesystem::path root = data.empty() ? scratch.path() : std::filesystem::path(data);
  std::string server_dir = (root / "server").string();
  std::filesystem::create_directories(server_dir);

  double populate_ms = 0;
  if (!std::filesystem::exists(server_dir + "/server.db")) {
    auto populate_start = Clock::now();
    populate(server_dir + "/server.db", channels, messages);
    populate_ms = ms_since(populate_start);
  }

  token::SigningKey key = token::generate_key();
  server::ServerOptions options;
  options.data_dir = server_dir;
  options.host = "127.0.0.1";
  options.port = 0;
  std::copy(std::begin(key.public_key), std::end(key.public_key), options.public_key.begin());
  auto created = server::Server::create(options);
  if (!created) die("Server::create: " + created.status().to_string());
  std::unique_ptr<server::Server> srv = std::move(*created);
  srv->start();
  std::string url = fmt::format("ws://127.0.0.1:{}", srv->port());
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  std::string token = token::mint(key, "alice", 3600, now_s);

  std::vector<double> ready, all, rss, rss_ready, rss_start, calls, cpu;
  double cached = 0;
  for (int r = 0; r < runs; ++r) {
    std::string client_dir = (root / fmt::format("client-{}", r)).string();
    std::filesystem::remove_all(client_dir);
    std::string line = run_client(url, client_dir, token, timeout_s, prefix);
    ready.push_back(number(line, "ready_ms"));
    all.push_back(number(line, "all_ms"));
    rss.push_back(number(line, "peak_rss_kb") / 1024);
    rss_ready.push_back(number(line, "peak_rss_ready_kb") / 1024);
    rss_start.push_back(number(line, "rss_start_kb") / 1024);
    calls.push_back(number(line, "history_calls"));
    cpu.push_back(number(line, "cpu_ms"));
    cached = number(line, "messages_cached");
    double complete = number(line, "complete_channels");
    if (cached != static_cast<double>(messages / channels * channels) || complete != channels) {
      die(fmt::format("the client cached {} messages ({} channels complete), expected {}", cached,
                      complete, messages / channels * channels));
    }
  }
  // What-if: the same sync with fsync turned into a no-op in the client, to
  // show how much of it waits for the disk (--no-what-if to skip).
  std::vector<double> all_no_fsync;
  if (!args.flag("no-what-if")) {
    std::string preload = self_dir() + "/parley-bench-no-fsync.so";
    for (int r = 0; r < runs; ++r) {
      std::string client_dir = (root / fmt::format("client-nofsync-{}", r)).string();
      std::filesystem::remove_all(client_dir);
      std::string line = run_client(url, client_dir, token, timeout_s, prefix, preload);
      all_no_fsync.push_back(number(line, "all_ms"));
    }
  }
  srv->stop();

  Report report("cold_sync");
  report.note(
      populate_ms > 0
          ? fmt::format("server: {} messages in {} channels, written through ServerStore "
                        "in {:.1f} s; in-process Server on {}",
                        messages, channels, populate_ms / 1000, url)
          : fmt::format("server: data reused from {}; in-process Server on {}", server_dir, url));
  report.note(
      fmt::format("client: separate process, default WebSocket transport, empty cache; "
                  "median of {} runs; {:.0f} messages verified in its cache",
                  runs, cached));
  report.at_most("to ready (SDK sync: newest page per channel)", median(ready), "ms", kGoalMs, 1);
  report.at_most("to all messages cached (+ load_history to the start)", median(all), "ms", kGoalMs,
                 1);
  report.info("client CPU time (user + system), to all cached", median(cpu), "ms", 0);
  if (!all_no_fsync.empty()) {
    report.info("what-if: all cached with fsync a no-op in the client", median(all_no_fsync), "ms",
                1);
  }
  report.info("load_history calls (1,000 messages each)", median(calls), "", 0);
  report.at_most("client peak RSS (VmHWM), all messages cached", median(rss), "MB", kGoalRssMb, 1);
  report.info("client peak RSS at ready", median(rss_ready), "MB", 1);
  report.info("client RSS before Client::open", median(rss_start), "MB", 1);
  report.field("messages", static_cast<double>(messages));
  report.field("channels", channels);
  report.field("ready_ms", median(ready));
  report.field("all_cached_ms", median(all));
  report.field("all_cached_ms_min", *std::min_element(all.begin(), all.end()));
  report.field("all_cached_ms_max", *std::max_element(all.begin(), all.end()));
  report.field("client_cpu_ms", median(cpu));
  if (!all_no_fsync.empty()) report.field("all_cached_no_fsync_ms", median(all_no_fsync));
  report.field("peak_rss_mb", median(rss));
  report.field("peak_rss_ready_mb", median(rss_ready));
  report.field("populate_ms", populate_ms);
  report.field("goal_ms", kGoalMs);
  report.field("goal_rss_mb", kGoalRssMb);
  report.field("met_ready", median(ready) <= kGoalMs ? "yes" : "no");
  report.field("met_all_cached", median(all) <= kGoalMs ? "yes" : "no");
  report.field("met_rss", median(rss) <= kGoalRssMb ? "yes" : "no");
  report.print();
  return 0;
}

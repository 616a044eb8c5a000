// The client side of the cold sync benchmark, in its own process so that its
// peak RSS is the client's alone. Started by parley-bench-cold-sync; prints
// one JSON line on stdout.
//
// From an empty data directory: Client::open with the default WebSocket
// transport, wait for `ready` (the SDK's sync: the newest page of each
// channel), then page every channel's history to its beginning with
// load_history (1,000 messages per call, all channels at once), so that every
// message is in the local cache. Afterwards (untimed) the cache is opened and
// counted to prove it.
//
//   parley-bench-sync-client --url ws://127.0.0.1:PORT --dir DIR [--timeout-s 120]
//   (the token comes in the environment variable PARLEY_BENCH_TOKEN)
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "bench_util.hpp"
#include "parley/client.hpp"
#include "protocol/token.hpp"
#include "store/cache.hpp"

using namespace parley;
using namespace parley::bench;

namespace {

constexpr std::uint32_t kCallLimit = 1000;  // the most load_history allows

// CPU time of the whole process (every thread), user + system, in ms.
double process_cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + t.tv_usec / 1e3; };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

[[noreturn]] void fail(const std::string& why) {
  std::printf("{\"error\":\"%s\"}\n", why.c_str());
  std::fflush(stdout);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  std::string url = args.str("url");
  std::string dir = args.str("dir");
  const char* token = std::getenv("PARLEY_BENCH_TOKEN");
  auto timeout = std::chrono::seconds(args.num("timeout-s", 120));
  if (url.empty() || dir.empty() || token == nullptr) {
    std::fprintf(stderr,
                 "usage: PARLEY_BENCH_TOKEN=T parley-bench-sync-client --url URL --dir DIR\n");
    return 2;
  }
  long rss_start_kb = status_kb("VmHWM");
  auto deadline = Clock::now() + timeout;

  auto start = Clock::now();
  ClientOptions options;
  options.server_url = url;
  options.token = token;
  options.data_dir = dir;
  auto opened = Client::open(options);
  if (!opened) fail("Client::open: " + opened.status().to_string());
  std::unique_ptr<Client> client = std::move(*opened);
  double open_ms = ms_since(start);

  // 1. The SDK's own sync, to `ready`.
  double ready_ms = 0;
  while (ready_ms == 0) {
    if (Clock::now() > deadline) fail("not ready before the timeout");
    auto ev = client->next_event(std::chrono::milliseconds(100));
    if (!ev) continue;
    if (auto* s = std::get_if<StateChanged>(&*ev); s && s->state == LifecycleState::ready) {
      ready_ms = ms_since(start);
    }
  }
  long rss_ready_kb = status_kb("VmHWM");

  // 2. Every channel's history down to its first message, all channels at once.
  auto channels = client->channels();
  if (!channels) fail("channels: " + channels.status().to_string());
  std::map<RequestId, std::string> pending;
  int calls = 0;
  for (const auto& c : *channels) {
    if (!c.member) continue;
    pending[client->load_history(c.name, HistoryQuery{0, kCallLimit})] = c.name;
    ++calls;
  }
  std::size_t channel_count = pending.size();
  std::uint64_t delivered = 0;  // messages handed to the app by load_history
  while (!pending.empty()) {
    if (Clock::now() > deadline) fail("history not loaded before the timeout");
    auto ev = client->next_event(std::chrono::milliseconds(100));
    if (!ev) continue;
    auto* done = std::get_if<HistoryLoaded>(&*ev);
    if (done == nullptr) continue;
    auto it = pending.find(done->request);
    if (it == pending.end()) continue;
    std::string channel = it->second;
    pending.erase(it);
    if (!done->status.ok()) fail("load_history: " + done->status.to_string());
    if (!done->complete) fail("load_history of " + channel + " incomplete");
    delivered += done->messages.size();
    if (done->messages.size() < kCallLimit) continue;  // reached the channel's beginning
    std::uint64_t before = done->messages.front().seq;
    pending[client->load_history(channel, HistoryQuery{before, kCallLimit})] = channel;
    ++calls;
  }
  double all_ms = ms_since(start);
  double cpu_ms = process_cpu_ms();
  long peak_kb = status_kb("VmHWM");
  client.reset();

  // 3. Untimed: count what the cache holds.
  auto claims = token::peek(token);
  if (!claims) fail("token: " + claims.status().to_string());
  auto cache = store::Cache::open(dir, claims->user);
  if (!cache) fail("Cache::open: " + cache.status().to_string());
  auto known = (*cache)->channels();
  if (!known) fail("channels: " + known.status().to_string());
  std::uint64_t cached = 0;
  std::uint64_t complete_channels = 0;
  for (const auto& c : *known) {
    auto low = (*cache)->contiguous_down_from(c.name, c.last_seq);
    if (low && *low == 1) ++complete_channels;
    auto events = (*cache)->events(c.name, 1, c.last_seq);
    if (!events) fail("events: " + events.status().to_string());
    for (const auto& m : *events) cached += m.kind == EventKind::message ? 1 : 0;
  }

  std::printf(
      "{\"open_ms\":%.3f,\"ready_ms\":%.3f,\"all_ms\":%.3f,\"history_calls\":%d,"
      "\"channels\":%zu,\"complete_channels\":%llu,\"messages_cached\":%llu,"
      "\"messages_delivered\":%llu,\"rss_start_kb\":%ld,\"peak_rss_ready_kb\":%ld,"
      "\"peak_rss_kb\":%ld,\"cpu_ms\":%.1f}\n",
      open_ms, ready_ms, all_ms, calls, channel_count,
      static_cast<unsigned long long>(complete_channels), static_cast<unsigned long long>(cached),
      static_cast<unsigned long long>(delivered), rss_start_kb, rss_ready_kb, peak_kb, cpu_ms);
  return 0;
}

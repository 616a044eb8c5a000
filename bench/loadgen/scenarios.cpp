// The scenarios of parley-bench. Each one connects through a Loop, waits for
// every connection to be ready (and subscribed), measures, and reports with
// the generator's own CPU use beside every figure: a generator near 100% of a
// core is the bottleneck, and the figure says more about it than the server.
#include "scenarios.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "../bench_util.hpp"
#include "payload.hpp"
#include "proc_stats.hpp"

namespace parley::loadgen {
namespace {

using bench::Report;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Local addresses needed for `connections` sockets to one server address:
// about 28,000 ephemeral ports each (net.ipv4.ip_local_port_range), 25,000 used.
int sources_for(const Options& o, long connections) {
  if (o.sources > 0) return o.sources;
  return static_cast<int>((connections + 24999) / 25000);
}

// A unique topic per run, valid as a Parley channel, MQTT topic and NATS subject.
std::string fresh_topic(const char* scenario) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return fmt::format("bench-{}-{}-{}", scenario, getpid(), ms);
}

void add_cpu_rows(Report& report, const char* phase, double self_pct, double server_pct) {
  report.info(fmt::format("generator CPU, {} (% of one core)", phase), self_pct, "%");
  if (server_pct >= 0) {
    report.info(fmt::format("server CPU, {} (% of one core)", phase), server_pct, "%");
  }
  if (self_pct >= 90) {
    report.note(fmt::format("client-bound: the generator used {:.0f}% of a core during {}",
                            self_pct, phase));
  }
}

// One publisher and some subscribers on one topic; counts and checks what
// arrives. Used by the fan-out and latency scenarios.
class PubSub final : public Sink {
 public:
  PubSub(Dialect& dialect, const Options& o, int subscribers)
      : loop(dialect, o.target, static_cast<std::size_t>(subscribers) + 1, 1, *this),
        topic(fresh_topic(dialect.name())) {
    if (!loop.ok()) return;
    pub = &loop.connect(fmt::format("bench-pub-{}", getpid()));
    for (int i = 0; i < subscribers; ++i) {
      subs.push_back(&loop.connect(fmt::format("bench-sub-{}", i)));
    }
  }

  // Waits until every connection is ready and subscribed; false (with a
  // message on stderr) if one failed or `timeout_s` passed.
  bool setup(double timeout_s) {
    if (!loop.ok()) return fail("cannot create the libwebsockets context");
    std::size_t all = subs.size() + 1;
    if (!loop.run([&] { return ready == all || errors > 0; }, timeout_s) || errors > 0) {
      return fail(fmt::format("{} of {} connections ready", ready, all));
    }
    loop.dialect().prepare_publisher(loop, *pub, topic);
    if (!loop.run([&] { return subscribed == 1 || errors > 0; }, timeout_s) || errors > 0) {
      return fail("the publisher could not prepare the topic");
    }
    for (Conn* s : subs) loop.dialect().subscribe(loop, *s, topic);
    if (!loop.run([&] { return subscribed == all || errors > 0; }, timeout_s) || errors > 0) {
      return fail(fmt::format("{} of {} connections subscribed", subscribed, all));
    }
    return true;
  }

  // Publishes the next `count` payloads in one frame.
  void publish_next(std::uint64_t count, std::size_t size) {
    batch_.clear();
    std::int64_t now = now_ns();
    for (std::uint64_t i = 0; i < count; ++i) batch_.push_back(make_payload(sent + i, now, size));
    loop.dialect().publish(loop, *pub, topic, batch_);
    sent += count;
  }

  void on_ready(Conn&) override { ++ready; }
  void on_subscribed(Conn& c) override {
    if (!c.subscribed) {
      c.subscribed = true;
      ++subscribed;
    }
  }
  void on_payload(Conn& c, std::string_view payload) override {
    PayloadStamp stamp;
    if (&c == pub || !parse_payload(payload, stamp)) return;
    std::int64_t now = now_ns();
    if (stamp.index != c.next_index) ++c.out_of_order;
    c.next_index = stamp.index + 1;
    ++c.received;
    ++delivered;
    last_delivery = Clock::now();
    if (latencies != nullptr) latencies->push_back(static_cast<double>(now - stamp.sent_ns) / 1e6);
    if (on_progress) on_progress();
  }
  void on_accepted(Conn&) override { ++accepted; }
  void on_error(Conn& c, std::string_view what) override {
    if (errors++ == 0) {
      std::fprintf(stderr, "parley-bench: %s: %.*s\n", c.user.c_str(),
                   static_cast<int>(what.size()), what.data());
    }
  }
  void on_closed(Conn& c) override {
    if (closed++ == 0 && !finished)
      std::fprintf(stderr, "parley-bench: %s: closed\n", c.user.c_str());
  }
  void on_drained(Conn& c) override {
    if (&c == pub && on_progress) on_progress();
  }

  // Whether every subscriber received messages 0..count-1, each once, in order.
  bool all_in_order(std::uint64_t count) const {
    return std::all_of(subs.begin(), subs.end(), [count](const Conn* s) {
      return s->received == count && s->out_of_order == 0 && s->next_index == count;
    });
  }
  std::uint64_t out_of_order() const {
    std::uint64_t n = 0;
    for (const Conn* s : subs) n += s->out_of_order;
    return n;
  }

  Loop loop;
  std::string topic;
  Conn* pub = nullptr;
  std::vector<Conn*> subs;
  std::size_t ready = 0;
  std::size_t subscribed = 0;
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t accepted = 0;
  std::uint64_t errors = 0;
  std::uint64_t closed = 0;
  Clock::time_point last_delivery{};
  std::vector<double>* latencies = nullptr;  // when set, each delivery's latency in ms
  std::function<void()> on_progress;
  bool finished = false;  // measured: closes are expected now

  void close_all() {
    finished = true;
    on_progress = nullptr;
    loop.close_all();
  }

 private:
  std::vector<std::string> batch_;

  bool fail(const std::string& why) {
    std::fprintf(stderr, "parley-bench: setup failed: %s\n", why.c_str());
    return false;
  }
};

}  // namespace

int run_fanout(Dialect& dialect, const Options& o) {
  PubSub ps(dialect, o, o.subscribers);
  if (!ps.setup(o.timeout_s)) return 1;
  auto subs = static_cast<std::uint64_t>(o.subscribers);
  auto messages = static_cast<std::uint64_t>(o.messages);
  auto window = static_cast<std::uint64_t>(o.window);
  std::uint64_t expected = messages * subs;
  // Keeps one frame of up to `batch` messages queued in the generator while
  // fewer than `window` messages per subscriber are on their way.
  auto batch = static_cast<std::uint64_t>(o.batch);
  ps.on_progress = [&] {
    if (!ps.pub->out.empty() || ps.sent == messages) return;
    std::uint64_t in_flight = (ps.sent * subs - ps.delivered + subs - 1) / subs;
    if (in_flight >= window) return;
    ps.publish_next(std::min({window - in_flight, messages - ps.sent, batch}),
                    static_cast<std::size_t>(o.size));
  };
  double self0 = self_cpu_s();
  double server0 = process_cpu_s(o.server_pid);
  auto start = Clock::now();
  ps.last_delivery = start;
  ps.on_progress();
  bool complete =
      ps.loop.run([&] { return ps.delivered == expected || ps.closed > 0 || ps.errors > 0; },
                  o.timeout_s, ps.on_progress);
  complete = complete && ps.delivered == expected;
  double wall = std::chrono::duration<double>(ps.last_delivery - start).count();
  double self_pct = cpu_percent(self0, self_cpu_s(), seconds_since(start));
  double server_pct = cpu_percent(server0, process_cpu_s(o.server_pid), seconds_since(start));
  bool in_order = complete && ps.all_in_order(messages);
  double rate = wall > 0 ? static_cast<double>(ps.delivered) / wall : 0;

  Report report("loadgen-fanout");
  report.note(
      fmt::format("{}: 1 publisher, {} subscribers, {} messages of {} bytes, "
                  "window {}, up to {} messages per frame",
                  o.label, o.subscribers, o.messages, o.size, o.window, o.batch));
  report.info("deliveries per second", rate, "/s", 0);
  report.info("messages published per second", wall > 0 ? messages / wall : 0, "/s", 0);
  report.info("time until all delivered", wall, "s", 2);
  report.info("deliveries", static_cast<double>(ps.delivered), "", 0);
  report.info("every subscriber got every message in order (1 yes)", in_order ? 1 : 0, "", 0);
  add_cpu_rows(report, "fan-out", self_pct, server_pct);
  report.field("target", o.label);
  report.field("deliveries_per_s", rate);
  report.field("seconds", wall);
  report.field("deliveries", static_cast<double>(ps.delivered));
  report.field("expected", static_cast<double>(expected));
  report.field("out_of_order", static_cast<double>(ps.out_of_order()));
  report.field("in_order", in_order ? 1 : 0);
  report.field("generator_cpu_pct", self_pct);
  report.field("server_cpu_pct", server_pct);
  report.print();
  ps.close_all();
  return in_order ? 0 : 1;
}

int run_latency(Dialect& dialect, const Options& o) {
  PubSub ps(dialect, o, o.latency_subscribers);
  if (!ps.setup(o.timeout_s)) return 1;
  auto subs = static_cast<std::uint64_t>(o.latency_subscribers);
  auto total = static_cast<std::uint64_t>(static_cast<double>(o.rate) * o.seconds);
  std::vector<double> latencies;
  latencies.reserve(total * subs);
  ps.latencies = &latencies;
  double self0 = self_cpu_s();
  double server0 = process_cpu_s(o.server_pid);
  auto start = Clock::now();
  // Open loop: every tick publishes the messages due by now at `rate`.
  auto pace = [&] {
    auto due = static_cast<std::uint64_t>(seconds_since(start) * static_cast<double>(o.rate));
    due = std::min(due, total);
    if (ps.sent < due) ps.publish_next(due - ps.sent, static_cast<std::size_t>(o.size));
  };
  bool complete =
      ps.loop.run([&] { return ps.delivered == total * subs || ps.closed > 0 || ps.errors > 0; },
                  o.seconds + o.timeout_s, pace, 1000);
  complete = complete && ps.delivered == total * subs;
  double wall = seconds_since(start);
  double self_pct = cpu_percent(self0, self_cpu_s(), wall);
  double server_pct = cpu_percent(server0, process_cpu_s(o.server_pid), wall);
  bool in_order = complete && ps.all_in_order(total);
  std::size_t samples = latencies.size();
  double p50 = bench::percentile(latencies, 50);
  double p90 = bench::percentile(latencies, 90);
  double p99 = bench::percentile(latencies, 99);
  double p999 = bench::percentile(latencies, 99.9);
  double max = latencies.empty() ? 0 : latencies.back();

  Report report("loadgen-latency");
  report.note(fmt::format("{}: 1 publisher at {} messages/s for {} s, {} subscribers, {} bytes",
                          o.label, o.rate, o.seconds, o.latency_subscribers, o.size));
  report.info("latency p50", p50, "ms", 3);
  report.info("latency p90", p90, "ms", 3);
  report.info("latency p99", p99, "ms", 3);
  report.info("latency p99.9", p999, "ms", 3);
  report.info("latency max", max, "ms", 3);
  report.info("deliveries measured", static_cast<double>(samples), "", 0);
  report.info("every subscriber got every message in order (1 yes)", in_order ? 1 : 0, "", 0);
  add_cpu_rows(report, "the latency run", self_pct, server_pct);
  report.field("target", o.label);
  report.field("p50_ms", p50);
  report.field("p90_ms", p90);
  report.field("p99_ms", p99);
  report.field("p999_ms", p999);
  report.field("max_ms", max);
  report.field("deliveries", static_cast<double>(samples));
  report.field("in_order", in_order ? 1 : 0);
  report.field("generator_cpu_pct", self_pct);
  report.field("server_cpu_pct", server_pct);
  report.print();
  ps.close_all();
  return in_order ? 0 : 1;
}

namespace {

// Counts connections that became ready or failed.
class IdleSink final : public Sink {
 public:
  void on_ready(Conn&) override { ++ready; }
  void on_error(Conn& c, std::string_view what) override {
    ++failed;
    if (failed <= 3) {
      std::fprintf(stderr, "parley-bench: %s: %.*s\n", c.user.c_str(),
                   static_cast<int>(what.size()), what.data());
    }
  }
  void on_closed(Conn&) override { ++closed; }
  long ready = 0;
  long failed = 0;
  long closed = 0;
};

}  // namespace

int run_capacity(Dialect& dialect, const Options& o) {
  long fd_limit = raise_fd_limit(o.connections + 256);
  if (fd_limit < o.connections + 64) {
    std::fprintf(stderr,
                 "parley-bench: open-file limit %ld is below %ld connections + 64 "
                 "(the hard limit can only be raised with CAP_SYS_RESOURCE)\n",
                 fd_limit, o.connections);
    return 2;
  }
  IdleSink sink;
  int sources = sources_for(o, o.connections);
  Loop loop(dialect, o.target, static_cast<std::size_t>(o.connections), sources, sink);
  if (!loop.ok()) return 1;
  long rss0 = process_rss_kb(o.server_pid);
  double self0 = self_cpu_s();
  double server0 = process_cpu_s(o.server_pid);
  auto start = Clock::now();
  long started = 0;
  // Keeps at most connect_window connections in their handshake.
  auto refill = [&] {
    while (started < o.connections && started - sink.ready - sink.failed < o.connect_window) {
      loop.connect(fmt::format("idle-{}", started));
      ++started;
    }
  };
  // Each pass of the loop polls every descriptor (libwebsockets' poll()
  // backend: about 1 ms per 1,000 connections here), so the ticks are sparse,
  // and sparser still while the connections idle.
  // At least 200 connections a second, however many there are.
  double connect_limit_s = std::max(o.timeout_s, static_cast<double>(o.connections) / 200);
  loop.run([&] { return sink.ready + sink.failed == o.connections; }, connect_limit_s, refill,
           5000);
  double connect_s = seconds_since(start);
  double connect_self_pct = cpu_percent(self0, self_cpu_s(), connect_s);
  double connect_server_pct = cpu_percent(server0, process_cpu_s(o.server_pid), connect_s);
  // Let the server settle (freed handshake buffers, queued welcome frames), then watch it idle.
  loop.run([] { return false; }, 2, {}, 500000);
  long rss1 = process_rss_kb(o.server_pid);
  double self1 = self_cpu_s();
  double server1 = process_cpu_s(o.server_pid);
  auto idle_start = Clock::now();
  loop.run([] { return false; }, o.idle_seconds, {}, 500000);
  double idle_s = seconds_since(idle_start);
  double idle_self_pct = cpu_percent(self1, self_cpu_s(), idle_s);
  double idle_server_pct = cpu_percent(server1, process_cpu_s(o.server_pid), idle_s);
  long still_open = 0;
  for (auto& c : loop.conns()) still_open += c->state == ConnState::ready ? 1 : 0;
  double kb_per_conn =
      rss0 > 0 && rss1 > 0 && sink.ready > 0 ? static_cast<double>(rss1 - rss0) / sink.ready : -1;
  double connect_rate = connect_s > 0 ? static_cast<double>(sink.ready) / connect_s : 0;

  Report report("loadgen-capacity");
  report.note(
      fmt::format("{}: {} idle authenticated connections from {} local address(es), "
                  "at most {} in the handshake at once",
                  o.label, o.connections, sources, o.connect_window));
  report.info("connections ready", static_cast<double>(sink.ready), "", 0);
  report.info("connections failed", static_cast<double>(sink.failed), "", 0);
  report.info("still open after the idle period", static_cast<double>(still_open), "", 0);
  report.info("connect rate", connect_rate, "/s", 0);
  add_cpu_rows(report, "connecting", connect_self_pct, connect_server_pct);
  report.info("server RSS before", static_cast<double>(rss0) / 1024, "MB", 1);
  report.info("server RSS after", static_cast<double>(rss1) / 1024, "MB", 1);
  report.info("server memory per connection", kb_per_conn, "KB", 2);
  add_cpu_rows(report, "idle", idle_self_pct, idle_server_pct);
  report.field("target", o.label);
  report.field("connections", static_cast<double>(sink.ready));
  report.field("failed", static_cast<double>(sink.failed));
  report.field("still_open", static_cast<double>(still_open));
  report.field("connect_per_s", connect_rate);
  report.field("connect_generator_cpu_pct", connect_self_pct);
  report.field("connect_server_cpu_pct", connect_server_pct);
  report.field("server_rss_before_kb", static_cast<double>(rss0));
  report.field("server_rss_after_kb", static_cast<double>(rss1));
  report.field("kb_per_conn", kb_per_conn);
  report.field("idle_generator_cpu_pct", idle_self_pct);
  report.field("idle_server_cpu_pct", idle_server_pct);
  report.print();
  loop.close_all();
  return sink.ready == o.connections && still_open == o.connections ? 0 : 1;
}

}  // namespace parley::loadgen

// The docs scenario of parley-bench (issue 15, docs/benchmarks.md): N clients
// edit one collaborative document through the server, each with its own CRDT
// replica, and the scenario measures how long an update takes to reach the
// other clients, how long its acknowledgement takes, what the server spends,
// and whether every replica ends with the same text as the server's.
//
// An update is matched to its send time by sender and order: the server
// relays one sender's updates in the order it applied them (wire.hpp,
// DocUpdateEvent), so the k-th update a client receives from a sender is that
// sender's k-th. A hash of each update's base64 checks the match.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <random>
#include <unordered_map>

#include "../bench_util.hpp"
#include "client/e2e.hpp"
#include "crdt/document.hpp"
#include "payload.hpp"
#include "proc_stats.hpp"
#include "protocol/codec.hpp"
#include "scenarios.hpp"

namespace parley::loadgen {
namespace {

using bench::Report;
using Clock = std::chrono::steady_clock;
using Handler = std::function<void(Conn&, wire::ServerMessage&)>;

constexpr const char* kTitle = "load test";

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Parley with the protocol's own codec: the Parley dialect authenticates
// (it mints the token), and every frame from the server is decoded and handed
// to the scenario. A few tens of thousands of small frames a second decode in
// a fraction of a core.
class DocDialect final : public Dialect {
 public:
  DocDialect(Dialect& parley, Handler handler) : parley_(parley), handler_(std::move(handler)) {}

  const char* name() const override { return "parley"; }
  const char* subprotocol() const override { return parley_.subprotocol(); }
  bool binary() const override { return false; }
  void on_open(Loop& loop, Conn& c) override { parley_.on_open(loop, c); }
  void subscribe(Loop&, Conn&, const std::string&) override {}
  void prepare_publisher(Loop&, Conn&, const std::string&) override {}
  void publish(Loop&, Conn&, const std::string&, const std::vector<std::string>&) override {}

  void on_data(Loop& loop, Conn& c, std::string_view data, bool message_end) override {
    c.in.append(data);
    if (!message_end) return;
    std::string frame = std::move(c.in);
    c.in.clear();
    for (auto& item : wire::decode_server_frame(frame)) {
      if (auto* error = std::get_if<wire::DecodeError>(&item)) {
        loop.sink().on_error(c, "undecodable frame from the server: " + error->message);
      } else {
        handler_(c, std::get<wire::ServerMessage>(item));
      }
    }
  }

 private:
  Dialect& parley_;
  Handler handler_;
};

void send_message(Loop& loop, Conn& c, const wire::ClientMessage& message) {
  std::string body = wire::encode(message);
  std::string f = Loop::frame(body.size());
  f += body;
  loop.send(c, std::move(f));
}

// The server's /metrics (same port as the WebSocket), "" if unreachable.
// A blocking HTTP/1.0 GET, bounded at 2 s; only an IPv4 literal host.
std::string fetch_metrics(const Target& target) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(target.port));
  if (inet_pton(AF_INET, target.host.c_str(), &addr.sin_addr) != 1) return "";
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  std::string response;
  auto deadline = Clock::now() + std::chrono::seconds(2);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string request = "GET /metrics HTTP/1.0\r\nHost: " + target.host + "\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      while (Clock::now() < deadline) {
        pollfd pfd{fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  return response;
}

// The sum of the samples of metric `name` (any labels) in a Prometheus text
// page; -1 when it has none.
double metric_sum(const std::string& page, std::string_view name) {
  double sum = -1;
  std::size_t pos = 0;
  while (pos < page.size()) {
    std::size_t end = page.find('\n', pos);
    if (end == std::string::npos) end = page.size();
    std::string_view line(page.data() + pos, end - pos);
    pos = end + 1;
    if (line.substr(0, name.size()) != name || line.size() == name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    std::size_t space = line.rfind(' ');
    double v = std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    sum = (sum < 0 ? 0 : sum) + v;
  }
  return sum;
}

// "characters ever inserted plus characters deleted" (wire.hpp), as the server counts it.
std::uint64_t version_of(const crdt::Document& doc) {
  crdt::Document::Stats s = doc.stats();
  return 2 * s.total_chars - s.visible_chars;
}

// One editing client.
struct Editor {
  Conn* conn = nullptr;
  std::unique_ptr<crdt::Document> replica;
  std::mt19937_64 rng;
  std::uint64_t edits_due = 0;                               // edits made so far
  std::vector<std::int64_t> sent_ns;                         // the k-th update's send time
  std::vector<std::size_t> sent_hash;                        // and the hash of its base64
  std::unordered_map<std::uint64_t, std::int64_t> ack_wait;  // rid -> send time
  std::vector<std::uint32_t> got_from;                       // updates received from each editor
  bool opened = false;
};

class DocsRun final : public Sink {
 public:
  DocsRun(Dialect& parley, const Options& o)
      : o_(o),
        dialect_(parley, [this](Conn& c, wire::ServerMessage& m) { on_message(c, m); }),
        loop(dialect_, o.target, static_cast<std::size_t>(o.doc_clients) + 2, 1, *this) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    channel = fmt::format("bench-docs-{}-{}", getpid(), ms);
    std::random_device rd;
    // Agent ids: distinct per replica and per run, within 1 .. 2^63 - 1 (the server's is 2^64 - 1).
    std::uint64_t random = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    std::uint64_t agent_base = (random & ((std::uint64_t{1} << 46) - 1)) << 16;
    if (!loop.ok()) return;
    editors.resize(static_cast<std::size_t>(o.doc_clients));
    for (std::size_t i = 0; i < editors.size(); ++i) {
      Editor& e = editors[i];
      e.conn = &loop.connect(fmt::format("docbench-{}", i));
      e.replica = std::make_unique<crdt::Document>(agent_base + i + 1);
      e.rng.seed(agent_base + i);
      e.got_from.assign(editors.size(), 0);
      by_user[e.conn->user] = i;
      by_conn[e.conn] = i;
    }
  }

  const Options& o_;
  DocDialect dialect_;
  Loop loop;
  std::string channel;
  std::vector<Editor> editors;
  std::unordered_map<std::string, std::size_t> by_user;
  std::unordered_map<const Conn*, std::size_t> by_conn;

  // Counters, from the handlers.
  std::size_t ready = 0;
  std::size_t oks = 0;
  std::size_t opened = 0;
  std::uint64_t errors = 0;
  std::uint64_t closed = 0;
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::uint64_t delivered = 0;
  std::uint64_t mismatched = 0;  // deliveries whose update was not the one matched
  std::uint64_t apply_errors = 0;
  std::uint64_t last_ack_version = 0;
  std::vector<double> fanout_ms;
  std::vector<double> ack_ms;
  bool measuring = false;  // the edit phase: record latencies
  bool finished = false;

  // The connection that opens the document afresh at the end.
  Conn* checker = nullptr;
  std::unique_ptr<crdt::Document> checker_replica;
  std::uint64_t checker_version = 0;
  bool checker_opened = false;

  void on_ready(Conn&) override { ++ready; }
  void on_error(Conn& c, std::string_view what) override {
    if (errors++ < 3) {
      std::fprintf(stderr, "parley-bench: %s: %.*s\n", c.user.c_str(),
                   static_cast<int>(what.size()), what.data());
    }
  }
  void on_closed(Conn& c) override {
    if (closed++ == 0 && !finished)
      std::fprintf(stderr, "parley-bench: %s: closed\n", c.user.c_str());
  }

  void on_message(Conn& c, wire::ServerMessage& m) {
    if (std::holds_alternative<wire::Welcome>(m)) {
      c.state = ConnState::ready;
      on_ready(c);
    } else if (std::holds_alternative<wire::Ok>(m)) {
      ++oks;
    } else if (auto* e = std::get_if<wire::Error>(&m)) {
      on_error(c, e->code + ": " + e->message);
    } else if (auto* s = std::get_if<wire::DocState>(&m)) {
      on_state(c, *s);
    } else if (auto* a = std::get_if<wire::DocAck>(&m)) {
      on_ack(c, *a);
    } else if (auto* u = std::get_if<wire::DocUpdateEvent>(&m)) {
      on_update(c, *u);
    }
  }

  void apply(crdt::Document& replica, const std::string& base64) {
    std::optional<std::string> bytes = client::from_base64(base64);
    if (!bytes || !replica.apply_update(*bytes).ok()) ++apply_errors;
  }

  void on_state(Conn& c, const wire::DocState& s) {
    if (&c == checker) {
      apply(*checker_replica, s.update);
      checker_version = s.version;
      checker_opened = true;
      return;
    }
    Editor& e = editors[by_conn.at(&c)];
    apply(*e.replica, s.update);
    if (!e.opened) ++opened;
    e.opened = true;
  }

  void on_ack(Conn& c, const wire::DocAck& a) {
    auto it = by_conn.find(&c);
    if (it == by_conn.end()) return;
    Editor& e = editors[it->second];
    auto wait = e.ack_wait.find(a.rid);
    if (wait == e.ack_wait.end()) return;
    if (measuring) ack_ms.push_back(static_cast<double>(now_ns() - wait->second) / 1e6);
    e.ack_wait.erase(wait);
    ++acked;
    last_ack_version = std::max(last_ack_version, a.version);
  }

  void on_update(Conn& c, const wire::DocUpdateEvent& u) {
    std::int64_t now = now_ns();
    auto it = by_conn.find(&c);
    auto from = by_user.find(u.user);
    if (it == by_conn.end() || from == by_user.end()) return;
    Editor& e = editors[it->second];
    const Editor& sender = editors[from->second];
    std::uint32_t k = e.got_from[from->second]++;
    if (k < sender.sent_ns.size()) {
      if (sender.sent_hash[k] != std::hash<std::string>{}(u.update)) ++mismatched;
      if (measuring) fanout_ms.push_back(static_cast<double>(now - sender.sent_ns[k]) / 1e6);
    } else {
      ++mismatched;
    }
    ++delivered;
    apply(*e.replica, u.update);
  }

  // One local edit of editor `e` and its update: mostly a few characters
  // typed at a random place, sometimes a few deleted.
  void edit(Editor& e) {
    crdt::Document& doc = *e.replica;
    std::size_t size = doc.size();
    if (size > 0 && e.rng() % 5 == 0) {
      std::size_t pos = e.rng() % size;
      std::size_t len = 1 + e.rng() % std::min<std::size_t>(4, size - pos);
      (void)doc.remove(pos, len);
    } else {
      std::string text(1 + e.rng() % 6, 'a');
      for (char& ch : text) ch = static_cast<char>('a' + e.rng() % 26);
      (void)doc.insert(e.rng() % (size + 1), text);
    }
    wire::DocUpdate update;
    update.rid = e.conn->next_id++;
    update.channel = channel;
    update.title = kTitle;
    update.update = client::to_base64(doc.take_update());
    std::int64_t now = now_ns();
    e.sent_ns.push_back(now);
    e.sent_hash.push_back(std::hash<std::string>{}(update.update));
    e.ack_wait[update.rid] = now;
    ++sent;
    send_message(loop, *e.conn, update);
  }

  std::uint64_t expected_deliveries() const { return sent * (editors.size() - 1); }

  bool wait(const std::function<bool()>& done, double timeout_s, const char* what) {
    if (loop.run([&] { return done() || errors > 0 || closed > 0; }, timeout_s) && errors == 0 &&
        closed == 0) {
      return true;
    }
    std::fprintf(stderr, "parley-bench: docs: %s did not complete\n", what);
    return false;
  }

  // Connects, creates the channel and the document, joins everyone.
  bool setup() {
    if (!loop.ok()) return false;
    if (!wait([&] { return ready == editors.size(); }, o_.timeout_s, "connecting")) return false;
    Editor& owner = editors.front();
    send_message(loop, *owner.conn, wire::CreateChannel{owner.conn->next_id++, channel, {}, {}});
    if (!wait([&] { return oks == 1; }, o_.timeout_s, "create")) return false;
    send_message(loop, *owner.conn, wire::DocCreate{owner.conn->next_id++, channel, kTitle, {}});
    if (!wait([&] { return oks == 2; }, o_.timeout_s, "doc_create")) return false;
    for (std::size_t i = 1; i < editors.size(); ++i) {
      Conn& c = *editors[i].conn;
      send_message(loop, c, wire::JoinChannel{c.next_id++, channel});
    }
    return wait([&] { return oks == editors.size() + 1; }, o_.timeout_s, "join");
  }

  bool open_all() {
    for (Editor& e : editors) {
      send_message(loop, *e.conn, wire::DocOpen{e.conn->next_id++, channel, kTitle, ""});
    }
    return wait([&] { return opened == editors.size(); }, o_.timeout_s, "doc_open");
  }

  // Lets the server settle for `s` seconds while the loop answers pings.
  void settle(double s) {
    loop.run([] { return false; }, s, {}, 100000);
  }

  // Opens the document from a new connection of the first editor's user with
  // nothing: the server's whole state.
  bool open_fresh() {
    checker = &loop.connect(editors.front().conn->user);
    checker_replica = std::make_unique<crdt::Document>(1);
    std::size_t before = ready;
    if (!wait([&] { return ready == before + 1; }, o_.timeout_s, "the checker's connection"))
      return false;
    send_message(loop, *checker, wire::DocOpen{checker->next_id++, channel, kTitle, ""});
    return wait([&] { return checker_opened; }, o_.timeout_s, "the checker's doc_open");
  }
};

}  // namespace

int run_docs(Dialect& parley, const Options& o) {
  DocsRun run(parley, o);
  if (!run.setup()) return 1;
  run.settle(1);
  long rss_joined = process_rss_kb(o.server_pid);
  double metric_joined = metric_sum(fetch_metrics(o.target), "parley_doc_memory_bytes");
  if (!run.open_all()) return 1;
  run.settle(1);
  long rss_opened = process_rss_kb(o.server_pid);

  // Editor i edits every interval, starting at i/N of an interval, so that the
  // edits spread evenly over time.
  auto n = static_cast<double>(run.editors.size());
  double interval_s = static_cast<double>(o.edit_interval_ms) / 1000;
  auto per_editor = static_cast<std::uint64_t>(o.seconds / interval_s);
  double self0 = self_cpu_s();
  double server0 = process_cpu_s(o.server_pid);
  auto start = Clock::now();
  run.measuring = true;
  auto pace = [&] {
    double t = seconds_since(start);
    for (std::size_t i = 0; i < run.editors.size(); ++i) {
      Editor& e = run.editors[i];
      double since_first = t - interval_s * static_cast<double>(i) / n;
      if (since_first < 0) continue;
      auto due = std::min(per_editor, static_cast<std::uint64_t>(since_first / interval_s) + 1);
      while (e.edits_due < due) {
        run.edit(e);
        ++e.edits_due;
      }
    }
  };
  std::uint64_t total = per_editor * run.editors.size();
  bool complete = run.loop.run(
      [&] {
        return (run.sent == total && run.delivered >= run.expected_deliveries() &&
                run.acked == run.sent) ||
               run.errors > 0 || run.closed > 0;
      },
      o.seconds + o.timeout_s, pace, 1000);
  complete = complete && run.errors == 0 && run.closed == 0;
  double wall = seconds_since(start);
  run.measuring = false;
  double self_pct = cpu_percent(self0, self_cpu_s(), wall);
  double server_pct = cpu_percent(server0, process_cpu_s(o.server_pid), wall);
  double delivery_rate = wall > 0 ? static_cast<double>(run.delivered) / wall : 0;

  // Convergence: every replica holds the same text, nothing pending, and a
  // fresh doc_open gives that text and the same version.
  const crdt::Document& first = *run.editors.front().replica;
  std::string text = first.text();
  bool replicas_equal = std::all_of(run.editors.begin(), run.editors.end(), [&](const Editor& e) {
    return e.replica->pending() == 0 && e.replica->text() == text;
  });
  bool fresh_ok = complete && run.open_fresh();
  bool server_equal =
      fresh_ok && run.checker_replica->text() == text && run.checker_version == version_of(first);
  bool converged = complete && replicas_equal && server_equal && run.apply_errors == 0;
  run.settle(1);
  long rss_end = process_rss_kb(o.server_pid);
  std::string metrics = fetch_metrics(o.target);
  double metric_end = metric_sum(metrics, "parley_doc_memory_bytes");
  double metric_per_doc = metric_end >= 0 ? metric_end - std::max(0.0, metric_joined) : -1;
  auto growth_kb = [&](long after) {
    return rss_joined > 0 && after > 0 ? static_cast<double>(after - rss_joined) : -1.0;
  };
  double rss_open_kb = growth_kb(rss_opened);
  double rss_doc_kb = growth_kb(rss_end);

  std::size_t samples = run.fanout_ms.size();
  double p50 = bench::percentile(run.fanout_ms, 50);
  double p99 = bench::percentile(run.fanout_ms, 99);
  double p999 = bench::percentile(run.fanout_ms, 99.9);
  double max = run.fanout_ms.empty() ? 0 : run.fanout_ms.back();
  double ack_p50 = bench::percentile(run.ack_ms, 50);
  double ack_p99 = bench::percentile(run.ack_ms, 99);

  Report report("loadgen-docs");
  report.note(
      fmt::format("{}: {} clients editing one document, one edit each every {} ms "
                  "for {} s (4 in 5 insert 1-6 characters, 1 in 5 deletes 1-4)",
                  o.label, o.doc_clients, o.edit_interval_ms, o.seconds));
  report.at_most("fan-out latency p99", p99, "ms", 5, 3);
  report.info("fan-out latency p50", p50, "ms", 3);
  report.info("fan-out latency p99.9", p999, "ms", 3);
  report.info("fan-out latency max", max, "ms", 3);
  report.info("ack latency p50", ack_p50, "ms", 3);
  report.info("ack latency p99", ack_p99, "ms", 3);
  report.info("updates sent", static_cast<double>(run.sent), "", 0);
  report.info("deliveries per second", delivery_rate, "/s", 0);
  report.info("deliveries not matched to their update", static_cast<double>(run.mismatched), "", 0);
  report.info("final text (code points)", static_cast<double>(first.size()), "", 0);
  report.info("converged, equal to a fresh doc_open (1 yes)", converged ? 1 : 0, "", 0);
  report.info("generator CPU, editing (% of one core)", self_pct, "%");
  if (server_pct >= 0) report.info("server CPU, editing (% of one core)", server_pct, "%");
  if (self_pct >= 90) {
    report.note(fmt::format("client-bound: the generator used {:.0f}% of a core", self_pct));
  }
  report.info("server RSS with the clients joined", static_cast<double>(rss_joined) / 1024, "MB",
              1);
  report.info("server RSS growth, empty document opened", rss_open_kb, "KB", 0);
  report.info("server RSS growth, document at the end", rss_doc_kb, "KB", 0);
  if (metric_end >= 0) report.info("parley_doc_memory_bytes at the end", metric_end, "B", 0);
  report.field("target", o.label);
  report.field("clients", static_cast<double>(o.doc_clients));
  report.field("edit_interval_ms", static_cast<double>(o.edit_interval_ms));
  report.field("seconds", o.seconds);
  report.field("p50_ms", p50);
  report.field("p99_ms", p99);
  report.field("p999_ms", p999);
  report.field("max_ms", max);
  report.field("ack_p50_ms", ack_p50);
  report.field("ack_p99_ms", ack_p99);
  report.field("updates", static_cast<double>(run.sent));
  report.field("deliveries", static_cast<double>(samples));
  report.field("deliveries_per_s", delivery_rate);
  report.field("mismatched", static_cast<double>(run.mismatched));
  report.field("text_chars", static_cast<double>(first.size()));
  report.field("version", static_cast<double>(version_of(first)));
  report.field("converged", converged ? 1 : 0);
  report.field("generator_cpu_pct", self_pct);
  report.field("server_cpu_pct", server_pct);
  report.field("server_rss_joined_kb", static_cast<double>(rss_joined));
  report.field("rss_doc_open_kb", rss_open_kb);
  report.field("rss_per_doc_kb", rss_doc_kb);
  report.field("doc_memory_bytes", metric_per_doc);
  report.print();
  run.finished = true;
  run.loop.close_all();
  return converged ? 0 : 1;
}

}  // namespace parley::loadgen

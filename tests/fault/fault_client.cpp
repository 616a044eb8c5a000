// parley-fault-client: one chat user for the fault-injection test, built on
// the public C++ API only (include/parley/).
//
//   parley-fault-client --name a1 --channel alpha --peers a1,a2 --data DIR
//       --url ws://127.0.0.1:PORT/ --token TOKEN --messages 1000 [--start K]
//       [--interval-ms 12] [--wait-go] [--deadline-s 100]
//
// It joins its channel (creating it if nobody has), sends messages "NAME-i"
// for i = start..messages-1 at a steady pace, then waits until its outbox is
// empty and every message "PEER-i" (i < messages) of every peer, itself
// included, is known to its cache, and exits 0.
//
// Standard output, one line each, flushed at once so that a test that kills
// this process with SIGKILL knows everything that was reported:
//   outbox ID               a pending entry found in the outbox at start
//   joined CHANNEL
//   pending ID              send() returned: the message is in the durable outbox (its
//                           MessagePending must come too, or the client fails at the end)
//   sent ID SEQ             MessageSent: the server stored it at SEQ
//   failed ID REASON        MessageFailed (the test treats it as a failure)
//   queued N                all messages up to N-1 are in the outbox
//   disorder PREV SEQ       MessageReceived out of order or twice (a failure)
//   state MS STATE          with --print-states: the lifecycle moved to STATE, MS ms after start
//   done delivered=D echoed=E known=K
//                           D: MessageReceived for others' messages in this run,
//                           E: for our own (after a lost ack), K: texts known
// With --wait-go it waits after joining for a line "go" on stdin, so that a
// test can have every client join before anyone sends. With --watch-stdin it
// exits when stdin reaches its end, so it never outlives the test.
//
// Exit codes: 0 done, 1 failure, 2 usage, 3 deadline passed, 4 stdin closed.
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "parley/parley.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDeadline = 3;
constexpr int kExitParentGone = 4;

void out(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void err(const std::string& who, const std::string& line) {
  std::fprintf(stderr, "parley-fault-client %s: %s\n", who.c_str(), line.c_str());
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

class Driver {
 public:
  struct Options {
    bool verbose = false;       // state changes to stderr
    bool watch_stdin = false;   // exit at the end of stdin
    bool print_states = false;  // state changes to stdout
  };

  Driver(parley::Client& client, std::string name, std::string channel, Clock::time_point deadline,
         Options options)
      : client_(client),
        name_(std::move(name)),
        channel_(std::move(channel)),
        deadline_(deadline),
        options_(options) {}

  bool expired() const { return Clock::now() >= deadline_; }
  std::uint64_t delivered() const { return delivered_; }
  bool saw_pending_event(const std::string& id) const { return pending_events_.count(id) > 0; }
  std::uint64_t echoed() const { return echoed_; }
  bool failed() const { return failed_; }

  // Handles one event; returns it for a caller that waits for a completion.
  std::optional<parley::Event> pump(milliseconds timeout) {
    auto ev = client_.next_event(timeout);
    if (!ev) return std::nullopt;
    if (auto* r = std::get_if<parley::MessageReceived>(&*ev)) {
      const parley::Message& m = r->message;
      // Per channel, events come in increasing seq, each once.
      if (m.seq <= last_received_) {
        out("disorder " + std::to_string(last_received_) + " " + std::to_string(m.seq));
      }
      last_received_ = std::max(last_received_, m.seq);
      if (m.kind == parley::EventKind::message) {
        // Our own messages come back only when their ack was lost and the
        // catch-up brought them first.
        ++(m.sender == name_ ? echoed_ : delivered_);
      }
    } else if (auto* p = std::get_if<parley::MessagePending>(&*ev)) {
      pending_events_.insert(p->id);
    } else if (auto* s = std::get_if<parley::MessageSent>(&*ev)) {
      out("sent " + s->id + " " + std::to_string(s->seq));
    } else if (auto* st = std::get_if<parley::StateChanged>(&*ev)) {
      auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - born_).count();
      if (options_.print_states) {
        out("state " + std::to_string(ms) + " " + parley::to_string(st->state));
      }
      if (options_.verbose) {
        err(name_, std::to_string(ms) + " ms: " + parley::to_string(st->state) +
                       (st->reason.ok() ? "" : " (" + st->reason.to_string() + ")"));
      }
    } else if (auto* f = std::get_if<parley::MessageFailed>(&*ev)) {
      out("failed " + f->id + " " + f->status.reason());
      err(name_, "message " + f->id + " failed: " + f->status.to_string());
      failed_ = true;
    }
    return ev;
  }

  // Drains events until `until`.
  void pump_until(Clock::time_point until) {
    for (;;) {
      check_parent();
      auto left = std::chrono::ceil<milliseconds>(until - Clock::now());
      if (left.count() <= 0) {
        while (pump(milliseconds(0))) {
        }
        return;
      }
      pump(std::min(left, milliseconds(100)));
    }
  }

  // With --watch-stdin, the end of stdin means the test that started us is
  // gone: exit rather than linger.
  void check_parent() {
    if (!options_.watch_stdin) return;
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) return;
    char buf[256];
    if (::read(STDIN_FILENO, buf, sizeof buf) == 0) {
      err(name_, "stdin closed: exiting");
      std::_Exit(kExitParentGone);
    }
  }

  // Waits for the completion event of request `rid` (of type T).
  template <typename T>
  std::optional<T> wait_for(parley::RequestId rid) {
    while (!expired()) {
      check_parent();
      auto ev = pump(milliseconds(100));
      if (!ev) continue;
      if (auto* done = std::get_if<T>(&*ev); done && done->request == rid) return *done;
    }
    return std::nullopt;
  }

  // Creates the channel, or joins it if it exists. Retries transient failures.
  bool join() {
    while (!expired()) {
      auto created = wait_for<parley::ChannelRequestDone>(client_.create_channel(channel_));
      if (!created) return false;
      if (created->status.ok()) return true;
      if (created->status.reason() == "channel_exists") {
        auto joined = wait_for<parley::ChannelRequestDone>(client_.join_channel(channel_));
        if (!joined) return false;
        if (joined->status.ok()) return true;
        err(name_, "join: " + joined->status.to_string() + "; retrying");
      } else {
        err(name_, "create: " + created->status.to_string() + "; retrying");
      }
      pump_until(Clock::now() + milliseconds(100));
    }
    return false;
  }

  // Waits for a line "go" on stdin.
  bool wait_go() {
    std::string line;
    while (!expired()) {
      pollfd pfd{STDIN_FILENO, POLLIN, 0};
      if (::poll(&pfd, 1, 20) > 0) {
        char c = 0;
        ssize_t n = ::read(STDIN_FILENO, &c, 1);
        if (n <= 0) return false;  // stdin closed: no go
        if (c == '\n') {
          if (line == "go") return true;
          line.clear();
        } else {
          line.push_back(c);
        }
      }
      while (pump(milliseconds(0))) {
      }
    }
    return false;
  }

  // Every message text of the channel, paging back through load_history.
  // nullopt when a page could not be loaded completely (try again later).
  std::optional<std::set<std::string>> known_texts() {
    std::set<std::string> texts;
    std::uint64_t before = 0;
    for (;;) {
      parley::HistoryQuery query;
      query.before = before;
      query.limit = 1000;
      auto page = wait_for<parley::HistoryLoaded>(client_.load_history(channel_, query));
      if (!page || !page->status.ok()) return std::nullopt;
      if (page->messages.empty()) {
        if (!page->complete) return std::nullopt;
        return texts;
      }
      for (const auto& m : page->messages) texts.insert(m.text);
      std::uint64_t lowest = page->messages.front().seq;
      if (before != 0 && lowest >= before) return std::nullopt;  // no progress
      before = lowest;
    }
  }

 private:
  parley::Client& client_;
  std::string name_;
  std::string channel_;
  Clock::time_point deadline_;
  Options options_;
  Clock::time_point born_ = Clock::now();
  std::uint64_t delivered_ = 0;  // MessageReceived, others' messages
  std::uint64_t echoed_ = 0;     // MessageReceived, our own messages
  std::uint64_t last_received_ = 0;
  std::set<std::string> pending_events_;  // ids of the MessagePending events of this run
  bool failed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parley-fault-client: a chat user for the fault-injection test",
               "parley-fault-client"};
  std::string name, channel, peers_text, data_dir, url, token;
  int messages = 1000;
  int start = 0;
  int interval_ms = 12;
  int deadline_s = 100;
  int request_timeout_ms = 2000;
  int reconnect_base_ms = 50;
  int reconnect_max_ms = 1000;
  bool wait_go = false;
  Driver::Options driver_options;
  app.add_option("--name", name, "this client's user name (the token's)")->required();
  app.add_option("--channel", channel, "the channel to join and send to")->required();
  app.add_option("--peers", peers_text, "comma-separated senders of the channel, this one too")
      ->required();
  app.add_option("--data", data_dir, "data directory")->required();
  app.add_option("--url", url, "server url, ws://127.0.0.1:PORT/")->required();
  app.add_option("--token", token, "token for --name")->required();
  app.add_option("--messages", messages, "messages per sender")->check(CLI::Range(1, 10000000));
  app.add_option("--start", start, "index of the first message to send")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--interval-ms", interval_ms, "pause between sends")->check(CLI::Range(0, 60000));
  app.add_option("--deadline-s", deadline_s, "give up after this long")
      ->check(CLI::Range(1, 86400));
  app.add_option("--request-timeout-ms", request_timeout_ms)->check(CLI::Range(1, 600000));
  app.add_option("--reconnect-base-ms", reconnect_base_ms)->check(CLI::Range(1, 600000));
  app.add_option("--reconnect-max-ms", reconnect_max_ms)->check(CLI::Range(1, 600000));
  app.add_flag("--wait-go", wait_go, "after joining, wait for \"go\" on stdin");
  app.add_flag("--verbose", driver_options.verbose, "log state changes to stderr");
  app.add_flag("--print-states", driver_options.print_states,
               "print state changes to stdout: state MS STATE");
  app.add_flag("--watch-stdin", driver_options.watch_stdin,
               "exit when stdin reaches its end (the test is gone)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  const std::vector<std::string> peers = split_commas(peers_text);
  const auto deadline = Clock::now() + std::chrono::seconds(deadline_s);

  parley::ClientOptions opts;
  opts.server_url = url;
  opts.token = token;
  opts.data_dir = data_dir;
  opts.request_timeout = milliseconds(request_timeout_ms);
  opts.reconnect_base = milliseconds(reconnect_base_ms);
  opts.reconnect_max = milliseconds(reconnect_max_ms);
  auto opened = parley::Client::open(opts);
  if (!opened) {
    err(name, "open: " + opened.status().to_string());
    return kExitFailure;
  }
  parley::Client& client = **opened;
  Driver driver(client, name, channel, deadline, driver_options);

  if (auto box = client.outbox()) {
    for (const auto& entry : *box) out("outbox " + entry.id);
  }
  if (!driver.join()) {
    err(name, "could not join \"" + channel + "\" before the deadline");
    return kExitDeadline;
  }
  out("joined " + channel);
  if (wait_go && !driver.wait_go()) {
    err(name, "no \"go\" on stdin before the deadline");
    return kExitDeadline;
  }

  // Send at a steady pace, whatever the connection is doing: send() only
  // writes the outbox.
  std::vector<std::string> sent_ids;  // by this run
  auto next = Clock::now();
  for (int i = start; i < messages; ++i) {
    driver.pump_until(next);
    auto id = client.send(channel, name + "-" + std::to_string(i));
    if (!id) {
      err(name, "send " + std::to_string(i) + ": " + id.status().to_string());
      return kExitFailure;
    }
    out("pending " + *id);
    sent_ids.push_back(*id);
    next += milliseconds(interval_ms);
  }
  out("queued " + std::to_string(messages));

  // Wait for the outbox to drain and every peer's messages to be known.
  std::set<std::string> expected;
  for (const auto& peer : peers) {
    for (int i = 0; i < messages; ++i) expected.insert(peer + "-" + std::to_string(i));
  }
  std::size_t missing = expected.size();
  std::size_t outbox_left = 0;
  while (!driver.expired()) {
    driver.pump_until(Clock::now() + milliseconds(250));
    auto box = client.outbox();
    outbox_left = box ? box->size() : 1;
    if (outbox_left != 0) continue;
    auto channels = client.channels();
    if (!channels) continue;
    bool caught_up = false;
    for (const auto& c : *channels) {
      if (c.name == channel) caught_up = c.read_to == c.last_seq;
    }
    if (!caught_up) continue;
    auto texts = driver.known_texts();
    if (!texts) continue;
    missing = 0;
    for (const auto& t : expected) missing += texts->count(t) == 0 ? 1 : 0;
    if (missing == 0) {
      bool failed = driver.failed();
      for (const auto& id : sent_ids) {
        if (!driver.saw_pending_event(id)) {
          err(name, "no MessagePending for " + id);
          failed = true;
        }
      }
      out("done delivered=" + std::to_string(driver.delivered()) +
          " echoed=" + std::to_string(driver.echoed()) + " known=" + std::to_string(texts->size()));
      return failed ? kExitFailure : 0;
    }
  }
  err(name, "deadline passed: outbox " + std::to_string(outbox_left) + ", missing " +
                std::to_string(missing) + " of " + std::to_string(expected.size()) + ", state " +
                parley::to_string(client.state()));
  return kExitDeadline;
}

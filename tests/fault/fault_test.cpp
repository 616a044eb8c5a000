// The fault-injection test (issue 4, docs/reliability.md): real parley-server
// and parley-fault-client processes talk through FaultProxy, which cuts,
// resets, stalls, delays and splits their connections, while the test kills
// the server (SIGKILL) and restarts it on the same port and data directory,
// and kills clients (SIGKILL) with messages in their outbox and restarts them
// on the same data directory. At the end it reads the server's store and every
// client's cache with SQLite (read-only) and checks that every message a
// client reported as pending is stored exactly once, and that every cache
// holds its channel's events exactly once, in order, without gaps, as the
// server stores them.
//
// Parameters (environment; scripts/soak.sh sets them for a longer run):
//   PARLEY_FAULT_MESSAGES      messages per client (1000)
//   PARLEY_FAULT_CLIENTS       clients (4), spread over PARLEY_FAULT_CHANNELS (2)
//   PARLEY_FAULT_INTERVAL_MS   pause between a client's sends (12)
//   PARLEY_FAULT_SECONDS       the whole scenario's bound (100)
//   PARLEY_FAULT_SEED          seed of the proxy and of the kill schedule
//   PARLEY_FAULT_SERVER_KILL_MS  period of server kills (3000)
//   PARLEY_FAULT_CLIENT_KILL_MS  period of client kills (4000)
//   PARLEY_FAULT_CUT_MIN_MS, PARLEY_FAULT_CUT_MAX_MS  connection lifetime (100, 1000)
//   PARLEY_FAULT_KEEP=1        keep the data directories (path printed)
//   PARLEY_FAULT_VERBOSE=1     clients log their state changes to stderr
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fault_proxy.hpp"
#include "process.hpp"

#ifndef PARLEY_SERVER_BIN
#error "PARLEY_SERVER_BIN must name the parley-server binary"
#endif
#ifndef PARLEY_FAULT_CLIENT_BIN
#error "PARLEY_FAULT_CLIENT_BIN must name the parley-fault-client binary"
#endif

namespace {

using parley_e2e::Process;
using parley_fault::FaultCounts;
using parley_fault::FaultPlan;
using parley_fault::FaultProxy;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

long env_int(const char* name, long fallback, long lo, long hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || value < lo || value > hi) {
    FAIL("environment variable " << name << "=\"" << v << "\" is not an integer in " << lo << "-"
                                 << hi);
  }
  return value;
}

struct Config {
  int messages = 1000;
  int clients = 4;
  int channels = 2;
  int interval_ms = 12;
  int seconds = 100;
  std::uint64_t seed = 20240611;
  int server_kill_ms = 3000;
  int client_kill_ms = 4000;
  int cut_min_ms = 100;
  int cut_max_ms = 1000;
  bool keep = false;
  bool verbose = false;

  static Config from_env() {
    Config c;
    c.messages = static_cast<int>(env_int("PARLEY_FAULT_MESSAGES", c.messages, 1, 10000000));
    c.clients = static_cast<int>(env_int("PARLEY_FAULT_CLIENTS", c.clients, 1, 64));
    c.channels = static_cast<int>(env_int("PARLEY_FAULT_CHANNELS", c.channels, 1, 64));
    c.interval_ms = static_cast<int>(env_int("PARLEY_FAULT_INTERVAL_MS", c.interval_ms, 0, 10000));
    c.seconds = static_cast<int>(env_int("PARLEY_FAULT_SECONDS", c.seconds, 10, 86400));
    c.seed = static_cast<std::uint64_t>(
        env_int("PARLEY_FAULT_SEED", static_cast<long>(c.seed), 0, 0x7fffffffffffffffL));
    c.server_kill_ms =
        static_cast<int>(env_int("PARLEY_FAULT_SERVER_KILL_MS", c.server_kill_ms, 500, 3600000));
    c.client_kill_ms =
        static_cast<int>(env_int("PARLEY_FAULT_CLIENT_KILL_MS", c.client_kill_ms, 500, 3600000));
    c.cut_min_ms = static_cast<int>(env_int("PARLEY_FAULT_CUT_MIN_MS", c.cut_min_ms, 0, 3600000));
    c.cut_max_ms = static_cast<int>(env_int("PARLEY_FAULT_CUT_MAX_MS", c.cut_max_ms, 0, 3600000));
    c.keep = env_int("PARLEY_FAULT_KEEP", 0, 0, 1) == 1;
    c.verbose = env_int("PARLEY_FAULT_VERBOSE", 0, 0, 1) == 1;
    return c;
  }
};

// A fresh directory, removed at the end unless asked to keep it.
class TempDir {
 public:
  explicit TempDir(bool keep) : keep_(keep) {
    std::error_code ec;
    std::string base = std::filesystem::temp_directory_path(ec).string();
    if (ec || base.empty()) base = "/tmp";
    std::string pattern = base + "/parley-fault-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    if (path_.empty() || keep_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool keep_;
};

// Runs a tool to its end; its first line of stdout, or "" if it failed.
std::string run_tool(const std::vector<std::string>& argv) {
  std::string error;
  auto p = Process::spawn(argv, {}, &error);
  if (!p) return "";
  std::optional<std::string> line = p->read_line(15s);
  std::optional<int> status = p->wait(15s);
  if (!status || *status != 0) return "";
  return line.value_or("");
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// ---- SQLite, read-only ----------------------------------------------------------

struct StoredEvent {
  std::uint64_t seq = 0;
  std::string kind;
  std::string sender;
  std::string client_id;
  std::string text;

  bool operator==(const StoredEvent&) const = default;
};

class ReadOnlyDb {
 public:
  explicit ReadOnlyDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      error_ = path + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : "cannot open");
    }
  }
  ~ReadOnlyDb() { sqlite3_close(db_); }
  ReadOnlyDb(const ReadOnlyDb&) = delete;
  ReadOnlyDb& operator=(const ReadOnlyDb&) = delete;

  const std::string& error() const { return error_; }

  // Runs `sql` with text parameters; `row` sees each result row.
  bool query(const std::string& sql, const std::vector<std::string>& params,
             const std::function<void(sqlite3_stmt*)>& row) {
    if (!error_.empty()) return false;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      error_ = std::string("prepare: ") + sqlite3_errmsg(db_);
      return false;
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
    if (rc != SQLITE_DONE) error_ = std::string("step: ") + sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return error_.empty();
  }

  static std::string text(sqlite3_stmt* stmt, int col) {
    const unsigned char* t = sqlite3_column_text(stmt, col);
    return t == nullptr ? std::string() : reinterpret_cast<const char*>(t);
  }
  static std::uint64_t integer(sqlite3_stmt* stmt, int col) {
    return static_cast<std::uint64_t>(sqlite3_column_int64(stmt, col));
  }

 private:
  sqlite3* db_ = nullptr;
  std::string error_;
};

// ---- one fault client and its incarnations -------------------------------------

struct ClientKill {
  std::size_t next_index = 0;   // messages reported pending before the kill
  std::size_t outstanding = 0;  // of them, not reported sent
  std::size_t outbox_at_restart = 0;
  bool restarted = false;
  bool during_outage = false;
};

struct FaultClient {
  std::string name;
  std::string channel;
  std::string data_dir;
  std::string token;
  std::vector<std::string> peers;

  std::unique_ptr<Process> proc;
  int incarnations = 0;
  bool joined = false;  // current incarnation
  bool queued = false;  // current incarnation sent its last message
  bool done = false;
  std::optional<int> exit_status;
  std::string done_line;

  std::vector<std::string> pending;  // ids reported pending, over all incarnations, in order
  std::set<std::string> pending_set;
  std::map<std::string, std::uint64_t> sent;  // id -> seq, from "sent" lines
  std::vector<std::string> failed;
  std::vector<std::string> problems;
  std::vector<ClientKill> kills;
  std::set<std::string> unreported;  // in the outbox after a kill, never reported pending

  std::size_t outstanding() const {
    std::size_t n = 0;
    for (const auto& id : pending) n += sent.count(id) == 0 ? 1 : 0;
    return n;
  }

  void on_line(const std::string& line) {
    auto w = words(line);
    if (w.size() == 2 && w[0] == "outbox") {
      if (kills.empty()) {
        problems.push_back("outbox line on first start: " + line);
      } else {
        ++kills.back().outbox_at_restart;
        if (sent.count(w[1]))
          problems.push_back("acknowledged message still in the outbox: " + w[1]);
        if (!pending_set.count(w[1])) unreported.insert(w[1]);
      }
    } else if (w.size() == 2 && w[0] == "joined") {
      joined = true;
    } else if (w.size() == 2 && w[0] == "pending") {
      if (!pending_set.insert(w[1]).second)
        problems.push_back("id reported pending twice: " + w[1]);
      pending.push_back(w[1]);
    } else if (w.size() == 3 && w[0] == "sent") {
      std::uint64_t seq = std::strtoull(w[2].c_str(), nullptr, 10);
      auto [it, fresh] = sent.emplace(w[1], seq);
      if (!fresh && it->second != seq)
        problems.push_back("sent twice with different seqs: " + line);
    } else if (w.size() == 3 && w[0] == "failed") {
      failed.push_back(line);
    } else if (w.size() == 3 && w[0] == "disorder") {
      problems.push_back("MessageReceived out of order or repeated: " + line);
    } else if (w.size() == 2 && w[0] == "queued") {
      queued = true;
    } else if (!w.empty() && w[0] == "done") {
      done = true;
      done_line = line;
    } else {
      problems.push_back("unexpected line: " + line);
    }
  }

  // Reads what the current incarnation printed so far. (Process::read_line
  // rounds its wait down to whole ms: 2 ms is the least that reads.)
  void drain() {
    if (!proc) return;
    while (auto line = proc->read_line(2ms)) on_line(*line);
  }
};

// ---- the scenario ----------------------------------------------------------------

class Scenario {
 public:
  explicit Scenario(Config config)
      : config_(config), dir_(config.keep), rng_(config.seed ^ 0x5eedf00dull) {}

  void run();

 private:
  std::unique_ptr<Process> start_server(int port, int* bound_port);
  void restart_server();
  void spawn_client(FaultClient& c, bool wait_go, int start);
  void kill_client(FaultClient& c, bool during_outage);
  FaultClient* pick_victim();
  void pump();
  // Pumps outputs for `d`.
  void pump_for(milliseconds d);
  bool time_left() const { return Clock::now() < deadline_; }
  void check_stores();
  void print_summary();

  Config config_;
  TempDir dir_;
  std::mt19937_64 rng_;
  Clock::time_point started_ = Clock::now();
  Clock::time_point deadline_ = started_ + std::chrono::seconds(config_.seconds);
  std::string key_;
  std::string server_data_;
  int server_port_ = 0;
  std::unique_ptr<Process> server_;
  std::unique_ptr<FaultProxy> proxy_;
  std::vector<FaultClient> clients_;
  int server_kills_ = 0;
  int server_restart_attempts_ = 0;

  // Results of check_stores, for the summary.
  struct Counts {
    std::size_t reported = 0, stored = 0, lost = 0, duplicates = 0, reordered = 0, unreported = 0;
  };
  Counts totals_;
  std::map<std::string, std::size_t> stored_by_client_;
  std::map<std::string, std::size_t> cache_events_;
  std::map<std::string, std::size_t> cache_delivered_;
  FaultCounts faults_;
};

std::unique_ptr<Process> Scenario::start_server(int port, int* bound_port) {
  std::string error;
  auto p = Process::spawn({PARLEY_SERVER_BIN, "--listen", "127.0.0.1:" + std::to_string(port),
                           "--data", server_data_, "--key", key_, "--rate-limit", "off"},
                          {}, &error);
  if (!p) {
    MESSAGE("cannot start parley-server: " << error);
    return nullptr;
  }
  auto line = p->read_line(10s);
  const std::string prefix = "listening on 127.0.0.1:";
  if (!line || line->rfind(prefix, 0) != 0) {
    p->wait(2s);
    return nullptr;
  }
  *bound_port = std::atoi(line->c_str() + prefix.size());
  return p;
}

void Scenario::restart_server() {
  // The port can stay busy for a moment after a kill; try again a while.
  for (int attempt = 0; attempt < 50 && time_left(); ++attempt) {
    ++server_restart_attempts_;
    int port = 0;
    server_ = start_server(server_port_, &port);
    if (server_) {
      REQUIRE(port == server_port_);
      return;
    }
    pump_for(100ms);
  }
  FAIL("parley-server did not restart on port " << server_port_);
}

void Scenario::spawn_client(FaultClient& c, bool wait_go, int start) {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline_ - Clock::now()).count();
  std::string peers;
  for (const auto& p : c.peers) peers += (peers.empty() ? "" : ",") + p;
  std::vector<std::string> argv = {PARLEY_FAULT_CLIENT_BIN, "--watch-stdin"};
  auto option = [&argv](const char* name, std::string value) {
    argv.push_back(name);
    argv.push_back(std::move(value));
  };
  option("--name", c.name);
  option("--channel", c.channel);
  option("--peers", peers);
  option("--data", c.data_dir);
  option("--url", "ws://127.0.0.1:" + std::to_string(proxy_->port()) + "/");
  option("--token", c.token);
  option("--messages", std::to_string(config_.messages));
  option("--start", std::to_string(start));
  option("--interval-ms", std::to_string(config_.interval_ms));
  option("--deadline-s", std::to_string(std::max<long long>(left, 1)));
  option("--request-timeout-ms", "2000");
  option("--reconnect-base-ms", "50");
  option("--reconnect-max-ms", "1000");
  if (wait_go) argv.push_back("--wait-go");
  if (config_.verbose) argv.push_back("--verbose");
  std::string error;
  c.proc = Process::spawn(argv, {}, &error);
  REQUIRE_MESSAGE(c.proc != nullptr, error);
  ++c.incarnations;
  c.joined = c.queued = c.done = false;
}

void Scenario::kill_client(FaultClient& c, bool during_outage) {
  c.drain();
  c.proc->signal(SIGKILL);
  // Everything it printed before dying counts: read to the end.
  auto until = Clock::now() + 5s;
  while (!c.proc->at_eof() && Clock::now() < until) {
    if (auto line = c.proc->read_line(100ms)) c.on_line(*line);
  }
  auto status = c.proc->wait(5s);
  REQUIRE_MESSAGE(status.has_value(), c.name << " did not die after SIGKILL");
  ClientKill k;
  k.next_index = c.pending.size();
  k.outstanding = c.outstanding();
  k.during_outage = during_outage;
  c.kills.push_back(k);
  c.proc.reset();
}

FaultClient* Scenario::pick_victim() {
  std::vector<FaultClient*> eligible;
  for (auto& c : clients_) {
    if (c.proc && c.joined && !c.queued && c.outstanding() > 0) eligible.push_back(&c);
  }
  if (eligible.empty()) return nullptr;
  return eligible[std::uniform_int_distribution<std::size_t>(0, eligible.size() - 1)(rng_)];
}

void Scenario::pump() {
  for (auto& c : clients_) {
    c.drain();
    if (c.proc && c.proc->at_eof()) {
      c.exit_status = c.proc->wait(5s);
      c.proc.reset();
      if (!c.done || c.exit_status != 0) {
        FAIL(c.name << " ended unexpectedly, exit status "
                    << (c.exit_status ? std::to_string(*c.exit_status) : "unknown")
                    << "; see its stderr above");
      }
    }
  }
}

void Scenario::pump_for(milliseconds d) {
  auto until = Clock::now() + d;
  do {
    pump();
  } while (Clock::now() < until);
}

void Scenario::run() {
  REQUIRE_MESSAGE(!dir_.path().empty(), "cannot create a temporary directory");
  if (config_.keep) std::printf("fault injection: data in %s\n", dir_.path().c_str());
  key_ = dir_.path() + "/server.key";
  server_data_ = dir_.path() + "/server";
  REQUIRE(run_tool({PARLEY_SERVER_BIN, "keygen", "--out", key_}).empty());
  REQUIRE(std::filesystem::exists(key_));

  server_ = start_server(0, &server_port_);
  REQUIRE_MESSAGE(server_ != nullptr, "parley-server did not start");

  FaultPlan plan;
  plan.seed = config_.seed;
  plan.cut_min_ms = static_cast<std::uint32_t>(config_.cut_min_ms);
  plan.cut_max_ms = static_cast<std::uint32_t>(config_.cut_max_ms);
  std::string error;
  proxy_ = FaultProxy::start(server_port_, plan, &error);
  REQUIRE_MESSAGE(proxy_ != nullptr, error);

  clients_.resize(static_cast<std::size_t>(config_.clients));
  for (int i = 0; i < config_.clients; ++i) {
    FaultClient& c = clients_[static_cast<std::size_t>(i)];
    c.name = "c" + std::to_string(i);
    c.channel = "ch" + std::to_string(i % config_.channels);
    c.data_dir = dir_.path() + "/" + c.name;
    c.token = run_tool({PARLEY_SERVER_BIN, "mint-token", "--key", key_, "--user", c.name});
    REQUIRE_MESSAGE(!c.token.empty(), "mint-token failed for " << c.name);
  }
  for (auto& c : clients_) {
    for (auto& peer : clients_) {
      if (peer.channel == c.channel) c.peers.push_back(peer.name);
    }
  }

  // Everyone joins (through the faults) before anyone sends, so that every
  // message reaches every member's cache through the live stream or catch-up.
  for (auto& c : clients_) spawn_client(c, /*wait_go=*/true, 0);
  while (time_left() && !std::all_of(clients_.begin(), clients_.end(),
                                     [](const FaultClient& c) { return c.joined; })) {
    pump_for(10ms);
  }
  for (auto& c : clients_) REQUIRE_MESSAGE(c.joined, c.name << " did not join its channel");
  for (auto& c : clients_) REQUIRE(c.proc->write("go\n"));
  const auto go = Clock::now();

  // Chaos while the clients send: server kills (every other one also kills a
  // client during the outage) and client kills while the server is up.
  const milliseconds server_period(config_.server_kill_ms);
  const milliseconds client_period(config_.client_kill_ms);
  auto next_server_kill = go + server_period;
  auto next_client_kill = go + client_period / 2;
  auto sending = [&] {
    return std::any_of(clients_.begin(), clients_.end(),
                       [](const FaultClient& c) { return !c.queued; });
  };
  while (time_left() && sending()) {
    pump_for(10ms);
    auto now = Clock::now();
    if (now >= next_server_kill) {
      next_server_kill += server_period;
      server_->signal(SIGKILL);
      REQUIRE(server_->wait(5s).has_value());
      ++server_kills_;
      std::vector<FaultClient*> killed;
      if (server_kills_ % 2 == 0) {
        // Sends pile up in the outboxes while the server is down.
        pump_for(250ms);
        if (FaultClient* victim = pick_victim()) {
          kill_client(*victim, /*during_outage=*/true);
          killed.push_back(victim);
        }
      }
      pump_for(milliseconds(std::uniform_int_distribution<int>(200, 800)(rng_)));
      restart_server();
      for (FaultClient* c : killed) {
        spawn_client(*c, false, static_cast<int>(c->kills.back().next_index));
        c->kills.back().restarted = true;
      }
    } else if (now >= next_client_kill) {
      if (FaultClient* victim = pick_victim()) {
        next_client_kill += client_period;
        kill_client(*victim, /*during_outage=*/false);
        spawn_client(*victim, false, static_cast<int>(victim->kills.back().next_index));
        victim->kills.back().restarted = true;
      } else {
        next_client_kill = now + 50ms;  // nobody has an unacknowledged message yet
      }
    }
  }

  // Catch-up, still through the faults: every client exits by itself once it
  // has all its channel's messages and an empty outbox.
  while (time_left() && std::any_of(clients_.begin(), clients_.end(),
                                    [](const FaultClient& c) { return c.proc != nullptr; })) {
    pump_for(20ms);
  }
  for (auto& c : clients_) {
    REQUIRE_MESSAGE(c.done, c.name << " did not finish within " << config_.seconds << " s");
  }
  proxy_->stop();
  faults_ = proxy_->counts();
  server_->signal(SIGTERM);
  auto server_status = server_->wait(15s);
  REQUIRE_MESSAGE(server_status.has_value(), "parley-server did not stop on SIGTERM");
  CHECK(*server_status == 0);

  check_stores();
  print_summary();

  // The scenario itself: the minimums of issue 4.
  CHECK(config_.clients >= 1);
  int client_kills = 0;
  int kills_with_outbox = 0;
  for (auto& c : clients_) {
    for (auto& k : c.kills) {
      ++client_kills;
      kills_with_outbox += k.outbox_at_restart > 0 ? 1 : 0;
    }
  }
  if (config_.clients >= 4 && config_.messages >= 1000) {
    CHECK_MESSAGE(server_kills_ >= 2, "the server was killed only " << server_kills_ << " times");
    CHECK_MESSAGE(kills_with_outbox >= 1,
                  "no client was killed with a non-empty outbox (" << client_kills << " kills)");
    CHECK(faults_.cuts + faults_.resets >= 20);
  }
}

void Scenario::check_stores() {
  // The server's store.
  std::map<std::string, std::vector<StoredEvent>> server_events;  // channel -> events by seq
  std::map<std::string, std::uint64_t> server_last_seq;
  {
    ReadOnlyDb db(server_data_ + "/server.db");
    REQUIRE_MESSAGE(db.error().empty(), db.error());
    REQUIRE_MESSAGE(
        db.query("SELECT c.name, e.seq, e.kind, e.sender, coalesce(e.client_id, ''), "
                 "coalesce(e.text, '') FROM events e JOIN channels c "
                 "ON c.id = e.channel_id ORDER BY c.name, e.seq",
                 {},
                 [&](sqlite3_stmt* s) {
                   server_events[ReadOnlyDb::text(s, 0)].push_back(
                       {ReadOnlyDb::integer(s, 1), ReadOnlyDb::text(s, 2), ReadOnlyDb::text(s, 3),
                        ReadOnlyDb::text(s, 4), ReadOnlyDb::text(s, 5)});
                 }),
        db.error());
    REQUIRE(db.query("SELECT name, last_seq FROM channels", {}, [&](sqlite3_stmt* s) {
      server_last_seq[ReadOnlyDb::text(s, 0)] = ReadOnlyDb::integer(s, 1);
    }));
  }
  // Gap-free sequences on the server.
  for (const auto& [channel, events] : server_events) {
    for (std::size_t i = 0; i < events.size(); ++i) {
      CHECK_MESSAGE(events[i].seq == i + 1, "server: channel " << channel << " has seq "
                                                               << events[i].seq << " at " << i + 1);
    }
    CHECK(server_last_seq[channel] == events.size());
  }

  // Every reported id stored exactly once, with the right text, in the right
  // channel, at the seq its ack reported.
  for (auto& c : clients_) {
    std::map<std::string, std::vector<const StoredEvent*>> by_id;
    std::size_t stored = 0;
    for (const auto& e : server_events[c.channel]) {
      if (e.kind == "message" && e.sender == c.name) {
        by_id[e.client_id].push_back(&e);
        ++stored;
      }
    }
    for (const auto& [channel, events] : server_events) {
      if (channel == c.channel) continue;
      for (const auto& e : events) {
        CHECK_MESSAGE(!(e.kind == "message" && e.sender == c.name),
                      c.name << " has a message in the wrong channel " << channel);
      }
    }
    stored_by_client_[c.name] = stored;
    totals_.stored += stored;
    totals_.reported += c.pending.size();
    CHECK_MESSAGE(c.pending.size() == static_cast<std::size_t>(config_.messages),
                  c.name << " reported " << c.pending.size() << " pending messages");
    std::uint64_t previous_seq = 0;  // a client's messages are stored in the order sent
    for (std::size_t i = 0; i < c.pending.size(); ++i) {
      const std::string& id = c.pending[i];
      auto it = by_id.find(id);
      std::size_t n = it == by_id.end() ? 0 : it->second.size();
      if (n == 0) {
        ++totals_.lost;
        FAIL_CHECK(c.name << ": message " << i << " (" << id << ") reported pending, not stored");
        continue;
      }
      if (n > 1) {
        totals_.duplicates += n - 1;
        FAIL_CHECK(c.name << ": message " << id << " stored " << n << " times");
      }
      const StoredEvent& e = *it->second.front();
      if (e.seq <= previous_seq) {
        ++totals_.reordered;
        FAIL_CHECK(c.name << ": message " << i << " stored at seq " << e.seq
                          << ", before the previous one at " << previous_seq);
      }
      previous_seq = e.seq;
      CHECK_MESSAGE(e.text == c.name + "-" + std::to_string(i),
                    c.name << ": message " << id << " has text \"" << e.text << "\"");
      if (auto s = c.sent.find(id); s != c.sent.end()) {
        CHECK_MESSAGE(s->second == e.seq, c.name << ": " << id << " acknowledged at seq "
                                                 << s->second << ", stored at " << e.seq);
      }
    }
    // Anything else from this sender: a message that reached the outbox just
    // before a kill, before the app could report it. At most one per kill,
    // and its text is the index the restarted client started again from.
    std::set<std::string> allowed_texts;
    for (const auto& k : c.kills) allowed_texts.insert(c.name + "-" + std::to_string(k.next_index));
    std::size_t unreported = 0;
    for (const auto& [id, rows] : by_id) {
      if (c.pending_set.count(id)) continue;
      ++unreported;
      CHECK_MESSAGE(allowed_texts.count(rows.front()->text) == 1,
                    c.name << ": stored message " << id << " \"" << rows.front()->text
                           << "\" was never reported pending");
      allowed_texts.erase(rows.front()->text);
    }
    totals_.unreported += unreported;
    CHECK(c.failed.empty());
    for (const auto& p : c.problems) FAIL_CHECK(c.name << ": " << p);
  }

  // Every client's cache: its channel's events exactly once, in order, no
  // gaps, equal to the server's; cursor at the end; outbox empty.
  for (auto& c : clients_) {
    ReadOnlyDb db(c.data_dir + "/parley.db");
    REQUIRE_MESSAGE(db.error().empty(), db.error());
    std::vector<StoredEvent> cached;
    REQUIRE_MESSAGE(db.query("SELECT seq, kind, sender, client_id, text FROM messages "
                             "WHERE channel = ?1 ORDER BY seq",
                             {c.channel},
                             [&](sqlite3_stmt* s) {
                               cached.push_back({ReadOnlyDb::integer(s, 0), ReadOnlyDb::text(s, 1),
                                                 ReadOnlyDb::text(s, 2), ReadOnlyDb::text(s, 3),
                                                 ReadOnlyDb::text(s, 4)});
                             }),
                    db.error());
    const auto& expected = server_events[c.channel];
    cache_events_[c.name] = cached.size();
    CHECK_MESSAGE(cached.size() == expected.size(), c.name << ": cache holds " << cached.size()
                                                           << " events of " << c.channel
                                                           << ", server " << expected.size());
    std::set<std::string> ids;
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < cached.size(); ++i) {
      if (cached[i].seq != i + 1) {
        FAIL_CHECK(c.name << ": cache has seq " << cached[i].seq << " at position " << i + 1);
        break;
      }
      if (i < expected.size() && !(cached[i] == expected[i]) && ++mismatches <= 5) {
        FAIL_CHECK(c.name << ": cache event " << cached[i].seq << " differs from the server's");
      }
      if (cached[i].kind == "message" && !ids.insert(cached[i].client_id).second) {
        FAIL_CHECK(c.name << ": message " << cached[i].client_id << " cached twice");
      }
    }
    std::uint64_t read_to = 0, last_seq = 0;
    REQUIRE(db.query("SELECT read_to, last_seq FROM channels WHERE name = ?1", {c.channel},
                     [&](sqlite3_stmt* s) {
                       read_to = ReadOnlyDb::integer(s, 0);
                       last_seq = ReadOnlyDb::integer(s, 1);
                     }));
    CHECK_MESSAGE(last_seq == server_last_seq[c.channel],
                  c.name << ": cache last_seq " << last_seq);
    CHECK_MESSAGE(read_to == last_seq, c.name << ": cursor " << read_to << " of " << last_seq);
    std::size_t delivered = 0;
    for (const auto& e : cached) {
      if (e.kind == "message" && e.sender != c.name && e.seq <= read_to) ++delivered;
    }
    cache_delivered_[c.name] = delivered;
    // The outbox: in parley.db, or in outbox.db of its own where the cache has one.
    std::uint64_t outbox = 0;
    const std::string outbox_file = c.data_dir + "/outbox.db";
    if (std::filesystem::exists(outbox_file)) {
      ReadOnlyDb odb(outbox_file);
      REQUIRE_MESSAGE(odb.query("SELECT count(*) FROM outbox", {},
                                [&](sqlite3_stmt* s) { outbox = ReadOnlyDb::integer(s, 0); }),
                      odb.error());
    } else {
      REQUIRE_MESSAGE(db.query("SELECT count(*) FROM outbox", {},
                               [&](sqlite3_stmt* s) { outbox = ReadOnlyDb::integer(s, 0); }),
                      db.error());
    }
    CHECK_MESSAGE(outbox == 0, c.name << ": " << outbox << " entries left in the outbox");
  }
}

void Scenario::print_summary() {
  double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  int client_kills = 0, kills_with_outbox = 0, outage_kills = 0;
  for (auto& c : clients_) {
    for (auto& k : c.kills) {
      ++client_kills;
      kills_with_outbox += k.outbox_at_restart > 0 ? 1 : 0;
      outage_kills += k.during_outage ? 1 : 0;
    }
  }
  std::printf("fault injection: %d clients in %d channels, %d messages each, seed %llu, %.1f s\n",
              config_.clients, config_.channels, config_.messages,
              static_cast<unsigned long long>(config_.seed), seconds);
  std::printf(
      "  kills: server %d (restarts took %d attempts), clients %d (%d while the server "
      "was down; outbox non-empty at restart: %d)\n",
      server_kills_, server_restart_attempts_, client_kills, outage_kills, kills_with_outbox);
  std::printf("  proxy: %s\n", faults_.to_string().c_str());
  for (auto& c : clients_) {
    std::size_t outbox_at_restart = 0;
    for (auto& k : c.kills) outbox_at_restart += k.outbox_at_restart;
    std::printf(
        "  %s #%s: pending %zu, sent lines %zu, stored %zu, cache events %zu, "
        "delivered %zu, kills %zu (outbox entries at restart %zu), last run: %s\n",
        c.name.c_str(), c.channel.c_str(), c.pending.size(), c.sent.size(),
        stored_by_client_[c.name], cache_events_[c.name], cache_delivered_[c.name], c.kills.size(),
        outbox_at_restart, c.done_line.c_str());
  }
  std::printf(
      "  total: sent %zu, stored %zu, duplicates %zu, lost %zu, out of order %zu, "
      "stored but never reported (killed inside send) %zu\n",
      totals_.reported, totals_.stored, totals_.duplicates, totals_.lost, totals_.reordered,
      totals_.unreported);
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("fault injection: no message lost or duplicated through cuts and kills") {
  Scenario scenario(Config::from_env());
  scenario.run();
}

// While the server is down the proxy accepts each connection, then resets it
// at once. Whatever stage the client's handshake had reached, the client must
// notice and try again, for as long as it runs. (libwebsockets 4.1 reports a
// handshake it could not write with neither CONNECTION_ERROR nor
// CLIENT_CLOSED; a transport that waits for those stays "connecting" forever.)
TEST_CASE("fault injection: a client keeps reconnecting while every connection is reset") {
  TempDir dir(false);
  REQUIRE(!dir.path().empty());
  const std::string key = dir.path() + "/server.key";
  REQUIRE(run_tool({PARLEY_SERVER_BIN, "keygen", "--out", key}).empty());
  const std::string token =
      run_tool({PARLEY_SERVER_BIN, "mint-token", "--key", key, "--user", "c0"});
  REQUIRE(!token.empty());

  // A port where nothing listens: bound, so that nobody else takes it, but no listen().
  int dead = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(dead >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(dead, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::getsockname(dead, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::string error;
  auto proxy = FaultProxy::start(ntohs(addr.sin_port), FaultPlan{}, &error);
  REQUIRE_MESSAGE(proxy != nullptr, error);
  proxy->set_faults(false);  // only the resets of a server that is down

  constexpr int kRunMs = 6000;
  auto client = Process::spawn({PARLEY_FAULT_CLIENT_BIN,
                                "--watch-stdin",
                                "--print-states",
                                "--name",
                                "c0",
                                "--channel",
                                "ch0",
                                "--peers",
                                "c0",
                                "--data",
                                dir.path() + "/c0",
                                "--url",
                                "ws://127.0.0.1:" + std::to_string(proxy->port()) + "/",
                                "--token",
                                token,
                                "--messages",
                                "1",
                                "--deadline-s",
                                std::to_string(kRunMs / 1000),
                                "--reconnect-base-ms",
                                "1",
                                "--reconnect-max-ms",
                                "5"},
                               {}, &error);
  REQUIRE_MESSAGE(client != nullptr, error);
  int attempts = 0;
  long long last_ms = 0;
  std::string last_state;
  auto until = Clock::now() + milliseconds(kRunMs) + 10s;
  while (!client->at_eof() && Clock::now() < until) {
    auto line = client->read_line(200ms);
    if (!line) continue;
    auto w = words(*line);
    if (w.size() == 3 && w[0] == "state") {
      last_ms = std::atoll(w[1].c_str());
      last_state = w[2];
      attempts += last_state == "connecting" ? 1 : 0;
    }
  }
  auto status = client->wait(5s);
  proxy->stop();
  ::close(dead);
  MESSAGE("connection attempts " << attempts << ", last state " << last_state << " at " << last_ms
                                 << " ms, proxy: " << proxy->counts().to_string());
  CHECK(status == 3);  // gave up at its deadline, as it cannot join
  CHECK(attempts >= 10);
  CHECK_MESSAGE(last_ms >= kRunMs - 1500,
                "the client stopped trying after " << last_ms << " ms, in state " << last_state);
}

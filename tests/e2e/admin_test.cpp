// `parley-server admin ...` against a real parley-server process started with
// --filter and --rate-limit (docs/channels.md, "Administration"): each
// subcommand's exit code and the JSON line it prints, what its actions do
// to connected users, and its failures (nothing listening, bad usage).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "protocol/codec.hpp"
#include "transport/websocket.hpp"

extern char** environ;

namespace parley_e2e {
namespace {

namespace wire = parley::wire;
using Clock = std::chrono::steady_clock;

// A finished tool run: its exit status and everything it printed.
struct ToolRun {
  int status = -1;  // -1: did not exit within the timeout (then killed)
  std::string out;
  std::string err;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs argv with stdout and stderr in files of `dir` (Process shares stderr
// with the test, and these tests look at it).
ToolRun run_tool(const std::vector<std::string>& argv, const TempDir& dir,
                 std::chrono::milliseconds timeout = 20s) {
  static int runs = 0;
  const std::string out_path = dir.sub("tool-" + std::to_string(++runs) + ".out");
  const std::string err_path = out_path + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (std::string& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ToolRun run;
  if (spawned != 0) {
    run.err = "cannot start " + argv[0];
    return run;
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (status != -1) run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = read_all(out_path);
  run.err = read_all(err_path);
  return run;
}

// The one JSON object a successful or refused admin run prints.
rapidjson::Document json_of(const ToolRun& run) {
  INFO("stdout: " << run.out << "stderr: " << run.err);
  REQUIRE(!run.out.empty());
  REQUIRE(run.out.back() == '\n');
  REQUIRE(run.out.find('\n') == run.out.size() - 1);  // one line
  rapidjson::Document doc;
  doc.Parse(run.out.c_str(), run.out.size() - 1);
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

std::string str(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key) || !object[key].IsString()) return "";
  return object[key].GetString();
}
std::uint64_t num(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key) || !object[key].IsUint64()) return 0;
  return object[key].GetUint64();
}
// The element of array `key` whose `field` is `value`, or null.
const rapidjson::Value* find(const rapidjson::Value& object, const char* key, const char* field,
                             const std::string& value) {
  if (!object.HasMember(key) || !object[key].IsArray()) return nullptr;
  for (const auto& item : object[key].GetArray()) {
    if (str(item, field) == value) return &item;
  }
  return nullptr;
}

// A user connected with the SDK's WebSocket transport, speaking raw frames:
// simpler than a CLI process for setting the scene, and it sees every frame.
class WireUser : public parley::sys::TransportHandler {
 public:
  WireUser(const Server& server, const std::string& token) {
    transport_.connect(server.url(), wire::kSubprotocol, this);
    auth_ = request(wire::Auth{0, token});
  }
  ~WireUser() override {
    if (!closed_) transport_.close(1000, "done");
  }

  // The reply to `message` (sent with a fresh rid); events arriving first are kept.
  wire::ServerMessage request(wire::ClientMessage message) {
    const std::uint64_t rid = ++last_rid_;
    std::visit([&](auto& m) { m.rid = rid; }, message);
    transport_.send(wire::encode(message));
    wire::ServerMessage reply;
    REQUIRE_MESSAGE(wait([&] { return take_reply(rid, &reply); }), "no reply to rid " << rid);
    return reply;
  }
  template <typename T>
  T request_as(wire::ClientMessage message) {
    wire::ServerMessage reply = request(std::move(message));
    auto* value = std::get_if<T>(&reply);
    if (value == nullptr) FAIL("unexpected reply " << wire::encode(reply));
    return *value;
  }
  // Several sends in one frame, as a client may pack them; their replies in order.
  std::vector<wire::ServerMessage> send_batch(const std::string& channel, int count) {
    std::string frame = "[";
    std::vector<std::uint64_t> rids;
    for (int i = 0; i < count; ++i) {
      rids.push_back(++last_rid_);
      frame += wire::encode(wire::ClientMessage{
                   wire::Send{rids.back(), channel, fresh_id(), "batch " + std::to_string(i)}}) +
               ",";
    }
    frame.back() = ']';
    transport_.send(frame);
    std::vector<wire::ServerMessage> replies;
    for (std::uint64_t rid : rids) {
      wire::ServerMessage reply;
      REQUIRE(wait([&] { return take_reply(rid, &reply); }));
      replies.push_back(std::move(reply));
    }
    return replies;
  }
  wire::ServerMessage send(const std::string& channel, const std::string& text) {
    return request(wire::Send{0, channel, fresh_id(), text});
  }

  // The first unsolicited message (event or error without rid) that satisfies `pred`.
  template <typename Pred>
  std::optional<wire::ServerMessage> unsolicited(Pred pred,
                                                 std::chrono::milliseconds timeout = 10s) {
    std::optional<wire::ServerMessage> found;
    wait(
        [&] {
          for (auto it = other_.begin(); it != other_.end(); ++it) {
            if (pred(*it)) {
              found = std::move(*it);
              other_.erase(it);
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }
  std::optional<wire::ChannelEvent> event(const std::string& kind) {
    auto message = unsolicited([&](const wire::ServerMessage& m) {
      const auto* e = std::get_if<wire::ChannelEvent>(&m);
      return e != nullptr && e->kind == kind;
    });
    if (!message) return std::nullopt;
    return std::get<wire::ChannelEvent>(*message);
  }

  const wire::ServerMessage& auth_reply() const { return auth_; }
  bool wait_closed(std::chrono::milliseconds timeout = 10s) {
    return wait([&] { return closed_; }, timeout);
  }
  const parley::Status& closed_reason() const { return closed_reason_; }

  // sys::TransportHandler
  void on_open() override {}
  void on_frame(std::string_view frame) override {
    for (auto& item : wire::decode_server_frame(frame)) {
      auto* message = std::get_if<wire::ServerMessage>(&item);
      if (message == nullptr) continue;
      std::optional<std::uint64_t> rid = std::visit(
          [](const auto& m) -> std::optional<std::uint64_t> {
            if constexpr (requires { m.rid; }) {
              return m.rid;
            } else {
              return std::nullopt;
            }
          },
          *message);
      if (rid) {
        replies_.emplace_back(*rid, std::move(*message));
      } else {
        other_.push_back(std::move(*message));
      }
    }
  }
  void on_closed(const parley::Status& reason) override {
    closed_ = true;
    closed_reason_ = reason;
  }

 private:
  static std::string fresh_id() {
    static int next = 0;
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032x", ++next + 0x1000);
    return buf;
  }
  template <typename Done>
  bool wait(Done done, std::chrono::milliseconds timeout = 10s) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      transport_.poll(20ms);
    }
    return true;
  }
  bool take_reply(std::uint64_t rid, wire::ServerMessage* out) {
    for (auto it = replies_.begin(); it != replies_.end(); ++it) {
      if (it->first == rid) {
        *out = std::move(it->second);
        replies_.erase(it);
        return true;
      }
    }
    return false;
  }

  parley::transport::WebSocketTransport transport_;
  std::uint64_t last_rid_ = 0;
  wire::ServerMessage auth_;
  std::vector<std::pair<std::uint64_t, wire::ServerMessage>> replies_;
  std::vector<wire::ServerMessage> other_;
  bool closed_ = false;
  parley::Status closed_reason_;
};

// A port on 127.0.0.1 with nobody listening (bound, read, closed).
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

TEST_CASE("parley-server admin: every subcommand against a running server") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const std::string key = tmp.sub("server.key");
  REQUIRE(keygen(key) == "");
  const std::string filter = tmp.sub("words.txt");
  std::ofstream(filter) << "reject badword\nmask darn\n";
  Server server(tmp.sub("server-data"), key);
  const std::string started = server.start({"--filter", filter, "--rate-limit", "5/1"});
  INFO(started);
  REQUIRE(started.empty());
  auto admin = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {PARLEY_SERVER_BIN, "admin", "--url",
                                     server.url(),      "--key", key};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_tool(argv, tmp);
  };

  WireUser alice(server, mint_token(key, "alice"));
  WireUser bob(server, mint_token(key, "bob"));
  WireUser carol(server, mint_token(key, "carol"));
  REQUIRE(std::holds_alternative<wire::Welcome>(alice.auth_reply()));
  alice.request_as<wire::Ok>(wire::CreateChannel{0, "lobby", std::string("public"), std::nullopt});
  alice.request_as<wire::Ok>(wire::CreateChannel{0, "inner", std::string("private"), std::nullopt});
  bob.request_as<wire::Ok>(wire::JoinChannel{0, "lobby"});
  carol.request_as<wire::Ok>(wire::JoinChannel{0, "lobby"});

  // The server applies --filter and --rate-limit.
  auto masked = alice.send("lobby", "darn it");
  REQUIRE(std::holds_alternative<wire::Ack>(masked));
  const std::uint64_t reported = std::get<wire::Ack>(masked).seq;
  auto delivered = bob.event("message");
  REQUIRE(delivered);
  CHECK(delivered->text == "**** it");
  auto filtered = alice.send("lobby", "a badword here");
  REQUIRE(std::holds_alternative<wire::Error>(filtered));
  CHECK(std::get<wire::Error>(filtered).code == "filtered");
  auto burst = carol.send_batch("lobby", 6);
  for (std::size_t i = 0; i < 5; ++i) CHECK(std::holds_alternative<wire::Ack>(burst[i]));
  REQUIRE(std::holds_alternative<wire::Error>(burst[5]));
  CHECK(std::get<wire::Error>(burst[5]).code == "rate_limited");
  CHECK(std::get<wire::Error>(burst[5]).retry_after_ms.value_or(0) > 0);
  CHECK(std::get<wire::Error>(burst[5]).retry_after_ms.value_or(0) <= 200);

  bob.request_as<wire::Ok>(wire::Report{0, "lobby", reported, "rude"});

  SUBCASE("channels, users and reports") {
    ToolRun run = admin({"channels"});
    CHECK(run.status == 0);
    CHECK(run.err.empty());
    auto channels = json_of(run);
    CHECK(str(channels, "type") == "admin_result");
    CHECK(str(channels, "action") == "channels");
    const auto* lobby = find(channels, "channels", "channel", "lobby");
    REQUIRE(lobby != nullptr);
    CHECK(str(*lobby, "kind") == "public");
    CHECK(num(*lobby, "members") == 3);
    CHECK(num(*lobby, "last_seq") == reported + 5);
    const auto* inner = find(channels, "channels", "channel", "inner");
    REQUIRE(inner != nullptr);
    CHECK(str(*inner, "kind") == "private");
    CHECK(num(*inner, "members") == 1);
    CHECK(channels["channels"].Size() == 2);

    run = admin({"users"});
    CHECK(run.status == 0);
    auto users = json_of(run);
    for (const char* name : {"alice", "bob", "carol", "admin"}) {
      CAPTURE(name);
      const auto* user = find(users, "users", "user", name);
      REQUIRE(user != nullptr);
      CHECK(num(*user, "first_seen") > 0);
      CHECK_FALSE(user->HasMember("banned_until"));
    }

    run = admin({"--as", "ops", "reports"});
    CHECK(run.status == 0);
    auto reports = json_of(run);
    REQUIRE(reports["reports"].Size() == 1);
    const auto& report = reports["reports"][0];
    CHECK(str(report, "channel") == "lobby");
    CHECK(num(report, "seq") == reported);
    CHECK(str(report, "reporter") == "bob");
    CHECK(str(report, "reason") == "rude");
    CHECK(str(report, "sender") == "alice");
    CHECK(str(report, "text") == "**** it");  // as stored
    CHECK(find(json_of(admin({"users"})), "users", "user", "ops") != nullptr);
  }

  SUBCASE("ban-user and unban-user") {
    const std::int64_t before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
    ToolRun run = admin({"ban-user", "bob", "--seconds", "60"});
    CHECK(run.status == 0);
    auto banned = json_of(run);
    CHECK(str(banned, "action") == "ban_user");
    // Bob's open session is told, then closed with 4004.
    auto told = bob.unsolicited(
        [](const wire::ServerMessage& m) { return std::holds_alternative<wire::Error>(m); });
    REQUIRE(told);
    const auto& error = std::get<wire::Error>(*told);
    CHECK(error.code == "banned");
    REQUIRE(error.until.has_value());
    CHECK(*error.until >= before_ms + 60'000);
    REQUIRE(bob.wait_closed());
    CHECK(bob.closed_reason().message().find("4004") != std::string::npos);
    {
      WireUser again(server, mint_token(key, "bob"));
      const auto* refusal = std::get_if<wire::Error>(&again.auth_reply());
      REQUIRE(refusal != nullptr);
      CHECK(refusal->code == "banned");
      CHECK(refusal->until == error.until);
      REQUIRE(again.wait_closed());
      CHECK(again.closed_reason().message().find("4004") != std::string::npos);
    }
    run = admin({"users"});
    rapidjson::Document users = json_of(run);  // outlives `listed`, which points into it
    const auto* listed = find(users, "users", "user", "bob");
    REQUIRE(listed != nullptr);
    CHECK(num(*listed, "banned_until") == static_cast<std::uint64_t>(*error.until));

    run = admin({"unban-user", "bob"});
    CHECK(run.status == 0);
    CHECK(str(json_of(run), "action") == "unban_user");
    WireUser back(server, mint_token(key, "bob"));
    const auto* welcome = std::get_if<wire::Welcome>(&back.auth_reply());
    REQUIRE(welcome != nullptr);
    CHECK(welcome->channels.size() == 1);
  }

  SUBCASE("system-message and delete-channel") {
    ToolRun run = admin({"system-message", "lobby", "maintenance tonight"});
    CHECK(run.status == 0);
    auto posted = json_of(run);
    CHECK(str(posted, "action") == "system_message");
    const std::uint64_t seq = num(posted, "seq");
    CHECK(seq == reported + 6);
    for (WireUser* who : {&alice, &bob}) {
      auto system = who->event("system");
      REQUIRE(system);
      CHECK(system->seq == seq);
      CHECK(system->text == "maintenance tonight");
      CHECK(system->sender == "admin");
    }

    run = admin({"delete-channel", "lobby"});
    CHECK(run.status == 0);
    CHECK(num(json_of(run), "seq") == seq + 1);
    for (WireUser* who : {&alice, &bob, &carol}) {
      auto gone = who->event("channel_deleted");
      REQUIRE(gone);
      CHECK(gone->seq == seq + 1);
    }
    auto refused = bob.send("lobby", "anyone?");
    REQUIRE(std::holds_alternative<wire::Error>(refused));
    CHECK(std::get<wire::Error>(refused).code == "no_such_channel");

    // Refusals by the server: exit 1 with the error as the JSON line.
    run = admin({"delete-channel", "lobby"});
    CHECK(run.status == 1);
    auto error = json_of(run);
    CHECK(str(error, "type") == "error");
    CHECK(str(error, "code") == "no_such_channel");
    run = admin({"system-message", "nowhere", "hello"});
    CHECK(run.status == 1);
    CHECK(str(json_of(run), "code") == "no_such_channel");
    run = admin({"ban-user", "bad name"});
    CHECK(run.status == 1);
    CHECK(str(json_of(run), "code") == "invalid_user");
  }

  CHECK(server.stop() == 0);
}

TEST_CASE("parley-server admin: failures without a server answer") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const std::string key = tmp.sub("server.key");
  REQUIRE(keygen(key) == "");
  const std::string nowhere = "ws://127.0.0.1:" + std::to_string(unused_port());

  ToolRun run =
      run_tool({PARLEY_SERVER_BIN, "admin", "--url", nowhere, "--key", key, "channels"}, tmp);
  CHECK(run.status == 1);
  CHECK(run.out.empty());
  CHECK(run.err.find("parley-server admin:") != std::string::npos);
  MESSAGE("nothing listening: " << run.err);

  run = run_tool({PARLEY_SERVER_BIN, "admin", "--url", nowhere, "--key", key, "frobnicate"}, tmp);
  CHECK(run.status == 2);
  CHECK_FALSE((run.out + run.err).empty());  // says why
  run = run_tool({PARLEY_SERVER_BIN, "admin", "--url", nowhere, "--key", key}, tmp);
  CHECK(run.status == 2);
  run = run_tool({PARLEY_SERVER_BIN, "admin", "--url", nowhere, "--key", key, "ban-user"}, tmp);
  CHECK(run.status == 2);
  run = run_tool({PARLEY_SERVER_BIN, "admin", "--key", key, "channels"}, tmp);
  CHECK(run.status == 2);
  run = run_tool(
      {PARLEY_SERVER_BIN, "admin", "--url", nowhere, "--key", tmp.sub("missing.key"), "channels"},
      tmp);
  CHECK(run.status == 1);
  CHECK(run.err.find("missing.key") != std::string::npos);
}

}  // namespace parley_e2e

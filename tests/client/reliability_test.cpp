// Reconnection, resume with progress, and idleness (issue 4's client side).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds the whole process (client and in-process server) used over `span`.
double cpu_over(std::chrono::milliseconds span) {
  double before = cpu_seconds();
  std::this_thread::sleep_for(span);
  return cpu_seconds() - before;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::unique_ptr<server::Server> start_server(TestServer& keys, int port) {
  server::ServerOptions opts;
  opts.port = port;
  opts.data_dir = keys.dir.string();
  std::copy(std::begin(keys.key.public_key), std::end(keys.key.public_key),
            opts.public_key.begin());
  auto s = server::Server::create(opts);
  REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  (*s)->start();
  return std::move(*s);
}

}  // namespace

TEST_CASE("an idle client uses no CPU: before connecting, connected, and disconnected") {
  TestServer server(/*listen=*/true);
  ClientOptions o = server.options("alice", temp_dir("alice"));
  o.transport = nullptr;
  o.server_url = "ws://127.0.0.1:" + std::to_string(server.server->port()) + "/";

  o.auto_connect = false;
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  // The bounds catch a busy loop (which would burn the whole span) with room
  // for sanitizer builds, which slow everything down several times.
  double never = cpu_over(std::chrono::seconds(2));
  CHECK(never < 0.3);

  (*alice)->connect();
  REQUIRE(wait_ready(**alice));
  double connected = cpu_over(std::chrono::seconds(3));
  CHECK(connected < 0.3);  // a busy loop would use ~3 s

  server.server->stop();
  REQUIRE(wait_for<StateChanged>(**alice, [](const StateChanged& s) {
            return s.state == LifecycleState::disconnected;
          }).has_value());
  double disconnected = cpu_over(std::chrono::seconds(3));
  CHECK(disconnected < 0.3);  // backoff between attempts, nothing in between
  MESSAGE("idle CPU seconds: never connected " << never << ", connected " << connected
                                               << ", disconnected " << disconnected);
}

TEST_CASE("reconnect_now skips the backoff wait when the network comes back") {
  TestServer keys(/*listen=*/false);
  int port = free_port();
  ClientOptions o = keys.options("alice", temp_dir("alice"));
  o.transport = nullptr;
  o.server_url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  o.reconnect_base = std::chrono::seconds(20);  // the next attempt would be far away
  o.reconnect_max = std::chrono::seconds(60);
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  REQUIRE(wait_for<StateChanged>(**alice, [](const StateChanged& s) {
            return s.state == LifecycleState::disconnected && !s.reason.ok();
          }).has_value());
  // Let the first retry happen and fail too, so the next wait is long.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  auto server = start_server(keys, port);
  auto t0 = std::chrono::steady_clock::now();
  (*alice)->reconnect_now();
  REQUIRE(wait_ready(**alice, std::chrono::seconds(5)));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  server->stop();
}

TEST_CASE("catching up after a long absence arrives in pages with progress, nothing skipped") {
  TestServer server;
  auto bdir = temp_dir("bob");
  auto alice_c = Client::open(server.options("alice", temp_dir("alice")));
  REQUIRE(alice_c.ok());
  auto& alice = **alice_c;
  REQUIRE(wait_ready(alice));
  REQUIRE(request_status(alice, alice.create_channel("general")).ok());
  {
    auto bob = Client::open(server.options("bob", bdir));
    REQUIRE(bob.ok());
    REQUIRE(wait_ready(**bob));
    REQUIRE(request_status(**bob, (*bob)->join_channel("general")).ok());
  }
  const int missed = 1200;
  for (int i = 0; i < missed; ++i) alice.send("general", "m" + std::to_string(i));
  for (int i = 0; i < missed; ++i) REQUIRE(wait_for<MessageSent>(alice).has_value());

  ClientOptions o = server.options("bob", bdir);
  o.sync_page_size = 500;
  auto bob = Client::open(o);
  REQUIRE(bob.ok());
  std::vector<SyncProgress> progress;
  int received = 0;
  std::uint64_t last_seq = 2;
  auto seen = [&](const Event& e) {
    if (auto* p = std::get_if<SyncProgress>(&e)) progress.push_back(*p);
    if (auto* m = std::get_if<MessageReceived>(&e)) {
      CHECK(m->message.seq == last_seq + 1);
      CHECK(m->message.text == "m" + std::to_string(received));
      last_seq = m->message.seq;
      ++received;
    }
  };
  REQUIRE(wait_for<StateChanged>(**bob, [](const StateChanged& s) {
            return s.state == LifecycleState::ready;
          }, std::chrono::seconds(20), seen).has_value());
  CHECK(received == missed);
  REQUIRE(progress.size() >= 3);  // 1200 in pages of at most 500
  CHECK(progress.back().fetched == static_cast<std::uint64_t>(missed));
  CHECK(progress.back().total == static_cast<std::uint64_t>(missed));
  for (std::size_t i = 1; i < progress.size(); ++i) {
    CHECK(progress[i].fetched > progress[i - 1].fetched);
    CHECK(progress[i].fetched - progress[i - 1].fetched <= 500);
  }
}

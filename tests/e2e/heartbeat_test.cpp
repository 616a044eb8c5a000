// Heartbeats against a real server process: a server that stops answering
// (frozen with SIGSTOP, its TCP connection still open) is detected by the
// client's ping/pong timeout, and the client reconnects once it answers again.
#include <doctest/doctest.h>
#include <signal.h>

#include "harness.hpp"
#include "parley/client.hpp"

using namespace parley_e2e;
using namespace std::chrono_literals;

namespace {

template <class T>
std::optional<T> wait_event(parley::Client& client, std::function<bool(const T&)> pred,
                            std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto ev = client.next_event(100ms);
    if (!ev) continue;
    if (auto* t = std::get_if<T>(&*ev); t && pred(*t)) return *t;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("a silent server is detected by heartbeats and the client reconnects") {
  TempDir dir;
  std::string key = dir.path() + "/server.key";
  REQUIRE(keygen(key).empty());
  Server server(dir.path() + "/server", key);
  REQUIRE(server.start().empty());

  parley::ClientOptions o;
  o.server_url = server.url();
  o.token = mint_token(key, "alice");
  o.data_dir = dir.path() + "/alice";
  o.heartbeat_interval = std::chrono::seconds(1);
  o.dead_connection_timeout = std::chrono::seconds(3);
  o.reconnect_base = 100ms;
  o.reconnect_max = 500ms;
  auto client = parley::Client::open(o);
  REQUIRE(client.ok());
  auto is = [](parley::LifecycleState want) {
    return [want](const parley::StateChanged& s) { return s.state == want; };
  };
  REQUIRE(wait_event<parley::StateChanged>(**client, is(parley::LifecycleState::ready), 10s));

  REQUIRE(server.signal(SIGSTOP));
  auto t0 = std::chrono::steady_clock::now();
  auto down = wait_event<parley::StateChanged>(**client, is(parley::LifecycleState::disconnected), 15s);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(server.signal(SIGCONT));
  REQUIRE(down.has_value());
  CHECK(took >= 2s);   // not before the dead-connection timeout
  CHECK(took <= 8s);   // but soon after it
  MESSAGE("dead connection detected after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");

  CHECK(wait_event<parley::StateChanged>(**client, is(parley::LifecycleState::ready), 15s));
  client->reset();
  CHECK(server.stop() == 0);
}

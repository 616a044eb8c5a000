// The libwebsockets transport against the server listening on 127.0.0.1.
#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace parley;
using namespace parley::testing;

namespace {

ClientOptions ws_options(TestServer& server, const std::string& user,
                         const std::filesystem::path& dir) {
  ClientOptions o = server.options(user, dir);
  o.transport = nullptr;  // the default: WebSocket
  o.server_url = "ws://127.0.0.1:" + std::to_string(server.server->port()) + "/";
  return o;
}

}  // namespace

TEST_CASE("two clients chat over real WebSockets") {
  TestServer server(/*listen=*/true);
  REQUIRE(server.server->port() > 0);
  auto alice = Client::open(ws_options(server, "alice", temp_dir("alice")));
  auto bob = Client::open(ws_options(server, "bob", temp_dir("bob")));
  REQUIRE(alice.ok());
  REQUIRE(bob.ok());
  REQUIRE(wait_ready(**alice));
  REQUIRE(wait_ready(**bob));
  CHECK(request_status(**alice, (*alice)->create_channel("general")).ok());
  CHECK(request_status(**bob, (*bob)->join_channel("general")).ok());

  // Enough traffic that the server packs several events per frame.
  for (int i = 0; i < 200; ++i) (*alice)->send("general", "ws " + std::to_string(i));
  std::uint64_t last = 2;
  for (int i = 0; i < 200; ++i) {
    auto got = wait_for<MessageReceived>(**bob);
    REQUIRE(got.has_value());
    CHECK(got->message.seq == last + 1);
    CHECK(got->message.text == "ws " + std::to_string(i));
    last = got->message.seq;
  }
}

TEST_CASE("the client reconnects after the server goes away and comes back") {
  auto dir = temp_dir("alice");
  TestServer server(/*listen=*/true);
  int port = server.server->port();
  ClientOptions o = ws_options(server, "alice", dir);
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  REQUIRE(wait_ready(**alice));
  CHECK(request_status(**alice, (*alice)->create_channel("general")).ok());

  server.server->stop();
  auto down = wait_for<StateChanged>(**alice, [](const StateChanged& s) {
    return s.state == LifecycleState::disconnected;
  });
  REQUIRE(down.has_value());
  CHECK(down->reason.reason() == "shutting_down");

  // Offline: the send is accepted at once.
  auto id = (*alice)->send("general", "while down");
  REQUIRE(id.ok());

  // Same data, same port: the client finds it again and delivers the outbox.
  server::ServerOptions opts;
  opts.port = port;
  opts.data_dir = server.dir.string();
  std::copy(std::begin(server.key.public_key), std::end(server.key.public_key),
            opts.public_key.begin());
  auto again = server::Server::create(opts);
  REQUIRE_MESSAGE(again.ok(), again.status().to_string());
  (*again)->start();
  auto sent = wait_for<MessageSent>(**alice, [&](const MessageSent& s) { return s.id == *id; },
                                    std::chrono::seconds(15));
  CHECK(sent.has_value());
  (*again)->stop();
}

TEST_CASE("a client with no server keeps retrying without failing") {
  TestServer server(/*listen=*/true);
  ClientOptions o = ws_options(server, "alice", temp_dir("alice"));
  o.server_url = "ws://127.0.0.1:1/";  // nothing listens there
  o.request_timeout = std::chrono::milliseconds(500);
  auto alice = Client::open(o);
  REQUIRE(alice.ok());
  auto s = request_status(**alice, (*alice)->join_channel("general"));
  CHECK(s.reason() == "offline");
  // History still answers from the (empty) cache.
  RequestId h = (*alice)->load_history("general", {0, 10});
  auto loaded = wait_for<HistoryLoaded>(**alice, [h](const HistoryLoaded& x) { return x.request == h; });
  REQUIRE(loaded.has_value());
  CHECK(loaded->status.ok());
  CHECK_FALSE(loaded->complete);
}
